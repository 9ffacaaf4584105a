import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { World, type Trace } from '../../../provider/src/engine';
import { networkPolicyManifest } from '../../../provider/src/export/kubernetes/networkpolicy';
import type { Kind, SpecOf } from '../../../provider/src/model';

/**
 * Differential test of the NetworkPolicy layer against an evaluator nobody here wrote: cyclonus's
 * simulator (github.com/mattfenwick/cyclonus v0.5.6, pkg/matcher), wrapped by tools/netpol-oracle and
 * built into .tools/bin by scripts/setup.sh. Random namespaces, pods (labels, named ports) and
 * NetworkPolicies; every pod-to-pod flow and flows from and to external addresses, over TCP, UDP and
 * SCTP ports and named ports. microseg's egress decision (source side) and ingress decision (destination
 * side) must equal the simulator's.
 *
 * Known differences of the simulator, kept out of the generated cases:
 * - `NotIn` on a label key the object does not carry: Kubernetes (apimachinery labels.Requirement.Matches)
 *   and microseg select the object, cyclonus's `IsMatchExpressionMatchForLabels` (pkg/kube/labelselector.go)
 *   does not ("even for NotIn -- if the key isn't there, it's not a match"). NotIn is generated only on
 *   `zone` / `region`, which every pod / namespace carries; the specification suite covers the missing key;
 * - traffic from a pod's own node is always admitted in Kubernetes (types.go) and in microseg; cyclonus's
 *   `Policy.IsIngressOrEgressAllowed` (pkg/matcher/policy.go) has no node rule, so no flow comes from a
 *   node IP here (the specification suite covers that rule);
 * - pod-to-itself flows are left out, as the upstream e2e suite does (ignoreLoopback, kubernetes#95879).
 * The seed is fixed (override with MICROSEG_ORACLE_SEED); fast-check prints seed and path on failure.
 */

const ORACLE = join(__dirname, '..', '..', '..', '.tools', 'bin', 'netpol-oracle');
const SEED = Number(process.env.MICROSEG_ORACLE_SEED ?? 20261126);

// Every pod carries `zone` and every namespace `region`: NotIn is only generated on those keys (see above).
const KEYS = ['app', 'tier'];
const VALUES = ['a', 'b', 'c'];
const NS_KEYS = ['team', 'env'];
const labels = (keys: string[], always: string) =>
  fc.tuple(fc.dictionary(fc.constantFrom(...keys), fc.constantFrom(...VALUES), { maxKeys: 2 }), fc.constantFrom(...VALUES)).map(([l, v]) => ({ ...l, [always]: v }));
const selector = (keys: string[], always: string) =>
  fc.record(
    {
      matchLabels: fc.dictionary(fc.constantFrom(...keys, always), fc.constantFrom(...VALUES), { maxKeys: 1 }),
      matchExpressions: fc.array(
        fc.oneof(
          fc.record({ key: fc.constantFrom(...keys, always), operator: fc.constant('In'), values: fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 2 }) }),
          fc.record({ key: fc.constant(always), operator: fc.constant('NotIn'), values: fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 2 }) }),
          fc.record({ key: fc.constantFrom(...keys), operator: fc.constantFrom('Exists', 'DoesNotExist') }),
        ),
        { maxLength: 1 },
      ),
    },
    { requiredKeys: [] },
  );
