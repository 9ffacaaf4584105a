import * as fs from 'node:fs';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { endpointsOfPoint, enforcementPointModel, enforcementPoints, parseIp, PointModelCache, World, type EnforcementPointModel, type PointRule, type Trace } from '../../../provider/src/engine';
import type { Kind } from '../../../provider/src/model';
import { CATEGORIES, CompileCache, compilePoint, flowMark, realizePoints, renderJson, renderText, type AddressMap, type RuleMap } from '../../../provider/src/realize/nftables';
import { changedElements } from '../../../provider/src/agent';
import { expectGolden } from '../../support/golden';
import { tracePacket, type TracePacket } from '../../support/nft-tracer';
import { buildWorld, objects as randomObjects, worldArb } from '../../support/random-world';

const GOLDEN = path.join(__dirname, 'golden');

type Obj = [Kind, string, Record<string, unknown>];

/** A small estate touching every compiler feature: tiers, pass, reject, staged, logged, named ports, except, ICMP, SNAT. */
const objects: Obj[] = [
  ['KubernetesCluster', 'c1', { podCidr: '10.1.0.0/16', serviceCidr: '10.96.0.0/12', networkMode: 'overlay', nodes: [{ name: 'n1', ip: '192.168.0.11' }] }],
  ['Namespace', 'c1/shop', { name: 'shop', cluster: 'c1' }],
  ['Workload', 'c1/shop/web', { name: 'web', cluster: 'c1', namespace: 'shop', labels: { app: 'web' }, replicas: 2, ports: [{ name: 'http', port: 8080 }] }],
  ['Workload', 'c1/shop/api', { name: 'api', cluster: 'c1', namespace: 'shop', labels: { app: 'api' }, replicas: 1, ports: [{ name: 'http', port: 9090 }] }],
  ['VirtualMachine', 'db', { interfaces: [{ ip: '172.16.0.10' }], labels: { role: 'db' } }],
  ['VirtualMachine', 'ops', { interfaces: [{ ip: '172.16.0.20' }], labels: { role: 'ops' } }],
  ['EgressIp', 'api-egress', { cluster: 'c1', ip: '192.168.0.200', podSelector: { podSelector: { matchLabels: { app: 'api' } } } }],
  ['SecurityGroup', 'web', { podSelectors: [{ podSelector: { matchLabels: { app: 'web' } } }] }],
  ['SecurityGroup', 'api', { podSelectors: [{ podSelector: { matchLabels: { app: 'api' } } }] }],
  ['SecurityGroup', 'api-egress', { egressIps: ['api-egress'] }],
  ['SecurityGroup', 'db', { vms: ['db'] }],
  ['SecurityGroup', 'lan', { ipBlocks: [{ cidr: '172.16.0.0/24', except: ['172.16.0.10/32'] }] }],
  ['FirewallPolicy', 'audit', { category: 'emergency', priority: 1, enforcement: 'staged', rules: [{ name: 'watch-db', action: 'drop', destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [5432] }] }] }],
  ['FirewallPolicy', 'infra', { category: 'infrastructure', priority: 1, rules: [{ name: 'ping', action: 'allow', services: [{ protocol: 'icmp', icmpType: 8 }] }, { name: 'to-app', action: 'pass', sources: [{ group: 'lan' }] }] }],
  [
    'FirewallPolicy',
    'app',
    {
      category: 'application',
      priority: 1,
      rules: [
        { name: 'web-to-api', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: ['http'] }] },
        { name: 'db-from-api', action: 'allow', direction: 'in', sources: [{ group: 'api-egress' }, { group: 'api' }], destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [5432] }], logged: true },
        { name: 'db-reject-rest', action: 'reject', direction: 'in', destinations: [{ group: 'db' }] },
        { name: 'out-any', action: 'allow', direction: 'out', sourcesExcluded: true, sources: [{ group: 'db' }] },
      ],
    },
  ],
];

function world(order: readonly Obj[] = objects): World {
  const w = new World({ defaultAction: 'drop' });
  for (const [kind, name, spec] of order) {
    const p = w.upsert(kind, name, spec).filter((x) => x.severity !== 'warning');
    if (p.length) throw new Error(JSON.stringify(p));
  }
  return w;
}

function golden(file: string, actual: string): void {
  expectGolden(path.join(GOLDEN, file), actual);
}

