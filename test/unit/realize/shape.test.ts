import { World } from '../../../provider/src/engine';
import { realizePoints, sameShape, type Chain, type NamedSet, type Table } from '../../../provider/src/realize/nftables';

/**
 * sameShape decides whether the agent may update set elements instead of swapping the table: equal
 * chains and set declarations, whatever the elements.
 */

function table(): Table {
  const w = new World({ defaultAction: 'drop' });
  w.upsert('VirtualMachine', 'db', { interfaces: [{ ip: '172.16.0.10' }], labels: { role: 'db' } });
  w.upsert('VirtualMachine', 'app', { interfaces: [{ ip: '172.16.0.20' }], labels: { role: 'app' } });
  w.upsert('SecurityGroup', 'db', { vms: ['db'] });
  w.upsert('SecurityGroup', 'app', { vms: ['app'] });
  w.upsert('FirewallPolicy', 'p', {
    category: 'application',
    priority: 1,
    rules: [
      { name: 'app-to-db', action: 'allow', sources: [{ group: 'app' }], destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [5432] }] },
      { name: 'ping', action: 'drop', direction: 'in', sources: [{ group: 'app' }], destinations: [{ group: 'db' }], services: [{ protocol: 'icmp' }] },
    ],
  });
  return realizePoints(w, 'vm:db#0')![0]!.table;
}

/** A deep copy: equal content, no object shared. */
const copy = (t: Table): Table => ({ ...t, chains: t.chains.map((c) => ({ ...c, rules: c.rules.map((r) => ({ ...r, match: r.match.map((m) => ({ ...m })) })) })), sets: t.sets.map((s) => ({ ...s })) as NamedSet[] });
const withChain = (t: Table, name: string, f: (c: Chain) => Chain): Table => ({ ...t, chains: t.chains.map((c) => (c.name === name ? f(c) : c)) });

test('tables whose chains and sets are equal but not the same objects, with other elements, have the same shape', () => {
  const a = table();
  const b = copy(a);
  const moreElements = { ...b, sets: b.sets.map((s) => (s.kind === 'set' ? { ...s, elements: [...s.elements, { v: 4 as const, lo: 1n, hi: 1n }] } : s)) };
  expect(a.sets.some((s) => s.kind === 'set')).toBe(true);
  expect(sameShape(a, moreElements)).toBe(true);
});

test('a changed rule makes another shape', () => {
  const a = table();
  const rule = a.chains.find((c) => c.name.startsWith('r_in_'))!.name;
  expect(sameShape(a, withChain(a, rule, (c) => ({ ...c, rules: c.rules.map((r) => ({ ...r, comment: 'p/other' })) })))).toBe(false);
  expect(sameShape(a, withChain(a, 'in_application', (c) => ({ ...c, rules: c.rules.map((r) => (r.verdict?.kind === 'goto' ? { ...r, verdict: { kind: 'goto' as const, target: 'in_default' } } : r)) })))).toBe(false);
  expect(sameShape(a, withChain(a, 'in_application', (c) => ({ ...c, rules: c.rules.map((r) => (r.match[0]?.m === 'addr-set' ? { ...r, match: [{ ...r.match[0], set: 'p_other' }, ...r.match.slice(1)] } : r)) })))).toBe(false);
});

test('a chain more, less or renamed makes another shape', () => {
  const a = table();
  expect(sameShape(a, { ...a, chains: [...a.chains, { name: 'extra', rules: [] }] })).toBe(false);
  expect(sameShape(a, { ...a, chains: a.chains.slice(1) })).toBe(false);
  expect(sameShape(a, withChain(a, 'in_default', (c) => ({ ...c, name: 'in_other' })))).toBe(false);
});

test('a set declaration changed (name, family, timeout, size, kind) makes another shape', () => {
  const a = table();
  const change = (f: (s: NamedSet) => NamedSet | undefined) => ({ ...a, sets: a.sets.map((s) => f(s) ?? s) });
  expect(sameShape(a, change((s) => (s.kind === 'flow-set' ? { ...s, timeout: s.timeout + 1 } : undefined)))).toBe(false);
  expect(sameShape(a, change((s) => (s.kind === 'flow-set' ? { ...s, size: s.size * 2 } : undefined)))).toBe(false);
  expect(sameShape(a, change((s) => (s.kind === 'set' ? { ...s, v: 6 as const } : undefined)))).toBe(false);
  expect(sameShape(a, change((s) => (s.kind === 'set' ? { ...s, name: `${s.name}_2` } : undefined)))).toBe(false);
  expect(sameShape(a, change((s) => (s.kind === 'set' ? { kind: 'addr-map' as const, name: s.name, v: s.v, elements: [] } : undefined)))).toBe(false);
  expect(sameShape(a, { ...a, sets: a.sets.slice(1) })).toBe(false);
});
