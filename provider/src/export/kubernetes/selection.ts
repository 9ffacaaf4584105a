import type { World } from '../../engine';
import type { SpecOf } from '../../model';
import { subtractCidrs } from './cidr';

/**
 * Flavor-neutral resolution of microseg peers and appliedTo into what a Kubernetes policy API can select:
 * pods by (namespace selector, pod selector), and IP CIDRs (VMs, IP blocks, egress IPs, as the pods' CNI
 * sees them). Constructs no flavor can select (static workload members, pods of another cluster) are
 * refused with the construct and the reason; each flavor adds its own refusals on top.
 */
export type LabelSelector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };

/** A set of pods of the cluster as label selectors select them. */
export interface PodSel {
  readonly namespaceSelector: LabelSelector;
  readonly podSelector: LabelSelector;
}

/** What a peer list selects: pods (union of selectors), IP CIDRs, and whether it is everything. */
export interface Selection {
  readonly any: boolean;
  readonly pods: PodSel[];
  readonly cidrs: string[];
}

export type Peer = NonNullable<SpecOf['FirewallRule']['sources']>[number];
export type Service = NonNullable<SpecOf['FirewallRule']['services']>[number];

export const ALL_PODS: PodSel = { namespaceSelector: {}, podSelector: {} };
/** The label every namespace carries with its own name (set by the apiserver). */
export const NAME_LABEL = 'kubernetes.io/metadata.name';

/** A construct the target flavor cannot express without changing a verdict. */
export class Refused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The conjunction of two label selectors; undefined when it selects nothing. */
export function andSelectors(a: LabelSelector, b: LabelSelector): LabelSelector | undefined {
  const matchLabels = { ...(a.matchLabels ?? {}) };
  for (const [k, v] of Object.entries(b.matchLabels ?? {})) {
    if (matchLabels[k] !== undefined && matchLabels[k] !== v) return undefined; // selects nothing
    matchLabels[k] = v;
  }
  const matchExpressions = [...(a.matchExpressions ?? []), ...(b.matchExpressions ?? [])];
  return { ...(Object.keys(matchLabels).length ? { matchLabels } : {}), ...(matchExpressions.length ? { matchExpressions } : {}) };
}

/** Pairwise intersection of two unions of pod sets. */
export function intersect(a: readonly PodSel[], b: readonly PodSel[]): PodSel[] {
  const out: PodSel[] = [];
  for (const x of a)
    for (const y of b) {
      const ns = andSelectors(x.namespaceSelector, y.namespaceSelector);
      const pod = andSelectors(x.podSelector, y.podSelector);
      if (ns && pod) out.push({ namespaceSelector: ns, podSelector: pod });
    }
  return out;
}

export function isEmptySelector(s: LabelSelector): boolean {
  return Object.keys(s).length === 0;
}

export function matchesLabels(sel: LabelSelector, labels: Record<string, string>): boolean {
  return (
    Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (sel.matchExpressions ?? []).every((e) => {
      const has = Object.prototype.hasOwnProperty.call(labels, e.key);
      if (e.operator === 'In') return has && (e.values ?? []).includes(labels[e.key]!);
      if (e.operator === 'NotIn') return !has || !(e.values ?? []).includes(labels[e.key]!);
      if (e.operator === 'Exists') return has;
      return !has;
    })
  );
}

/** A host CIDR of one address. */
export function hostCidr(ip: string): string {
  return ip.includes(':') ? `${ip}/128` : `${ip}/32`;
}