describe('nftables compiler', () => {
  test.each(['vm:db#0', 'pod:c1/shop/web-0'])('the ruleset of %s matches its golden file (text and nft -j JSON)', (point) => {
    const [r] = realizePoints(world(), point)!;
    const file = point.replace(/[^a-z0-9]+/gi, '_');
    golden(`${file}.nft`, r!.text);
    golden(`${file}.json`, JSON.stringify(r!.json, null, 1) + '\n');
  });

  test('output is deterministic: the same world with its groups and policies declared in another order compiles to the same bytes', () => {
    // Inventory keeps its order: pod IPs are allocated in declaration order, so they would differ.
    const inventory = objects.filter(([k]) => k !== 'SecurityGroup' && k !== 'FirewallPolicy');
    const segmentation = objects.filter(([k]) => k === 'SecurityGroup' || k === 'FirewallPolicy');
    for (const p of enforcementPoints(world())) {
      const a = realizePoints(world(), p.name)![0]!.text;
      const b = realizePoints(world([...inventory, ...[...segmentation].reverse()]), p.name)![0]!.text;
      expect(b).toBe(a);
    }
  });

  test('established traffic is accepted before any policy, and the default rule is last', () => {
    const { table } = realizePoints(world(), 'vm:db#0')![0]!;
    const input = table.chains.find((c) => c.name === 'input')!;
    expect(input.rules[0]!.match).toEqual([{ m: 'ct-state', states: ['established', 'related'] }]);
    const def = table.chains.find((c) => c.name === 'in_default')!;
    expect(def.rules.filter((x) => x.verdict)).toEqual([{ match: [], counter: true, verdict: { kind: 'drop' }, comment: 'default' }]);
  });

  test('every deciding rule has its own chain with a counter and the stable id policy/rule as comment', () => {
    const r = realizePoints(world(), 'vm:db#0')![0]!;
    const ids = [...r.ruleChains.values()].sort();
    // out-any excludes db itself; to-app's sources (lan except db) never make db a source. Rules of both directions have one chain each.
    expect(ids).toEqual(['app/db-from-api', 'app/db-reject-rest', 'default', 'default', 'infra/ping', 'infra/ping', 'infra/to-app']);
    // Every rule with a verdict; the rules without one only record dropped flows.
    for (const [chain, id] of r.ruleChains)
      for (const rule of r.table.chains.find((c) => c.name === chain)!.rules.filter((x) => x.verdict)) expect({ counter: rule.counter, comment: rule.comment }).toEqual({ counter: true, comment: id });
  });

  test('reject answers TCP with a reset and everything else with an ICMP unreachable', () => {
    const r = realizePoints(world(), 'vm:db#0')![0]!;
    const [chain] = [...r.ruleChains].find(([, id]) => id === 'app/db-reject-rest')!;
    expect(r.table.chains.find((c) => c.name === chain)!.rules.filter((x) => x.verdict).map((x) => [x.match, x.verdict])).toEqual([
      [[{ m: 'l4proto', protocols: ['tcp'] }], { kind: 'reject-tcp' }],
      [[], { kind: 'reject-icmpx' }],
    ]);
  });

  test('peers are addresses as they arrive: an overlay pod leaving its cluster is its egress IP, not its own IP', () => {
    const w = world();
    const [db] = endpointsOfPoint(w, 'vm:db#0')!;
    const rule = enforcementPointModel(w, db!).in.find((x) => x.id === 'app/db-from-api')!;
    const api = w.endpointsOf('c1/shop/api')[0]!;
    const has = (ip: string) => rule.peer.v4.some((x) => BigInt(parseIp(ip)!.n) >= x.lo && BigInt(parseIp(ip)!.n) <= x.hi);
    expect({ egressIp: has('192.168.0.200'), podIp: has(api.ip.s) }).toEqual({ egressIp: true, podIp: false });
  });

  test('a staged policy only counts and logs: its rules carry no verdict', () => {
    const { table } = realizePoints(world(), 'vm:db#0')![0]!;
    const staged = table.chains.flatMap((c) => c.rules).filter((r) => r.comment?.startsWith('staged '));
    expect(staged.length).toBeGreaterThan(0);
    for (const r of staged) expect({ verdict: r.verdict, counter: r.counter, logs: r.log !== undefined }).toEqual({ verdict: undefined, counter: true, logs: true });
  });

  test('a verdict map never holds overlapping keys (the kernel refuses them)', () => {
    fc.assert(
      fc.property(worldArb, (spec) => {
        const w = buildWorld(spec);
        for (const p of enforcementPoints(w)) {
          const { table } = compilePoint(enforcementPointModel(w, endpointsOfPoint(w, p.name)![0]!));
          for (const s of table.sets) {
            if (s.kind !== 'port-map' && s.kind !== 'addr-map') continue;
            const keys = s.kind === 'port-map' ? s.elements.map((e) => [BigInt(e.lo), BigInt(e.hi)] as const) : s.elements.map((e) => [e.addr.lo, e.addr.hi] as const);
            for (let i = 0; i < keys.length; i++)
              for (let j = i + 1; j < keys.length; j++) {
                const [a, b] = [keys[i]!, keys[j]!];
                if (a[0] <= b[1] && b[0] <= a[1]) throw new Error(`${p.name} ${s.name}: ${a.join('-')} overlaps ${b.join('-')}`);
              }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  test('a group that is a source of one rule and a destination of another keeps its SNATed pods as destinations', () => {
    // api's pods leave c1 SNATed: as sources at ops they are not themselves, as destinations they are.
    const w = world([
      ...objects,
      ['FirewallPolicy', 'both', { category: 'application', priority: 2, rules: [
        { name: 'from-api', action: 'allow', direction: 'in', sources: [{ group: 'api' }], destinations: [{ vm: 'ops' }], services: [{ protocol: 'tcp', ports: [22] }] },
        { name: 'to-api', action: 'allow', direction: 'out', sources: [{ vm: 'ops' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: [9090] }] },
      ] }],
    ]);
    const api = BigInt(w.endpointsOf('c1/shop/api')[0]!.ip.n);
    const model = enforcementPointModel(w, endpointsOfPoint(w, 'vm:ops')![0]!);
    const toApi = model.out.find((r) => r.id === 'both/to-api');
    expect(toApi?.peer.v4.some((x) => x.lo <= api && api <= x.hi)).toBe(true);
    expect(model.in.find((r) => r.id === 'both/from-api')).toBeUndefined();
  });

  test('models built with one cache shared by every point equal models built alone (random worlds, SNAT included)', () => {
    const text = (x: unknown) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
    fc.assert(
      fc.property(worldArb, (spec) => {
        const w = buildWorld(spec);
        const shared = new PointModelCache(w);
        for (const ep of w.membership.endpoints.values()) {
          const [together, alone] = [enforcementPointModel(w, ep, shared), enforcementPointModel(w, ep)];
          if (text(together) !== text(alone)) throw new Error(`${ep.name}: the shared cache changed the model`);
        }
      }),
      { numRuns: 60 },
    );
  });

  test('caches kept while the world changes give the rulesets of a fresh compile after every change (random worlds and edits)', () => {
    // The agent keeps one PointModelCache and CompileCache for its life: after any write (pods come and
    // go, groups, policies, egress IPs, clusters change) every point must compile as if from scratch.
    fc.assert(
      fc.property(worldArb, worldArb, (before, after) => {
        const w = buildWorld(before);
        const shared = new PointModelCache(w);
        const cache = new CompileCache();
        const check = (step: string) => {
          for (const ep of w.membership.endpoints.values()) {
            const kept = renderText(compilePoint(enforcementPointModel(w, ep, shared), { cache }).table);
            const fresh = renderText(compilePoint(enforcementPointModel(w, ep)).table);
            if (kept === fresh) continue;
            const [a, b] = [kept.split('\n'), fresh.split('\n')];
            const at = a.findIndex((l, k) => l !== b[k]);
            throw new Error(`${ep.name} after ${step}: the kept caches compiled another ruleset; first difference, line ${at}: kept ${a[at]}, fresh ${b[at]}`);
          }
        };
        check('the first compile');
        // Peer-only changes (a pod added: the rules naming its groups get new peers, nothing else), then
        // each policy's rules in reverse order, then the random edits (rules added, removed, changed).
        const first = randomObjects(before);
        for (const o of first.filter((x) => x.kind === 'Workload')) {
          w.upsert(o.kind, o.name, { ...o.spec, replicas: (o.spec.replicas as number) + 1 });
          check(`a pod added to ${o.name}`);
        }
        for (const o of first.filter((x) => x.kind === 'FirewallPolicy' && (x.spec.rules as unknown[]).length > 1)) {
          w.upsert(o.kind, o.name, { ...o.spec, rules: [...(o.spec.rules as unknown[])].reverse() });
          check(`the rules of ${o.name} reversed`);
        }
        const next = randomObjects(after);
        const names = new Set(next.map((o) => `${o.kind}/${o.name}`));
        for (const o of next) {
          w.upsert(o.kind, o.name, o.spec);
          check(`upsert ${o.kind} ${o.name}`);
        }
        for (const o of randomObjects(before))
          if (!names.has(`${o.kind}/${o.name}`)) {
            w.remove(o.kind, o.name);
            check(`remove ${o.kind} ${o.name}`);
          }
      }),
      { numRuns: 25 },
    );
  });

  test('category parts kept across random edits of rule lists (peers, additions, removals, reorders) compile what a fresh compile does', () => {
    // The compiler's own view of a pod add and of policy edits: models whose rule lists keep the objects
    // of unchanged rules. A few shared peer regions, so rules of several categories share peer sets; a
    // few rule ids, so names collide now and then (the uncached path).
    const V4 = (1n << 32n) - 1n;
    const V6 = (1n << 128n) - 1n;
    const ip = (s: string) => BigInt(parseIp(s)!.n);
    const regions: PointRule['peer'][] = [
      { v4: [{ lo: ip('10.0.0.0'), hi: ip('10.0.0.255') }], v6: [] },
      { v4: [{ lo: ip('10.0.1.5'), hi: ip('10.0.1.9') }, { lo: ip('10.0.2.0'), hi: ip('10.0.2.15') }], v6: [] },
      { v4: [{ lo: 0n, hi: V4 }], v6: [{ lo: 0n, hi: V6 }] },
      { v4: [], v6: [{ lo: 1n, hi: 1n }] },
      { v4: [{ lo: ip('10.0.0.9'), hi: ip('10.0.0.9') }], v6: [{ lo: 1n, hi: 9n }, { lo: 1n << 64n, hi: (1n << 64n) + 255n }] },
      { v4: [{ lo: ip('10.0.0.7'), hi: ip('10.0.0.7') }, { lo: ip('10.0.1.0'), hi: ip('10.0.1.6') }], v6: [] },
    ];
    const portChoices: PointRule['ports'][] = [[], [{ protocol: 'tcp', lo: 80, hi: 80 }], [{ protocol: 'udp', lo: 53, hi: 53 }], [{ protocol: 'tcp', lo: 0, hi: 65535 }], [{ protocol: 'tcp', lo: 8080, hi: 8080, to: regions[0]! }]];
    const otherChoices: PointRule['other'][] = [[], [{ protocol: 'icmp' }], [{ protocol: 'any' }], [{ protocol: 'icmp', icmpType: 8 }]];
    const ruleArb = fc.record({
      id: fc.constantFrom('p/a', 'p/b', 'p/c', 'q/d', 'q/e', 'q/f', 'r/g', 'r/h', 'r/i', 'r/j'),
      // Application more often: long categories, where a part is found by a key naming a few of its rules.
      category: fc.constantFrom(...CATEGORIES, 'application', 'application', 'application'),
      action: fc.constantFrom('allow', 'drop', 'reject', 'pass'),
      staged: fc.constantFrom(false, false, false, true),
      logged: fc.boolean(),
      peer: fc.nat(regions.length - 1),
      ports: fc.nat(portChoices.length - 1),
      other: fc.nat(otherChoices.length - 1),
    });
    const ruleOf = (x: typeof ruleArb extends fc.Arbitrary<infer T> ? T : never): PointRule => ({
      id: x.id,
      category: x.category,
      policy: x.id.split('/')[0]!,
      rule: x.id.split('/')[1]!,
      action: x.action,
      staged: x.staged,
      logged: x.logged,
      peer: regions[x.peer]!,
      ports: portChoices[x.ports]!,
      other: otherChoices[x.other]!,
    });
    const byCategory = (rs: readonly PointRule[]) => [...rs].sort((a, b) => CATEGORIES.indexOf(a.category) - CATEGORIES.indexOf(b.category));
    const editArb = fc.oneof(
      fc.record({ op: fc.constant('peer' as const), at: fc.nat(), peer: fc.nat(regions.length - 1) }),
      fc.record({ op: fc.constant('add' as const), at: fc.nat(), rule: ruleArb }),
      fc.record({ op: fc.constant('remove' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
      fc.record({ op: fc.constant('out' as const), rule: ruleArb }),
    );
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 24 }), fc.array(ruleArb, { maxLength: 4 }), fc.array(editArb, { minLength: 1, maxLength: 12 }), fc.constantFrom('allow' as const, 'drop' as const), fc.constantFrom('10.9.9.9', 'fd00::9'), (ins, outs, edits, defaultAction, address) => {
        let rules = byCategory(ins.map(ruleOf));
        let out = byCategory(outs.map(ruleOf));
        const cache = new CompileCache();
        const modelOf = (name: string): EnforcementPointModel => ({ name, kind: 'vm-interface', owner: name, ip: address, defaultAction, in: rules, out });
        const check = (step: string) => {
          // Two points with the same rule objects: the second takes the first's parts.
          for (const name of ['vm:x#0', 'vm:y#0']) {
            const kept = renderText(compilePoint(modelOf(name), { cache }).table);
            const fresh = renderText(compilePoint(modelOf(name)).table);
            if (kept !== fresh) throw new Error(`${name} after ${step}: the kept parts compiled another ruleset:\n${kept}\n---- fresh:\n${fresh}`);
          }
        };
        check('the first compile');
        for (const e of edits) {
          const at = rules.length ? e.op !== 'add' && e.op !== 'out' ? e.at % rules.length : 0 : -1;
          if (e.op === 'peer' && at >= 0) rules = rules.map((r, i) => (i === at ? { ...r, peer: regions[e.peer]! } : r));
          else if (e.op === 'add') rules = byCategory([...rules.slice(0, e.at % (rules.length + 1)), ruleOf(e.rule), ...rules.slice(e.at % (rules.length + 1))]);
          else if (e.op === 'remove' && at >= 0) rules = rules.filter((_, i) => i !== at);
          else if (e.op === 'swap' && at >= 0) {
            const to = e.to % rules.length;
            const next = [...rules];
            [next[at], next[to]] = [next[to]!, next[at]!];
            rules = next; // now and then out of category order: compiled without the parts
          } else if (e.op === 'out') out = byCategory([...out, ruleOf(e.rule)]);
          check(JSON.stringify(e));
        }
      }),
      { numRuns: 300 },
    );
  });

  test('a peer change of any rule of a long category reaches the table (kept parts are found by a few of their rules, then compared whole)', () => {
    const region = (a: bigint): PointRule['peer'] => ({ v4: [{ lo: a, hi: a }], v6: [] });
    let rules: PointRule[] = Array.from({ length: 20 }, (_, i) => ({ id: `p/r${i}`, category: 'application', policy: 'p', rule: `r${i}`, action: 'allow', staged: false, logged: false, peer: region(BigInt(100 + i)), ports: [{ protocol: 'tcp', lo: 80 + (i % 3), hi: 80 + (i % 3) }], other: [] }));
    const model = (): EnforcementPointModel => ({ name: 'vm:x#0', kind: 'vm-interface', owner: 'x', ip: '10.9.9.9', defaultAction: 'drop', in: rules, out: [] });
    const cache = new CompileCache();
    compilePoint(model(), { cache });
    for (let i = 0; i < rules.length; i++) {
      rules = rules.map((r, k) => (k === i ? { ...r, peer: region(BigInt(1000 + i)) } : r));
      expect(renderText(compilePoint(model(), { cache }).table)).toBe(renderText(compilePoint(model()).table));
    }
  });

  test('a long-lived cache lets go of what a newer compile of the same point replaced', async () => {
    // The agent keeps one CompileCache for its life: after pod adds, the parts of earlier compiles must be
    // garbage (only the last one per point and category is kept, to repaint from).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const region = (a: bigint): PointRule['peer'] => ({ v4: [{ lo: a, hi: a }], v6: [] });
    const rule = (i: number, peer: PointRule['peer']): PointRule => ({ id: `p/r${i}`, category: 'application', policy: 'p', rule: `r${i}`, action: 'allow', staged: false, logged: false, peer, ports: [{ protocol: 'tcp', lo: 80, hi: 80 + i }], other: [] });
    const first = rule(0, region(100n));
    const model = (n: number): EnforcementPointModel => ({ name: 'vm:x#0', kind: 'vm-interface', owner: 'x', ip: '10.9.9.9', defaultAction: 'drop', in: [first, rule(1, region(200n + BigInt(n)))], out: [] });
    const cache = new CompileCache();
    compilePoint(model(0), { cache });
    const replaced = new WeakRef(compilePoint(model(1), { cache }).table.sets.find((s) => s.kind === 'addr-map')!);
    for (let n = 2; n < 6; n++) compilePoint(model(n), { cache });
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(replaced.deref()).toBeUndefined();
  });

  test('a cache told which points remain lets go of the others (a workload scaled down), and still compiles them as a fresh compile does', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const rule = (peer: bigint): PointRule => ({ id: 'p/r', category: 'application', policy: 'p', rule: 'r', action: 'allow', staged: false, logged: false, peer: { v4: [{ lo: peer, hi: peer }], v6: [] }, ports: [{ protocol: 'tcp', lo: 80, hi: 80 }], other: [] });
    const model = (name: string, peer: bigint): EnforcementPointModel => ({ name, kind: 'pod', owner: 'w', ip: '10.9.9.9', defaultAction: 'drop', in: [rule(peer)], out: [] });
    const cache = new CompileCache();
    compilePoint(model('pod:c/ns/w-0', 100n), { cache });
    const gone = new WeakRef(compilePoint(model('pod:c/ns/w-1', 200n), { cache }).table.sets.find((s) => s.kind === 'addr-map')!);
    cache.retain(new Set(['pod:c/ns/w-0']));
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(gone.deref()).toBeUndefined();
    for (const [name, peer] of [['pod:c/ns/w-0', 100n], ['pod:c/ns/w-1', 200n]] as const) expect(renderText(compilePoint(model(name, peer), { cache }).table)).toBe(renderText(compilePoint(model(name, peer)).table));
  });

  /**
   * vm:db#0 compiled with a cache, then again after what the engine hands over for a pod add: the same
   * rule objects but one, a copy of app/db-from-api with one more peer address.
   */
  function podAdd() {
    const cache = new CompileCache();
    const [ep] = endpointsOfPoint(world(), 'vm:db#0')!;
    const m1 = enforcementPointModel(world(), ep!);
    const before = compilePoint(m1, { cache });
    const at = m1.in.findIndex((r) => r.id === 'app/db-from-api');
    const old = m1.in[at]!;
    const pod = { lo: old.peer.v4[old.peer.v4.length - 1]!.hi + 2n, hi: old.peer.v4[old.peer.v4.length - 1]!.hi + 2n };
    const m2 = { ...m1, in: m1.in.map((r, i) => (i === at ? { ...r, peer: { v4: [...r.peer.v4, pod], v6: r.peer.v6 } } : r)) };
    return { before, after: compilePoint(m2, { cache }), m2 };
  }

  test('after a pod add changes one rule\'s peers, the chains of unchanged categories and that rule\'s chain are the objects compiled before', () => {
    const { before, after, m2 } = podAdd();
    const chain = (c: typeof before, name: string) => c.table.chains.find((x) => x.name === name)!;
    const ruleChain = [...after.ruleChains].find(([, id]) => id === 'app/db-from-api')![0];
    expect(chain(after, ruleChain)).toBe(chain(before, ruleChain));
    for (const cat of ['emergency', 'infrastructure', 'environment', 'kubernetes', 'baseline']) expect(chain(after, `in_${cat}`)).toBe(chain(before, `in_${cat}`));
    for (const c of after.table.chains.filter((x) => x.name.startsWith('out_') || x.name.startsWith('r_out_'))) expect(c).toBe(chain(before, c.name));
    // ... and the compile is that of a fresh compile, where the pod is one more element.
    expect(renderText(after.table)).toBe(renderText(compilePoint(m2).table));
    expect(renderText(after.table)).not.toBe(renderText(before.table));
  });

  test('a pod add changes no element that jumps to a chain: address classes hold rule numbers, the rule maps stay as they were', () => {
    // (Adding an element that jumps makes the kernel check the table's whole chain graph at commit.)
    const { before, after } = podAdd();
    const changes = changedElements(before.table, after.table);
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.map((c) => c.now.kind).filter((k) => k !== 'addr-map' && k !== 'set' && k !== 'service-set')).toEqual([]);
    const ruleMaps = before.table.sets.filter((s) => s.kind === 'rule-map');
    expect(ruleMaps.length).toBeGreaterThan(0);
    for (const m of ruleMaps) expect(after.table.sets.find((s) => s.name === m.name)).toBe(m);
    // The new element's number is the rule's in its category's rule map.
    const added = changes.flatMap((c) => (c.now.kind === 'addr-map' ? c.added.map((i) => ({ map: c.now.name, rule: (c.now as AddressMap).elements[i]!.rule })) : []));
    expect(added.length).toBeGreaterThan(0);
    for (const e of added) {
      const rules = after.table.sets.find((s) => s.name === e.map.replace(/_c\d+$/, '_rules')) as RuleMap;
      expect(rules.elements.find((x) => x.rule === e.rule)?.verdict).toEqual({ kind: 'goto', target: [...after.ruleChains].find(([, id]) => id === 'app/db-from-api')![0] });
    }
  });

  test('two rules whose ids hash alike get distinct chains and rule numbers, and each decides its own packets', () => {
    // FNV-1a of `in|app/r1149599` and of `in|app/r1312382` are both 5fb2d8c2.
    const w = new World({ defaultAction: 'drop' });
    for (const [kind, name, spec] of [
      ['VirtualMachine', 'web', { interfaces: [{ ip: '172.16.5.1' }] }],
      ['VirtualMachine', 'ops', { interfaces: [{ ip: '172.16.5.2' }] }],
      ['VirtualMachine', 'db', { interfaces: [{ ip: '172.16.5.3' }] }],
      ['SecurityGroup', 'web', { vms: ['web'] }],
      ['SecurityGroup', 'ops', { vms: ['ops'] }],
      ['SecurityGroup', 'db', { vms: ['db'] }],
      ['FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [
        { name: 'r1149599', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [5432] }] },
        { name: 'r1312382', action: 'reject', sources: [{ group: 'ops' }], destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [5432] }] },
      ] }],
    ] as Obj[]) expect(w.upsert(kind, name, spec).filter((x) => x.severity !== 'warning')).toEqual([]);
    const [ep] = endpointsOfPoint(w, 'vm:db#0')!;
    const fresh = compilePoint(enforcementPointModel(w, ep!));
    const chains = [...fresh.ruleChains].filter(([, id]) => id.startsWith('app/')).map(([name]) => name);
    expect(chains.sort()).toEqual(['r_in_5fb2d8c2', 'r_in_5fb2d8c2_2']);
    const rules = fresh.table.sets.find((s) => s.name === 'in_application_rules') as RuleMap;
    expect(new Set(rules.elements.map((e) => e.rule)).size).toBe(2);
    const pkt = (src: string) => ({ hook: 'input' as const, v: 4 as const, saddr: BigInt(parseIp(src)!.n), daddr: BigInt(parseIp('172.16.5.3')!.n), protocol: 'tcp' as const, dport: 5432 });
    expect(tracePacket(fresh.table, pkt('172.16.5.1')).verdict).toBe('allow');
    expect(tracePacket(fresh.table, pkt('172.16.5.2')).verdict).toBe('reject');
    // A kept cache compiles what a fresh compile does (it leaves colliding names to the uncached path).
    expect(renderText(compilePoint(enforcementPointModel(w, ep!), { cache: new CompileCache() }).table)).toBe(renderText(fresh.table));
  });

  test('caches kept through pod and VM churn give the rulesets of a fresh compile (regions caught up from the membership log)', () => {
    // Churn only: pods come and go and change labels or ports, VMs come and go (some sharing an address, where
    // regions cannot be caught up address by address): the regions of unchanged groups are caught up.
    const op = fc.oneof(
      fc.record({ op: fc.constant('scale' as const), w: fc.nat(), replicas: fc.integer({ min: 0, max: 4 }) }),
      fc.record({ op: fc.constant('relabel' as const), w: fc.nat(), app: fc.constantFrom('web', 'api', 'db') }),
      fc.record({ op: fc.constant('port' as const), w: fc.nat(), port: fc.constantFrom(8080, 8081, 9090) }),
      fc.record({ op: fc.constant('vm' as const), i: fc.integer({ min: 0, max: 3 }), ip: fc.integer({ min: 10, max: 13 }), role: fc.option(fc.constantFrom('db', 'app'), { nil: undefined }) }),
    );
    fc.assert(
      fc.property(worldArb, fc.array(op, { minLength: 1, maxLength: 10 }), (spec, ops) => {
        const w = buildWorld(spec);
        const shared = new PointModelCache(w);
        const cache = new CompileCache();
        const workloads = w.names('Workload');
        for (const o of ops) {
          let step: string;
          if (o.op === 'vm') {
            step = `VirtualMachine cvm${o.i}`;
            if (o.role === undefined) w.remove('VirtualMachine', `cvm${o.i}`);
            else w.upsert('VirtualMachine', `cvm${o.i}`, { interfaces: [{ ip: `192.168.61.${o.ip}` }], labels: { role: o.role } });
          } else {
            const key = workloads[o.w % workloads.length]!;
            const cur = w.get('Workload', key)!;
            step = `Workload ${key} ${JSON.stringify(o)}`;
            w.upsert('Workload', key, o.op === 'scale' ? { ...cur, replicas: o.replicas } : o.op === 'port' ? { ...cur, ports: [{ name: 'http', port: o.port }] } : { ...cur, labels: { app: o.app } });
          }
          for (const ep of w.membership.endpoints.values()) {
            const kept = renderText(compilePoint(enforcementPointModel(w, ep, shared), { cache }).table);
            const fresh = renderText(compilePoint(enforcementPointModel(w, ep)).table);
            if (kept !== fresh) {
              const [a, b] = [kept.split('\n'), fresh.split('\n')];
              const at = a.findIndex((l, k) => l !== b[k]);
              throw new Error(`${ep.name} after ${step}: the kept caches compiled another ruleset; first difference, line ${at}: kept ${a[at]}, fresh ${b[at]}`);
            }
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  test('a port change of a workload reaches rules naming that port, though its pods keep their addresses', () => {
    const w = new World({ defaultAction: 'drop' });
    const web = (port: number) => ({ name: 'web', cluster: 'c1', namespace: 'a', labels: { app: 'web' }, replicas: 2, ports: [{ name: 'http', port }] });
    w.upsert('KubernetesCluster', 'c1', { podCidr: '10.60.0.0/16', serviceCidr: '10.96.0.0/16', networkMode: 'flat', nodes: [{ name: 'n1', ip: '192.168.60.11' }] });
    w.upsert('Namespace', 'c1/a', { name: 'a', cluster: 'c1' });
    w.upsert('Workload', 'c1/a/web', web(8080));
    w.upsert('Workload', 'c1/a/cli', { name: 'cli', cluster: 'c1', namespace: 'a', labels: { app: 'cli' }, replicas: 1 });
    w.upsert('SecurityGroup', 'g-web', { podSelectors: [{ cluster: 'c1', podSelector: { matchLabels: { app: 'web' } } }] });
    w.upsert('FirewallPolicy', 'p', { category: 'application', priority: 1, rules: [{ name: 'r', action: 'allow', direction: 'out', destinations: [{ group: 'g-web' }], services: [{ protocol: 'tcp', ports: ['http'] }] }] });
    const [shared, cache] = [new PointModelCache(w), new CompileCache()];
    const cli = w.endpointsOf('c1/a/cli')[0]!;
    const before = renderText(compilePoint(enforcementPointModel(w, cli, shared), { cache }).table);
    w.upsert('Workload', 'c1/a/web', web(8081));
    const kept = renderText(compilePoint(enforcementPointModel(w, cli, shared), { cache }).table);
    expect(kept).not.toEqual(before);
    expect(kept).toEqual(renderText(compilePoint(enforcementPointModel(w, cli)).table));
  });

  test('packets traced through the compiled tables get traceflow verdicts (random worlds and flows)', () => {
    const protocols = ['tcp', 'udp', 'icmp'] as const;
    fc.assert(
      fc.property(worldArb, fc.array(fc.tuple(fc.nat(), fc.nat(), fc.constantFrom(...protocols), fc.constantFrom(53, 80, 7777, 8000, 8080, 8081, 9000)), { minLength: 20, maxLength: 40 }), (spec, picks) => {
        const w = buildWorld(spec);
        const eps = [...w.membership.endpoints.values()];
        const targets = [...eps.map((e) => e.ip.s), '203.0.113.7', ...(w.lbState('lb1')?.vip ? ['192.168.63.1'] : [])];
        const tables = new Map(eps.map((e) => [e.ip.s, compilePoint(enforcementPointModel(w, e)).table]));
        for (const [a, b, protocol, port] of picks) {
          const src = eps[a % eps.length]!.ip.s;
          const dst = targets[b % targets.length]!;
          if (src === dst) continue;
          const icmp = protocol === 'icmp' ? { icmpType: 8, icmpCode: 0 } : {};
          const t = w.traceflow({ source: src, destination: dst, protocol, port: protocol === 'icmp' ? undefined : port, ...icmp }) as Trace;
          const pkt = (hook: 'input' | 'output', s: string, d: string, dport: number | undefined): TracePacket => ({ hook, v: 4, saddr: BigInt(parseIp(s)!.n), daddr: BigInt(parseIp(d)!.n), protocol, dport, ...icmp });
          let verdict: string = 'allow';
          const out = tracePacket(tables.get(src)!, pkt('output', src, dst, protocol === 'icmp' ? undefined : port));
          if (out.verdict !== 'allow') verdict = out.verdict;
          else {
            const lb = t.observations.find((o) => o.component === 'load-balancer');
            if (lb && lb.action !== 'dnat') verdict = 'drop';
            else {
              const snat = t.observations.find((o) => o.component === 'snat');
              const d = lb?.translatedDestinationIp ?? dst;
              const table = tables.get(d);
              if (table) verdict = tracePacket(table, pkt('input', snat?.translatedSourceIp ?? src, d, lb?.translatedPort ?? (protocol === 'icmp' ? undefined : port))).verdict;
            }
          }
          if (verdict !== t.verdict) throw new Error(`${src} → ${dst} ${protocol}/${port}: traced ${verdict}, traceflow ${t.verdict} by ${t.decidingPolicy}/${t.decidingRule}`);
        }
      }),
      { numRuns: 80 },
    );
  });

  test('an accepting rule marks its connection with its flow mark; a dropping or rejecting rule records the flow in its own set first', () => {
    const r = realizePoints(world(), 'vm:db#0')![0]!;
    const rulesOf = (id: string) => r.table.chains.find((c) => c.name === [...r.ruleChains].find(([, x]) => x === id)![0])!.rules;
    const allow = rulesOf('app/db-from-api');
    expect(allow.map((x) => x.ctMark)).toEqual([flowMark('in', 'app/db-from-api')]);
    expect(r.marks.get(flowMark('in', 'app/db-from-api'))).toEqual({ direction: 'in', rule: 'app/db-from-api', verdict: 'allow' });
    const reject = rulesOf('app/db-reject-rest');
    const set = reject[0]!.recordFlow!.set;
    expect({ first: reject[0]!.verdict, set: r.flowSets.get(set), kind: r.table.sets.find((s) => s.name === set)?.kind }).toEqual({
      first: undefined,
      set: { direction: 'in', rule: 'app/db-reject-rest', verdict: 'reject' },
      kind: 'flow-set',
    });
  });

  test('text and JSON are two renderings of one table', () => {
    const { table } = realizePoints(world(), 'pod:c1/shop/web-0')![0]!;
    const json = renderJson(table).nftables as { add: Record<string, { name?: string; chain?: string }> }[];
    const chains = json.filter((c) => c.add.chain).map((c) => c.add.chain!.name);
    expect(chains).toEqual(table.chains.map((c) => c.name));
    expect(json.filter((c) => c.add.rule).length).toBe((renderText(table).match(/^\t\t(?!\t|type |flags |elements |size |counter$|timeout )/gm) ?? []).length);
  });
});
