import fc from 'fast-check';
import { parseIp, type Ip } from '../../../provider/src/engine/ip';
import { atomIdsOf, type Atom, type Endpoint } from '../../../provider/src/engine/membership';
import {
  compileBlock,
  compileServices,
  firstMatch,
  firstMatchIndexed,
  indexRules,
  type Action,
  type Addr,
  type CompiledPolicy,
  type CompiledRule,
  type FlowService,
  type PeerSet,
} from '../../../provider/src/engine/rules';

/**
 * The per-list verdict index (service buckets per protocol and port interval, peer atoms, IPv4 block
 * intervals, always-checked rules) must give exactly what a linear first-match scan gives, for any list
 * and any flow: a rule that is not a candidate must never be one that matches. The world-level property
 * test only sends TCP flows; this one drives the index directly with every protocol, portless flows,
 * named ports, port ranges, IPv4 and IPv6 blocks with exceptions, egress IPs, negation and pass.
 */

const ATOMS: Atom[] = Array.from({ length: 6 }, (_, id) => ({ id, key: `a${id}`, members: new Set<number>(), rulesVersion: 0, version: 0, indexKeys: [], matches: () => false }));
const CIDRS: [string, string[]][] = [
  ['10.0.0.0/8', ['10.1.0.0/16']],
  ['10.1.0.0/16', []],
  ['10.1.2.0/24', ['10.1.2.8/29']],
  ['0.0.0.0/0', ['192.168.0.0/16']],
  ['2001:db8::/32', ['2001:db8::/64']],
  ['10.1.2.3/32', []],
  ['255.255.255.0/24', ['255.255.255.255/32']],
];
const IPS = ['10.1.2.3', '10.1.2.9', '10.2.0.1', '192.168.1.1', '2001:db8::5', '2001:db8:1::5', '8.8.8.8', '10.1.0.0', '10.255.255.255', '255.255.255.255', '0.0.0.0'];

const peerSet: fc.Arbitrary<PeerSet | undefined> = fc.option(
  fc.record({
    atoms: fc.subarray(ATOMS, { maxLength: 3 }),
    blocks: fc.subarray(CIDRS, { maxLength: 2 }).map((bs) => bs.map(([c, e]) => compileBlock(c, e)!)),
    ips: fc.subarray(IPS, { maxLength: 2 }).map((xs) => new Set(xs)),
  }),
  { freq: 4 },
);
const services = fc.option(
  fc
    .array(
      fc.record(
        {
          protocol: fc.constantFrom('tcp', 'udp', 'sctp', 'icmp', 'icmpv6', 'any'),
          ports: fc.array(fc.constantFrom<number | string>(53, 80, 443, '8000-8100', '1-1024', 'http', 'dns', 0, 65535), { maxLength: 3 }),
          icmpType: fc.option(fc.constantFrom(0, 8), { nil: undefined }),
        },
        { requiredKeys: ['protocol'] },
      ),
      { maxLength: 3 },
    )
    .map((s) => compileServices(s)),
  { nil: undefined },
);
const rule = fc.record({
  // 0-3: emergency to application; 5: baseline (4 is the NetworkPolicy layer, which has no rules).
  catRank: fc.constantFrom(0, 1, 2, 3, 5),
  action: fc.constantFrom<Action>('allow', 'drop', 'reject', 'pass'),
  disabled: fc.boolean(),
  src: peerSet,
  srcNegated: fc.boolean(),
  dst: peerSet,
  dstNegated: fc.boolean(),
  services,
});

type RuleSpec = typeof rule extends fc.Arbitrary<infer T> ? T : never;

function compiled(specs: RuleSpec[]): CompiledRule[] {
  // Rules in evaluation order: sorted by category, as the engine orders policies.
  return [...specs]
    .sort((a, b) => a.catRank - b.catRank)
    .map((s, index) => {
      const category = (['emergency', 'infrastructure', 'environment', 'application', 'kubernetes', 'baseline'] as const)[s.catRank]!;
      const policy: CompiledPolicy = { name: `p${index}`, category, catRank: s.catRank, priority: 0, staged: false, quarantine: false, rank: index, rules: [], deps: new Set() };
      return {
        policy,
        index: 0,
        name: 'r',
        action: s.action,
        dirIn: true,
        dirOut: true,
        disabled: s.disabled,
        logged: false,
        appliedTo: [],
        src: s.src ?? undefined,
        srcNegated: s.srcNegated,
        dst: s.dst ?? undefined,
        dstNegated: s.dstNegated,
        services: s.services,
      };
    });
}

let nextId = 1;
const endpoint = fc.record({ atoms: fc.subarray(ATOMS, { maxLength: 4 }), ip: fc.constantFrom(...IPS), namedHttp: fc.constantFrom(8080, 80, 53) }).map(({ atoms, ip, namedHttp }): Endpoint => {
  const ep: Endpoint = {
    id: nextId++,
    kind: 'pod',
    name: `ep${nextId}`,
    owner: 'o',
    ip: parseIp(ip)!,
    labels: {},
    atoms: new Set(atoms),
    namedPorts: new Map([
      ['http', { port: namedHttp, protocol: 'tcp' }],
      ['dns', { port: 53, protocol: 'udp' }],
    ]),
  };
  for (const a of atoms) a.members.add(ep.id);
  return ep;
});
/** A managed endpoint, or a bare address (external, or SNATed: identity unknown). */
const addr: fc.Arbitrary<Addr> = fc.oneof(
  endpoint.map((ep) => ({ ip: ep.ip, ep })),
  fc.constantFrom(...IPS).map((s) => ({ ip: parseIp(s) as Ip, ep: undefined })),
);
const flow: fc.Arbitrary<FlowService> = fc.record({
  protocol: fc.constantFrom('tcp', 'udp', 'sctp', 'icmp', 'icmpv6'),
  port: fc.option(fc.constantFrom(0, 1, 52, 53, 54, 80, 443, 1024, 1025, 8000, 8050, 8080, 8100, 8101, 65535), { nil: undefined }),
  icmpType: fc.option(fc.constantFrom(0, 8), { nil: undefined }),
});

