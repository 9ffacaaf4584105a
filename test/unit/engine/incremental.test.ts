import fc from 'fast-check';
import { World, type Change } from '../../../provider/src/engine';
import type { Kind } from '../../../provider/src/model';
import { allowAll, decided, estate, put, trace } from './helpers';

/**
 * The engine's indexes (atoms by label value and namespace label, rule lists shared by endpoints with
 * equal atoms, per-list peer-atom indexes) must give what a world built from scratch gives, whatever the
 * order of changes. Each test mutates a world step by step and compares it with a fresh one.
 */
function fresh(w: World): World {
  const f = new World({ defaultAction: w.defaultAction });
  for (const { kind, name, spec } of w.objects()) f.upsert(kind, name, spec, w.outputsOf(kind, name));
  return f;
}

const members = (w: World, g: string) => w.groupMembers(g).members.map((m) => m.name);

function sameVerdicts(a: World, b: World, refs: string[], ports: number[]): void {
  for (const s of refs)
    for (const d of refs) {
      if (s === d) continue;
      for (const port of ports) expect(`${s}->${d}:${port} ${decided(trace(a, s, d, port))}`).toBe(`${s}->${d}:${port} ${decided(trace(b, s, d, port))}`);
    }
}

const REFS = ['c1/shop/web', 'c1/shop/api', 'c1/ops/tools', 'db', 'bastion', '203.0.113.7'];

it('namespace-selector and label-value groups follow namespace relabels and pod relabels', () => {
  const w = estate();
  put(w, 'SecurityGroup', 'team-shop', { podSelectors: [{ namespaceSelector: { matchLabels: { team: 'shop' } } }] });
  put(w, 'SecurityGroup', 'front', { podSelectors: [{ podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'edge'] }] } }] });
  expect(members(w, 'team-shop')).toEqual(['c1/shop/api-0', 'c1/shop/web-0', 'c1/shop/web-1']);
  expect(members(w, 'front')).toEqual(['c1/shop/web-0', 'c1/shop/web-1']);
  // The namespace ops joins team shop: its pods must join the group (found through the namespace-label index).
  put(w, 'Namespace', 'c1/ops', { name: 'ops', cluster: 'c1', labels: { team: 'shop' } });
  expect(members(w, 'team-shop')).toEqual(['c1/ops/tools-0', 'c1/shop/api-0', 'c1/shop/web-0', 'c1/shop/web-1']);
  // A pod relabelled to another value of the In requirement stays; to a value outside it leaves.
  put(w, 'Workload', 'c1/shop/api', { name: 'api', cluster: 'c1', namespace: 'shop', labels: { app: 'api', tier: 'edge' }, replicas: 1 });
  expect(members(w, 'front')).toEqual(['c1/shop/api-0', 'c1/shop/web-0', 'c1/shop/web-1']);
  put(w, 'Workload', 'c1/shop/web', { name: 'web', cluster: 'c1', namespace: 'shop', labels: { app: 'web', tier: 'back' }, replicas: 2 });
  expect(members(w, 'front')).toEqual(['c1/shop/api-0']);
  const f = fresh(w);
  for (const g of ['team-shop', 'front', 'web', 'api', 'db']) expect(members(w, g)).toEqual(members(f, g));
});

