import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { World } from '../../../provider/src/engine';
import { getKubernetesManifests } from '../../../provider/src/export/kubernetes';
import { matchesLabels, NAME_LABEL, type LabelSelector } from '../../../provider/src/export/kubernetes/selection';
import type { Kind } from '../../../provider/src/model';

/**
 * Differential test of the `kubernetes` export for ingress to pods: random small worlds (namespaces,
 * labelled pods, VMs, FirewallPolicies in emergency / application / baseline with allow, drop and pass,
 * sources that are pods, VMs, IP blocks or anything, user NetworkPolicies, either default rule) are
 * exported, and the exported objects are evaluated as a cluster would: the ClusterNetworkPolicy Admin
 * tier by the API reference (priority, first rule, Accept / Deny / Pass, peers select pods only), the
 * NetworkPolicy layer by cyclonus's simulator (tools/netpol-oracle, an evaluator nobody here wrote) for
 * pods some NetworkPolicy isolates, then the Baseline tier, then the Kubernetes default (allow). Its
 * ingress verdict for every pod destination, from pods, VMs and an outside address, must equal microseg's
 * destination-side decision (traceflow). Worlds the export refuses are skipped and counted; enough must
 * export for the test to mean something.
 *
 * The ingress side alone is compared: an emergency `egress-open` rule lets every source side allow, so
 * traceflow always reaches the destination. Every pod carries every label key the selectors use: the
 * export writes negations as NotIn, and cyclonus does not select an object without the key (see
 * oracle.test.ts). Traffic from nodes is left out (`podsOnly`: Kubernetes always admits a pod's own node).
 */

const ORACLE = join(__dirname, '..', '..', '..', '.tools', 'bin', 'netpol-oracle');
const SEED = Number(process.env.MICROSEG_EXPORT_DIFF_SEED ?? 20261127);
const RUNS = Number(process.env.MICROSEG_EXPORT_DIFF_RUNS ?? 200);

const NAMESPACES = ['ns0', 'ns1'];
const APPS = ['a', 'b', 'c'];
const VMS = [
  ['vm1', '172.16.0.5'],
  ['vm2', '172.16.1.9'],
] as const;
const OUTSIDE = '192.0.2.1';
const PROBES = [
  ['tcp', 80],
  ['tcp', 81],
  ['udp', 53],
  ['sctp', 80],
] as const;

const peer = fc.constantFrom<Record<string, unknown>[]>(
  [],
  [{ group: 'pods-a' }],
  [{ group: 'pods-b' }],
  [{ group: 'vm1' }],
  [{ group: 'pods-b' }, { group: 'vm2' }],
  [{ cidr: '172.16.0.0/16', except: ['172.16.1.0/24'] }],
  [{ podSelector: { namespaces: ['ns1'] } }],
);
const dest = fc.constantFrom<Record<string, unknown>[]>([], [{ group: 'pods-a' }], [{ group: 'pods-b' }], [{ group: 'quarantined' }]);
const services = fc.constantFrom<Record<string, unknown>[] | undefined>(
  undefined,
  [{ protocol: 'tcp', ports: [80] }],
  [{ protocol: 'udp', ports: [53] }],
  [{ protocol: 'tcp', ports: ['80-81'] }, { protocol: 'sctp' }],
  [{ protocol: 'tcp', ports: ['http'] }],
  [{ protocol: 'tcp' }],
);
const rule = (actions: string[]) => fc.record({ action: fc.constantFrom(...actions), direction: fc.constantFrom('in', 'inout'), sources: peer, destinations: dest, services });
const world = fc.record({
  defaultAction: fc.constantFrom<'allow' | 'drop'>('allow', 'drop'),
  nsLabels: fc.tuple(fc.constantFrom('x', 'y'), fc.constantFrom('x', 'y')),
  pods: fc.array(fc.record({ namespace: fc.constantFrom(...NAMESPACES), app: fc.constantFrom(...APPS), quarantine: fc.constantFrom('true', 'false'), http: fc.constantFrom(undefined, 80, 81) }), { minLength: 2, maxLength: 4 }),
  emergency: fc.array(rule(['allow', 'drop']), { maxLength: 2 }),
  application: fc.array(rule(['allow', 'drop', 'pass']), { maxLength: 3 }),
  baseline: fc.array(rule(['allow', 'drop']), { maxLength: 2 }),
  netpol: fc.option(
    fc.record({
      // Selects the app of one generated pod, in its namespace, so the policy always isolates someone.
      pod: fc.nat(3),
      from: fc.constantFrom<Record<string, unknown>[]>([{ podSelector: { matchLabels: { app: 'a' } } }], [{ namespaceSelector: {} }], [{ ipBlock: { cidr: '172.16.0.0/24' } }]),
    }),
    { nil: undefined },
  ),
});