const NAMESPACES = ['ns0', 'ns1', 'ns2'];
const namespaceSelector = fc.oneof(selector(NS_KEYS, 'region'), fc.constant({ matchLabels: { 'kubernetes.io/metadata.name': 'ns1' } }));
const peer = fc.oneof(
  fc.record({ podSelector: selector(KEYS, 'zone') }),
  fc.record({ namespaceSelector }),
  fc.record({ namespaceSelector, podSelector: selector(KEYS, 'zone') }),
  fc.constantFrom(
    { ipBlock: { cidr: '172.16.0.0/24', except: ['172.16.0.5/32'] } },
    { ipBlock: { cidr: '172.16.0.0/16' } },
    { ipBlock: { cidr: '10.1.0.0/16', except: ['10.1.0.0/30'] } },
    { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } },
  ),
);
const port = fc.oneof(
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP', 'SCTP'), port: fc.constantFrom<number | string>(53, 80, 81, 8080, 'http', 'dns', 'web') }, { requiredKeys: [] }),
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP'), port: fc.constantFrom(53, 80), endPort: fc.constantFrom(81, 8080) }, { requiredKeys: ['port', 'endPort'] }),
);
const rule = fc.record({ peers: fc.array(peer, { maxLength: 2 }), ports: fc.array(port, { maxLength: 2 }) }, { requiredKeys: [] });
const netpol = fc.record(
  {
    namespace: fc.constantFrom(...NAMESPACES),
    podSelector: selector(KEYS, 'zone'),
    policyTypes: fc.constantFrom<('Ingress' | 'Egress')[]>([], ['Ingress'], ['Egress'], ['Ingress', 'Egress']),
    ingress: fc.array(rule, { maxLength: 2 }),
    egress: fc.array(rule, { maxLength: 2 }),
  },
  { requiredKeys: ['namespace', 'podSelector'] },
);
const NAMED_PORTS = [
  { name: 'http', port: 8080, protocol: 'tcp' },
  { name: 'web', port: 81, protocol: 'tcp' },
  { name: 'dns', port: 53, protocol: 'udp' },
  { name: 'http', port: 80, protocol: 'sctp' },
] as const;
const cluster = fc.record({
  nsLabels: fc.tuple(labels(NS_KEYS, 'region'), labels(NS_KEYS, 'region'), labels(NS_KEYS, 'region')),
  workloads: fc.array(fc.record({ namespace: fc.constantFrom(...NAMESPACES), labels: labels(KEYS, 'zone'), ports: fc.subarray([0, 1, 2, 3]) }), { minLength: 2, maxLength: 6 }),
  netpols: fc.array(netpol, { minLength: 1, maxLength: 4 }),
});
const PROBES = [
  ['tcp', 80],
  ['tcp', 81],
  ['tcp', 8080],
  ['udp', 53],
  ['udp', 80],
  ['sctp', 80],
] as const;
const EXTERNAL = ['172.16.0.5', '172.16.0.9', '192.0.2.1'];

interface OracleVerdict {
  allowed: boolean;
  ingress: boolean;
  egress: boolean;
}

