import { parseCidr, type Cidr } from '../../engine/ip';

/**
 * A CIDR minus its exceptions, as a list of CIDRs (for peers that have no `except`, such as
 * ClusterNetworkPolicy `networks`). IPv4 only; undefined for IPv6 (the caller refuses it).
 */
export function subtractCidrs(cidr: string, except: readonly string[]): string[] | undefined {
  const c = parseCidr(cidr);
  if (!c || c.v !== 4) return undefined;
  let ranges: [number, number][] = [[c.lo, c.hi]];
  for (const e of except) {
    const x = parseCidr(e) as Cidr | undefined;
    if (!x || x.v !== 4) return undefined;
    const next: [number, number][] = [];
    for (const [lo, hi] of ranges) {
      if (x.hi < lo || x.lo > hi) next.push([lo, hi]);
      else {
        if (x.lo > lo) next.push([lo, x.lo - 1]);
        if (x.hi < hi) next.push([x.hi + 1, hi]);
      }
    }
    ranges = next;
  }
  return ranges.flatMap(([lo, hi]) => rangeCidrs(lo, hi));
}

/** The fewest IPv4 CIDRs covering exactly the addresses lo..hi (numbers). */
export function rangeCidrs(lo0: number, hi: number): string[] {
  const out: string[] = [];
  let lo = lo0;
  while (lo <= hi) {
    // The largest aligned block starting at lo that fits in [lo, hi].
    let prefix = 32;
    while (prefix > 0) {
      const block = 2 ** (33 - prefix);
      if (lo % block !== 0 || lo + block - 1 > hi) break;
      prefix--;
    }
    out.push(`${[lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255].join('.')}/${prefix}`);
    lo += 2 ** (32 - prefix);
  }
  return out;
}
