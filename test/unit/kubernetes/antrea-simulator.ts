import * as ipaddr from 'ipaddr.js';

/**
 * A small evaluator of exported Antrea objects, written from Antrea's documentation
 * (docs/antrea-network-policy.md at v2.7.0) and the Kubernetes NetworkPolicy API, for the differential
 * test of flavor `antrea`: it answers, for one pod and one direction, what the exported objects decide.
 *
 * Order: the ClusterNetworkPolicies of the tiers before the NetworkPolicies (emergency, securityops,
 * networkops, platform, application), by priority, rules in order; Allow, Drop and Reject decide, Pass
 * leaves them all for the NetworkPolicies; then the NetworkPolicies (a pod a policy selects for the
 * direction is allowed by a matching rule of one of them, else dropped); then the baseline tier; then allow.
 * It covers what the exporter writes (appliedTo and peers by selectors, ClusterGroups, ipBlock with except,
 * ports with endPort and named ports, icmp), not the rest of Antrea. Ingress from the pod's own node
 * (kubelet probes, host-network pods) is allowed ahead of every policy, as Antrea does.
 */

export type Labels = Readonly<Record<string, string>>;
type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
type Obj = Record<string, unknown>;

export interface SimPod {
  readonly namespace: string;
  readonly labels: Labels;
  readonly ip: string;
  readonly namedPorts: ReadonlyMap<string, { port: number; protocol: string }>;
}
/** The other end of a flow: a pod of the cluster (known by labels), an address, or the pod's own node (by its address). */
export type SimPeer = { readonly pod: SimPod } | { readonly ip: string; readonly ownNode?: true };
export interface SimFlow {
  readonly protocol: 'tcp' | 'udp' | 'sctp' | 'icmp';
  readonly port?: number;
  readonly icmpType?: number;
}

const TIERS = ['emergency', 'securityops', 'networkops', 'platform', 'application'];

