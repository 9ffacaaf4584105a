import type { SpecOf } from '../model';
import { ipBlockContains, type Ip, type IpBlockMatcher } from './ip';
import type { Atom, Endpoint, Membership } from './membership';
import { compileBlock, KUBERNETES_RANK, type Addr, type CompiledPolicy, type CompiledRule, type FlowService } from './rules';

/**
 * The Kubernetes NetworkPolicy layer (networking.k8s.io/v1), evaluated per side after the application
 * category for pods a policy selects (product.md, "Kubernetes layer"). Semantics, from the API reference
 * (k8s.io/api networking/v1 types.go):
 * - a pod is isolated for ingress (egress) iff a policy of its namespace selects it and has that policy
 *   type; an isolated pod admits exactly the union of the selecting policies' rules (no order, no deny);
 * - policyTypes absent: Ingress, plus Egress when the policy has an egress rule;
 * - a peer with podSelector alone selects pods of the policy's namespace, namespaceSelector alone every
 *   pod of the selected namespaces, both together the pods matching both (AND); peers of a list are ORed;
 *   ipBlock is a CIDR minus its exceptions; an empty or absent peer list is every peer;
 * - a port's protocol defaults to TCP; a named port is resolved on the destination pod; endPort is
 *   inclusive; an empty or absent port list is every port and protocol;
 * - traffic from the node a pod runs on is always admitted (types.go: "traffic from the node where a Pod
 *   is running is always allowed").
 * Peers are compiled to membership atoms (scoped to the policy's cluster), so label and namespace changes
 * reach them through the same incremental membership as SecurityGroups.
 */

type NetworkPolicySpec = SpecOf['KubernetesNetworkPolicy'];

/** One compiled peer: pods of an atom, or an IP block. */
export interface NpPeer {
  readonly atom?: Atom;
  readonly block?: IpBlockMatcher;
}

/** One compiled port entry: protocol and an inclusive range, or a named port of the destination pod. */
export interface NpPort {
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly lo: number;
  readonly hi: number;
  readonly named?: string;
}

export interface NpRule {
  /** Undefined: every peer. */
  readonly peers: readonly NpPeer[] | undefined;
  /** Undefined: every port and protocol. */
  readonly ports: readonly NpPort[] | undefined;
  /** The decision traceflow reports when this rule admits a flow. */
  readonly decision: CompiledRule;
}

export interface NpDirection {
  readonly rules: readonly NpRule[];
  /** Reported when the pod is isolated and no rule of any selecting policy admits the flow. */
  readonly isolated: CompiledRule;
  /** Reported for ingress from the pod's own node (always admitted). */
  readonly fromNode: CompiledRule;
}

export interface CompiledNetworkPolicy {
  /** Identity `cluster/namespace/name`: the name traceflow reports. */
  readonly key: string;
  readonly cluster: string;
  readonly namespace: string;
  /** The pods the policy selects. */
  readonly subject: Atom;
  /** Undefined when the policy does not isolate that direction. */
  readonly ingress: NpDirection | undefined;
  readonly egress: NpDirection | undefined;
}

/**
 * The directions a policy isolates. policyTypes absent or empty: Ingress, plus Egress when the policy has
 * at least one egress rule — the apiserver's defaulting (SetDefaults_NetworkPolicy tests
 * `len(spec.Egress) != 0`), so `egress: []` alone does not isolate egress.
 */
export function policyTypesOf(spec: Pick<NetworkPolicySpec, 'policyTypes' | 'egress'>): { ingress: boolean; egress: boolean } {
  if (spec.policyTypes?.length) return { ingress: spec.policyTypes.includes('Ingress'), egress: spec.policyTypes.includes('Egress') };
  return { ingress: true, egress: (spec.egress?.length ?? 0) > 0 };
}

type PeerSpec = NonNullable<NonNullable<NetworkPolicySpec['ingress']>[number]['from']>[number];
type PortSpec = NonNullable<NonNullable<NetworkPolicySpec['ingress']>[number]['ports']>[number];

function compilePeer(m: Membership, np: NetworkPolicySpec, p: PeerSpec): NpPeer {
  if (p.ipBlock) return { block: compileBlock(p.ipBlock.cidr, p.ipBlock.except) ?? { cidr: { v: 4, lo: 1, hi: 0, s: 'invalid' }, except: [] } };
  if (p.namespaceSelector) return { atom: m.podSelectorAtom({ cluster: np.cluster, namespaceSelector: p.namespaceSelector, podSelector: p.podSelector }) };
  // podSelector alone (validation refuses an empty peer): pods of the policy's own namespace.
  return { atom: m.podSelectorAtom({ cluster: np.cluster, namespaces: [np.namespace], podSelector: p.podSelector }) };
}

