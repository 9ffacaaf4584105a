import type { Ip } from './ip';
import type { Endpoint } from './membership';
import type { PeerSet } from './types';
import { normalize, rangeAtOrAfter, type AddressRange, type AddressRegion, type PortMatch, type PortProtocol } from './point-model';
import type { World } from './world';

/**
 * Named ports of `out` rules: which destinations have a port of a name, with which number. Kept up to
 * date from the membership's endpoint log rather than recomputed from every endpoint after each pod add
 * (which made a pod add cost tens of milliseconds at every point having such a rule).
 */

type Group = { protocol: PortProtocol; port: number; v4: number[]; v6: bigint[]; region?: AddressRegion };

/**
 * Destinations having a port of one name, grouped per protocol and port number, each group's addresses
 * kept sorted as memberships change (caught up from a membership log by the subclasses): what an `out`
 * rule naming a port matches. Regions stay the same objects while their addresses do not change.
 */
abstract class PortGroups {
  protected readonly groups = new Map<string, Group>();

  constructor(
    protected readonly world: World,
    protected readonly name: string,
  ) {}

  /** Is this destination (the owner of its address) one of the rule's? */
  protected abstract holds(owner: Endpoint, ip: Ip): boolean;

  /** Puts an address in the group of its owner's port of this name (or in none): the state now, whatever happened before. */
  protected place(ip: Ip): void {
    for (const g of this.groups.values()) if (remove(g, ip)) g.region = undefined;
    const owner = this.world.endpointByIp(ip.s);
    const np = owner?.namedPorts?.get(this.name);
    if (!owner || !np || !this.holds(owner, ip)) return;
    const g = this.groupOf(np);
    insert(g, ip);
    g.region = undefined;
  }

  protected groupOf(np: { readonly protocol: string; readonly port: number }): Group {
    const k = `${np.protocol}/${np.port}`;
    let g = this.groups.get(k);
    if (!g) this.groups.set(k, (g = { protocol: np.protocol as PortProtocol, port: np.port, v4: [], v6: [] }));
    return g;
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

/**
 * Every destination having a named port, optionally only those in a region (any destination, IP blocks,
 * a negated set): caught up from the membership's endpoint log. Rebuilding it from 100,000 endpoints made
 * every pod add cost tens of milliseconds at each point having such a rule.
 */
export class NamedPortGroups extends PortGroups {
  private version: number;

  constructor(
    world: World,
    name: string,
    /** Only destinations in this region (undefined: every address). */
    private readonly region?: AddressRegion,
  ) {
    super(world, name);
    this.version = world.membership.endpointsVersion;
    for (const e of world.membership.byNamedPort.get(name) ?? []) this.place(e.ip);
  }

  protected holds(_owner: Endpoint, ip: Ip): boolean {
    return !this.region || regionHas(this.region, ip);
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
}

/**
 * The members of a peer set's atoms having a named port (a rule to a group naming a port), caught up
 * from the membership change log: a pod joining the group is one address placed, not every member's
 * ports listed again. Exact only while every address has one endpoint and the set names no IPs (the
 * owner of an IP can change without a membership change): the caller checks {@link SetNamedPorts.usable}.
 */
export class SetNamedPorts extends PortGroups {
  private at: number;

  static usable(world: World, set: PeerSet): boolean {
    return set.ips.size === 0 && world.addressesUnique();
  }

  constructor(
    world: World,
    name: string,
    private readonly set: PeerSet,
  ) {
    super(world, name);
    this.at = world.membership.memberChanges;
    for (const a of set.atoms)
      for (const id of a.members) {
        const e = world.endpoint(id);
        const np = e?.namedPorts?.get(name);
        if (!e || !np) continue;
        const g = this.groupOf(np);
        if (e.ip.v === 4) g.v4.push(e.ip.n);
        else g.v6.push(e.ip.n);
      }
    for (const g of this.groups.values()) {
      g.v4 = [...new Set(g.v4)].sort((x, y) => x - y);
      g.v6 = [...new Set(g.v6)].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    }
  }

  protected holds(owner: Endpoint): boolean {
    return this.set.atoms.some((a) => a.members.has(owner.id));
  }

  /** Catches up; false when it cannot (changes no longer logged, addresses no longer unique): make a new one, or list. */
  sync(): boolean {
    const m = this.world.membership;
    if (this.at === m.memberChanges) return true;
    if (this.at < m.memberLogStart || !SetNamedPorts.usable(this.world, this.set)) return false;
    for (let i = this.at - m.memberLogStart; i < m.memberLog.length; i++) {
      const { atom, ep } = m.memberLog[i]!;
      if (this.set.atoms.includes(atom)) this.place(ep.ip);
    }
    this.at = m.memberChanges;
    return true;
  }
}

/** Is the address in the region (binary search over its sorted ranges)? */
function regionHas(region: AddressRegion, ip: Ip): boolean {
  const xs = ip.v === 4 ? region.v4 : region.v6;
  const n = BigInt(ip.n);
  const at = xs[rangeAtOrAfter(xs, n)];
  return at !== undefined && at.lo <= n;
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