type Manifest = { kind: string; metadata: { name: string; namespace?: string }; spec: Record<string, unknown> };
type NamedPort = { name: string; port: number; protocol: string };
type Pod = { ref: string; oracle: string; namespace: string; labels: Record<string, string>; ip: string; ports: NamedPort[] };
type Source = { pod?: Pod; ip: string; ref: string; oracle: string };

/** Whether a ClusterNetworkPolicy ingress peer (`namespaces` or `pods`) selects the source: pods only. */
function cnpPeerMatches(peer: Record<string, unknown>, src: Source, nsLabels: (ns: string) => Record<string, string>): boolean {
  if (!src.pod) return false; // no standard ingress peer selects an address
  if (peer.namespaces) return matchesLabels(peer.namespaces as LabelSelector, nsLabels(src.pod.namespace));
  const p = peer.pods as { namespaceSelector: LabelSelector; podSelector: LabelSelector } | undefined;
  return !!p && matchesLabels(p.namespaceSelector, nsLabels(src.pod.namespace)) && matchesLabels(p.podSelector, src.pod.labels);
}

function cnpProtocolMatches(protocols: Record<string, unknown>[] | undefined, protocol: string, port: number, dst: Pod): boolean {
  if (!protocols) return true;
  return protocols.some((entry) => {
    if (entry.destinationNamedPort !== undefined) return dst.ports.some((p) => p.name === entry.destinationNamedPort && p.protocol === protocol && p.port === port);
    const p = (entry[protocol] as { destinationPort: { number?: number; range?: { start: number; end: number } } } | undefined)?.destinationPort;
    return !!p && (p.number !== undefined ? p.number === port : port >= p.range!.start && port <= p.range!.end);
  });
}

/** One tier's ingress decision for a pod: Accept / Deny / Pass of the first matching rule, by priority. */
function tierDecision(cnps: Manifest[], tier: string, dst: Pod, src: Source, protocol: string, port: number, nsLabels: (ns: string) => Record<string, string>): string | undefined {
  const inTier = cnps.filter((m) => m.spec.tier === tier && m.spec.ingress).sort((a, b) => (a.spec.priority as number) - (b.spec.priority as number));
  for (const m of inTier) {
    const subject = m.spec.subject as { namespaces?: LabelSelector; pods?: { namespaceSelector: LabelSelector; podSelector: LabelSelector } };
    const selects = subject.namespaces ? matchesLabels(subject.namespaces, nsLabels(dst.namespace)) : matchesLabels(subject.pods!.namespaceSelector, nsLabels(dst.namespace)) && matchesLabels(subject.pods!.podSelector, dst.labels);
    if (!selects) continue;
    for (const r of m.spec.ingress as { action: string; from: Record<string, unknown>[]; protocols?: never }[]) {
      if (r.from.some((p) => cnpPeerMatches(p, src, nsLabels)) && cnpProtocolMatches(r.protocols, protocol, port, dst)) return r.action;
    }
  }
  return undefined;
}

interface Cluster {
  readonly namespaces: readonly string[];
  readonly nsLabels: (ns: string) => Record<string, string>;
  readonly pods: readonly Pod[];
  readonly sources: readonly Source[];
  readonly probes: readonly (readonly [string, number])[];
  /** Labels the oracle sees (see the flagship case); the pods' own labels by default. */
  readonly oracleLabels?: (p: Pod) => Record<string, string>;
}

