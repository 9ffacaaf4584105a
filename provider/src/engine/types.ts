import type { SpecOf } from '../model';
import type { AddressPool } from './allocate';
import type { Cidr, Ip, IpBlockMatcher } from './ip';
import type { Labels } from './selector';

/**
 * The engine's internal types, in a leaf module (it imports only types of leaf modules): membership,
 * rule compilation, rule indexes, the world's parts and traceflow all speak them, so none of those modules
 * has to import another just for a type (that is how membership.ts and rules.ts, and traceflow.ts and
 * world.ts, used to import each other).
 */

/**
 * The layers of a side, in evaluation order. `kubernetes` is the NetworkPolicy layer (engine/netpol.ts):
 * no FirewallPolicy is in it, it only names the decisions NetworkPolicies make.
 */
export type Category = 'emergency' | 'infrastructure' | 'environment' | 'application' | 'kubernetes' | 'baseline';
export type Action = 'allow' | 'drop' | 'reject' | 'pass';

/** A pod or a VM interface: the unit policies are enforced on. */
export interface Endpoint {
  readonly id: number;
  readonly kind: 'pod' | 'vm-interface';
  /** Pod `cluster/namespace/workload-i`, VM interface `vm#i`. */
  readonly name: string;
  /** Workload identity or VM name. */
  readonly owner: string;
  readonly ip: Ip;
  readonly labels: Labels;
  readonly cluster?: string;
  readonly namespace?: string;
  readonly node?: string;
  readonly namedPorts?: ReadonlyMap<string, { readonly port: number; readonly protocol: string }>;
  /** Atoms containing this endpoint (reverse index, kept in sync by Membership). */
  readonly atoms: Set<Atom>;
  /**
   * Ids of `atoms`, sorted; built on demand by {@link atomIdsOf} and dropped by Membership whenever `atoms`
   * changes. Verdicts look rules up by peer atom id, which needs the peer's ids as a sorted array.
   */
  atomIds?: Int32Array;
  /** Cached ordered rule lists; rebuilt when `cacheEpoch` is stale. */
  cache?: EndpointRules;
  /**
   * NetworkPolicies selecting the endpoint that isolate egress (`out`) or ingress (`in`), by identity, for
   * NetworkPolicy epoch `epoch`; per endpoint (not in the lists shared by identity, see World.rulesAt),
   * built when a verdict first reaches the NetworkPolicy layer, dropped when its membership changes.
   */
  netpols?: EndpointNetworkPolicies;
}

export interface EndpointRules {
  /** World epoch when built; 0 marks the list stale (a policy applied to one of its atoms changed). */
  epoch: number;
  /** Sum of the identity's atoms' `rulesVersion` when built: checks a list found by identity, not by endpoint. */
  version: number;
  /** Every rule enforced or staged here, in evaluation order (effective-rules query). */
  all: CompiledRule[];
  out: CompiledRule[];
  in: CompiledRule[];
  /** Including staged rules; undefined when no staged rule applies. */
  outAll?: CompiledRule[];
  inAll?: CompiledRule[];
  /** Whether a baseline rule is in `outAll` / `inAll` (or `out` / `in`): only then is a second scan needed. */
  baseline: boolean;
  /** Service and peer indexes of the lists above (out: by destination, in: by source), built on first use. */
  outIdx?: IndexedRules;
  inIdx?: IndexedRules;
  outAllIdx?: IndexedRules;
  inAllIdx?: IndexedRules;
}


/**
 * The smallest shared unit of membership: one canonical selector or static reference. Groups, rule peers,
 * appliedTo, load-balancer pools and egress IPs are unions of atoms, so equal selectors are evaluated once.
 */
export interface Atom {
  /** Small integer, unique per Membership: the key of per-endpoint rule indexes. */
  readonly id: number;
  readonly key: string;
  readonly members: Set<number>;
  /** Bumped whenever `members` changes, so caches of what members look like (addresses) can be checked. */
  version: number;
  readonly indexKeys: readonly string[];
  /** Bumped when a policy whose appliedTo holds this atom changes (see World.compile). */
  rulesVersion: number;
  /**
   * Set once a compiled rule's appliedTo holds this atom (never reset: a superset is safe). Only such atoms
   * decide which rules apply at an endpoint, so only they make its identity (World.rulesAt): atoms used only
   * as peers or as NetworkPolicy subjects do not split endpoints that share rule lists.
   */
  appliedTo?: boolean;
  matches(ep: Endpoint): boolean;
}


/** An address as a firewall sees it: its IP, and the endpoint when its identity is known (not SNATed). */
export interface Addr {
  readonly ip: Ip;
  readonly ep?: Endpoint | undefined;
}

/** A union of atoms and IP matchers (a compiled group or peer list). */
export interface PeerSet {
  readonly atoms: readonly Atom[];
  readonly blocks: readonly IpBlockMatcher[];
  readonly ips: ReadonlySet<string>;
}


