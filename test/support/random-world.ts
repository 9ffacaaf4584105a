import fc from 'fast-check';
import { World } from '../../provider/src/engine';
import type { Kind } from '../../provider/src/model';

/**
 * Random small worlds for differential tests: a cluster (overlay or flat) with a few workloads, a few
 * VMs, an optional egress IP and load balancer, and random tiered policies (every action including pass
 * and reject, every direction, negated peers, CIDRs with exceptions, named ports, ICMP, staged policies).
 */
export type Obj = { kind: Kind; name: string; spec: Record<string, unknown> };

const apps = ['web', 'api', 'db'] as const;
const roles = ['db', 'app'] as const;

const peerArb = fc.oneof(
  ...apps.map((a) => fc.constant({ group: `g-${a}` })),
  ...roles.map((r) => fc.constant({ group: `g-vm-${r}` })),
  fc.constant({ group: 'g-block' }),
  fc.constant({ group: 'g-egress' }),
  fc.constant({ cidr: '10.60.0.0/16' }),
  fc.constant({ cidr: '192.168.61.0/24', except: ['192.168.61.10/32'] }),
  fc.constant({ cidr: '192.168.60.0/24' }),
);

const serviceArb = fc.oneof(
  fc.constant({ protocol: 'tcp', ports: [8080] }),
  fc.constant({ protocol: 'tcp', ports: [8081] }),
  fc.constant({ protocol: 'tcp', ports: ['http'] }),
  fc.constant({ protocol: 'tcp', ports: ['8000-8080'] }),
  fc.constant({ protocol: 'udp', ports: [53] }),
  fc.constant({ protocol: 'udp', ports: ['dns'] }),
  fc.constant({ protocol: 'icmp' }),
  fc.constant({ protocol: 'icmp', icmpType: 8 }),
  fc.constant({ protocol: 'any' }),
  fc.constant({ protocol: 'udp', ports: ['50-7777'] }),
  fc.constant({ protocol: 'tcp' }),
);

const ruleArb = fc.record({
  action: fc.constantFrom('allow', 'drop', 'reject', 'pass'),
  direction: fc.constantFrom('in', 'out', 'inout'),
  sources: fc.option(fc.array(peerArb, { minLength: 1, maxLength: 2 }), { nil: undefined }),
  destinations: fc.option(fc.array(peerArb, { minLength: 1, maxLength: 2 }), { nil: undefined }),
  sourcesExcluded: fc.constantFrom(false, false, false, true),
  destinationsExcluded: fc.constantFrom(false, false, false, true),
  services: fc.option(fc.array(serviceArb, { minLength: 1, maxLength: 2 }), { nil: undefined }),
});

export const worldArb = fc.record({
  overlay: fc.boolean(),
  defaultAction: fc.constantFrom('drop', 'allow'),
  workloads: fc.array(fc.record({ app: fc.constantFrom(...apps), ns: fc.constantFrom('a', 'b'), replicas: fc.integer({ min: 1, max: 2 }), port: fc.constantFrom(8080, 8081), dns: fc.boolean() }), { minLength: 1, maxLength: 3 }),
  vms: fc.array(fc.constantFrom(...roles), { minLength: 1, maxLength: 3 }),
  egress: fc.option(fc.constantFrom(...apps), { nil: undefined }),
  lb: fc.boolean(),
  policies: fc.array(
    fc.record({
      category: fc.constantFrom('emergency', 'infrastructure', 'environment', 'application'),
      priority: fc.integer({ min: 1, max: 3 }),
      staged: fc.constantFrom(false, false, false, true),
      appliedTo: fc.option(fc.constantFrom('g-web', 'g-api', 'g-db', 'g-vm-db', 'g-vm-app'), { nil: undefined }),
      rules: fc.array(ruleArb, { minLength: 1, maxLength: 4 }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

export type WorldSpec = typeof worldArb extends fc.Arbitrary<infer T> ? T : never;

export function objects(s: WorldSpec): Obj[] {
  const out: Obj[] = [];
  const add = (kind: Kind, name: string, spec: Record<string, unknown>) => out.push({ kind, name, spec });
  add('KubernetesCluster', 'c1', { podCidr: '10.60.0.0/16', serviceCidr: '10.96.0.0/16', networkMode: s.overlay ? 'overlay' : 'flat', nodes: [{ name: 'n1', ip: '192.168.60.11' }, { name: 'n2', ip: '192.168.60.12' }] });
  add('Namespace', 'c1/a', { name: 'a', cluster: 'c1', labels: { team: 'x' } });
  add('Namespace', 'c1/b', { name: 'b', cluster: 'c1', labels: { team: 'y' } });
  s.workloads.forEach((w, i) =>
    add('Workload', `c1/${w.ns}/w${i}`, { name: `w${i}`, cluster: 'c1', namespace: w.ns, labels: { app: w.app }, replicas: w.replicas, ports: [{ name: 'http', port: w.port }, ...(w.dns ? [{ name: 'dns', port: 53, protocol: 'udp' }] : [])] }),
  );
  s.vms.forEach((role, i) => add('VirtualMachine', `vm${i}`, { interfaces: [{ ip: `192.168.61.${10 + i}` }], labels: { role } }));
  for (const a of apps) add('SecurityGroup', `g-${a}`, { podSelectors: [{ cluster: 'c1', podSelector: { matchLabels: { app: a } } }] });
  for (const r of roles) add('SecurityGroup', `g-vm-${r}`, { vmSelectors: [{ matchLabels: { role: r } }] });
  add('SecurityGroup', 'g-block', { ipBlocks: [{ cidr: '192.168.61.0/24', except: ['192.168.61.11/32'] }, { cidr: '203.0.113.7/32' }] });
  if (s.egress) add('EgressIp', 'e1', { cluster: 'c1', ip: '192.168.62.1', podSelector: { podSelector: { matchLabels: { app: s.egress } } } });
  add('SecurityGroup', 'g-egress', s.egress ? { egressIps: ['e1'] } : { ipBlocks: [{ cidr: '192.168.62.1/32' }] });
  if (s.lb) add('LoadBalancer', 'lb1', { vip: '192.168.63.1', listeners: [{ port: 80, protocol: 'tcp', targetPort: 'http' }], pool: { group: 'g-api' } });
  s.policies.forEach((p, i) =>
    add('FirewallPolicy', `p${i}`, {
      category: p.category,
      priority: p.priority,
      enforcement: p.staged ? 'staged' : 'enforce',
      ...(p.appliedTo ? { appliedTo: [p.appliedTo] } : {}),
      rules: p.rules.map((r, j) => ({
        name: `r${j}`,
        ...Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)),
        // Negating an empty peer list is refused by validation (it would match nothing).
        sourcesExcluded: r.sourcesExcluded && r.sources !== undefined,
        destinationsExcluded: r.destinationsExcluded && r.destinations !== undefined,
      })),
    }),
  );
  return out;
}

export function buildWorld(s: WorldSpec): World {
  const w = new World({ defaultAction: s.defaultAction as 'drop' | 'allow' });
  for (const o of objects(s)) {
    const problems = w.upsert(o.kind, o.name, o.spec).filter((p) => p.severity !== 'warning');
    if (problems.length) throw new Error(`generated ${o.kind} ${o.name} is invalid: ${JSON.stringify(problems)}`);
  }
  return w;
}

