import fc from 'fast-check';
import { referenceVerdict, World, type Decision } from '../../../provider/src/engine';
import type { Kind } from '../../../provider/src/model';

const LABEL_KEYS = ['app', 'tier', 'env'];
const LABEL_VALUES = ['a', 'b', 'c'];
const labels = fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), { maxKeys: 2 });
const selector = fc.record(
  {
    matchLabels: fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), { maxKeys: 1 }),
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({ key: fc.constantFrom(...LABEL_KEYS), operator: fc.constantFrom('In', 'NotIn'), values: fc.array(fc.constantFrom(...LABEL_VALUES), { minLength: 1, maxLength: 2 }) }),
        fc.record({ key: fc.constantFrom(...LABEL_KEYS), operator: fc.constantFrom('Exists', 'DoesNotExist') }),
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);
const GROUPS = ['g0', 'g1', 'g2', 'g3'];
const peer = fc.oneof(
  fc.record({ group: fc.constantFrom(...GROUPS) }),
  fc.record({ podSelector: fc.record({ podSelector: selector, namespaces: fc.constantFrom(['ns0'], ['ns1'], ['ns0', 'ns1']) }, { requiredKeys: ['podSelector'] }) }),
  fc.record({ vmSelector: selector }),
  fc.constantFrom<{ cidr: string; except?: string[] }>(
    { cidr: '10.1.0.0/16' },
    { cidr: '10.1.0.0/16', except: ['10.1.0.0/30'] },
    { cidr: '172.16.0.0/24', except: ['172.16.0.2/32'] },
    { cidr: '192.168.0.0/24' },
    { cidr: '0.0.0.0/0', except: ['172.16.0.2/32'] },
  ),
  fc.record({ workload: fc.constantFrom('c1/ns0/w0', 'c1/ns1/w1') }),
  fc.record({ vm: fc.constantFrom('vm0', 'vm1') }),
);
const service = fc.oneof(
  fc.record({ protocol: fc.constantFrom('tcp', 'udp', 'any') }),
  fc.record({ protocol: fc.constant('tcp'), ports: fc.array(fc.constantFrom(80, 443, '8000-8100', 'http'), { minLength: 1, maxLength: 2 }) }),
);
const rule = fc.record(
  {
    action: fc.constantFrom('allow', 'drop', 'reject', 'pass'),
    direction: fc.constantFrom('in', 'out', 'inout'),
    sources: fc.array(peer, { maxLength: 2 }),
    destinations: fc.array(peer, { maxLength: 2 }),
    sourcesExcluded: fc.boolean(),
    destinationsExcluded: fc.boolean(),
    services: fc.array(service, { maxLength: 2 }),
    appliedTo: fc.array(fc.constantFrom(...GROUPS), { maxLength: 1 }),
    disabled: fc.boolean(),
  },
  { requiredKeys: ['action'] },
).map((r) => ({ ...r, sourcesExcluded: !!r.sourcesExcluded && !!r.sources?.length, destinationsExcluded: !!r.destinationsExcluded && !!r.destinations?.length }));
const policy = fc.record({
  category: fc.constantFrom('emergency', 'infrastructure', 'environment', 'application', 'baseline'),
  priority: fc.integer({ min: 0, max: 3 }),
  appliedTo: fc.array(fc.constantFrom(...GROUPS), { maxLength: 1 }),
  enforcement: fc.constantFrom('enforce', 'enforce', 'staged'),
  rules: fc.array(rule, { minLength: 1, maxLength: 4 }),
  standalone: fc.boolean(),
});
const group = (i: number) =>
  fc.record(
    {
      vmSelectors: fc.array(selector, { maxLength: 1 }),
      podSelectors: fc.array(fc.record({ podSelector: selector }), { maxLength: 1 }),
      ipBlocks: fc.array(fc.record({ cidr: fc.constantFrom('10.1.0.0/24', '172.16.0.0/30') }), { maxLength: 1 }),
      // Only earlier groups: nesting stays acyclic.
      groups: i === 0 ? fc.constant([]) : fc.array(fc.constantFrom(...GROUPS.slice(0, i)), { maxLength: 1 }),
      vms: fc.array(fc.constantFrom('vm0', 'vm1'), { maxLength: 1 }),
    },
    { requiredKeys: [] },
  );
