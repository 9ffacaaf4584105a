import type { AddressRange, PortProtocol } from '../../engine';

/**
 * First-match order compiled into disjoint keys. The kernel refuses overlapping elements in an interval
 * map, so a category's rules cannot all go into one verdict map as they are: each rule keeps only the
 * part of its (address × protocol × port) region that no earlier rule of the category claimed.
 */

/** One port box of a rule: its address ranges (IPv4 as numbers) for a protocol's ports [plo, phi]. */
export interface RuleBox {
  readonly rule: number;
  readonly protocol: PortProtocol;
  readonly plo: number;
  readonly phi: number;
  /** Sorted, disjoint. */
  readonly ranges: readonly (readonly [number, number])[];
}

/**
 * First match over IPv4 boxes, port-major: the ports are cut into elementary intervals at every box
 * edge; inside one interval the problem is one-dimensional (each box keeps the addresses no earlier box
 * claimed), solved with sorted interval lists; then equal pieces of adjacent intervals are merged back.
 * Cost grows with the boxes covering each interval, not with their product, and stops early once an
 * interval's addresses are all claimed (a catch-all rule). Returns disjoint boxes per rule.
 */
export function firstMatchV4(boxes: readonly RuleBox[], fullHi = 0xffffffff): { rule: number; protocol: PortProtocol; lo: number; hi: number; plo: number; phi: number }[] {
  const out: { rule: number; protocol: PortProtocol; lo: number; hi: number; plo: number; phi: number }[] = [];
  for (const protocol of ['tcp', 'udp', 'sctp'] as const) {
    const mine = boxes.filter((b) => b.protocol === protocol);
    if (!mine.length) continue;
    const edges = new Set<number>();
    for (const b of mine) edges.add(b.plo).add(b.phi + 1);
    const starts = [...edges].filter((e) => e <= 65535).sort((a, b) => a - b);
    // Pieces keyed by rule and address range; ports of adjacent intervals are merged as they come.
    // Numeric keys (rule, low address): a string per piece made this allocation-bound.
    const open = new Map<number, { rule: number; lo: number; hi: number; plo: number; phi: number }>();
    for (let k = 0; k < starts.length; k++) {
      const plo = starts[k]!;
      const phi = (k + 1 < starts.length ? starts[k + 1]! : 65536) - 1;
      const claimed: [number, number][] = [];
      let full = false;
      for (const b of mine) {
        if (full) break;
        if (b.plo > plo || b.phi < phi) continue;
        for (const [lo, hi] of b.ranges) {
          for (const [a, z] of subtractSorted(lo, hi, claimed)) {
            const key = b.rule * 4294967296 + a;
            const prev = open.get(key);
            if (prev && prev.hi === z && prev.phi + 1 === plo) prev.phi = phi;
            else {
              if (prev) out.push({ protocol, ...prev });
              open.set(key, { rule: b.rule, lo: a, hi: z, plo, phi });
            }
          }
          insertSorted(claimed, lo, hi);
        }
        full = claimed.length === 1 && claimed[0]![0] === 0 && claimed[0]![1] === fullHi;
      }
    }
    for (const p of open.values()) out.push({ protocol, ...p });
  }
  return out;
}

/** First index whose range ends at or after `x` (claimed is sorted and disjoint). */
function lowerBound(claimed: readonly (readonly [number, number])[], x: number): number {
  let lo = 0;
  let hi = claimed.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (claimed[mid]![1] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** [lo, hi] minus the claimed ranges. */
function subtractSorted(lo: number, hi: number, claimed: readonly (readonly [number, number])[]): [number, number][] {
  const out: [number, number][] = [];
  let cur = lo;
  for (let i = lowerBound(claimed, lo); i < claimed.length && cur <= hi; i++) {
    const [a, z] = claimed[i]!;
    if (a > hi) break;
    if (a > cur) out.push([cur, a - 1]);
    cur = Math.max(cur, z + 1);
  }
  if (cur <= hi) out.push([cur, hi]);
  return out;
}

/** Adds [lo, hi] to the sorted disjoint list, merging overlapping and adjacent ranges. */
function insertSorted(claimed: [number, number][], lo: number, hi: number): void {
  const i = lowerBound(claimed, lo - 1);
  let j = i;
  let a = lo;
  let z = hi;
  while (j < claimed.length && claimed[j]![0] <= hi + 1) {
    a = Math.min(a, claimed[j]![0]);
    z = Math.max(z, claimed[j]![1]);
    j++;
  }
  claimed.splice(i, j - i, [a, z]);
}

/** A rule's port matches over its address ranges, in one family, as the compiler hands them over. */
export interface FamilyRuleBoxes {
  readonly rule: number;
  readonly ports: readonly { readonly protocol: PortProtocol; readonly lo: number; readonly hi: number; readonly ip?: bigint }[];
  readonly ranges: readonly AddressRange[];
}

/**
 * {@link firstMatchV4} for either family: addresses are first compressed to the ranks of every range
 * edge (IPv6 bounds do not fit a double), then mapped back. Returns disjoint pieces per rule.
 */
export function firstMatch(rules: readonly FamilyRuleBoxes[], family: 4 | 6 = 6): { rule: number; protocol: PortProtocol; lo: bigint; hi: bigint; plo: number; phi: number }[] {
  if (family === 4) {
    // IPv4 addresses are exact doubles: no compression needed.
    const boxes: RuleBox[] = [];
    for (const r of rules) {
      const ranges = r.ranges.map((x) => [Number(x.lo), Number(x.hi)] as const);
      for (const p of r.ports) boxes.push({ rule: r.rule, protocol: p.protocol, plo: p.lo, phi: p.hi, ranges: p.ip !== undefined ? [[Number(p.ip), Number(p.ip)]] : ranges });
    }
    return firstMatchV4(boxes).map((x) => ({ ...x, lo: BigInt(x.lo), hi: BigInt(x.hi) }));
  }
  const edges = new Set<bigint>();
  for (const r of rules)
    for (const p of r.ports) {
      if (p.ip !== undefined) edges.add(p.ip).add(p.ip + 1n);
      else for (const x of r.ranges) edges.add(x.lo).add(x.hi + 1n);
    }
  const coords = [...edges].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const rank = new Map(coords.map((c, i) => [c, i] as const));
  const boxes: RuleBox[] = [];
  for (const r of rules) {
    const ranges = r.ranges.map((x) => [rank.get(x.lo)!, rank.get(x.hi + 1n)! - 1] as const);
    for (const p of r.ports) boxes.push({ rule: r.rule, protocol: p.protocol, plo: p.lo, phi: p.hi, ranges: p.ip !== undefined ? [[rank.get(p.ip)!, rank.get(p.ip)!]] : ranges });
  }
  return firstMatchV4(boxes, coords.length - 2).map((x) => ({ ...x, lo: coords[x.lo]!, hi: coords[x.hi + 1]! - 1n }));
}