function compilePort(p: PortSpec): NpPort {
  const protocol = p.protocol.toLowerCase() as NpPort['protocol'];
  if (p.port === undefined) return { protocol, lo: 0, hi: 65535 };
  if (typeof p.port === 'number') return { protocol, lo: p.port, hi: p.endPort ?? p.port };
  if (/^\d+$/.test(p.port)) return { protocol, lo: Number(p.port), hi: p.endPort ?? Number(p.port) };
  return { protocol, lo: 1, hi: 0, named: p.port };
}

function pseudoPolicy(key: string): CompiledPolicy {
  return { name: key, category: 'kubernetes', catRank: KUBERNETES_RANK, priority: 0, staged: false, quarantine: false, rank: -1, rules: [], deps: new Set() };
}

function decisionRule(policy: CompiledPolicy, index: number, name: string, action: 'allow' | 'drop', dir: 'in' | 'out'): CompiledRule {
  return { policy, index, name, action, dirIn: dir === 'in', dirOut: dir === 'out', disabled: false, logged: false, appliedTo: [], src: undefined, srcNegated: false, dst: undefined, dstNegated: false, services: undefined };
}

/** Compiles one NetworkPolicy; `key` is its identity. */
export function compileNetworkPolicy(m: Membership, key: string, np: NetworkPolicySpec): CompiledNetworkPolicy {
  const policy = pseudoPolicy(key);
  const types = policyTypesOf(np);
  const direction = (dir: 'in' | 'out'): NpDirection => {
    const specs = dir === 'in' ? (np.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })) : (np.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
    const label = dir === 'in' ? 'ingress' : 'egress';
    return {
      rules: specs.map((r, i) => ({
        peers: r.peers?.length ? r.peers.map((p) => compilePeer(m, np, p)) : undefined,
        ports: r.ports?.length ? r.ports.map(compilePort) : undefined,
        decision: decisionRule(policy, i, `${label}[${i}]`, 'allow', dir),
      })),
      isolated: decisionRule(policy, -1, `${label}-isolation`, 'drop', dir),
      fromNode: decisionRule(policy, -1, 'from-node', 'allow', dir),
    };
  };
  return {
    key,
    cluster: np.cluster,
    namespace: np.namespace,
    subject: m.podSelectorAtom({ cluster: np.cluster, namespaces: [np.namespace], podSelector: np.podSelector }),
    ingress: types.ingress ? direction('in') : undefined,
    egress: types.egress ? direction('out') : undefined,
  };
}

function peerMatches(p: NpPeer, a: Addr): boolean {
  if (p.atom) return a.ep !== undefined && p.atom.members.has(a.ep.id);
  return p.block !== undefined && ipBlockContains(p.block, a.ip);
}

function portMatches(p: NpPort, f: FlowService, dst: Endpoint | undefined): boolean {
  if (f.protocol !== p.protocol || f.port === undefined) return false;
  if (p.named === undefined) return f.port >= p.lo && f.port <= p.hi;
  const np = dst?.namedPorts?.get(p.named);
  return np !== undefined && np.protocol === p.protocol && np.port === f.port;
}

function ruleAdmits(r: NpRule, peer: Addr, f: FlowService, dst: Endpoint | undefined): boolean {
  if (r.ports && !r.ports.some((p) => portMatches(p, f, dst))) return false;
  if (r.peers && !r.peers.some((p) => peerMatches(p, peer))) return false;
  return true;
}

/**
 * The NetworkPolicy layer's decision at one side: `policies` are those selecting the enforcing pod that
 * isolate direction `dir`, ordered by identity (non-empty: the caller skips the layer otherwise). Returns
 * the first admitting rule (policies by identity, rules in order: the union needs no order, but a stable
 * one makes traceflow reproducible), the node exception, or the isolation drop.
 */
export function decideNetworkPolicies(policies: readonly CompiledNetworkPolicy[], dir: 'in' | 'out', src: Addr, dst: Addr, f: FlowService, nodeIp: Ip | undefined): CompiledRule {
  const peer = dir === 'in' ? src : dst;
  for (const np of policies) {
    const d = dir === 'in' ? np.ingress! : np.egress!;
    for (const r of d.rules) if (ruleAdmits(r, peer, f, dst.ep)) return r.decision;
  }
  const first = dir === 'in' ? policies[0]!.ingress! : policies[0]!.egress!;
  if (dir === 'in' && nodeIp !== undefined && nodeIp.v === src.ip.v && nodeIp.n === src.ip.n) return first.fromNode;
  return first.isolated;
}
