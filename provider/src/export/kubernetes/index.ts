import type { World } from '../../engine';
import type { SpecOf } from '../../model';
import { subtractCidrs } from './cidr';
import { networkPolicyManifest, type NetworkPolicyManifest } from './networkpolicy';

/**
 * The pod side of a cluster's policy as Kubernetes objects (pure). Flavor `kubernetes`:
 * ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`, standard channel) and NetworkPolicy.
 *
 * Mapping: emergency, infrastructure, environment and application → tier Admin; baseline and the default
 * rule → tier Baseline; KubernetesNetworkPolicies → NetworkPolicy objects (the layer between the tiers,
 * as in microseg). Each rule and direction becomes one ClusterNetworkPolicy whose subject is the rule's
 * effective appliedTo ∩ its destinations (ingress) or sources (egress), with a priority that keeps the
 * evaluation order (a rule's priority is its position in the tier; equal priorities are never needed).
 *
 * What the standard ClusterNetworkPolicy cannot express is refused with the construct and the reason,
 * never exported with a different verdict: reject, staged policies, negated peers, ICMP, ingress from
 * IP blocks and VMs, peers in other clusters, static workload members, a pass from emergency,
 * infrastructure or environment while application rules exist (microseg continues at application, a
 * ClusterNetworkPolicy Pass skips the whole Admin tier), a pass in baseline with a dropping default rule,
 * more than 1001 priorities per tier. Ingress from "any source" (and the default rule's drop) needs
 * `podsOnly`: standard ingress peers select pods only, so traffic from outside the cluster would not be
 * matched; with `podsOnly` the export says so and selects every pod.
 */
export type Flavor = 'kubernetes';

export interface Refusal {
  /** The construct, e.g. `FirewallPolicy web/deny-ssh: action reject`. */
  readonly construct: string;
  readonly reason: string;
}

export interface KubernetesExport {
  readonly manifests: readonly Record<string, unknown>[];
  readonly refusals: readonly Refusal[];
}

type LabelSelector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
/** A set of pods of the cluster as ClusterNetworkPolicy selects them. */
interface PodSel {
  readonly namespaceSelector: LabelSelector;
  readonly podSelector: LabelSelector;
}
/** What a peer list selects: pods (union of selectors), IP CIDRs, and whether it is everything. */
interface Selection {
  readonly any: boolean;
  readonly pods: PodSel[];
  readonly cidrs: string[];
}
type Peer = NonNullable<SpecOf['FirewallRule']['sources']>[number];
type Service = NonNullable<SpecOf['FirewallRule']['services']>[number];
type RuleSpec = SpecOf['FirewallRule'] | NonNullable<SpecOf['FirewallPolicy']['rules']>[number];

const ALL_PODS: PodSel = { namespaceSelector: {}, podSelector: {} };
const NAME_LABEL = 'kubernetes.io/metadata.name';

class Refused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

function and(a: LabelSelector, b: LabelSelector): LabelSelector | undefined {
  const matchLabels = { ...(a.matchLabels ?? {}) };
  for (const [k, v] of Object.entries(b.matchLabels ?? {})) {
    if (matchLabels[k] !== undefined && matchLabels[k] !== v) return undefined; // selects nothing
    matchLabels[k] = v;
  }
  const matchExpressions = [...(a.matchExpressions ?? []), ...(b.matchExpressions ?? [])];
  return { ...(Object.keys(matchLabels).length ? { matchLabels } : {}), ...(matchExpressions.length ? { matchExpressions } : {}) };
}

function intersect(a: readonly PodSel[], b: readonly PodSel[]): PodSel[] {
  const out: PodSel[] = [];
  for (const x of a)
    for (const y of b) {
      const ns = and(x.namespaceSelector, y.namespaceSelector);
      const pod = and(x.podSelector, y.podSelector);
      if (ns && pod) out.push({ namespaceSelector: ns, podSelector: pod });
    }
  return out;
}