it('endpoints sharing a rule list (equal atoms) diverge when one of them is relabelled', () => {
  const w = estate();
  allowAll(w);
  put(w, 'FirewallPolicy', 'web-in', { category: 'environment', priority: 1, appliedTo: ['web'], rules: [{ name: 'deny-tools', action: 'drop', direction: 'in', sources: [{ workload: 'c1/ops/tools' }] }] });
  // web-0 and web-1 have equal atoms, so they share one rule list.
  expect(decided(trace(w, 'c1/ops/tools', 'c1/shop/web-0', 80))).toBe('drop web-in/deny-tools');
  expect(decided(trace(w, 'c1/ops/tools', 'c1/shop/web-1', 80))).toBe('drop web-in/deny-tools');
  // A second workload with web's labels shares the same identity; moving it out of group web must not
  // change web's pods, and must change its own verdict.
  put(w, 'Workload', 'c1/shop/web2', { name: 'web2', cluster: 'c1', namespace: 'shop', labels: { app: 'web', tier: 'front' }, replicas: 1 });
  expect(decided(trace(w, 'c1/ops/tools', 'c1/shop/web2', 80))).toBe('drop web-in/deny-tools');
  put(w, 'Workload', 'c1/shop/web2', { name: 'web2', cluster: 'c1', namespace: 'shop', labels: { app: 'web2', tier: 'front' }, replicas: 1 });
  expect(decided(trace(w, 'c1/ops/tools', 'c1/shop/web2', 80))).toBe('allow zz-allow-all/any');
  expect(decided(trace(w, 'c1/ops/tools', 'c1/shop/web-1', 80))).toBe('drop web-in/deny-tools');
  sameVerdicts(w, fresh(w), [...REFS, 'c1/shop/web2'], [80, 443]);
});

it('a sequence of policy, group and inventory changes ends where a fresh world starts', () => {
  const w = estate();
  const steps: { kind: Kind; name: string; spec?: Record<string, unknown> }[] = [
    { kind: 'FirewallPolicy', name: 'p1', spec: { category: 'application', priority: 5, appliedTo: ['web'], rules: [{ name: 'from-api', action: 'allow', direction: 'in', sources: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: [80] }] }, { name: 'rest', action: 'drop', direction: 'in' }] } },
    { kind: 'FirewallPolicy', name: 'p0', spec: { category: 'infrastructure', priority: 1, rules: [{ name: 'ext', action: 'allow', sources: [{ cidr: '203.0.113.0/24' }] }, { name: 'egress', action: 'allow', direction: 'out' }] } },
    { kind: 'SecurityGroup', name: 'api', spec: { podSelectors: [{ podSelector: { matchLabels: { app: 'api' } } }, { podSelector: { matchLabels: { app: 'tools' } } }] } },
    { kind: 'Workload', name: 'c1/shop/api', spec: { name: 'api', cluster: 'c1', namespace: 'shop', labels: { app: 'tools' }, replicas: 2 } },
    { kind: 'FirewallPolicy', name: 'p2', spec: { category: 'environment', priority: 1, appliedTo: ['db'], enforcement: 'staged', rules: [{ name: 'no-web', action: 'drop', sources: [{ group: 'web' }] }] } },
    { kind: 'VirtualMachine', name: 'db', spec: { interfaces: [{ ip: '172.16.0.10' }], labels: { role: 'db', env: 'dev' } } },
    { kind: 'FirewallPolicy', name: 'p1' },
    { kind: 'SecurityGroup', name: 'web', spec: { podSelectors: [{ namespaceSelector: { matchLabels: { env: 'prod' } } }] } },
    { kind: 'FirewallPolicy', name: 'p3', spec: { category: 'application', priority: 1, appliedTo: ['web'], rules: [{ name: 'not-db', action: 'reject', direction: 'out', destinations: [{ group: 'db' }], destinationsExcluded: true, services: [{ protocol: 'tcp', ports: ['http'] }] }] } },
  ];
  for (const st of steps) {
    w.apply([st as Change]);
    sameVerdicts(w, fresh(w), REFS, [80, 8080]);
  }
});