const npPeer = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ namespaceSelector: selector, podSelector: selector }),
  fc.constantFrom({ ipBlock: { cidr: '172.16.0.0/24', except: ['172.16.0.2/32'] } }, { ipBlock: { cidr: '192.168.0.0/24' } }, { ipBlock: { cidr: '10.1.0.0/16' } }),
);
const npPort = fc.oneof(
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP'), port: fc.constantFrom<number | string>(80, 8080, 'http') }, { requiredKeys: ['port'] }),
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP') }),
  fc.constant({ port: 8000, endPort: 8060 }),
);
const npRule = fc.record({ peers: fc.option(fc.array(npPeer, { maxLength: 2 }), { nil: undefined }), ports: fc.option(fc.array(npPort, { maxLength: 2 }), { nil: undefined }) }, { requiredKeys: [] });
const netpol = fc.record(
  {
    ns: fc.constantFrom('ns0', 'ns1'),
    podSelector: selector,
    policyTypes: fc.constantFrom([], ['Ingress'], ['Egress'], ['Ingress', 'Egress']),
    ingress: fc.array(npRule, { maxLength: 2 }),
    egress: fc.array(npRule, { maxLength: 2 }),
  },
  { requiredKeys: ['ns', 'podSelector'] },
);
const topology = fc.record({
  networkMode: fc.constantFrom('flat', 'overlay'),
  defaultAction: fc.constantFrom('allow', 'drop'),
  nsLabels: fc.tuple(labels, labels),
  workloads: fc.array(fc.record({ labels, replicas: fc.integer({ min: 1, max: 2 }), ns: fc.constantFrom('ns0', 'ns1') }), { minLength: 2, maxLength: 3 }),
  vms: fc.tuple(labels, labels),
  groups: fc.tuple(group(0), group(1), group(2), group(3)),
  policies: fc.array(policy, { maxLength: 4 }),
  netpols: fc.array(netpol, { maxLength: 3 }),
  quarantine: fc.option(fc.record({ selector: fc.record({ matchLabels: fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), { minKeys: 1, maxKeys: 1 }) }), forensicGroup: fc.constantFrom(...GROUPS) })),
});

function decisionKey(d: Decision): string {
  if (d.kind === 'rule') return `${d.policy}/${d.rule}`;
  if (d.kind === 'default') return 'default/default';
  return 'none/none';
}

it('engine and naive reference evaluator agree on verdicts and deciding rules', () => {
  fc.assert(
    fc.property(topology, (t) => {
      const w = new World({ defaultAction: t.defaultAction });
      const specs: { kind: Kind; name: string; spec: unknown }[] = [];
      const put = (kind: Kind, name: string, spec: Record<string, unknown>) => {
        const problems = w.upsert(kind, name, spec);
        if (problems.some((p) => p.severity !== 'warning')) throw new Error(JSON.stringify(problems));
        specs.push({ kind, name, spec: w.get(kind, name) });
      };
      put('KubernetesCluster', 'c1', { podCidr: '10.1.0.0/16', serviceCidr: '10.96.0.0/16', nodes: [{ name: 'n0', ip: '192.168.0.10' }, { name: 'n1', ip: '192.168.0.11' }], networkMode: t.networkMode });
      put('Namespace', 'c1/ns0', { name: 'ns0', cluster: 'c1', labels: t.nsLabels[0] });
      put('Namespace', 'c1/ns1', { name: 'ns1', cluster: 'c1', labels: t.nsLabels[1] });
      const owners: string[] = [];
      t.workloads.forEach((wl, i) => {
        const ns = i < 2 ? `ns${i}` : wl.ns;
        put('Workload', `c1/${ns}/w${i}`, { name: `w${i}`, cluster: 'c1', namespace: ns, labels: wl.labels, replicas: wl.replicas, ports: [{ name: 'http', port: 8080 }] });
        owners.push(`c1/${ns}/w${i}`);
      });
      put('VirtualMachine', 'vm0', { interfaces: [{ ip: '172.16.0.1' }], labels: t.vms[0] });
      put('VirtualMachine', 'vm1', { interfaces: [{ ip: '172.16.0.2' }], labels: t.vms[1] });
      owners.push('vm0', 'vm1', '203.0.113.9', '192.168.0.10');
      t.groups.forEach((g, i) => put('SecurityGroup', `g${i}`, g));
      t.policies.forEach((p, i) => {
        const { standalone, rules, ...rest } = p;
        const named = rules.map((r, j) => ({ ...r, name: `r${j}` }));
        if (standalone) {
          put('FirewallPolicy', `p${i}`, rest);
          named.forEach((r, j) => put('FirewallRule', `p${i}-r${j}`, { ...r, name: `r${j}`, policy: `p${i}`, priority: (j * 7) % 3 }));
        } else put('FirewallPolicy', `p${i}`, { ...rest, rules: named });
      });
      if (t.quarantine) put('QuarantinePolicy', 'q', t.quarantine);
      t.netpols.forEach(({ ns, ingress, egress, ...np }, i) => {
        const rules = (rs: typeof ingress | undefined, peers: 'from' | 'to') => rs?.map((r) => ({ ...(r.peers ? { [peers]: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) }));
        put('KubernetesNetworkPolicy', `c1/${ns}/np${i}`, { name: `np${i}`, cluster: 'c1', namespace: ns, ...np, ingress: rules(ingress, 'from'), egress: rules(egress, 'to') });
      });
      const pods = Object.fromEntries(owners.filter((o) => o.includes('/')).map((o) => [o, w.outputsOf('Workload', o).pods as { name: string; ip: string; node: string }[]]));
      const input = { defaultAction: t.defaultAction, specs, pods };
      for (const source of owners)
        for (const destination of owners) {
          if (source === destination) continue;
          for (const [protocol, port] of [['tcp', 80], ['tcp', 8080], ['tcp', 8050], ['udp', 8080]] as const) {
            const flow = { source, destination, protocol, port };
            const e = w.verdict(flow);
            if ('problem' in e) throw new Error(e.problem.message);
            const r = referenceVerdict(input, flow);
            expect(`${source}->${destination}:${protocol}/${port} ${e.verdict} ${decisionKey(e.decision)}`).toBe(`${source}->${destination}:${protocol}/${port} ${r.verdict} ${r.policy}/${r.rule}`);
          }
        }
    }),
    { numRuns: 150, seed: 42 },
  );
});