/**
 * Compares, for every source and pod destination and probe, the cluster's ingress verdict on the exported
 * objects (Admin tier, NetworkPolicy layer by cyclonus for isolated pods, Baseline tier, default allow)
 * with microseg's destination-side decision. Returns the number of flows compared.
 */
function compareIngress(w: World, manifests: Manifest[], c: Cluster): number {
  const cnps = manifests.filter((m) => m.kind === 'ClusterNetworkPolicy');
  const nps = manifests.filter((m) => m.kind === 'NetworkPolicy');
  const flows = c.sources.flatMap((src) => c.pods.filter((dst) => dst.ref !== src.ref).flatMap((dst) => c.probes.map(([protocol, port]) => ({ src, dst, protocol, port }))));
  const oracle = spawnSync(ORACLE, [], {
    input: JSON.stringify({
      namespaces: Object.fromEntries(c.namespaces.map((ns) => [ns, { labels: c.nsLabels(ns) }])),
      pods: c.pods.map((p) => ({ namespace: p.namespace, name: p.oracle.split('/')[1], labels: (c.oracleLabels ?? ((x: Pod) => x.labels))(p), ip: p.ip, ports: p.ports.map((x) => ({ ...x, protocol: x.protocol.toUpperCase() })) })),
      policies: nps,
      flows: flows.map((f) => ({ source: f.src.oracle, destination: f.dst.oracle, protocol: f.protocol.toUpperCase(), port: f.port })),
    }),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (oracle.status !== 0) throw new Error(`netpol-oracle failed (${oracle.status}): ${oracle.stderr}`);
  const verdicts = (JSON.parse(oracle.stdout) as { verdicts: { ingress: boolean }[] }).verdicts;
  let compared = 0;
  flows.forEach((f, i) => {
    const t = w.traceflow({ source: f.src.ref, destination: f.dst.ref, protocol: f.protocol as 'tcp', port: f.port });
    if ('problem' in t) throw new Error(t.problem.message);
    const d = t.observations.find((o) => o.component === 'destination-firewall');
    if (!d) return; // the source side dropped it (a VM's own rules): the pod never sees it
    const isolated = nps.some((np) => np.metadata.namespace === f.dst.namespace && matchesLabels(np.spec.podSelector as LabelSelector, f.dst.labels) && ((np.spec.policyTypes as string[] | undefined) ?? ['Ingress']).includes('Ingress'));
    let cluster: string;
    const admin = tierDecision(cnps, 'Admin', f.dst, f.src, f.protocol, f.port, c.nsLabels);
    if (admin === 'Accept' || admin === 'Deny') cluster = admin === 'Accept' ? 'allow' : 'drop';
    else if (isolated) cluster = verdicts[i]!.ingress ? 'allow' : 'drop';
    else {
      const baseline = tierDecision(cnps, 'Baseline', f.dst, f.src, f.protocol, f.port, c.nsLabels);
      cluster = baseline === 'Deny' ? 'drop' : 'allow';
    }
    const label = `${f.src.ref} -> ${f.dst.ref} ${f.protocol}/${f.port} (microseg: ${d.policy}/${d.rule})`;
    expect({ flow: label, verdict: d.action }).toEqual({ flow: label, verdict: cluster });
    compared++;
  });
  return compared;
}

it('the exported ClusterNetworkPolicies and NetworkPolicies decide ingress to pods as microseg does', () => {
  let exported = 0;
  let refused = 0;
  let compared = 0;
  fc.assert(
    fc.property(world, (c) => {
      const w = new World({ defaultAction: c.defaultAction });
      const put = (kind: Kind, name: string, spec: Record<string, unknown>) => {
        const problems = w.upsert(kind, name, spec);
        if (problems.some((p) => p.severity !== 'warning')) throw new Error(`${kind} ${name}: ${JSON.stringify(problems)}`);
      };
      put('KubernetesCluster', 'c1', { podCidr: '10.1.0.0/16', serviceCidr: '10.96.0.0/16', nodes: [{ name: 'n1', ip: '192.168.0.11' }], networkMode: 'flat' });
      NAMESPACES.forEach((ns, i) => put('Namespace', `c1/${ns}`, { name: ns, cluster: 'c1', labels: { zone: c.nsLabels[i]! } }));
      c.pods.forEach((p, i) =>
        put('Workload', `c1/${p.namespace}/w${i}`, { name: `w${i}`, cluster: 'c1', namespace: p.namespace, labels: { app: p.app, quarantine: p.quarantine }, replicas: 1, ...(p.http ? { ports: [{ name: 'http', port: p.http }] } : {}) }),
      );
      for (const [name, ip] of VMS) put('VirtualMachine', name, { interfaces: [{ ip }], labels: { vm: name } });
      put('SecurityGroup', 'pods-a', { podSelectors: [{ podSelector: { matchLabels: { app: 'a' } } }] });
      put('SecurityGroup', 'pods-b', { podSelectors: [{ podSelector: { matchLabels: { app: 'b' } } }] });
      put('SecurityGroup', 'quarantined', { podSelectors: [{ podSelector: { matchLabels: { quarantine: 'true' } } }] });
      put('SecurityGroup', 'vm1', { vms: ['vm1'] });
      put('SecurityGroup', 'vm2', { vms: ['vm2'] });
      const rules = (list: typeof c.application, prefix: string) => list.map((r, i) => ({ name: `${prefix}${i}`, ...r, ...(r.services ? {} : { services: undefined }) }));
      put('FirewallPolicy', 'open-egress', { category: 'emergency', priority: 0, rules: [{ name: 'egress-open', action: 'allow', direction: 'out' }] });
      if (c.emergency.length) put('FirewallPolicy', 'emergency', { category: 'emergency', priority: 1, rules: rules(c.emergency, 'e') });
      if (c.application.length) put('FirewallPolicy', 'application', { category: 'application', priority: 1, rules: rules(c.application, 'a') });
      if (c.baseline.length) put('FirewallPolicy', 'baseline', { category: 'baseline', priority: 1, rules: rules(c.baseline, 'b') });
      if (c.netpol) {
        const { namespace, app } = c.pods[c.netpol.pod % c.pods.length]!;
        const np = { ...c.netpol, namespace, app };
        put('KubernetesNetworkPolicy', `c1/${np.namespace}/user`, { name: 'user', cluster: 'c1', namespace: np.namespace, podSelector: { matchLabels: { app: np.app } }, policyTypes: ['Ingress'], ingress: [{ from: np.from }] });
      }
      const r = getKubernetesManifests(w, { cluster: 'c1', flavor: 'kubernetes', podsOnly: true });
      if (r.refusals.length) {
        refused++;
        return;
      }
      exported++;
      const manifests = r.manifests as unknown as Manifest[];
      const nsLabels = (ns: string) => ({ zone: c.nsLabels[NAMESPACES.indexOf(ns)]!, [NAME_LABEL]: ns });
      const pods: Pod[] = c.pods.map((p, i) => ({
        ref: `c1/${p.namespace}/w${i}`,
        oracle: `${p.namespace}/w${i}-0`,
        namespace: p.namespace,
        labels: { app: p.app, quarantine: p.quarantine },
        ports: p.http ? [{ name: 'http', port: p.http, protocol: 'tcp' }] : [],
        ip: (w.outputsOf('Workload', `c1/${p.namespace}/w${i}`).pods as { ip: string }[])[0]!.ip,
      }));
      const sources: Source[] = [...pods.map((p) => ({ pod: p, ip: p.ip, ref: p.ref, oracle: p.oracle })), ...VMS.map(([name, ip]) => ({ ip, ref: `vm:${name}`, oracle: ip })), { ip: OUTSIDE, ref: OUTSIDE, oracle: OUTSIDE }];
      compared += compareIngress(w, manifests, { namespaces: NAMESPACES, nsLabels, pods, sources, probes: PROBES });
    }),
    { numRuns: RUNS, seed: SEED },
  );
  // The test must exercise the export: most generated worlds export, and many flows are compared.
  expect(exported).toBeGreaterThan(RUNS / 3);
  expect(compared).toBeGreaterThan(exported * 20);
});

it('the flagship cluster, exported, decides ingress to its pods as microseg does (with a quarantined backend pod)', async () => {
  const { vcciWorld } = await import('../../support/vcci-world');
  const w = await vcciWorld();
  const put = (kind: Kind, name: string, spec: Record<string, unknown>) => {
    const problems = w.upsert(kind, name, spec);
    if (problems.some((p) => p.severity !== 'warning')) throw new Error(`${kind} ${name}: ${JSON.stringify(problems)}`);
  };
  // The forensic path needs a quarantined pod; the source sides are opened so every flow reaches its pod.
  put('Workload', 'vcci/shop/suspect', { name: 'suspect', cluster: 'vcci', namespace: 'shop', labels: { app: 'backend', quarantine: 'true' }, replicas: 1, ports: [{ name: 'http', port: 8080 }] });
  put('FirewallPolicy', 'open-egress', { category: 'emergency', priority: 0, rules: [{ name: 'egress-open', action: 'allow', direction: 'out' }] });
  const r = getKubernetesManifests(w, { cluster: 'vcci', flavor: 'kubernetes', podsOnly: true });
  expect(r.refusals).toEqual([]);
  const manifests = r.manifests as unknown as Manifest[];

  const namespaces = w.names('Namespace').map((n) => w.get('Namespace', n)!).filter((ns) => ns.cluster === 'vcci');
  const nsLabels = (ns: string) => ({ ...(namespaces.find((x) => x.name === ns)?.labels ?? {}), [NAME_LABEL]: ns });
  const pods: Pod[] = w
    .names('Workload')
    .map((n) => w.get('Workload', n)!)
    .filter((wl) => wl.cluster === 'vcci')
    .flatMap((wl) =>
      (w.outputsOf('Workload', `vcci/${wl.namespace}/${wl.name}`).pods as { name: string; ip: string }[]).map((p) => ({
        ref: `pod:vcci/${wl.namespace}/${p.name}`,
        oracle: `${wl.namespace}/${p.name}`,
        namespace: wl.namespace,
        labels: wl.labels ?? {},
        ports: (wl.ports ?? []).map((x) => ({ name: x.name, port: x.port, protocol: x.protocol ?? 'tcp' })),
        ip: p.ip,
      })),
    );
  const vms = w.names('VirtualMachine').map((n) => ({ ip: w.get('VirtualMachine', n)!.interfaces[0]!.ip, ref: `vm:${n}`, oracle: w.get('VirtualMachine', n)!.interfaces[0]!.ip }));
  const sources: Source[] = [...pods.map((p) => ({ pod: p, ip: p.ip, ref: p.ref, oracle: p.oracle })), ...vms, { ip: '198.51.100.7', ref: '198.51.100.7', oracle: '198.51.100.7' }];
  // cyclonus does not select an object without the key of a NotIn (see oracle.test.ts); Kubernetes does.
  // The export writes NotIn on app, k8s-app and quarantine only, so the oracle sees those keys on every pod
  // with a value no selector names, which Kubernetes treats as a missing key for In and NotIn alike.
  const text = JSON.stringify(manifests.filter((m) => m.kind === 'NetworkPolicy'));
  expect(text).not.toMatch(/"operator":"(Exists|DoesNotExist)"/);
  const ABSENT = 'absent-in-microseg';
  const oracleLabels = (p: Pod) => ({ app: ABSENT, 'k8s-app': ABSENT, quarantine: ABSENT, ...p.labels });
  const probes = [['tcp', 22], ['tcp', 53], ['udp', 53], ['tcp', 80], ['tcp', 8080], ['tcp', 8848], ['tcp', 9090], ['tcp', 9100]] as const;
  const compared = compareIngress(w, manifests, { namespaces: namespaces.map((n) => n.name!), nsLabels, pods, sources, probes, oracleLabels });
  expect(compared).toBeGreaterThan(1000);
}, 120_000);