export interface CompiledService {
  readonly protocol: string;
  /** Inclusive [lo, hi] pairs; empty with no named ports means every port. */
  readonly ranges: readonly number[];
  readonly named: readonly string[];
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

/** A policy after ordering: rank is its position in the global order. */
export interface CompiledPolicy {
  readonly name: string;
  readonly category: Category;
  readonly catRank: number;
  readonly priority: number;
  readonly staged: boolean;
  /** Quarantine policies come before every other emergency policy. */
  readonly quarantine: boolean;
  rank: number;
  readonly rules: CompiledRule[];
  /** Group and PodSelector names the policy depends on (for invalidation). */
  readonly deps: ReadonlySet<string>;
}

export interface CompiledRule {
  readonly policy: CompiledPolicy;
  readonly index: number;
  readonly name: string;
  readonly action: Action;
  readonly dirIn: boolean;
  readonly dirOut: boolean;
  readonly disabled: boolean;
  readonly logged: boolean;
  /** Conjunction of appliedTo requirements (policy-level, rule-level); empty means everywhere. */
  readonly appliedTo: readonly (readonly Atom[])[];
  readonly src: PeerSet | undefined;
  readonly srcNegated: boolean;
  readonly dst: PeerSet | undefined;
  readonly dstNegated: boolean;
  readonly services: readonly CompiledService[] | undefined;
  /** Traceflow's decision object for this rule, made on first use (see traceflow ruleDecision). */
  decision?: { readonly kind: 'rule'; readonly category: string; readonly policy: string; readonly rule: string; readonly action: 'allow' | 'drop' | 'reject' };
}

/** Flow fields a rule's services look at. */
export interface FlowService {
  readonly protocol: string;
  readonly port: number | undefined;
  readonly icmpType?: number;
  readonly icmpCode?: number;
}


/**
 * An ordered rule list indexed for one verdict side. The peer a verdict varies on is the source for `in`
 * lists and the destination for `out` lists. A verdict only checks the rules that could match:
 * 1. by service: the list is cut per protocol into elementary port intervals (every range bound is an
 *    interval edge), and each (protocol, interval) gets its own {@link RuleIndex} over the rules with a
 *    service that can match there, built on first use;
 * 2. within that, by peer: rules whose peer set holds one of the peer's atoms (CSR by atom id), rules
 *    whose IPv4 blocks or IPs cover the peer's IP (CSR by elementary IPv4 interval), and the rules that
 *    neither can decide (no peer, negated peers, IPv6 blocks), which are always checked.
 * Candidates are over-approximations (named ports count as every port, block exceptions are ignored):
 * each candidate is still checked by ruleMatches (rules.ts), and first-match order is kept by merging the
 * candidate positions, so the result is that of firstMatch (rules.ts) over the whole list. The invariant is
 * only that a rule which is not a candidate cannot match.
 */
export interface IndexedRules {
  readonly rules: readonly CompiledRule[];
  readonly peer: 'src' | 'dst';
  /**
   * Per protocol id: sorted starts of the elementary port intervals; bounds[p][0] is -Infinity. Built on
   * the first flow of that protocol (most lists only ever see TCP), see boundsFor in rules.ts.
   */
  readonly bounds: (Float64Array | undefined)[];
  /** Per protocol id: bucket 0 is "no port" (ICMP), bucket i+1 is port interval i; built on first use. */
  readonly buckets: ((RuleIndex | undefined)[] | undefined)[];
  /** Every rule, for a protocol outside PROTOCOL_IDS (rules.ts). */
  all?: RuleIndex;
}

/**
 * Sub-index of the positions whose services can match one (protocol, port interval), packed into one
 * `Int32Array` so that a verdict touches one backing store instead of seven (the cost at 100k endpoints is
 * cache misses, not comparisons). Layout, every offset an absolute index into the array:
 * - `[0]` nKeys, `[1]` nIp, `[2]` A (start of the always-checked positions);
 * - keys at `[HEADER, HEADER + nKeys)`: sorted atom ids;
 * - offsets at `O = HEADER + nKeys`, nKeys + 1 entries: the positions of the rules whose peer set holds
 *   keys[i] are `[offsets[i], offsets[i + 1])`; offsets[nKeys] is where the IP section starts (S);
 * - ipStarts at `[S, S + nIp)`: sorted starts of elementary IPv4 intervals, biased to signed (`n - 2^31`);
 * - ipOffsets at `S + nIp`, nIp + 1 entries: rules covering interval i are at `[ipOffsets[i], ipOffsets[i + 1])`;
 *   ipOffsets[nIp] is A;
 * - always-checked positions, sorted, at `[A, length)`.
 */
export type RuleIndex = Int32Array;

/**
 * An endpoint's NetworkPolicy selection (see world/endpoint-rules.ts, which declares its members by module
 * augmentation). Its element type lives in netpol.ts, which imports this module; declaring the members
 * there keeps this module a leaf.
 */
export interface EndpointNetworkPolicies {}

/** A resolved endpoint reference. */
export interface ResolvedRef {
  readonly ip: Ip;
  readonly ep?: Endpoint;
  /** Set when the reference is a load-balancer VIP. */
  readonly lb?: string;
}

/** A KubernetesCluster with its parsed addresses and pod address pool. */
export interface ClusterState {
  readonly spec: SpecOf['KubernetesCluster'];
  readonly podCidr: Cidr | undefined;
  readonly serviceCidr: Cidr | undefined;
  readonly pool: AddressPool | undefined;
  readonly nodeIps: ReadonlyMap<string, Ip>;
}

/** A LoadBalancer with its allocated VIP. */
export interface LbState {
  readonly name: string;
  readonly spec: SpecOf['LoadBalancer'];
  vip: Ip | undefined;
}

/** An EgressIp with its allocated address and the atom of the pods it applies to. */
export interface EgressState {
  readonly name: string;
  readonly spec: SpecOf['EgressIp'];
  ip: Ip | undefined;
  atom: Atom | undefined;
}
