import type { AddressRange, PortProtocol } from '../../engine';

/**
 * First-match order compiled into disjoint keys. The kernel refuses overlapping elements in an interval
 * map, so a category's rules cannot all go into one verdict map as they are: each rule keeps only the
 * part of its (address × protocol × port) region that no earlier rule of the category claimed.
 * A region is a union of boxes; subtracting one box from another leaves at most four.
 */
export interface Box {
  readonly lo: bigint;
  readonly hi: bigint;
  readonly protocol: PortProtocol;
  readonly plo: number;
  readonly phi: number;
}

function overlaps(a: Box, b: Box): boolean {
  return a.protocol === b.protocol && a.plo <= b.phi && b.plo <= a.phi && a.lo <= b.hi && b.lo <= a.hi;
}

/** a minus b as disjoint boxes (address slices first, so whole-port pieces stay whole). */
export function subtract(a: Box, b: Box): Box[] {
  if (!overlaps(a, b)) return [a];
  const out: Box[] = [];
  if (a.lo < b.lo) out.push({ ...a, hi: b.lo - 1n });
  if (a.hi > b.hi) out.push({ ...a, lo: b.hi + 1n });
  const lo = a.lo > b.lo ? a.lo : b.lo;
  const hi = a.hi < b.hi ? a.hi : b.hi;
  if (a.plo < b.plo) out.push({ lo, hi, protocol: a.protocol, plo: a.plo, phi: b.plo - 1 });
  if (a.phi > b.phi) out.push({ lo, hi, protocol: a.protocol, plo: b.phi + 1, phi: a.phi });
  return out;
}

/** Boxes claimed so far in one (direction, category, family), bucketed by protocol. */
export class Claimed {
  private readonly byProtocol = new Map<PortProtocol, Box[]>();

  /** The parts of `boxes` nobody claimed yet; they become claimed. */
  claim(boxes: readonly Box[]): Box[] {
    const own: Box[] = [];
    for (const box of boxes) {
      let pieces = [box];
      const claimed = this.byProtocol.get(box.protocol) ?? [];
      for (let i = 0; i < claimed.length && pieces.length; i++) {
        const c = claimed[i]!;
        // Cheap port test before the bigint ones: most claimed boxes differ by port.
        if (c.plo > box.phi || c.phi < box.plo || c.lo > box.hi || c.hi < box.lo) continue;
        const next: Box[] = [];
        for (const p of pieces) for (const q of subtract(p, c)) next.push(q);
        pieces = next;
      }
      // Pieces are disjoint from every claimed box, and from each other, so they can be claimed as they are.
      for (const p of pieces) {
        own.push(p);
        let l = this.byProtocol.get(p.protocol);
        if (!l) this.byProtocol.set(p.protocol, (l = []));
        l.push(p);
      }
    }
    return own;
  }
}

/** The boxes of a rule in one family: its peer ranges times its port matches. */
export function boxesOf(ranges: readonly AddressRange[], ports: readonly { protocol: PortProtocol; lo: number; hi: number; ip?: bigint }[]): Box[] {
  const out: Box[] = [];
  for (const p of ports) {
    if (p.ip !== undefined) out.push({ lo: p.ip, hi: p.ip, protocol: p.protocol, plo: p.lo, phi: p.hi });
    else for (const r of ranges) out.push({ lo: r.lo, hi: r.hi, protocol: p.protocol, plo: p.lo, phi: p.hi });
  }
  return out;
}