function selects(sel: Selector | undefined, labels: Labels): boolean {
  if (!sel) return true;
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

function inBlock(b: { cidr: string; except?: string[] }, ip: string): boolean {
  const a = ipaddr.parse(ip);
  const within = (c: string): boolean => {
    const [net, bits] = ipaddr.parseCIDR(c);
    return net.kind() === a.kind() && a.match([net, bits]);
  };
  return within(b.cidr) && !(b.except ?? []).some(within);
}

export class AntreaSimulator {
  private readonly groups = new Map<string, Obj>();
  private readonly tiered: Obj[];
  private readonly baseline: Obj[];
  private readonly nps: Obj[];

  constructor(
    manifests: readonly Obj[],
    private readonly namespaces: ReadonlyMap<string, Labels>,
  ) {
    for (const m of manifests) if (m.kind === 'ClusterGroup') this.groups.set((m.metadata as { name: string }).name, m.spec as Obj);
    const acnps = manifests.filter((m) => m.kind === 'ClusterNetworkPolicy').map((m) => m.spec as Obj);
    const order = (a: Obj, b: Obj) => TIERS.indexOf(a.tier as string) - TIERS.indexOf(b.tier as string) || (a.priority as number) - (b.priority as number);
    this.tiered = acnps.filter((s) => s.tier !== 'baseline').sort(order);
    this.baseline = acnps.filter((s) => s.tier === 'baseline').sort(order);
    this.nps = manifests.filter((m) => m.kind === 'NetworkPolicy');
  }

  private nsLabels(ns: string): Labels {
    return { ...(this.namespaces.get(ns) ?? {}), 'kubernetes.io/metadata.name': ns };
  }

  /** podSelector alone: every namespace; namespaceSelector alone: every pod of those namespaces. */
  private selectorPeer(p: Obj, pod: SimPod): boolean {
    return selects(p.podSelector as Selector | undefined, pod.labels) && selects(p.namespaceSelector as Selector | undefined, this.nsLabels(pod.namespace));
  }

  private inGroup(name: string, peer: SimPeer): boolean {
    const g = this.groups.get(name);
    if (!g) throw new Error(`ClusterGroup ${name} is not exported`);
    if (g.childGroups) return (g.childGroups as string[]).some((c) => this.inGroup(c, peer));
    if (g.ipBlocks) return (g.ipBlocks as { cidr: string; except?: string[] }[]).some((b) => inBlock(b, 'pod' in peer ? peer.pod.ip : peer.ip));
    if (g.podSelector || g.namespaceSelector) return 'pod' in peer && this.selectorPeer(g, peer.pod);
    return false;
  }

  private peerMatches(p: Obj, peer: SimPeer): boolean {
    if (p.group !== undefined) return this.inGroup(p.group as string, peer);
    if (p.ipBlock) return inBlock(p.ipBlock as { cidr: string; except?: string[] }, 'pod' in peer ? peer.pod.ip : peer.ip);
    return 'pod' in peer && this.selectorPeer(p, peer.pod);
  }

  /** Antrea ports/protocols of a rule; a named port is looked up on the destination pod. */
  private servicesMatch(rule: Obj, flow: SimFlow, destination: SimPod | undefined): boolean {
    const ports = rule.ports as { protocol?: string; port?: number | string; endPort?: number }[] | undefined;
    const protocols = rule.protocols as { icmp?: { icmpType?: number; icmpCode?: number } }[] | undefined;
    if (!ports && !protocols) return true;
    if (flow.protocol === 'icmp') return (protocols ?? []).some((p) => p.icmp && (p.icmp.icmpType === undefined || p.icmp.icmpType === flow.icmpType));
    return (ports ?? []).some((p) => {
      if ((p.protocol ?? 'TCP').toLowerCase() !== flow.protocol) return false;
      if (p.port === undefined) return true;
      if (typeof p.port === 'string') {
        const named = destination?.namedPorts.get(p.port);
        return !!named && named.protocol === flow.protocol && named.port === flow.port;
      }
      return flow.port !== undefined && flow.port >= p.port && flow.port <= (p.endPort ?? p.port);
    });
  }

  private firstMatch(policies: readonly Obj[], at: SimPod, dir: 'ingress' | 'egress', peer: SimPeer, flow: SimFlow): string | undefined {
    const destination = dir === 'ingress' ? at : 'pod' in peer ? peer.pod : undefined;
    for (const spec of policies)
      for (const rule of (spec[dir] as Obj[] | undefined) ?? []) {
        const appliedTo = (rule.appliedTo ?? spec.appliedTo) as Obj[];
        if (!appliedTo.some((a) => this.peerMatches(a, { pod: at }))) continue;
        const peers = rule[dir === 'ingress' ? 'from' : 'to'] as Obj[] | undefined;
        if (peers && !peers.some((p) => this.peerMatches(p, peer))) continue;
        if (!this.servicesMatch(rule, flow, destination)) continue;
        return rule.action as string;
      }
    return undefined;
  }

  /** Kubernetes NetworkPolicy semantics for the policies of the pod's namespace (undefined: not isolated). */
  private networkPolicies(at: SimPod, dir: 'ingress' | 'egress', peer: SimPeer, flow: SimFlow): string | undefined {
    const type = dir === 'ingress' ? 'Ingress' : 'Egress';
    const selecting = this.nps.filter((np) => {
      const meta = np.metadata as { namespace: string };
      const spec = np.spec as { podSelector: Selector; policyTypes?: string[]; egress?: unknown[] };
      const types = spec.policyTypes ?? ['Ingress', ...(spec.egress?.length ? ['Egress'] : [])];
      return meta.namespace === at.namespace && types.includes(type) && selects(spec.podSelector, at.labels);
    });
    if (!selecting.length) return undefined;
    const destination = dir === 'ingress' ? at : 'pod' in peer ? peer.pod : undefined;
    for (const np of selecting) {
      const ns = (np.metadata as { namespace: string }).namespace;
      for (const rule of ((np.spec as Obj)[dir] as Obj[] | undefined) ?? []) {
        const peers = rule[dir === 'ingress' ? 'from' : 'to'] as Obj[] | undefined;
        const peerOk =
          !peers?.length ||
          peers.some((p) => {
            if (p.ipBlock) return inBlock(p.ipBlock as { cidr: string; except?: string[] }, 'pod' in peer ? peer.pod.ip : peer.ip);
            if (!('pod' in peer)) return false;
            const nsOk = p.namespaceSelector ? selects(p.namespaceSelector as Selector, this.nsLabels(peer.pod.namespace)) : peer.pod.namespace === ns;
            return nsOk && selects(p.podSelector as Selector | undefined, peer.pod.labels);
          });
        const ports = rule.ports as { protocol?: string; port?: number | string; endPort?: number }[] | undefined;
        const portOk = !ports?.length || this.servicesMatch({ ports: ports.map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port, endPort: p.endPort })) }, flow, destination);
        if (peerOk && portOk) return 'Allow';
      }
    }
    return 'Drop';
  }

  /** What the exported objects decide for `at` in one direction: Allow, Drop or Reject. */
  decide(at: SimPod, dir: 'ingress' | 'egress', peer: SimPeer, flow: SimFlow): string {
    if (dir === 'ingress' && 'ownNode' in peer && peer.ownNode) return 'Allow'; // before every tier and NetworkPolicy
    const tiered = this.firstMatch(this.tiered, at, dir, peer, flow);
    if (tiered && tiered !== 'Pass') return tiered;
    const np = this.networkPolicies(at, dir, peer, flow);
    if (np) return np;
    return this.firstMatch(this.baseline, at, dir, peer, flow) ?? 'Allow';
  }
}
