import { formatIp } from './ip';

/**
 * The model of one enforcement point (see enforcement.ts): rules in addresses and ports, what the
 * dataplane compilers (realize/nftables) take. Types and the address-range arithmetic they need.
 */

/** An inclusive address interval of one family (IPv4 as 0..2^32-1), as bigints for both families. */
export interface AddressRange {
  readonly lo: bigint;
  readonly hi: bigint;
}

/** A peer region: sorted, disjoint, non-adjacent intervals per family. */
export interface AddressRegion {
  readonly v4: readonly AddressRange[];
  readonly v6: readonly AddressRange[];
}

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/**
 * Packets of a port protocol to ports [lo, hi]; `to` restricts the peer to some destinations: those whose
 * named port has this number (an `out` rule naming a port; one match per number, not per destination).
 */
export interface PortMatch {
  readonly protocol: PortProtocol;
  readonly lo: number;
  readonly hi: number;
  readonly to?: AddressRegion;
}

/** Packets of a protocol without ports: icmp/icmpv6 (optionally one type and code) or `any` other protocol. */
export interface OtherMatch {
  readonly protocol: 'icmp' | 'icmpv6' | 'any';
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

export interface PointRule {
  /** Stable id: `policy/rule`. */
  readonly id: string;
  /** `kubernetes`: the NetworkPolicy layer of a pod (its policies' allows, the node exception, isolation). */
  readonly category: 'emergency' | 'infrastructure' | 'environment' | 'application' | 'kubernetes' | 'baseline';
  readonly policy: string;
  readonly rule: string;
  readonly action: 'allow' | 'drop' | 'reject' | 'pass';
  readonly staged: boolean;
  readonly logged: boolean;
  /** The varying peer: the source of `in` rules, the destination of `out` rules. */
  readonly peer: AddressRegion;
  readonly ports: readonly PortMatch[];
  readonly other: readonly OtherMatch[];
}

export interface EnforcementPointModel {
  /** `vm:NAME#i` or `pod:CLUSTER/NAMESPACE/POD`. */
  readonly name: string;
  readonly kind: 'vm-interface' | 'pod';
  readonly owner: string;
  readonly ip: string;
  readonly defaultAction: 'allow' | 'drop';
  /** Rules in evaluation order (staged included, disabled left out), per direction. */
  readonly in: readonly PointRule[];
  readonly out: readonly PointRule[];
}

export const V4_MAX = (1n << 32n) - 1n;
export const V6_MAX = (1n << 128n) - 1n;

/** Sorts and merges overlapping or adjacent intervals. */
export function normalize(xs: AddressRange[]): AddressRange[] {
  if (xs.length <= 1) return xs;
  const s = [...xs].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: AddressRange[] = [];
  let cur = { lo: s[0]!.lo, hi: s[0]!.hi };
  for (let i = 1; i < s.length; i++) {
    const x = s[i]!;
    if (x.lo <= cur.hi + 1n) {
      if (x.hi > cur.hi) cur.hi = x.hi;
    } else {
      out.push(cur);
      cur = { lo: x.lo, hi: x.hi };
    }
  }
  out.push(cur);
  return out;
}

export function subtractRange(xs: AddressRange[], e: AddressRange): AddressRange[] {
  const out: AddressRange[] = [];
  for (const x of xs) {
    if (e.hi < x.lo || e.lo > x.hi) out.push(x);
    else {
      if (x.lo < e.lo) out.push({ lo: x.lo, hi: e.lo - 1n });
      if (x.hi > e.hi) out.push({ lo: e.hi + 1n, hi: x.hi });
    }
  }
  return out;
}

/** The index of the first range of a sorted, disjoint list ending at or after x (binary search). */
export function rangeAtOrAfter(xs: readonly AddressRange[], x: bigint): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]!.hi < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A sorted, disjoint, non-adjacent range list with one address added (`present`) or removed: the same
 * list when nothing changes, else a new one (lists are shared and never changed in place).
 */
export function withAddress(xs: readonly AddressRange[], x: bigint, present: boolean): readonly AddressRange[] {
  const lo = rangeAtOrAfter(xs, x);
  const at = xs[lo];
  const inside = at !== undefined && at.lo <= x;
  if (inside === present) return xs;
  const out = xs.slice(0, lo);
  if (present) {
    // Merge with the range ending just below and the one starting just above.
    const below = out.length && out[out.length - 1]!.hi + 1n === x ? out.pop() : undefined;
    const above = at !== undefined && at.lo === x + 1n ? at : undefined;
    out.push({ lo: below ? below.lo : x, hi: above ? above.hi : x });
    for (let i = above ? lo + 1 : lo; i < xs.length; i++) out.push(xs[i]!);
  } else {
    if (at!.lo < x) out.push({ lo: at!.lo, hi: x - 1n });
    if (x < at!.hi) out.push({ lo: x + 1n, hi: at!.hi });
    for (let i = lo + 1; i < xs.length; i++) out.push(xs[i]!);
  }
  return out;
}

function complementOf(xs: readonly AddressRange[], max: bigint): AddressRange[] {
  const out: AddressRange[] = [];
  let next = 0n;
  for (const x of xs) {
    if (x.lo > next) out.push({ lo: next, hi: x.lo - 1n });
    next = x.hi + 1n;
  }
  if (next <= max) out.push({ lo: next, hi: max });
  return out;
}

export function complement(r: AddressRegion): AddressRegion {
  return { v4: complementOf(r.v4, V4_MAX), v6: complementOf(r.v6, V6_MAX) };
}

/** Text of an address of a family (for compilers). */
export function addressText(v: 4 | 6, n: bigint): string {
  return formatIp(v, v === 4 ? Number(n) : n);
}
