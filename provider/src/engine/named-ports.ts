import type { Ip } from './ip';
import type { Endpoint } from './membership';
import { normalize, type AddressRange, type AddressRegion, type PortMatch, type PortProtocol } from './point-model';
import type { World } from './world';

/**
 * Named ports of `out` rules: which destinations have a port of a name, with which number. Kept up to
 * date from the membership's endpoint log rather than recomputed from every endpoint after each pod add
 * (which made a pod add cost tens of milliseconds at every point having such a rule).
 */

/**
 * Every destination having a named port, grouped per protocol and port number, each group's addresses
 * kept sorted as endpoints come and go (caught up from the membership's endpoint log): what an `out` rule
 * to any destination naming a port matches. Rebuilding it from 100,000 endpoints made every pod add cost
 * tens of milliseconds at each point having such a rule.
 */
export class NamedPortGroups {
  private version: number;
  private readonly groups = new Map<string, { protocol: PortProtocol; port: number; v4: number[]; v6: bigint[]; region?: AddressRegion }>();

  constructor(
    private readonly world: World,
    private readonly name: string,
    /** Only destinations in this region (undefined: every address). */
    private readonly region?: AddressRegion,
  ) {
    this.version = world.membership.endpointsVersion;
    for (const e of world.membership.byNamedPort.get(name) ?? []) this.place(e.ip);
  }

  /** Catches up; false when the log no longer reaches back to this cache's version (then make a new one). */
  sync(): boolean {
    const m = this.world.membership;
    if (this.version === m.endpointsVersion) return true;
    if (this.version < m.endpointLogStart) return false;
    for (let i = this.version - m.endpointLogStart; i < m.endpointLog.length; i++) this.place(m.endpointLog[i]!.ep.ip);
    this.version = m.endpointsVersion;
    return true;
  }

  /** Puts an address in the group of its owner's port of this name (or in none): the state now, whatever happened before. */
  private place(ip: Ip): void {
    for (const g of this.groups.values()) if (remove(g, ip)) g.region = undefined;
    if (this.region && !regionHas(this.region, ip)) return;
    const owner = this.world.endpointByIp(ip.s);
    const np = owner?.namedPorts?.get(this.name);
    if (!owner || !np) return;
    const k = `${np.protocol}/${np.port}`;
    let g = this.groups.get(k);
    if (!g) this.groups.set(k, (g = { protocol: np.protocol as PortProtocol, port: np.port, v4: [], v6: [] }));
    insert(g, ip);
    g.region = undefined;
  }

  /** The matches, in port order; a group's region is the same object while its addresses do not change. */
  matches(accepts: (protocol: string) => boolean): PortMatch[] {
    const out: PortMatch[] = [];
    for (const g of [...this.groups.values()].sort((a, b) => (a.protocol !== b.protocol ? (a.protocol < b.protocol ? -1 : 1) : a.port - b.port))) {
      if (!accepts(g.protocol) || (!g.v4.length && !g.v6.length)) continue;
      g.region ??= { v4: runsOf(g.v4), v6: normalize(g.v6.map((x) => ({ lo: x, hi: x }))) };
      out.push({ protocol: g.protocol, lo: g.port, hi: g.port, to: g.region });
    }
    return out;
  }
}

/** Is the address in the region (binary search over its sorted ranges)? */
function regionHas(region: AddressRegion, ip: Ip): boolean {
  const xs = ip.v === 4 ? region.v4 : region.v6;
  const n = BigInt(ip.n);
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]!.hi < n) lo = mid + 1;
    else hi = mid;
  }
  return lo < xs.length && xs[lo]!.lo <= n;
}

function lowerBoundOf<T>(xs: readonly T[], x: T): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insert(g: { v4: number[]; v6: bigint[] }, ip: Ip): void {
  const xs: (number | bigint)[] = ip.v === 4 ? g.v4 : g.v6;
  const i = lowerBoundOf(xs, ip.n);
  if (xs[i] !== ip.n) xs.splice(i, 0, ip.n);
}

function remove(g: { v4: number[]; v6: bigint[] }, ip: Ip): boolean {
  const xs: (number | bigint)[] = ip.v === 4 ? g.v4 : g.v6;
  const i = lowerBoundOf(xs, ip.n);
  if (xs[i] !== ip.n) return false;
  xs.splice(i, 1);
  return true;
}

/** Sorted unique IPv4 numbers as ranges. */
function runsOf(xs: ArrayLike<number>): AddressRange[] {
  const out: AddressRange[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1]! <= xs[j]! + 1) j++;
    out.push({ lo: BigInt(xs[i]!), hi: BigInt(xs[j]!) });
    i = j + 1;
  }
  return out;
}


/**
 * `out` matches of a named port: the destinations grouped per protocol and port number, each group one
 * match restricted to its destinations' addresses (as runs), in port order.
 */
export function namedPortMatches(targets: readonly Endpoint[], name: string, accepts: (protocol: string) => boolean): PortMatch[] {
  const groups = new Map<string, { protocol: PortProtocol; port: number; v4: number[]; v6: bigint[] }>();
  for (const t of targets) {
    const np = t.namedPorts?.get(name);
    if (!np || !accepts(np.protocol)) continue;
    const k = `${np.protocol}/${np.port}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { protocol: np.protocol as PortProtocol, port: np.port, v4: [], v6: [] }));
    if (t.ip.v === 4) g.v4.push(t.ip.n as number);
    else g.v6.push(BigInt(t.ip.n));
  }
  const out: PortMatch[] = [];
  for (const g of [...groups.values()].sort((a, b) => (a.protocol !== b.protocol ? (a.protocol < b.protocol ? -1 : 1) : a.port - b.port))) {
    // IPv4 as numbers until the runs are known: one bigint pair per run, not per destination.
    out.push({ protocol: g.protocol, lo: g.port, hi: g.port, to: { v4: runsOf(Float64Array.from(g.v4).sort()), v6: normalize(g.v6.map((x) => ({ lo: x, hi: x }))) } });
  }
  return out;
}
