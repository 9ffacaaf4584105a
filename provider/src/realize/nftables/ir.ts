/**
 * A small model of the nftables objects microseg emits: one `inet` table of named sets, verdict maps and
 * chains. Both renderings (`nft -j` JSON and `nft` text) come from it, so they cannot disagree.
 */

export type Family = 4 | 6;

/** An address key part: one address, a prefix or a range (bounds as integers of the family). */
export interface AddrKey {
  readonly v: Family;
  readonly lo: bigint;
  readonly hi: bigint;
}

export interface ServiceKey {
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly lo: number;
  readonly hi: number;
}

export type Verdict =
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'reject-tcp' }
  | { readonly kind: 'reject-icmpx' }
  | { readonly kind: 'goto'; readonly target: string };

/** A named interval set of addresses (a rule's peers). */
export interface AddressSet {
  readonly kind: 'set';
  readonly name: string;
  readonly v: Family;
  readonly elements: readonly AddrKey[];
}

/** `addr . inet_proto . inet_service` keys: a plain set (staged rules' lookups, which never decide). */
export interface ServiceMap {
  readonly kind: 'service-set';
  readonly name: string;
  readonly v: Family;
  readonly elements: readonly { readonly addr: AddrKey; readonly service: ServiceKey; readonly verdict?: Verdict }[];
}

/**
 * The first level of a category's decision: destination port (one protocol) → the chain of the port
 * interval's address class. A single-field interval map (an rbtree in the kernel: O(log n) per lookup).
 */
export interface PortMap {
  readonly kind: 'port-map';
  readonly name: string;
  readonly elements: readonly { readonly lo: number; readonly hi: number; readonly verdict: Verdict }[];
}

/**
 * The second level: peer address → the chain of the rule owning it for that class of ports. Also a
 * single-field interval map; its keys are disjoint (first-match order compiled in, see boxes.ts).
 */
export interface AddressMap {
  readonly kind: 'addr-map';
  readonly name: string;
  readonly v: Family;
  readonly elements: readonly { readonly addr: AddrKey; readonly verdict: Verdict }[];
}

export type NamedSet = AddressSet | ServiceMap | PortMap | AddressMap | FlowSet;

/**
 * A dynamic set the kernel fills: one element per `saddr . daddr . l4proto . dport` a drop rule met, with
 * its own packet and byte counter and an idle timeout. The agent lists it to report dropped flows (a drop
 * leaves no conntrack entry to read).
 */
export interface FlowSet {
  readonly kind: 'flow-set';
  readonly name: string;
  readonly v: Family;
  /** Seconds an element without packets lives. */
  readonly timeout: number;
  readonly size: number;
  readonly elements: readonly never[];
}

export type Match =
  | { readonly m: 'ct-state'; readonly states: readonly string[] }
  | { readonly m: 'ifname'; readonly dir: 'iif' | 'oif'; readonly name: string }
  | { readonly m: 'nfproto'; readonly v: Family }
  | { readonly m: 'addr'; readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly op: '==' | '!='; readonly addr: string }
  | { readonly m: 'addr-set'; readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly set: string }
  | { readonly m: 'l4proto'; readonly protocols: readonly string[] }
  | { readonly m: 'service-lookup'; readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly set: string }
  | { readonly m: 'icmp'; readonly v: Family; readonly type?: number; readonly code?: number };

export interface Rule {
  readonly match: readonly Match[];
  /** Verdict map lookup instead of a plain verdict: `th dport vmap @map` or `ip saddr vmap @map`. */
  readonly vmap?: { readonly key: 'dport'; readonly map: string } | { readonly key: 'addr'; readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly map: string };
  readonly counter?: boolean;
  /** `ct mark set N`: tags the connection with the deciding rule, for flow records read from conntrack. */
  readonly ctMark?: number;
  /** `update @set { saddr . daddr . l4proto . dport }` (tcp/udp/sctp only): a dropped-flow record. */
  readonly recordFlow?: { readonly v: Family; readonly set: string };
  readonly log?: string;
  readonly verdict?: Verdict;
  readonly comment?: string;
}

export interface Chain {
  readonly name: string;
  readonly hook?: 'input' | 'output';
  readonly rules: readonly Rule[];
}

export interface Table {
  readonly family: 'inet';
  readonly name: string;
  readonly sets: readonly NamedSet[];
  readonly chains: readonly Chain[];
}