it('the indexed first match equals a linear scan, on both sides and in both phases, for any list and flow', () => {
  fc.assert(
    fc.property(fc.array(rule, { maxLength: 25 }), fc.array(fc.tuple(addr, addr, flow), { minLength: 1, maxLength: 8 }), (specs, flows) => {
      const rules = compiled(specs);
      // One index per side, queried by every flow: buckets built by one flow are reused by the next.
      const bySrc = indexRules(rules, 'src');
      const byDst = indexRules(rules, 'dst');
      for (const [src, dst, f] of flows) {
        for (const phase of ['main', 'baseline'] as const) {
          const expected = firstMatch(rules, src, dst, f, phase);
          if (expected) expect(expected.policy.catRank === 5).toBe(phase === 'baseline');
          expect(firstMatchIndexed(bySrc, src.ep && atomIdsOf(src.ep), src.ip, src, dst, f, phase)).toBe(expected);
          expect(firstMatchIndexed(byDst, dst.ep && atomIdsOf(dst.ep), dst.ip, src, dst, f, phase)).toBe(expected);
        }
      }
    }),
    { numRuns: 400, seed: 7 },
  );
});

it('skips only the checks a bucket makes certain: ICMP type, named ports and peers outside the atom index are still checked', () => {
  const ep = (ip: string, atoms: Atom[], http: number): Endpoint => {
    const e: Endpoint = { id: nextId++, kind: 'pod', name: 'x', owner: 'o', ip: parseIp(ip)!, labels: {}, atoms: new Set(atoms), namedPorts: new Map([['http', { port: http, protocol: 'tcp' }]]) };
    for (const a of atoms) a.members.add(e.id);
    return e;
  };
  const [a0, a1] = [ATOMS[0]!, ATOMS[1]!];
  const everyone: PeerSet = { atoms: [a0], blocks: [compileBlock('255.255.255.0/24', ['255.255.255.255/32'])!], ips: new Set() };
  const rules = compiled([
    { catRank: 0, action: 'allow', disabled: false, src: everyone, srcNegated: false, dst: undefined, dstNegated: false, services: compileServices([{ protocol: 'icmp', icmpType: 8 }]) },
    { catRank: 0, action: 'reject', disabled: false, src: everyone, srcNegated: false, dst: undefined, dstNegated: false, services: compileServices([{ protocol: 'tcp', ports: ['http'] }]) },
    { catRank: 1, action: 'pass', disabled: false, src: { atoms: [a1], blocks: [], ips: new Set() }, srcNegated: false, dst: undefined, dstNegated: false, services: undefined },
    { catRank: 2, action: 'drop', disabled: false, src: undefined, srcNegated: false, dst: undefined, dstNegated: false, services: undefined },
    { catRank: 3, action: 'allow', disabled: false, src: undefined, srcNegated: false, dst: undefined, dstNegated: false, services: undefined },
  ]);
  const ix = indexRules(rules, 'src');
  const dstEp = ep('10.9.9.9', [], 8080);
  const dst: Addr = { ip: dstEp.ip, ep: dstEp };
  const cases: [Addr, FlowService][] = [
    [{ ip: parseIp('255.255.255.1')!, ep: undefined }, { protocol: 'icmp', port: undefined, icmpType: 0 }],
    [{ ip: parseIp('255.255.255.1')!, ep: undefined }, { protocol: 'icmp', port: undefined, icmpType: 8 }],
    [{ ip: parseIp('255.255.255.255')!, ep: undefined }, { protocol: 'icmp', port: undefined, icmpType: 8 }],
    [{ ip: parseIp('10.0.0.1')!, ep: ep('10.0.0.1', [a0], 80) }, { protocol: 'tcp', port: 80 }],
    [{ ip: parseIp('10.0.0.2')!, ep: ep('10.0.0.2', [a0, a1], 80) }, { protocol: 'tcp', port: 8080 }],
    [{ ip: parseIp('10.0.0.3')!, ep: ep('10.0.0.3', [a1], 80) }, { protocol: 'udp', port: 53 }],
  ];
  for (const [src, f] of cases) {
    const expected = firstMatch(rules, src, dst, f);
    expect(firstMatchIndexed(ix, src.ep && atomIdsOf(src.ep), src.ip, src, dst, f)).toBe(expected);
  }
  // Spot checks of the expected decisions themselves.
  expect(firstMatch(rules, cases[0]![0], dst, cases[0]![1])?.action).toBe('drop');
  expect(firstMatch(rules, cases[1]![0], dst, cases[1]![1])?.action).toBe('allow');
  expect(firstMatch(rules, cases[2]![0], dst, cases[2]![1])?.action).toBe('drop');
  expect(firstMatch(rules, cases[4]![0], dst, cases[4]![1])?.action).toBe('reject');
  expect(firstMatch(rules, cases[5]![0], dst, cases[5]![1])?.action).toBe('allow');
});