it('a policy change drops only the rule lists of endpoints in its old and new appliedTo, and identity-shared lists stay correct', () => {
  const w = estate();
  allowAll(w);
  put(w, 'FirewallPolicy', 'web-in', { category: 'environment', priority: 1, appliedTo: ['web'], rules: [{ name: 'deny-tools', action: 'drop', direction: 'in', sources: [{ workload: 'c1/ops/tools' }] }] });
  const ep = (name: string) => {
    const e = w.endpointsOf(name)[0];
    if (!e) throw new Error(name);
    return e;
  };
  // Build every list once.
  sameVerdicts(w, fresh(w), REFS, [80]);
  const dbList = w.rulesAt(ep('db'));
  const webList = w.rulesAt(ep('c1/shop/web'));
  // A change to a policy applied to web only: db keeps its list object, web gets a new one.
  put(w, 'FirewallPolicy', 'web-in', { category: 'environment', priority: 1, appliedTo: ['web'], rules: [{ name: 'deny-tools', action: 'reject', direction: 'in', sources: [{ workload: 'c1/ops/tools' }] }] });
  expect(w.rulesAt(ep('db'))).toBe(dbList);
  expect(w.rulesAt(ep('c1/shop/web'))).not.toBe(webList);
  expect(decided(trace(w, 'c1/ops/tools', 'c1/shop/web-1', 80))).toBe('reject web-in/deny-tools');
  // Moving the policy from web to api reaches both: the old appliedTo loses the rule, the new one gains it.
  put(w, 'FirewallPolicy', 'web-in', { category: 'environment', priority: 1, appliedTo: ['api'], rules: [{ name: 'deny-tools', action: 'drop', direction: 'in', sources: [{ workload: 'c1/ops/tools' }] }] });
  expect(w.rulesAt(ep('db'))).toBe(dbList);
  expect(decided(trace(w, 'c1/ops/tools', 'c1/shop/web-0', 80))).toBe('allow zz-allow-all/any');
  expect(decided(trace(w, 'c1/ops/tools', 'c1/shop/api', 80))).toBe('drop web-in/deny-tools');
  sameVerdicts(w, fresh(w), REFS, [80, 443]);
  // An identity whose only endpoint left it keeps its list in the identity map; a policy change on its
  // atoms while no endpoint holds that list must still reach the next endpoint with that identity.
  put(w, 'Workload', 'c1/shop/web2', { name: 'web2', cluster: 'c1', namespace: 'shop', labels: { app: 'solo', tier: 'front' }, replicas: 1 });
  put(w, 'SecurityGroup', 'solo', { podSelectors: [{ podSelector: { matchLabels: { app: 'solo' } } }] });
  put(w, 'FirewallPolicy', 'solo-in', { category: 'environment', priority: 2, appliedTo: ['solo'], rules: [{ name: 'deny-bastion', action: 'drop', direction: 'in', sources: [{ group: 'bastion' }] }] });
  expect(decided(trace(w, 'bastion', 'c1/shop/web2', 80))).toBe('drop solo-in/deny-bastion');
  put(w, 'Workload', 'c1/shop/web2', { name: 'web2', cluster: 'c1', namespace: 'shop', labels: { app: 'other', tier: 'front' }, replicas: 1 });
  put(w, 'FirewallPolicy', 'solo-in', { category: 'environment', priority: 2, appliedTo: ['solo'], rules: [{ name: 'deny-bastion', action: 'reject', direction: 'in', sources: [{ group: 'bastion' }] }] });
  expect(decided(trace(w, 'bastion', 'c1/shop/web2', 80))).toBe('allow zz-allow-all/any');
  put(w, 'Workload', 'c1/shop/web2', { name: 'web2', cluster: 'c1', namespace: 'shop', labels: { app: 'solo', tier: 'front' }, replicas: 1 });
  expect(decided(trace(w, 'bastion', 'c1/shop/web2', 80))).toBe('reject solo-in/deny-bastion');
  // A policy enforced everywhere reaches every list.
  put(w, 'FirewallPolicy', 'global', { category: 'emergency', priority: 1, rules: [{ name: 'no-ssh', action: 'drop', direction: 'in', services: [{ protocol: 'tcp', ports: [22] }] }] });
  expect(w.rulesAt(ep('db'))).not.toBe(dbList);
  expect(decided(trace(w, 'bastion', 'db', 22))).toBe('drop global/no-ssh');
  sameVerdicts(w, fresh(w), [...REFS, 'c1/shop/web2'], [22, 80]);
});