export function getKubernetesManifests(world: World, options: { cluster: string; flavor: Flavor; podsOnly?: boolean }): KubernetesExport {
  const { cluster } = options;
  const refusals: Refusal[] = [];
  const manifests: Record<string, unknown>[] = [];
  const clusterSpec = world.get('KubernetesCluster', cluster);
  if (!clusterSpec) return { manifests, refusals: [{ construct: `cluster ${cluster}`, reason: 'no such KubernetesCluster' }] };

  const podSelOf = (s: { cluster?: string; namespaces?: string[]; namespaceSelector?: LabelSelector; podSelector?: LabelSelector }): PodSel | undefined => {
    if (s.cluster !== undefined && s.cluster !== cluster) return undefined; // selects no pod of this cluster
    let ns: LabelSelector = s.namespaceSelector ?? {};
    if (s.namespaces) ns = and(ns, { matchExpressions: [{ key: NAME_LABEL, operator: 'In', values: [...s.namespaces].sort() }] }) ?? ns;
    return { namespaceSelector: ns, podSelector: s.podSelector ?? {} };
  };
  const vmCidrs = (pred: (vm: SpecOf['VirtualMachine'], name: string) => boolean): string[] =>
    world.names('VirtualMachine').flatMap((n) => (pred(world.get('VirtualMachine', n)!, n) ? world.get('VirtualMachine', n)!.interfaces.map((i) => (i.ip.includes(':') ? `${i.ip}/128` : `${i.ip}/32`)) : []));
  const matchesLabels = (sel: LabelSelector, labels: Record<string, string>): boolean =>
    Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (sel.matchExpressions ?? []).every((e) => {
      const has = Object.prototype.hasOwnProperty.call(labels, e.key);
      if (e.operator === 'In') return has && (e.values ?? []).includes(labels[e.key]!);
      if (e.operator === 'NotIn') return !has || !(e.values ?? []).includes(labels[e.key]!);
      if (e.operator === 'Exists') return has;
      return !has;
    });
  const blockCidrs = (cidr: string, except: readonly string[] | undefined): string[] => {
    if (!except?.length) return [cidr];
    const parts = subtractCidrs(cidr, except);
    if (!parts) throw new Refused(`IPv6 block ${cidr} with except: ClusterNetworkPolicy networks have no except`);
    return parts;
  };
  const groupSelection = (name: string, seen: Set<string>): Selection => {
    const g = world.get('SecurityGroup', name);
    const out: Selection = { any: false, pods: [], cidrs: [] };
    if (!g || seen.has(name)) return out;
    seen.add(name);
    for (const s of g.podSelectors ?? []) {
      const p = podSelOf(s);
      if (p) out.pods.push(p);
    }
    for (const r of g.podSelectorRefs ?? []) {
      const s = world.get('PodSelector', r);
      const p = s && podSelOf(s);
      if (p) out.pods.push(p);
    }
    for (const s of g.vmSelectors ?? []) out.cidrs.push(...vmCidrs((vm) => matchesLabels(s, vm.labels ?? {})));
    for (const v of g.vms ?? []) out.cidrs.push(...vmCidrs((_vm, n) => n === v));
    for (const b of g.ipBlocks ?? []) out.cidrs.push(...blockCidrs(b.cidr, b.except));
    for (const e of g.egressIps ?? []) {
      const ip = world.outputsOf('EgressIp', e).allocatedIp;
      if (typeof ip === 'string' && ip) out.cidrs.push(ip.includes(':') ? `${ip}/128` : `${ip}/32`);
    }
    if (g.workloads?.length) throw new Refused(`group ${name} has static workload members: ClusterNetworkPolicy selects pods by labels only`);
    for (const c of g.groups ?? []) {
      const s = groupSelection(c, seen);
      out.pods.push(...s.pods);
      out.cidrs.push(...s.cidrs);
    }
    return out;
  };
  const peersSelection = (peers: readonly Peer[] | undefined): Selection => {
    if (!peers?.length) return { any: true, pods: [ALL_PODS], cidrs: ['0.0.0.0/0', '::/0'] };
    const out: Selection = { any: false, pods: [], cidrs: [] };
    for (const p of peers) {
      let s: Selection;
      if (p.group !== undefined) s = groupSelection(p.group, new Set());
      else if (p.podSelector) {
        if (p.podSelector.cluster !== undefined && p.podSelector.cluster !== cluster) throw new Refused(`a peer selects pods of cluster ${p.podSelector.cluster}: they reach this cluster by IP (after SNAT), which labels cannot select`);
        s = { any: false, pods: [podSelOf(p.podSelector)!], cidrs: [] };
      } else if (p.podSelectorRef !== undefined) {
        const ps = world.get('PodSelector', p.podSelectorRef);
        const sel = ps && podSelOf(ps);
        s = { any: false, pods: sel ? [sel] : [], cidrs: [] };
      } else if (p.vmSelector) s = { any: false, pods: [], cidrs: vmCidrs((vm) => matchesLabels(p.vmSelector!, vm.labels ?? {})) };
      else if (p.vm !== undefined) s = { any: false, pods: [], cidrs: vmCidrs((_vm, n) => n === p.vm) };
      else if (p.workload !== undefined) throw new Refused(`peer workload ${p.workload}: ClusterNetworkPolicy selects pods by labels only`);
      else s = { any: false, pods: [], cidrs: blockCidrs(p.cidr!, p.except) };
      out.pods.push(...s.pods);
      out.cidrs.push(...s.cidrs);
    }
    return out;
  };
  const appliedToPods = (groups: readonly string[] | undefined): PodSel[] => {
    if (!groups?.length) return [ALL_PODS];
    return groups.flatMap((g) => groupSelection(g, new Set()).pods);
  };
  const protocols = (services: readonly Service[] | undefined): Record<string, unknown>[] | undefined => {
    if (!services?.length) return undefined;
    const out: Record<string, unknown>[] = [];
    for (const s of services) {
      if (s.protocol === 'icmp' || s.protocol === 'icmpv6') throw new Refused(`protocol ${s.protocol}: ClusterNetworkPolicy matches TCP, UDP and SCTP ports only`);
      const protos = s.protocol === 'any' ? ['tcp', 'udp', 'sctp'] : [s.protocol];
      if (!s.ports?.length) {
        if (s.protocol === 'any') return undefined; // every protocol and port: no protocols field
        out.push({ [s.protocol]: { destinationPort: { range: { start: 1, end: 65535 } } } });
        continue;
      }
      for (const port of s.ports) {
        const m = typeof port === 'string' ? /^(\d+)-(\d+)$/.exec(port) : null;
        const num = typeof port === 'number' ? port : /^\d+$/.test(port) ? Number(port) : undefined;
        if (num === undefined && !m) {
          out.push({ destinationNamedPort: port });
          continue;
        }
        const dp = m ? (Number(m[1]) === Number(m[2]) ? { number: Number(m[1]) } : { range: { start: Number(m[1]), end: Number(m[2]) } }) : { number: num };
        for (const p of protos) out.push({ [p]: { destinationPort: dp } });
      }
    }
    if (out.length > 25) throw new Refused(`${out.length} port entries: a ClusterNetworkPolicy rule holds at most 25`);
    return out;
  };
  const names = new Set<string>();
  const cnpName = (base: string): string => {
    let n = base.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '').slice(0, 240) || 'microseg';
    for (let i = 2; names.has(n); i++) n = `${n.replace(/-\d+$/, '')}-${i}`;
    names.add(n);
    return n;
  };
  const cnp = (name: string, tier: 'Admin' | 'Baseline', priority: number, subject: PodSel, dir: 'ingress' | 'egress', rule: Record<string, unknown>): Record<string, unknown> => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name: cnpName(name), labels: { 'app.kubernetes.io/managed-by': 'microseg' } },
    spec: {
      tier,
      priority,
      subject: Object.keys(subject.namespaceSelector).length === 0 && Object.keys(subject.podSelector).length === 0 ? { namespaces: {} } : { pods: { namespaceSelector: subject.namespaceSelector, podSelector: subject.podSelector } },
      [dir]: [rule],
    },
  });
  const peerList = (sel: Selection, dir: 'ingress' | 'egress', construct: string): Record<string, unknown>[] => {
    if (dir === 'ingress') {
      if (sel.any) {
        if (!options.podsOnly) throw new Refused('ingress from any source: ClusterNetworkPolicy ingress peers select pods only, so traffic from outside the cluster would not be matched (accept that with --pods-only)');
        return [{ namespaces: {} }];
      }
      if (sel.cidrs.length) throw new Refused(`ingress from IP addresses (${sel.cidrs.slice(0, 3).join(', ')}${sel.cidrs.length > 3 ? ', ...' : ''}): ClusterNetworkPolicy v1alpha2 (standard) has no networks peer for ingress`);
    }
    const out: Record<string, unknown>[] = sel.pods.map((p) => (Object.keys(p.namespaceSelector).length === 0 && Object.keys(p.podSelector).length === 0 && sel.any ? { namespaces: {} } : { pods: { namespaceSelector: p.namespaceSelector, podSelector: p.podSelector } }));
    if (dir === 'egress' && sel.any) return [{ networks: ['0.0.0.0/0', '::/0'] }];
    for (let i = 0; i < sel.cidrs.length; i += 25) out.push({ networks: [...new Set(sel.cidrs.slice(i, i + 25))] });
    if (out.length === 0) throw new Refused(`${construct} selects nothing in cluster ${cluster}`);
    if (out.length > 25) throw new Refused(`${out.length} peers: a ClusterNetworkPolicy rule holds at most 25`);
    return out;
  };

  // Rules in evaluation order, from the specs (the compiled order gives the policy order).
  const ordered = world.orderedPolicies();
  const hasApplication = ordered.some((p) => p.category === 'application' && !p.staged && p.rules.length > 0);
  const priorities = { Admin: 0, Baseline: 0 };
  for (const p of ordered) {
    const fp = world.get('FirewallPolicy', p.name);
    const q = p.quarantine ? world.get('QuarantinePolicy', p.name) : undefined;
    const tier = p.category === 'baseline' ? 'Baseline' : 'Admin';
    if (p.staged) {
      refusals.push({ construct: `FirewallPolicy ${p.name}: enforcement staged`, reason: 'ClusterNetworkPolicy has no staged or audit form' });
      continue;
    }
    let rules: RuleSpec[];
    let policyApplied: PodSel[];
    if (q) {
      const base = { sourcesExcluded: false, destinationsExcluded: false, logged: true, disabled: false, policy: p.name, priority: 0 } as const;
      rules = [...(q.forensicGroup !== undefined ? [{ ...base, name: 'forensic-in', action: 'allow' as const, direction: 'in' as const, sources: [{ group: q.forensicGroup }], services: q.forensicServices }] : []), { ...base, name: 'isolate-in', action: 'drop', direction: 'in' }, { ...base, name: 'isolate-out', action: 'drop', direction: 'out' }];
      policyApplied = [{ namespaceSelector: {}, podSelector: q.selector }];
    } else if (fp) {
      rules = fp.rules?.length ? fp.rules : world.names('FirewallRule').map((n) => world.get('FirewallRule', n)!).filter((r) => r.policy === p.name).sort((a, b) => a.priority - b.priority || (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
      policyApplied = appliedToPods(fp.appliedTo);
    } else continue;
    for (const r of rules) {
      if (r.disabled) continue;
      const construct = `${q ? 'QuarantinePolicy' : 'FirewallPolicy'} ${p.name}/${r.name}`;
      try {
        if (r.action === 'reject') throw new Refused('action reject: ClusterNetworkPolicy actions are Accept, Deny and Pass');
        if (r.sourcesExcluded || r.destinationsExcluded) throw new Refused('negated peers (sourcesExcluded/destinationsExcluded) have no ClusterNetworkPolicy form');
        if (r.action === 'pass' && tier === 'Admin' && p.category !== 'application' && hasApplication)
          throw new Refused(`pass in ${p.category}: microseg continues at the application category, a ClusterNetworkPolicy Pass skips the rest of the Admin tier (where application rules are)`);
        if (r.action === 'pass' && tier === 'Baseline' && world.defaultAction === 'drop') throw new Refused('pass in baseline with a dropping default rule: a ClusterNetworkPolicy Pass there ends in the Kubernetes default (allow)');
        const applied = intersect(policyApplied, appliedToPods(r.appliedTo));
        const action = r.action === 'allow' ? 'Accept' : r.action === 'drop' ? 'Deny' : 'Pass';
        const protos = protocols(r.services);
        const out: Record<string, unknown>[] = [];
        const priority = priorities[tier];
        for (const dir of ['ingress', 'egress'] as const) {
          if ((dir === 'ingress' && r.direction === 'out') || (dir === 'egress' && r.direction === 'in')) continue;
          const own = peersSelection(dir === 'ingress' ? r.destinations : r.sources);
          // An in rule applies where the destination is one of its destinations (by IP too): IP peers that
          // could hold pod IPs of this cluster cannot become a label subject.
          const podCidr = clusterSpec.podCidr;
          if (!own.any && own.cidrs.some((c) => overlaps(c, podCidr))) throw new Refused(`${dir === 'ingress' ? 'destinations' : 'sources'} hold IP blocks overlapping the pod CIDR ${podCidr}: the rule would apply to pods by address, which a ClusterNetworkPolicy subject cannot select`);
          const subjects = intersect(applied, own.pods);
          if (subjects.length === 0) continue;
          const peers = peerList(peersSelection(dir === 'ingress' ? r.sources : r.destinations), dir, construct);
          const rule = { name: r.name!.slice(0, 100), action, [dir === 'ingress' ? 'from' : 'to']: peers, ...(protos ? { protocols: protos } : {}) };
          subjects.forEach((s, k) => out.push(cnp(`${p.name}-${r.name}-${dir}${subjects.length > 1 ? `-${k}` : ''}`, tier, priority, s, dir, rule)));
        }
        if (out.length === 0) continue;
        if (priority > 1000) throw new Refused(`more than 1001 ordered rules in tier ${tier}: ClusterNetworkPolicy priorities are 0-1000`);
        priorities[tier]++;
        manifests.push(...out);
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        refusals.push({ construct, reason: err.reason });
      }
    }
  }
  if (world.defaultAction === 'drop') {
    const construct = 'default rule: drop';
    if (!options.podsOnly) refusals.push({ construct, reason: 'the Kubernetes default allows; a Baseline deny from every source cannot match ingress from outside the cluster (ClusterNetworkPolicy ingress peers select pods only); accept that with --pods-only' });
    else if (priorities.Baseline > 1000) refusals.push({ construct, reason: 'more than 1001 ordered rules in tier Baseline' });
    else {
      manifests.push(cnp('microseg-default-deny-ingress', 'Baseline', priorities.Baseline, ALL_PODS, 'ingress', { name: 'default', action: 'Deny', from: [{ namespaces: {} }] }));
      manifests.push(cnp('microseg-default-deny-egress', 'Baseline', priorities.Baseline, ALL_PODS, 'egress', { name: 'default', action: 'Deny', to: [{ networks: ['0.0.0.0/0', '::/0'] }] }));
    }
  }
  const nps: NetworkPolicyManifest[] = world
    .names('KubernetesNetworkPolicy')
    .sort()
    .map((n) => world.get('KubernetesNetworkPolicy', n)!)
    .filter((np) => np.cluster === cluster)
    .map(networkPolicyManifest);
  manifests.push(...(nps as unknown as Record<string, unknown>[]));
  return { manifests, refusals };
}

function overlaps(a: string, b: string): boolean {
  const parse = (c: string): [number, number] | undefined => {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(c);
    if (!m) return undefined;
    const lo = ((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4]);
    const size = 2 ** (32 - Number(m[5]));
    return [lo, lo + size - 1];
  };
  const x = parse(a);
  const y = parse(b);
  return !!x && !!y && x[0] <= y[1] && y[0] <= x[1];
}