function ask(request: unknown): OracleVerdict[] {
  const r = spawnSync(ORACLE, [], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`netpol-oracle failed (${r.status}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { verdicts: OracleVerdict[] }).verdicts;
}

/** microseg's egress and ingress decisions: the side that dropped, or both allowed. */
function sides(t: Trace): { egress: boolean; ingress: boolean | undefined } {
  const src = t.observations.find((o) => o.component === 'source-firewall')!;
  const dst = t.observations.find((o) => o.component === 'destination-firewall');
  const egress = src.action === 'allow' || src.action === 'skipped';
  return { egress, ingress: egress ? dst?.action === 'allow' || dst?.action === 'skipped' : undefined };
}

it('the oracle is built (scripts/setup.sh builds tools/netpol-oracle into .tools/bin)', () => {
  expect(existsSync(ORACLE)).toBe(true);
});

it('microseg and cyclonus agree on every NetworkPolicy verdict, per direction', () => {
  fc.assert(
    fc.property(cluster, (c) => {
      const w = new World({ defaultAction: 'allow' });
      const put = (kind: Kind, name: string, spec: Record<string, unknown>) => {
        const problems = w.upsert(kind, name, spec);
        if (problems.some((p) => p.severity !== 'warning')) throw new Error(JSON.stringify(problems));
      };
      put('KubernetesCluster', 'c1', { podCidr: '10.1.0.0/16', serviceCidr: '10.96.0.0/16', nodes: [{ name: 'n1', ip: '192.168.0.11' }], networkMode: 'flat' });
      NAMESPACES.forEach((ns, i) => put('Namespace', `c1/${ns}`, { name: ns, cluster: 'c1', labels: c.nsLabels[i] }));
      const pods: { ref: string; oracle: string; namespace: string; name: string; labels: Record<string, string>; ports: (typeof NAMED_PORTS)[number][] }[] = [];
      c.workloads.forEach((wl, i) => {
        // One port name per pod (container port names are unique in a pod).
        const ports = wl.ports.map((k) => NAMED_PORTS[k]!).filter((p, j, all) => all.findIndex((q) => q.name === p.name) === j);
        put('Workload', `c1/${wl.namespace}/w${i}`, { name: `w${i}`, cluster: 'c1', namespace: wl.namespace, labels: wl.labels, replicas: 1, ports });
        pods.push({ ref: `c1/${wl.namespace}/w${i}`, oracle: `${wl.namespace}/w${i}-0`, namespace: wl.namespace, name: `w${i}-0`, labels: wl.labels, ports });
      });
      const manifests = c.netpols.map(({ namespace, ingress, egress, ...np }, i) => {
        const spec = {
          name: `np${i}`,
          cluster: 'c1',
          namespace,
          ...np,
          ...(ingress ? { ingress: ingress.map((r) => ({ ...(r.peers ? { from: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) })) } : {}),
          ...(egress ? { egress: egress.map((r) => ({ ...(r.peers ? { to: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) })) } : {}),
        };
        put('KubernetesNetworkPolicy', `c1/${namespace}/np${i}`, spec);
        return networkPolicyManifest(w.get('KubernetesNetworkPolicy', `c1/${namespace}/np${i}`) as SpecOf['KubernetesNetworkPolicy']);
      });
      const ipOf = new Map(pods.map((p) => [p.ref, (w.outputsOf('Workload', p.ref).pods as { ip: string }[])[0]!.ip]));
      const flows: { source: string; destination: string; protocol: 'tcp' | 'udp' | 'sctp'; port: number; oracleSource: string; oracleDestination: string }[] = [];
      const endpoints = [...pods.map((p) => ({ ref: p.ref, oracle: p.oracle })), ...EXTERNAL.map((ip) => ({ ref: ip, oracle: ip }))];
      for (const s of endpoints)
        for (const d of endpoints) {
          if (s === d || (s.ref === s.oracle && d.ref === d.oracle)) continue; // loopback; external to external
          for (const [protocol, p] of PROBES) flows.push({ source: s.ref, destination: d.ref, protocol, port: p, oracleSource: s.oracle, oracleDestination: d.oracle });
        }
      const verdicts = ask({
        namespaces: Object.fromEntries(NAMESPACES.map((ns, i) => [ns, { labels: c.nsLabels[i] }])),
        pods: pods.map((p) => ({ namespace: p.namespace, name: p.name, labels: p.labels, ip: ipOf.get(p.ref), ports: p.ports.map((x) => ({ name: x.name, port: x.port, protocol: x.protocol.toUpperCase() })) })),
        policies: manifests,
        flows: flows.map((f) => ({ source: f.oracleSource, destination: f.oracleDestination, protocol: f.protocol.toUpperCase(), port: f.port })),
      });
      flows.forEach((f, i) => {
        const o = verdicts[i]!;
        const t = w.traceflow(f);
        if ('problem' in t) throw new Error(t.problem.message);
        const fast = w.verdict(f);
        if ('problem' in fast) throw new Error(fast.problem.message);
        const m = sides(t);
        const label = `${f.source} -> ${f.destination} ${f.protocol}/${f.port} (decided by ${t.decidingPolicy}/${t.decidingRule})`;
        expect({ flow: label, verdict: t.verdict, fast: fast.verdict, egress: m.egress, ingress: m.ingress }).toEqual({
          flow: label,
          verdict: o.allowed ? 'allow' : 'drop',
          fast: o.allowed ? 'allow' : 'drop',
          egress: o.egress,
          ingress: o.egress ? o.ingress : undefined,
        });
      });
    }),
    { numRuns: Number(process.env.MICROSEG_ORACLE_RUNS ?? 150), seed: SEED, interruptAfterTimeLimit: 90_000, markInterruptAsFailure: false },
  );
});