it('a workload write keeps the endpoint of every pod whose name, address, node, labels and ports did not change', () => {
  const w = estate();
  const [web0, web1] = w.endpointsOf('c1/shop/web');
  const web = { name: 'web', cluster: 'c1', namespace: 'shop', labels: { app: 'web', tier: 'front' }, ports: [{ name: 'http', port: 8080 }] };
  // Scale up: the two pods stay the same objects, one pod more.
  put(w, 'Workload', 'c1/shop/web', { ...web, replicas: 3 });
  expect(w.endpointsOf('c1/shop/web').slice(0, 2)).toEqual([web0, web1]);
  expect(w.endpointsOf('c1/shop/web')[0]).toBe(web0);
  expect(w.endpointsOf('c1/shop/web')[1]).toBe(web1);
  expect(w.endpointsOf('c1/shop/web')).toHaveLength(3);
  // Scale down: the remaining pod stays.
  put(w, 'Workload', 'c1/shop/web', { ...web, replicas: 1 });
  expect(w.endpointsOf('c1/shop/web')[0]).toBe(web0);
  expect(w.membership.endpoints.get(web1!.id)).toBeUndefined();
  // A relabel or a port change makes the pods anew (their memberships and named ports change).
  put(w, 'Workload', 'c1/shop/web', { ...web, replicas: 1, labels: { app: 'web', tier: 'edge' } });
  const relabelled = w.endpointsOf('c1/shop/web')[0]!;
  expect(relabelled).not.toBe(web0);
  expect(relabelled.ip.s).toBe(web0!.ip.s);
  put(w, 'Workload', 'c1/shop/web', { ...web, replicas: 1, labels: { app: 'web', tier: 'edge' }, ports: [{ name: 'http', port: 8081 }] });
  expect(w.endpointsOf('c1/shop/web')[0]).not.toBe(relabelled);
  expect(w.endpointsOf('c1/shop/web')[0]!.namedPorts?.get('http')?.port).toBe(8081);
});

it('random workload scale, relabel and port changes end where a fresh world starts (groups, named ports, verdicts)', () => {
  const edit = fc.record({
    workload: fc.constantFrom('c1/shop/web', 'c1/shop/api', 'c1/ops/tools'),
    replicas: fc.integer({ min: 0, max: 3 }),
    app: fc.constantFrom('web', 'api', 'tools'),
    port: fc.constantFrom(undefined, 80, 8080),
  });
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 8 }), (edits) => {
      const w = estate();
      put(w, 'FirewallPolicy', 'web-in', { category: 'application', priority: 1, rules: [{ name: 'http', action: 'allow', direction: 'in', destinations: [{ group: 'web' }], services: [{ protocol: 'tcp', ports: ['http'] }] }, { name: 'rest', action: 'drop', direction: 'in', destinations: [{ group: 'web' }] }] });
      allowAll(w);
      for (const e of edits) {
        const [cluster, namespace, name] = e.workload.split('/') as [string, string, string];
        put(w, 'Workload', e.workload, { name, cluster, namespace, labels: { app: e.app }, replicas: e.replicas, ...(e.port ? { ports: [{ name: 'http', port: e.port }] } : {}) });
      }
      const f = fresh(w);
      for (const g of ['web', 'api']) expect(members(w, g)).toEqual(members(f, g));
      const pods = (x: World) => ['c1/shop/web', 'c1/shop/api', 'c1/ops/tools'].flatMap((k) => x.endpointsOf(k).map((p) => `${p.name} ${p.ip.s} ${p.namedPorts?.get('http')?.port ?? '-'}`));
      expect(pods(w)).toEqual(pods(f));
      sameVerdicts(w, f, ['c1/shop/web-0', 'c1/shop/web-1', 'c1/shop/api-0', 'c1/ops/tools-0', 'db'].filter((r) => r === 'db' || w.endpointsOf(r.slice(0, r.lastIndexOf('-'))).some((p) => p.name === r)), [80, 8080]);
    }),
    { numRuns: 60 },
  );
});
