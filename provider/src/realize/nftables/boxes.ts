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
 * edge; inside one interval the problem is one-dimensional and solved by one sweep over the sorted
 * range edges, keeping the lowest (first) rule covering each stretch of addresses in a heap; then equal
 * pieces of adjacent intervals are merged back. The cost is O(m log m) per interval in the m ranges
 * covering it (an earlier version subtracted each range from a sorted list of claimed addresses and
 * spliced it in, quadratic in the ranges). Boxes after a rule that covers every address are skipped
 * (a catch-all rule). Returns disjoint boxes per rule.
 */
export function firstMatchV4(boxes: readonly RuleBox[], fullHi = 0xffffffff): { rule: number; protocol: PortProtocol; lo: number; hi: number; plo: number; phi: number }[] {
  const out: { rule: number; protocol: PortProtocol; lo: number; hi: number; plo: number; phi: number }[] = [];
  for (const protocol of ['tcp', 'udp', 'sctp'] as const) {
    const mine = boxes.filter((b) => b.protocol === protocol).sort((a, b) => a.rule - b.rule);
    if (!mine.length) continue;
    const edges = new Set<number>();
    for (const b of mine) edges.add(b.plo).add(b.phi + 1);
    const starts = [...edges].filter((e) => e <= 65535).sort((a, b) => a - b);
    const cover = new Int32Array(mine.reduce((m, b) => Math.max(m, b.rule), 0) + 1);
    // Pieces keyed by rule and address range; ports of adjacent intervals are merged as they come.
    // Numeric keys (rule, low address): a string per piece made this allocation-bound.
    const open = new Map<number, { rule: number; lo: number; hi: number; plo: number; phi: number }>();
    for (let k = 0; k < starts.length; k++) {
      const plo = starts[k]!;
      const phi = (k + 1 < starts.length ? starts[k + 1]! : 65536) - 1;
      const here: RuleBox[] = [];
      for (const b of mine) {
        if (b.plo > plo || b.phi < phi) continue;
        here.push(b);
        if (b.ranges.length === 1 && b.ranges[0]![0] === 0 && b.ranges[0]![1] === fullHi) break;
      }
      for (const [rule, lo, hi] of lowestRuleRuns(here, sortedEvents(here), cover)) {
        const key = rule * 4294967296 + lo;
        const prev = open.get(key);
        if (prev && prev.hi === hi && prev.phi + 1 === plo) prev.phi = phi;
        else {
          if (prev) out.push({ protocol, ...prev });
          open.set(key, { rule, lo, hi, plo, phi });
        }
      }
    }
    for (const p of open.values()) out.push({ protocol, ...p });
  }
  return out;
}

/** Range edges of the boxes sorted by address: a box starts covering at lo and stops at hi + 1. */
interface Events {
  readonly pos: Float64Array;
  readonly box: Int32Array;
  readonly start: Uint8Array;
  readonly order: Uint32Array;
}

function sortedEvents(boxes: readonly RuleBox[]): Events {
  let n = 0;
  for (const b of boxes) n += b.ranges.length;
  const pos = new Float64Array(2 * n);
  const box = new Int32Array(2 * n);
  const start = new Uint8Array(2 * n);
  let e = 0;
  boxes.forEach((b, i) => {
    for (const [lo, hi] of b.ranges) {
      pos[e] = lo;
      box[e] = i;
      start[e++] = 1;
      pos[e] = hi + 1;
      box[e++] = i;
    }
  });
  // A numeric sort of (position, event) packed into one double is several times faster than a sort
  // with a comparator; positions stay below 2^33 and events below 2^20 when it is used.
  let order: Uint32Array;
  if (2 * n < 1 << 20) {
    const keys = new Float64Array(2 * n);
    for (let i = 0; i < keys.length; i++) keys[i] = pos[i]! * 1048576 + i;
    keys.sort();
    order = new Uint32Array(2 * n);
    for (let i = 0; i < keys.length; i++) order[i] = keys[i]! % 1048576;
  } else {
    order = new Uint32Array(2 * n);
    for (let i = 0; i < order.length; i++) order[i] = i;
    order.sort((a, b) => pos[a]! - pos[b]!);
  }
  return { pos, box, start, order };
}

/**
 * The one-dimensional first match among the boxes: maximal runs of addresses with the lowest
 * rule whose ranges cover them, sorted by address, as [rule, lo, hi]. A sweep over the edges with a
 * min-heap of covering rules (stale entries, rules no longer covering, are dropped when they reach the
 * top). `cover` counts, per rule, the ranges covering the sweep position (all zero on entry).
 */
function lowestRuleRuns(boxes: readonly RuleBox[], ev: Events, cover: Int32Array): [number, number, number][] {
  const { pos, box, start, order } = ev;
  const heap: number[] = [];
  const runs: [number, number, number][] = [];
  let i = 0;
  while (i < order.length) {
    const x = pos[order[i]!]!;
    for (; i < order.length && pos[order[i]!] === x; i++) {
      const j = order[i]!;
      const r = boxes[box[j]!]!.rule;
      if (start[j]) {
        if (cover[r]!++ === 0) heapPush(heap, r);
      } else cover[r]!--;
    }
    while (heap.length && !cover[heap[0]!]) heapPop(heap);
    if (!heap.length || i >= order.length) continue;
    const top = heap[0]!;
    const last = runs[runs.length - 1];
    const z = pos[order[i]!]! - 1;
    if (last && last[0] === top && last[2] + 1 === x) last[2] = z;
    else runs.push([top, x, z]);
  }
  return runs;
}

function heapPush(h: number[], v: number): void {
  let i = h.push(v) - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]! <= v) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = v;
}

function heapPop(h: number[]): void {
  const v = h.pop()!;
  if (!h.length) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const c = l + 1 < h.length && h[l + 1]! < h[l]! ? l + 1 : l;
    if (h[c]! >= v) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = v;
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
