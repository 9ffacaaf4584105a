import fc from 'fast-check';
import { firstMatchV4, portPlanV4, repaintPlanV4, type RuleBox, type SignedRuleBox } from '../../../provider/src/realize/nftables/boxes';

/** Small coordinates so every (port, address) point can be checked against the definition. */
const ADDR_HI = 40;
const PORT_HI = 24;

const rangeArb = fc.tuple(fc.integer({ min: 0, max: ADDR_HI }), fc.integer({ min: 0, max: ADDR_HI })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
const boxArb = fc.record({
  rule: fc.integer({ min: 0, max: 7 }),
  protocol: fc.constantFrom('tcp' as const, 'udp' as const),
  ports: fc.tuple(fc.integer({ min: 0, max: PORT_HI }), fc.integer({ min: 0, max: PORT_HI })),
  // Sometimes a catch-all rule (every address), which ends painting for the ports it covers.
  all: fc.boolean(),
  ranges: fc.array(rangeArb, { maxLength: 4 }),
});

/** Sorted, disjoint, non-adjacent ranges, as the engine hands them over. */
function normalize(ranges: readonly (readonly [number, number])[]): [number, number][] {
  const out: [number, number][] = [];
  for (const [lo, hi] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

describe('first match compiled into disjoint boxes', () => {
  test('every (protocol, port, address) point lies in at most one piece, owned by the first rule whose box holds it', () => {
    fc.assert(
      fc.property(fc.array(boxArb, { maxLength: 12 }), (raw) => {
        const boxes: RuleBox[] = raw.map((b) => ({
          rule: b.rule,
          protocol: b.protocol,
          plo: Math.min(...b.ports),
          phi: Math.max(...b.ports),
          ranges: b.all ? [[0, ADDR_HI]] : normalize(b.ranges),
        }));
        const pieces = firstMatchV4(boxes, ADDR_HI);
        for (const protocol of ['tcp', 'udp'] as const)
          for (let port = 0; port <= PORT_HI + 1; port++)
            for (let addr = 0; addr <= ADDR_HI + 1; addr++) {
              const holding = boxes.filter((b) => b.protocol === protocol && b.plo <= port && port <= b.phi && b.ranges.some(([lo, hi]) => lo <= addr && addr <= hi));
              const expected = holding.length ? Math.min(...holding.map((b) => b.rule)) : undefined;
              const found = pieces.filter((p) => p.protocol === protocol && p.plo <= port && port <= p.phi && p.lo <= addr && addr <= p.hi);
              // One check per point through expect made this test take minutes.
              const got = found.map((p) => p.rule).join(',');
              if (got !== (expected === undefined ? '' : `${expected}`)) throw new Error(`${protocol} port ${port} address ${addr}: pieces of rules [${got}], first matching rule ${expected ?? 'none'}`);
            }
      }),
      { numRuns: 300 },
    );
  });

  test('pieces of one rule over adjacent addresses and ports come out merged', () => {
    // Two boxes of one rule side by side in addresses, and a port box split by another rule's box.
    const pieces = firstMatchV4(
      [
        { rule: 0, protocol: 'tcp', plo: 80, phi: 80, ranges: [[5, 5]] },
        { rule: 1, protocol: 'tcp', plo: 0, phi: 65535, ranges: [[10, 19]] },
        { rule: 1, protocol: 'tcp', plo: 0, phi: 65535, ranges: [[20, 29]] },
      ],
      ADDR_HI,
    );
    expect(pieces.sort((a, b) => a.rule - b.rule)).toEqual([
      { rule: 0, protocol: 'tcp', lo: 5, hi: 5, plo: 80, phi: 80 },
      { rule: 1, protocol: 'tcp', lo: 10, hi: 29, plo: 0, phi: 65535 },
    ]);
  });

  test('the two-level plan (port → address class → rule) gives every point the first rule whose box holds it', () => {
    fc.assert(
      fc.property(fc.array(boxArb, { maxLength: 12 }), (raw) => {
        const boxes = raw.map((b) => {
          const ranges = b.all ? [[0, ADDR_HI] as const] : normalize(b.ranges);
          // A signature names a rule and its addresses (the compiler's boxes of one rule share them).
          return { rule: b.rule, sig: `${b.rule}:${JSON.stringify(ranges)}`, protocol: b.protocol, plo: Math.min(...b.ports), phi: Math.max(...b.ports), ranges };
        });
        const plan = portPlanV4(boxes, ADDR_HI);
        for (const protocol of ['tcp', 'udp'] as const)
          for (let port = 0; port <= PORT_HI + 1; port++) {
            const at = plan.ports.filter((p) => p.protocol === protocol && p.plo <= port && port <= p.phi);
            if (at.length > 1) throw new Error(`${protocol} port ${port} in ${at.length} port intervals`);
            const cls = at.length ? plan.classes[at[0]!.cls] : undefined;
            // As the kernel looks it up: the class's map, then (on a miss) the map of its base class.
            const chain = cls ? [cls, ...(cls.base !== undefined ? [plan.classes[cls.base]!] : [])] : [];
            if (chain[1]?.base !== undefined) throw new Error('a base class has a base');
            for (const c of chain) {
              const runs = c.runs;
              for (let i = 1; i < runs.length; i++) if (runs[i]!.lo <= runs[i - 1]!.hi || (runs[i]!.lo === runs[i - 1]!.hi + 1 && runs[i]!.rule === runs[i - 1]!.rule)) throw new Error(`class runs not disjoint and maximal: ${JSON.stringify(runs)}`);
            }
            for (let addr = 0; addr <= ADDR_HI + 1; addr++) {
              const holding = boxes.filter((b) => b.protocol === protocol && b.plo <= port && port <= b.phi && b.ranges.some(([lo, hi]) => lo <= addr && addr <= hi));
              const expected = holding.length ? `${Math.min(...holding.map((b) => b.rule))}` : '';
              const hit = chain.find((c) => c.runs.some((r) => r.lo <= addr && addr <= r.hi));
              const got = (hit?.runs ?? []).filter((r) => r.lo <= addr && addr <= r.hi).map((r) => r.rule).join(',');
              if (got !== expected) throw new Error(`${protocol} port ${port} address ${addr}: runs of rules [${got}], first matching rule ${expected || 'none'}`);
            }
          }
      }),
      { numRuns: 300 },
    );
  });

  test('port intervals covered by the same rules share one address class, whatever their members', () => {
    // tcp/80 and tcp/443 are both covered by rules 0 and 1 only: one class; the rest of tcp by rule 1 only.
    const plan = portPlanV4(
      [
        { rule: 0, sig: '0', protocol: 'tcp', plo: 80, phi: 80, ranges: [[5, 5]] },
        { rule: 0, sig: '0', protocol: 'tcp', plo: 443, phi: 443, ranges: [[5, 5]] },
        { rule: 1, sig: '1', protocol: 'tcp', plo: 0, phi: 65535, ranges: [[10, 19]] },
      ],
      ADDR_HI,
    );
    expect(plan.ports.map((p) => [p.plo, p.phi, p.cls])).toEqual([
      [0, 79, 0],
      [80, 80, 1],
      [81, 442, 0],
      [443, 443, 1],
      [444, 65535, 0],
    ]);
    // The class of tcp/80 and tcp/443 holds only what its port-specific rule 0 owns, over the base class.
    expect(plan.classes.map((c) => [c.runs, c.base])).toEqual([
      [[{ rule: 1, lo: 10, hi: 19 }], undefined],
      [[{ rule: 0, lo: 5, hi: 5 }], 0],
    ]);
  });

  test('a class over a base holds only the addresses a port-specific rule wins: the base answers the rest', () => {
    // Rule 0 allows tcp/22 from 0-9, rule 1 everything from 5-19 (every port), rule 2 tcp/22 from 15-29.
    const plan = portPlanV4(
      [
        { rule: 0, sig: '0', protocol: 'tcp', plo: 22, phi: 22, ranges: [[0, 9]] },
        { rule: 1, sig: '1', protocol: 'tcp', plo: 0, phi: 65535, ranges: [[5, 19]] },
        { rule: 2, sig: '2', protocol: 'tcp', plo: 22, phi: 22, ranges: [[15, 29]] },
      ],
      ADDR_HI,
    );
    const c22 = plan.classes[plan.ports.find((p) => p.plo === 22)!.cls]!;
    expect(plan.classes[c22.base!]!.runs).toEqual([{ rule: 1, lo: 5, hi: 19 }]);
    expect(c22.runs).toEqual([
      { rule: 0, lo: 0, hi: 9 },
      { rule: 2, lo: 20, hi: 29 },
    ]);
  });

  test('a plan repainted after the rules\' addresses changed equals the plan made from scratch', () => {
    // Rules keep their ports (the structure); their address ranges change, as pod churn changes peers.
    const ruleArb = fc.record({
      protocol: fc.constantFrom('tcp' as const, 'udp' as const),
      ports: fc.array(fc.tuple(fc.integer({ min: 0, max: PORT_HI }), fc.integer({ min: 0, max: PORT_HI })), { minLength: 1, maxLength: 2 }),
      every: fc.boolean(),
      all: fc.boolean(),
      before: fc.array(rangeArb, { minLength: 1, maxLength: 4 }),
      after: fc.array(rangeArb, { minLength: 1, maxLength: 4 }),
    });
    let repaints = 0;
    fc.assert(
      fc.property(fc.array(ruleArb, { minLength: 1, maxLength: 8 }), (rules) => {
        const boxesOf = (which: 'before' | 'after'): SignedRuleBox[] =>
          rules.flatMap((r, rule) => {
            const ranges = r.all ? [[0, ADDR_HI] as const] : normalize(r[which]);
            const ports = r.every ? [[0, 65535] as const] : r.ports.map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
            return ports.map(([plo, phi]) => ({ rule, sig: String(rule), protocol: r.protocol, plo, phi, ranges }));
          });
        const prev = portPlanV4(boxesOf('before'), ADDR_HI);
        const next = boxesOf('after');
        const repainted = repaintPlanV4(prev, next, ADDR_HI);
        const fresh = portPlanV4(next, ADDR_HI);
        // No repaint only where a box became or stopped being a catch-all (or ownable): a new structure.
        if (!repainted) return;
        repaints++;
        expect({ classes: repainted.classes, ports: repainted.ports }).toEqual({ classes: fresh.classes, ports: fresh.ports });
      }),
      { numRuns: 500 },
    );
    expect(repaints).toBeGreaterThan(250);
  });

  test('a repaint keeps every class whose runs did not change as the same object (and only those)', () => {
    const ruleArb = fc.record({
      ports: fc.array(fc.tuple(fc.integer({ min: 0, max: PORT_HI }), fc.integer({ min: 0, max: PORT_HI })), { minLength: 1, maxLength: 2 }),
      every: fc.boolean(),
      ranges: fc.array(rangeArb, { minLength: 1, maxLength: 4 }),
    });
    let kept = 0;
    let remade = 0;
    fc.assert(
      fc.property(fc.array(ruleArb, { minLength: 2, maxLength: 8 }), fc.nat(), fc.integer({ min: 0, max: ADDR_HI }), (rules, which, addr) => {
        // One rule gains one address (a pod joins its peer group): the others keep their range lists.
        const changedRule = which % rules.length;
        const boxesOf = (grown: boolean): SignedRuleBox[] =>
          rules.flatMap((r, rule) => {
            const ranges = normalize(grown && rule === changedRule ? [...r.ranges, [addr, addr]] : r.ranges);
            const ports = r.every ? [[0, 65535] as const] : r.ports.map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
            return ports.map(([plo, phi]) => ({ rule, sig: String(rule), protocol: 'tcp' as const, plo, phi, ranges }));
          });
        const prev = portPlanV4(boxesOf(false), ADDR_HI);
        const repainted = repaintPlanV4(prev, boxesOf(true), ADDR_HI);
        if (!repainted) return;
        repainted.classes.forEach((c, k) => {
          const same = JSON.stringify(c.runs) === JSON.stringify(prev.classes[k]!.runs);
          expect(c === prev.classes[k]).toBe(same);
          if (same) kept++;
          else remade++;
        });
      }),
      { numRuns: 500 },
    );
    expect(kept).toBeGreaterThan(100);
    expect(remade).toBeGreaterThan(100);
  });
});
