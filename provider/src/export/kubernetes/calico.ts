import type { World } from '../../engine';
import { calicoSelector } from './calico-selector';
import { subtractCidrs } from './cidr';
import { externalIngressPolicies, nodeSources, type ExternalIngressRule } from './external-ingress';
import type { KubernetesExport, Refusal } from './flavor';
import { clusterNetworkPolicyManifests } from './networkpolicy';
import { orderedPolicyRules, type Category as AnyCategory, type RuleSpec } from './policy-rules';
import { ALL_PODS, intersect, matchesLabels, nameAllocator, overlaps, Refused, selectorsFor, type LabelSelector, type Peer, type PodSel, type Service } from './selection';

/**
 * Flavor `calico` of the export (pure): `projectcalico.org/v3` Tier, GlobalNetworkPolicy,
 * StagedGlobalNetworkPolicy, GlobalNetworkSet and (with `hostEndpoints`) HostEndpoint objects, plus the
 * cluster's NetworkPolicies.
 *
 * Layering. Calico evaluates tiers by ascending `order`; inside a tier, policies by `order`, rules in list
 * order; Allow and Deny are final, Pass leaves the tier for the next tier that has a policy applying to the
 * endpoint, and a tier that applies but matches nothing ends in its `defaultAction`. Every microseg tier has
 * defaultAction Pass, so an unmatched flow falls through as in microseg:
 *   microseg-emergency 100 → microseg-infrastructure 200 → microseg-environment 300 → microseg-application 400
 *   → (Calico's kube-admin 1000, not written here) → Calico's `default` tier 1 000 000, where Calico puts the
 *   Kubernetes NetworkPolicies (Deny at its end for the pods they select: the NP isolation) → microseg-baseline
 *   2 000 000 → microseg-default 3 000 000 (the default rule, one policy for every endpoint).
 * A `pass` in application therefore reaches the NetworkPolicies, then baseline, then the default rule, as in
 * microseg. A `pass` in emergency or infrastructure continues at application in microseg but at the next tier
 * in Calico: it is kept by repeating that pass rule first in every later tier before application (a flow
 * reaching such a tier matches one of those rules exactly when an earlier tier passed it).
 *
 * One microseg rule becomes one GlobalNetworkPolicy (per subject alternative; per direction when the
 * directions apply to different endpoints) whose `selector` / `namespaceSelector` is the rule's effective
 * appliedTo, narrowed to the local side's peers (destinations for ingress, sources for egress) when those
 * are pods only; otherwise the local side stays a rule entity, so address-based destinations stay exact.
 * Its `order` is its position in the tier (policy order, then rule order); its Calico rules cover the union
 * of its peers and services (consecutive rules with the same action keep first-match order). Pod peers use
 * `namespaceSelector` + `selector`; inline CIDRs `nets`/`notNets` (except); SecurityGroups' addresses
 * (VMs, IP blocks, egress IPs) a GlobalNetworkSet per group, selected by its label. `logged` and
 * `description` are not written (Calico's Log action logs every packet, not flows).
 *
 * Refused, with the construct and the reason: reject (Calico has no per-rule reject), peers Calico cannot
 * select (static workload members, pods of other clusters), negated pods or sets mixed with IPv6, and an
 * IPv6 block with except inside a group (a GlobalNetworkSet has no except).
 *
 * Calico admits traffic from a host to its local pods ahead of every policy (for pod health checks; the
 * Calico project's description of its iptables dataplane, projectcalico/vpp-dataplane
 * docs/policy_description.md, "Host to endpoints"): where microseg drops ingress from a node the export
 * refuses unless `podsOnly` accepts that, with the `kubernetes` flavor's check (external-ingress.ts).
 */
export interface CalicoOptions {
  readonly cluster: string;
  /**
   * Also write each VM interface as a HostEndpoint (node = the VM's name, for a Calico node running on the
   * VM as a non-cluster host; expectedIPs = the interface's address; labels = the VM's labels and
   * `microseg.io/vm`), and apply the rules whose appliedTo holds VMs to them, so the VM side is enforced by
   * Calico too. Without it the export is the pod side only and VMs appear as addresses. Calico's failsafe
   * ports stay open on host endpoints unless the node's FelixConfiguration empties them (docs/kubernetes.md).
   */
  readonly hostEndpoints?: boolean;
  /** Accept that ingress from a pod's own node is always admitted (Calico does) where microseg drops it. */
  readonly podsOnly?: boolean;
}

