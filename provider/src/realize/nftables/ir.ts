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

/** `addr . inet_proto . inet_service` keys: a verdict map (decisions) or a plain set (staged lookups). */
export interface ServiceMap {
  readonly kind: 'map' | 'service-set';
  readonly name: string;
  readonly v: Family;
  readonly elements: readonly { readonly addr: AddrKey; readonly service: ServiceKey; readonly verdict?: Verdict }[];
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
  /** Verdict map lookup (`addr . l4proto . th dport vmap @map`) instead of a plain verdict. */
  readonly vmap?: { readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly map: string };
  readonly counter?: boolean;
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
  readonly sets: readonly (AddressSet | ServiceMap)[];
  readonly chains: readonly Chain[];
}