/** Whether two IPv4 CIDRs overlap (false when either is not IPv4). */
export function overlaps(a: string, b: string): boolean {
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

export interface SelectorOptions {
  /** The API named in refusals, e.g. `ClusterNetworkPolicy`. */
  readonly api: string;
  /**
   * How an IP block with `except` becomes CIDRs. Default: subtract the exceptions (IPv4 only; IPv6 is
   * refused), for APIs without an `except`. Flavors with their own except/notNets pass `(cidr) => [cidr]`
   * and read the exceptions from the peer themselves.
   */
  readonly blockCidrs?: (cidr: string, except: readonly string[] | undefined) => string[];
}

export interface Selectors {
  /** Pods of the cluster a pod selector (with optional cluster, namespaces, namespaceSelector) selects. */
  podSelOf(s: { cluster?: string; namespaces?: string[]; namespaceSelector?: LabelSelector; podSelector?: LabelSelector }): PodSel | undefined;
  /** Host CIDRs of the interfaces of the VMs the predicate keeps. */
  vmCidrs(pred: (vm: SpecOf['VirtualMachine'], name: string) => boolean): string[];
  /** What a SecurityGroup (with its nested groups) selects. */
  group(name: string): Selection;
  /** What a rule's sources or destinations select; an empty list is everything. */
  peers(peers: readonly Peer[] | undefined): Selection;
  /** Pods of the cluster an appliedTo list covers; an empty list is every pod. */
  appliedTo(groups: readonly string[] | undefined): PodSel[];
}

export function selectorsFor(world: World, cluster: string, options: SelectorOptions): Selectors {
  const { api } = options;
  const blockCidrs =
    options.blockCidrs ??
    ((cidr: string, except: readonly string[] | undefined): string[] => {
      if (!except?.length) return [cidr];
      const parts = subtractCidrs(cidr, except);
      if (!parts) throw new Refused(`IPv6 block ${cidr} with except: ${api} networks have no except`);
      return parts;
    });
  const podSelOf: Selectors['podSelOf'] = (s) => {
    if (s.cluster !== undefined && s.cluster !== cluster) return undefined; // selects no pod of this cluster
    let ns: LabelSelector = s.namespaceSelector ?? {};
    if (s.namespaces) ns = andSelectors(ns, { matchExpressions: [{ key: NAME_LABEL, operator: 'In', values: [...s.namespaces].sort() }] }) ?? ns;
    return { namespaceSelector: ns, podSelector: s.podSelector ?? {} };
  };
  const vmCidrs: Selectors['vmCidrs'] = (pred) =>
    world.names('VirtualMachine').flatMap((n) => {
      const vm = world.get('VirtualMachine', n)!;
      return pred(vm, n) ? vm.interfaces.map((i) => hostCidr(i.ip)) : [];
    });
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
      if (typeof ip === 'string' && ip) out.cidrs.push(hostCidr(ip));
    }
    if (g.workloads?.length) throw new Refused(`group ${name} has static workload members: ${api} selects pods by labels only`);
    for (const c of g.groups ?? []) {
      const s = groupSelection(c, seen);
      out.pods.push(...s.pods);
      out.cidrs.push(...s.cidrs);
    }
    return out;
  };
  const peers: Selectors['peers'] = (list) => {
    if (!list?.length) return { any: true, pods: [ALL_PODS], cidrs: ['0.0.0.0/0', '::/0'] };
    const out: Selection = { any: false, pods: [], cidrs: [] };
    for (const p of list) {
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
      else if (p.workload !== undefined) throw new Refused(`peer workload ${p.workload}: ${api} selects pods by labels only`);
      else s = { any: false, pods: [], cidrs: blockCidrs(p.cidr!, p.except) };
      out.pods.push(...s.pods);
      out.cidrs.push(...s.cidrs);
    }
    return out;
  };
  const appliedTo: Selectors['appliedTo'] = (groups) => (groups?.length ? groups.flatMap((g) => groupSelection(g, new Set()).pods) : [ALL_PODS]);
  return { podSelOf, vmCidrs, group: (name) => groupSelection(name, new Set()), peers, appliedTo };
}

/** Kubernetes object names: lower-case DNS subdomains, unique within one export. */
export function nameAllocator(): (base: string) => string {
  const names = new Set<string>();
  return (base) => {
    let n = base.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '').slice(0, 240) || 'microseg';
    for (let i = 2; names.has(n); i++) n = `${n.replace(/-\d+$/, '')}-${i}`;
    names.add(n);
    return n;
  };
}