/** The FirewallPolicy categories (the Kubernetes layer is Calico's own `default` tier). */
type Category = Exclude<AnyCategory, 'kubernetes'>;
const API = 'projectcalico.org/v3';
const MANAGED = { 'app.kubernetes.io/managed-by': 'microseg' } as const;
/** Tier names and orders (Calico's own tiers, per Calico's tiered-policy docs: kube-admin 1,000, default 1,000,000, kube-baseline 10,000,000). */
const CALICO_TIERS: Readonly<Record<Category | 'default', { name: string; order: number }>> = {
  emergency: { name: 'microseg-emergency', order: 100 },
  infrastructure: { name: 'microseg-infrastructure', order: 200 },
  environment: { name: 'microseg-environment', order: 300 },
  application: { name: 'microseg-application', order: 400 },
  baseline: { name: 'microseg-baseline', order: 2_000_000 },
  default: { name: 'microseg-default', order: 3_000_000 },
};
const VM_LABEL = 'microseg.io/vm';
const GROUP_LABEL = 'microseg.io/network-set';
const NAMESPACE_LABEL = 'projectcalico.org/namespace';
const PROTOCOLS = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP', icmp: 'ICMP', icmpv6: 'ICMPv6' } as const;

/** A Calico EntityRule (`source` / `destination`). */
type Entity = { nets?: string[]; notNets?: string[]; selector?: string; notSelector?: string; namespaceSelector?: string; ports?: (number | string)[] };
type CalicoRule = { action: 'Allow' | 'Deny' | 'Pass'; protocol?: string; source?: Entity; destination?: Entity };
/** Where a policy applies: pods (namespaceSelector + selector) or HostEndpoints (selector only). */
type Subject = { namespaceSelector?: string; selector: string };
type Draft = { construct: string; base: string; staged: boolean; subjects: Subject[]; ingress: CalicoRule[]; egress: CalicoRule[] };

const family = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4);

