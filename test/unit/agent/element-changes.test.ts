import fc from 'fast-check';
import { changedElements } from '../../../provider/src/agent/agent';
import type { AddressMap, Table } from '../../../provider/src/realize/nftables';

/** What the agent sends the kernel when only set elements changed (pod churn). */

const tableOf = (elements: AddressMap['elements']): Table => ({ family: 'inet', name: 't', chains: [], sets: [{ kind: 'addr-map', name: 'm', v: 4, elements }] });

/** Sorted, disjoint address runs, each sent to one of a few rules. */
const runsArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 200 }), { maxLength: 40 })
  .chain((starts) => fc.tuple(fc.constant(starts.sort((a, b) => a - b)), fc.array(fc.integer({ min: 0, max: 2 }), { minLength: starts.length, maxLength: starts.length })))
  .map(([starts, rules]) => starts.map((lo, i) => ({ addr: { v: 4 as const, lo: BigInt(lo), hi: BigInt(lo) }, rule: rules[i]! })));

test('the element changes between two lists remove exactly what only the old one has and add what only the new one has', () => {
  fc.assert(
    fc.property(runsArb, runsArb, (before, after) => {
      const key = (e: AddressMap['elements'][number]) => `${e.addr.lo}-${e.addr.hi} ${e.rule}`;
      const changes = changedElements(tableOf(before), tableOf(after));
      const removed = changes.flatMap((c) => c.removed.map((i) => key(before[i]!)));
      const added = changes.flatMap((c) => c.added.map((i) => key(after[i]!)));
      const [was, now] = [new Set(before.map(key)), new Set(after.map(key))];
      expect(removed.sort()).toEqual([...was].filter((k) => !now.has(k)).sort());
      expect(added.sort()).toEqual([...now].filter((k) => !was.has(k)).sort());
    }),
    { numRuns: 500 },
  );
});

test('one address more in a long list is one element added, however long the list', () => {
  const before = Array.from({ length: 10_000 }, (_, i) => ({ addr: { v: 4 as const, lo: BigInt(2 * i), hi: BigInt(2 * i) }, rule: 1 }));
  const after = [...before.slice(0, 5000), { addr: { v: 4 as const, lo: 10_001n, hi: 10_001n }, rule: 2 }, ...before.slice(5000)];
  const changes = changedElements(tableOf(before), tableOf(after.map((e) => ({ ...e })))); // equal, not the same objects
  expect(changes.map((c) => [c.removed, c.added])).toEqual([[[], [5000]]]);
});