export function calicoExport(world: World, options: CalicoOptions): KubernetesExport {
  const { cluster } = options;
  const refusals: Refusal[] = [];
  const manifests: Record<string, unknown>[] = [];
  const clusterSpec = world.get('KubernetesCluster', cluster);
  if (!clusterSpec) return { manifests, refusals: [{ construct: `cluster ${cluster}`, reason: 'no such KubernetesCluster' }] };
  const sel = selectorsFor(world, cluster, {
    api: 'Calico',
    // A group's IP blocks go into its GlobalNetworkSet, which has no except: exceptions are subtracted.
    blockCidrs: (cidr, except) => {
      if (!except?.length) return [cidr];
      const parts = subtractCidrs(cidr, except);
      if (!parts) throw new Refused(`IPv6 block ${cidr} with except in a group: a GlobalNetworkSet has no except, and IPv6 exceptions are not subtracted`);
      return parts;
    },
  });
  const ipv6Cluster = family(clusterSpec.podCidr) === 6;

  // GlobalNetworkSets: the addresses of each SecurityGroup a rule names, selected by their label.
  const setName = nameAllocator();
  const networkSets = new Map<string, { name: string; nets: string[] }>();
  const groupSet = (group: string, cidrs: readonly string[]): string => {
    let s = networkSets.get(group);
    if (!s) {
      s = { name: setName(`microseg-${group}`.slice(0, 63)), nets: [...new Set(cidrs)] };
      networkSets.set(group, s);
    }
    return `${GROUP_LABEL} == '${s.name}'`;
  };
  type Alt = { entity: Entity; pods?: PodSel };
  const podAlt = (p: PodSel): Alt => ({ entity: podEntity(p), pods: p });
  const podEntity = (p: PodSel): Entity => ({ namespaceSelector: calicoSelector(p.namespaceSelector), ...(calicoSelector(p.podSelector) !== 'all()' ? { selector: calicoSelector(p.podSelector) } : {}) });
  const byFamily = (cidrs: readonly string[]): Alt[] =>
    ([4, 6] as const).map((f) => cidrs.filter((c) => family(c) === f)).filter((c) => c.length).map((c) => ({ entity: { nets: [...new Set(c)] } }));

  /** The peers of a list as alternatives (their union); undefined = any peer (no constraint). */
  const alternatives = (peers: readonly Peer[] | undefined): Alt[] | undefined => {
    if (!peers?.length) return undefined;
    const out: Alt[] = [];
    for (const p of peers) {
      if (p.group !== undefined) {
        const g = sel.group(p.group);
        out.push(...g.pods.map(podAlt));
        if (g.cidrs.length) out.push({ entity: { selector: groupSet(p.group, g.cidrs) } });
      } else if (p.cidr !== undefined) {
        if (p.except?.some((e) => family(e) !== family(p.cidr!))) throw new Refused(`block ${p.cidr} has an except of the other IP family`);
        out.push({ entity: { nets: [p.cidr], ...(p.except?.length ? { notNets: [...p.except] } : {}) } });
      } else {
        const s = sel.peers([p]); // pod selectors, VMs; refuses workloads and pods of other clusters
        out.push(...s.pods.map(podAlt), ...byFamily(s.cidrs));
      }
    }
    return out;
  };
  /** The complement of a peer list as one entity; null = matches nothing (the complement of any). */
  const complement = (peers: readonly Peer[] | undefined): Entity | null => {
    const alts = alternatives(peers);
    if (!alts) return null;
    const notSelectors: string[] = [];
    const notNets: string[] = [];
    for (const { entity: a, pods } of alts) {
      if (a.nets) {
        if (a.notNets) throw new Refused('a negated IP block with except: Calico notNets has no except');
        notNets.push(...a.nets);
      } else if (pods) {
        // What namespaceSelector does inside Calico: namespace labels carry the `pcns.` prefix on pods.
        const ns = calicoSelector(pods.namespaceSelector, 'pcns.');
        const pod = calicoSelector(pods.podSelector);
        notSelectors.push(`(${[`has(${NAMESPACE_LABEL})`, ...(ns === 'all()' ? [] : [ns]), ...(pod === 'all()' ? [] : [pod])].join(' && ')})`);
      } else notSelectors.push(`(${a.selector!})`);
    }
    if (notNets.length && (ipv6Cluster || notNets.some((c) => family(c) === 6)))
      throw new Refused('negated IP addresses with IPv6: Calico notNets make a rule match one IP family only');
    return { ...(notNets.length ? { notNets: [...new Set(notNets)] } : {}), ...(notSelectors.length ? { notSelector: notSelectors.join(' || ') } : {}) };
  };

  const services = (list: readonly Service[] | undefined): { protocol?: string; ports?: (number | string)[] }[] => {
    if (!list?.length) return [{}];
    const out: { protocol?: string; ports?: (number | string)[] }[] = [];
    for (const s of list) {
      if (s.protocol === 'icmp' || s.protocol === 'icmpv6') {
        out.push({ protocol: PROTOCOLS[s.protocol] });
        continue;
      }
      if (s.protocol === 'any' && !s.ports?.length) return [{}]; // every protocol and port
      const ports = (s.ports ?? []).map((port) => {
        const m = typeof port === 'string' ? /^(\d+)-(\d+)$/.exec(port) : null;
        if (m) return m[1] === m[2] ? Number(m[1]) : `${Number(m[1])}:${Number(m[2])}`;
        return typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port;
      });
      for (const p of s.protocol === 'any' ? (['tcp', 'udp', 'sctp'] as const) : [s.protocol]) out.push({ protocol: PROTOCOLS[p], ...(ports.length ? { ports } : {}) });
    }
    return out;
  };

  /** Calico rules for one direction of a microseg rule: peers × services, in that order. */
  const calicoRules = (r: RuleSpec, action: CalicoRule['action'], subjectSide?: 'source' | 'destination'): CalicoRule[] => {
    // The side that holds the local endpoint is left out when the policy selector already narrows to it.
    const src = subjectSide === 'source' ? undefined : r.sourcesExcluded ? complement(r.sources) : alternatives(r.sources);
    const dst = subjectSide === 'destination' ? undefined : r.destinationsExcluded ? complement(r.destinations) : alternatives(r.destinations);
    if (src === null || dst === null) return []; // a negated "any": the rule matches nothing
    const srcAlts: (Entity | undefined)[] = Array.isArray(src) ? src.map((a) => a.entity) : [src];
    const dstAlts: (Entity | undefined)[] = Array.isArray(dst) ? dst.map((a) => a.entity) : [dst];
    const out: CalicoRule[] = [];
    for (const s of srcAlts)
      for (const d of dstAlts)
        for (const svc of services(r.services)) {
          const fams = new Set([...(s?.nets ?? []), ...(s?.notNets ?? []), ...(d?.nets ?? []), ...(d?.notNets ?? [])].map(family));
          if (svc.protocol === 'ICMP') fams.add(4);
          if (svc.protocol === 'ICMPv6') fams.add(6);
          if (fams.size > 1) continue; // an IPv4 source and an IPv6 destination: no packet matches
          const destination = { ...(d ?? {}), ...(svc.ports ? { ports: svc.ports } : {}) };
          out.push({
            action,
            ...(svc.protocol ? { protocol: svc.protocol } : {}),
            ...(s && Object.keys(s).length ? { source: s } : {}),
            ...(Object.keys(destination).length ? { destination } : {}),
          });
        }
    return out;
  };

  // VMs an appliedTo covers (only with hostEndpoints): names, through nested groups.
  const vmNames = (groups: readonly string[] | undefined, quarantine?: LabelSelector): string[] => {
    if (!options.hostEndpoints) return [];
    const all = world.names('VirtualMachine').sort();
    if (quarantine) return all.filter((n) => matchesLabels(quarantine, world.get('VirtualMachine', n)!.labels ?? {}));
    if (!groups?.length) return all;
    const out = new Set<string>();
    const visit = (g: string, seen: Set<string>): void => {
      const spec = world.get('SecurityGroup', g);
      if (!spec || seen.has(g)) return;
      seen.add(g);
      for (const s of spec.vmSelectors ?? []) for (const n of all) if (matchesLabels(s, world.get('VirtualMachine', n)!.labels ?? {})) out.add(n);
      for (const v of spec.vms ?? []) if (world.get('VirtualMachine', v)) out.add(v);
      for (const c of spec.groups ?? []) visit(c, seen);
    };
    for (const g of groups) visit(g, new Set());
    return [...out].sort();
  };
  const vmSubject = (names: readonly string[]): Subject[] => (names.length ? [{ selector: names.length === 1 ? `${VM_LABEL} == '${names[0]}'` : `${VM_LABEL} in {${names.map((n) => `'${n}'`).join(', ')}}` }] : []);
  const podSubject = (p: PodSel): Subject => ({ namespaceSelector: calicoSelector(p.namespaceSelector), selector: calicoSelector(p.podSelector) });

  // Drafts per tier, in evaluation order; pass rules of emergency/infrastructure kept for the later tiers.
  const drafts = new Map<Category, Draft[]>();
  // Ingress rules in evaluation order with the node addresses their sources match, for the node check;
  // rules that apply to pods by address (their pods are no label selector) make the check impossible.
  const nodeIps = clusterSpec.nodes.map((n) => n.ip);
  const nodeRules: ExternalIngressRule[] = [];
  const byAddress: string[] = [];
  const passCopies: { from: Category; draft: Draft }[] = [];
  for (const p of orderedPolicyRules(world)) {
    if (p.category === 'kubernetes') continue; // NetworkPolicies are exported as they are, below
    const policyPods: PodSel[] = p.quarantine ? [{ namespaceSelector: {}, podSelector: p.quarantineSelector ?? {} }] : sel.appliedTo(p.appliedTo);
    const policyVms = vmNames(p.appliedTo, p.quarantine ? ((p.quarantineSelector as LabelSelector | undefined) ?? {}) : undefined);
    for (const r of p.rules) {
      if (r.disabled) continue;
      const construct = `${p.quarantine ? 'QuarantinePolicy' : 'FirewallPolicy'} ${p.name}/${r.name}`;
      try {
        if (r.action === 'reject') throw new Refused('action reject: Calico rule actions are Allow, Deny, Pass and Log (Deny drops silently; a TCP reset or ICMP unreachable has no per-rule form)');
        const action = r.action === 'allow' ? 'Allow' : r.action === 'drop' ? 'Deny' : 'Pass';
        const ruleVms = new Set(vmNames(r.appliedTo));
        const appliedPods = intersect(policyPods, sel.appliedTo(r.appliedTo));
        const appliedVms = policyVms.filter((n) => ruleVms.has(n));
        // Per direction, the endpoints the rule is enforced at: its appliedTo, narrowed to the local side's
        // peers (destinations for ingress, sources for egress) when those are pods only, as a Calico user
        // writes it; otherwise the local side stays a rule entity (addresses may name pods too).
        const parts: { dir: 'ingress' | 'egress'; subjects: Subject[]; rules: CalicoRule[] }[] = [];
        for (const dir of ['ingress', 'egress'] as const) {
          if (r.direction === (dir === 'ingress' ? 'out' : 'in')) continue;
          const local = dir === 'ingress' ? r.destinations : r.sources;
          const localAlts = (dir === 'ingress' ? r.destinationsExcluded : r.sourcesExcluded) ? undefined : alternatives(local);
          const podsOnly = localAlts !== undefined && localAlts.every((a) => a.pods !== undefined);
          const subjects = podsOnly ? intersect(appliedPods, localAlts.map((a) => a.pods!)).map(podSubject) : [...appliedPods.map(podSubject), ...vmSubject(appliedVms)];
          const rules = calicoRules(r, action, podsOnly ? (dir === 'ingress' ? 'destination' : 'source') : undefined);
          if (subjects.length && rules.length) parts.push({ dir, subjects, rules }); // else: applies to nothing / matches nothing
        }
        if (!p.staged && r.direction !== 'out') {
          const local = sel.peers(r.destinations);
          const pods = r.destinationsExcluded ? (local.any ? [] : appliedPods) : local.any ? appliedPods : intersect(appliedPods, local.pods);
          if ((r.destinationsExcluded && !local.any && local.pods.length) || (!local.any && local.cidrs.some((c) => overlaps(c, clusterSpec.podCidr)))) byAddress.push(construct);
          const cidrs = nodeSources(sel.peers(r.sources), r.sourcesExcluded, nodeIps);
          if (pods.length && cidrs.length) nodeRules.push({ construct, category: p.category, action: r.action, subjects: pods, cidrs, services: r.services });
        }
        const same = parts.length === 2 && JSON.stringify(parts[0]!.subjects) === JSON.stringify(parts[1]!.subjects);
        const group = same ? [parts] : parts.map((x) => [x]);
        for (const g of group) {
          const draft: Draft = {
            construct,
            base: `${p.name}-${r.name}${group.length > 1 ? `-${g[0]!.dir}` : ''}`,
            staged: p.staged,
            subjects: g[0]!.subjects,
            ingress: g.find((x) => x.dir === 'ingress')?.rules ?? [],
            egress: g.find((x) => x.dir === 'egress')?.rules ?? [],
          };
          drafts.set(p.category as Category, [...(drafts.get(p.category as Category) ?? []), draft]);
          if (action === 'Pass' && !p.staged && (p.category === 'emergency' || p.category === 'infrastructure')) passCopies.push({ from: p.category, draft });
        }
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        refusals.push({ construct, reason: err.reason });
      }
    }
  }

  const policyName = nameAllocator();
  const policies: Record<string, unknown>[] = [];
  const usedTiers = new Set<Category | 'default'>();
  const emit = (category: Category | 'default', order: number, d: Draft, prefix = ''): void => {
    const tier = CALICO_TIERS[category];
    usedTiers.add(category);
    d.subjects.forEach((s, k) => {
      const local = `${prefix}${d.base}${d.subjects.length > 1 ? `-${k}` : ''}`.toLowerCase().replace(/\./g, '-');
      const types = [...(d.ingress.length ? ['Ingress'] : []), ...(d.egress.length ? ['Egress'] : [])];
      policies.push({
        apiVersion: API,
        kind: d.staged ? 'StagedGlobalNetworkPolicy' : 'GlobalNetworkPolicy',
        metadata: { name: policyName(`${tier.name}.${local.replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '')}`), labels: { ...MANAGED }, annotations: { 'microseg.io/rule': d.construct } },
        spec: {
          tier: tier.name,
          order,
          ...(s.namespaceSelector !== undefined ? { namespaceSelector: s.namespaceSelector } : {}),
          selector: s.selector,
          types,
          ...(d.ingress.length ? { ingress: d.ingress } : {}),
          ...(d.egress.length ? { egress: d.egress } : {}),
        },
      });
    });
  };
  const categories: Category[] = ['emergency', 'infrastructure', 'environment', 'application', 'baseline'];
  for (const c of categories) {
    const own = drafts.get(c) ?? [];
    let order = 0;
    // A pass before application continues at application in microseg: repeat it first in the later tiers.
    const rank = categories.indexOf(c);
    if (c !== 'application' && c !== 'baseline' && own.some((d) => !d.staged))
      for (const copy of passCopies.filter((x) => categories.indexOf(x.from) < rank)) emit(c, ++order, copy.draft, `pass-from-${copy.from}-`);
    for (const d of own) emit(c, ++order, d);
  }
  // The default rule: the last tier's only policy, for every pod (and every HostEndpoint written).
  const defaultAction = world.defaultAction === 'allow' ? 'Allow' : 'Deny';
  const vmAll = vmNames(undefined);
  emit('default', 1, {
    construct: `default rule: ${world.defaultAction}`,
    base: 'default-rule',
    staged: false,
    subjects: [podSubject(ALL_PODS), ...(vmAll.length ? [{ selector: `has(${VM_LABEL})` }] : [])],
    ingress: [{ action: defaultAction }],
    egress: [{ action: defaultAction }],
  });

  for (const c of [...categories, 'default'] as const)
    if (usedTiers.has(c)) manifests.push({ apiVersion: API, kind: 'Tier', metadata: { name: CALICO_TIERS[c].name, labels: { ...MANAGED } }, spec: { order: CALICO_TIERS[c].order, defaultAction: 'Pass' } });
  for (const s of networkSets.values()) manifests.push({ apiVersion: API, kind: 'GlobalNetworkSet', metadata: { name: s.name, labels: { ...MANAGED, [GROUP_LABEL]: s.name } }, spec: { nets: s.nets } });
  for (const n of vmAll) {
    const vm = world.get('VirtualMachine', n)!;
    vm.interfaces.forEach((i, k) =>
      manifests.push({
        apiVersion: API,
        kind: 'HostEndpoint',
        metadata: { name: setName(`microseg-vm-${n}${vm.interfaces.length > 1 ? `-${k}` : ''}`), labels: { ...(vm.labels ?? {}), ...MANAGED, [VM_LABEL]: n } },
        spec: { node: n, expectedIPs: [i.ip] },
      }),
    );
  }
  manifests.push(...policies);
  manifests.push(...(clusterNetworkPolicyManifests(world, cluster) as unknown as Record<string, unknown>[]));
  if (!options.podsOnly) {
    const nodeAdmission = "Calico admits traffic from a host to its local pods (kubelet probes, host-network pods) ahead of every policy";
    if (byAddress.length)
      refusals.push({ construct: `ingress from the nodes of cluster ${cluster}`, reason: `${nodeAdmission}, and ${byAddress.slice(0, 3).join(', ')} apply to pods by address, so where microseg drops it cannot be checked; accept that with --pods-only` });
    else refusals.push(...externalIngressPolicies(world, { cluster, rules: nodeRules, podBaseline: [], podsOnly: false, nodesOnly: true, nodeAdmission }).refusals);
  }
  return { manifests, refusals };
}
