import { cidrContains, formatIp, ipBlockContains, parseIp, type Ip } from './ip';
import type { Atom, Endpoint } from './membership';
import { peerSetMatches, type CompiledRule, type PeerSet } from './rules';
import type { World } from './world';
import { NamedPortGroups, namedPortMatches, SetNamedPorts } from './named-ports';
import { complement, normalize, subtractRange, V4_MAX, V6_MAX, withAddress, type AddressRange, type AddressRegion, type EnforcementPointModel, type OtherMatch, type PointRule, type PortMatch, type PortProtocol } from './point-model';

/**
 * What one enforcement point must enforce, in addresses and ports instead of identities: the input of
 * the dataplane compilers (realize/nftables). Everything identity-based is resolved here, where the
 * engine's semantics live, so a compiler only has to preserve first-match order over (peer address,
 * protocol, port):
 * - the enforcement point's own side of each rule (the source of `out` rules, the destination of `in`
 *   rules) is decided now: a rule that cannot match this endpoint is left out;
 * - peers are addresses **as they arrive** at this point: a pod SNATed on its way here (overlay node IP,
 *   egress IP) is not in its groups' address sets, exactly as traceflow does not match it by labels;
 * - named ports are resolved against the destination: this endpoint for `in` rules, each possible
 *   destination endpoint for `out` rules (a port box restricted to that endpoint's address).
 */

export { V4_MAX, V6_MAX, normalize, addressText, type AddressRange, type AddressRegion, type PortProtocol, type PortMatch, type OtherMatch, type PointRule, type EnforcementPointModel } from './point-model';

const PORT_PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'sctp'];

/** The enforcement-point name of an endpoint. */
export function pointName(ep: Endpoint): string {
  return ep.kind === 'pod' ? `pod:${ep.name}` : `vm:${ep.name}`;
}

/** Every enforcement point of the world (VM interfaces and pods), sorted by name. */
export function enforcementPoints(world: World): { name: string; kind: 'vm-interface' | 'pod'; owner: string; ip: string }[] {
  return [...world.membership.endpoints.values()]
    .map((ep) => ({ name: pointName(ep), kind: ep.kind, owner: ep.owner, ip: ep.ip.s }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Endpoints named by an enforcement-point reference: `vm:NAME#i` (one interface), `vm:NAME` (every
 * interface), `pod:CLUSTER/NS/POD`, `workload:CLUSTER/NS/NAME` (every pod); undefined when unknown.
 */
export function endpointsOfPoint(world: World, ref: string): Endpoint[] | undefined {
  const m = /^(vm|pod|workload):(.+)$/.exec(ref);
  if (!m) return undefined;
  const [, kind, rest] = m as unknown as [string, string, string];
  if (kind === 'vm') {
    const hash = rest.lastIndexOf('#');
    const vm = hash >= 0 ? rest.slice(0, hash) : rest;
    const eps = world.endpointsOf(vm).filter((e) => e.kind === 'vm-interface');
    if (hash < 0) return eps.length ? [...eps] : undefined;
    const ep = eps.find((e) => e.name === rest);
    return ep ? [ep] : undefined;
  }
  if (kind === 'workload') {
    const eps = world.endpointsOf(rest).filter((e) => e.kind === 'pod');
    return eps.length ? [...eps] : undefined;
  }
  const ns = rest.split('/')[1] ?? '';
  for (const ep of world.membership.podsInNamespace(ns)) if (ep.name === rest) return [ep];
  return undefined;
}

/**
 * What the models of enforcement points share, kept while the world changes (the agent keeps one for its
 * life; `realize` and the bench make one per run): per atom its members' addresses (as destinations, and
 * as sources arriving at points of one set of inside clusters), per peer set its address region, per
 * compiled rule its point rule, the named-port index. Every entry records the versions it was computed
 * from (atom member versions, the world's endpoint, egress-member and topology versions) and is
 * recomputed when they moved, so pod churn recomputes only the regions of the atoms it touched and the
 * point rules built from them; rule objects that did not change stay the same objects, which is what
 * lets realize/nftables reuse first-match plans ({@link CompileCache}).
 */
export class PointModelCache {
  private topology: number;
  private egress: number;
  /** Per atom: its members' addresses as destinations (the same at every point). */
  readonly atomsOut = new Map<Atom, Versioned<AtomAddresses>>();
  /** Per atom: its members having each port name (the IP's owner), for `out` rules naming a port. */
  readonly atomsNamed = new Map<Atom, Versioned<Map<string, readonly Endpoint[]>>>();
  /** Per atom: does a member leave its cluster SNATed (so in rules may not see it as itself)? */
  atomSnats = new Map<Atom, Versioned<boolean>>();
  /** Per endpoint id: {@link leavesAsOther}. */
  snats = new Map<number, boolean>();
  /** Peer regions as destinations (the same at every point), and the `out` point rules built from them. */
  readonly regionsOut = new WeakMap<PeerSet, RegionEntry>();
  readonly rulesOut = new WeakMap<CompiledRule, RuleEntry>();
  /**
   * What sources look like at a point depends on the point only through the clusters whose traffic to it
   * stays inside (no SNAT): per such set of clusters ({@link PeerContext.arrivalKey}), the sources' regions,
   * atoms' addresses and the `in` point rules are shared (every VM outside the clusters' networks has one key).
   */
  arrivals = new Map<string, Arrival>();
  /** Names of the clusters (sorted). */
  clusters?: string[];
  /** Per region and port name: the destinations there having it, grouped per port number ({@link NamedPortGroups}). */
  readonly namedGroups = new WeakMap<AddressRegion, Map<string, NamedPortGroups>>();
  /** Per peer set and port name: its members having that port, grouped per port number ({@link SetNamedPorts}). */
  readonly setNamed = new WeakMap<PeerSet, Map<string, SetNamedPorts>>();
  /** The complement of a region (a negated peer set), the same object while the region is. */
  readonly complements = new WeakMap<AddressRegion, AddressRegion>();
  /** Per point, its rules as last built (the most recently built {@link POINTS_KEPT} points). */
  readonly points = new Map<Endpoint, PointEntry>();

  /** Keeps a point's entry, forgetting the least recently built past {@link POINTS_KEPT}. */
  remember(ep: Endpoint, entry: PointEntry): void {
    this.points.delete(ep);
    this.points.set(ep, entry);
    if (this.points.size > POINTS_KEPT) this.points.delete(this.points.keys().next().value!);
  }

  constructor(readonly world: World) {
    this.topology = world.topologyVersion;
    this.egress = world.egressMembersVersion();
  }

  /**
   * Drops what the world's last changes made stale before a model is built: everything after a topology
   * change (clusters, egress IPs, load balancers, namespaces), the source side after a change of which pods
   * leave by an egress IP. The rest is checked entry by entry against atom versions.
   */
  sync(): void {
    const topology = this.world.topologyVersion;
    const egress = this.world.egressMembersVersion();
    if (topology !== this.topology) {
      this.topology = topology;
      this.atomsOut.clear();
      this.atomsNamed.clear();
      this.clusters = undefined;
      this.resetSources();
      // Regions and rules keyed by peer set or compiled rule: their versions no longer tell; forget them.
      Object.assign(this, { regionsOut: new WeakMap(), rulesOut: new WeakMap(), namedGroups: new WeakMap(), setNamed: new WeakMap() });
    } else if (egress !== this.egress) this.resetSources();
    this.egress = egress;
    // One entry per source endpoint ever seen: under pod churn, ids of endpoints long gone pile up.
    if (this.snats.size > 2 * this.world.membership.endpoints.size + 1024) this.snats = new Map();
  }

  private resetSources(): void {
    this.arrivals = new Map();
    this.atomSnats = new Map();
    this.snats = new Map();
  }
}

/** A cached value and the version sum it was computed from. */
interface Versioned<T> {
  readonly key: number;
  readonly value: T;
}

/** A cached region, and how many membership changes the world had made when it was computed. */
interface RegionEntry extends Versioned<AddressRegion> {
  readonly at: number;
}

/**
 * How many points' rule entries a cache keeps: an agent's points (a host's interfaces and pods) are
 * caught up rule by rule; a compile of every point of an estate builds each once anyway.
 */
const POINTS_KEPT = 256;

/** Past this many membership changes a region is listed again rather than caught up address by address. */
const REGION_CATCH_UP = 512;

/**
 * A cached point rule: valid while its peer region is the same object (region entries are replaced when
 * their atoms' members change) and, for rules that looked up named ports by address, the endpoints are
 * the same. `byPort`: `in` rules naming ports, per this point's values of those names.
 */
interface RuleEntry {
  readonly region: AddressRegion | undefined;
  /** For `out` rules naming ports of their destinations: the version sum of the peer set's atoms. */
  readonly atoms: number | undefined;
  readonly endpoints: number | undefined;
  readonly rule: PointRule | null;
  readonly byPort?: Map<string, PointRule | null>;
}

interface Arrival {
  readonly regions: WeakMap<PeerSet, RegionEntry>;
  readonly rules: WeakMap<CompiledRule, RuleEntry>;
  readonly atoms: Map<Atom, Versioned<AtomAddresses>>;
}

interface AtomAddresses {
  readonly v4: Float64Array;
  readonly v6: readonly bigint[];
}

/** The model of one endpoint's enforcement point (`shared`: see {@link PointModelCache}). */
export function enforcementPointModel(world: World, ep: Endpoint, shared: PointModelCache = new PointModelCache(world)): EnforcementPointModel {
  if (shared.world !== world) throw new Error('enforcementPointModel: the shared cache belongs to another world');
  shared.sync();
  const rules = world.rulesAt(ep).all;
  const ctx = new PeerContext(world, ep, shared);
  const { membership } = world;
  // The point's rules as last built, when its rule list is the same: only rules naming an atom whose
  // members changed since (and rules resolving named ports by address, after endpoints came or went) are
  // built again; the others are the same objects.
  let entry = shared.points.get(ep);
  const stale = entry && entry.rules === rules && entry.arrival === ctx.arrival ? changedRules(entry, world) : undefined;
  if (!entry || !stale) {
    entry = { rules, arrival: ctx.arrival, at: membership.memberChanges, endpoints: membership.endpointsVersion, ...indexRules(rules), in: new Array(rules.length), out: new Array(rules.length) };
    shared.remember(ep, entry);
    rules.forEach((r, i) => buildRule(ctx, entry!, r, i));
  } else {
    entry = { ...entry, at: membership.memberChanges, endpoints: membership.endpointsVersion, in: [...entry.in], out: [...entry.out] };
    shared.remember(ep, entry);
    for (const i of stale) buildRule(ctx, entry, rules[i]!, i);
  }
  const inRules: PointRule[] = [];
  const outRules: PointRule[] = [];
  for (let i = 0; i < rules.length; i++) {
    const x = entry.in[i];
    if (x) inRules.push(x);
    const y = entry.out[i];
    if (y) outRules.push(y);
  }
  // The NetworkPolicy layer sits between application and baseline.
  const place = (list: PointRule[], np: PointRule[]) => {
    const at = list.findIndex((r) => r.category === 'baseline');
    list.splice(at < 0 ? list.length : at, 0, ...np);
  };
  place(inRules, networkPolicyRules(ctx, 'in'));
  place(outRules, networkPolicyRules(ctx, 'out'));
  return { name: pointName(ep), kind: ep.kind, owner: ep.owner, ip: ep.ip.s, defaultAction: world.defaultAction, in: inRules, out: outRules };
}

/**
 * A point's rules as last built ({@link PointModelCache.points}): per compiled rule (by index in the
 * point's list) its point rule per direction, and which rules to build again after which changes.
 */
interface PointEntry {
  readonly rules: readonly CompiledRule[];
  readonly arrival: Arrival;
  /** The world's membership changes and endpoint version when built. */
  readonly at: number;
  readonly endpoints: number;
  /** Per atom, the rules whose peers name it. */
  readonly byAtom: ReadonlyMap<Atom, readonly number[]>;
  /** Rules resolving named ports of destinations: they depend on every endpoint's ports. */
  readonly volatile: readonly number[];
  readonly in: (PointRule | undefined)[];
  readonly out: (PointRule | undefined)[];
}

/** The parts of a {@link PointEntry} that depend only on the rule list, shared by points with one list (endpoints of equal identity). */
const ruleIndexes = new WeakMap<readonly CompiledRule[], Pick<PointEntry, 'byAtom' | 'volatile'>>();
function indexRules(rules: readonly CompiledRule[]): Pick<PointEntry, 'byAtom' | 'volatile'> {
  let known = ruleIndexes.get(rules);
  if (!known) ruleIndexes.set(rules, (known = indexOf(rules)));
  return known;
}

function indexOf(rules: readonly CompiledRule[]): Pick<PointEntry, 'byAtom' | 'volatile'> {
  const byAtom = new Map<Atom, number[]>();
  const volatile: number[] = [];
  rules.forEach((r, i) => {
    for (const set of [r.src, r.dst])
      for (const a of set?.atoms ?? []) {
        const l = byAtom.get(a);
        if (!l) byAtom.set(a, [i]);
        else if (l[l.length - 1] !== i) l.push(i);
      }
    if (r.dirOut && r.services?.some((x) => x.named.length > 0)) volatile.push(i);
  });
  return { byAtom, volatile };
}

/** The rules of an entry that may have changed since it was built; undefined when all may have. */
function changedRules(entry: PointEntry, world: World): Set<number> | undefined {
  const { membership } = world;
  if (membership.memberChanges - entry.at > REGION_CATCH_UP || entry.at < membership.memberLogStart) return undefined;
  const out = new Set<number>();
  for (let i = entry.at - membership.memberLogStart; i < membership.memberLog.length; i++) for (const k of entry.byAtom.get(membership.memberLog[i]!.atom) ?? []) out.add(k);
  if (membership.endpointsVersion !== entry.endpoints) for (const k of entry.volatile) out.add(k);
  return out;
}

function buildRule(ctx: PeerContext, entry: PointEntry, r: CompiledRule, i: number): void {
  entry.in[i] = !r.disabled && r.dirIn ? pointRule(ctx, r, 'in') : undefined;
  entry.out[i] = !r.disabled && r.dirOut ? pointRule(ctx, r, 'out') : undefined;
}

/** Per-point caches: peer regions are shared by many rules (one group, many rules). */
class PeerContext {
  /** Clusters whose traffic to this endpoint stays inside (no SNAT). */
  readonly inside = new Set<string>();
  /** Source-side caches shared with points of the same {@link inside} clusters. */
  readonly arrival: Arrival;
  /** Reused buffer of IPv4 member addresses. */
  scratch = new Float64Array(1024);

  constructor(
    readonly world: World,
    readonly ep: Endpoint,
    readonly shared: PointModelCache,
  ) {
    shared.clusters ??= world.names('KubernetesCluster').sort();
    for (const c of shared.clusters) {
      const cluster = world.clusterState(c);
      if (cluster && staysInside(cluster, { cluster: c }, ep)) this.inside.add(c);
    }
    const key = [...this.inside].join('\n');
    let arrival = shared.arrivals.get(key);
    if (!arrival) shared.arrivals.set(key, (arrival = { regions: new WeakMap(), rules: new WeakMap(), atoms: new Map() }));
    this.arrival = arrival;
  }

  /** {@link arrivesAsItself} with its two parts cached: per source, and per source cluster here. */
  arrives(src: Endpoint): boolean {
    if (src.kind !== 'pod') return true;
    const cluster = this.world.clusterState(src.cluster!);
    if (!cluster) return true;
    if (this.inside.has(src.cluster!)) return true;
    let snat = this.shared.snats.get(src.id);
    if (snat === undefined) this.shared.snats.set(src.id, (snat = leavesAsOther(this.world, src, cluster)));
    return !snat;
  }

  /**
   * Endpoints that a packet addressed to a destination in a peer set of atoms and IPs reaches (the IP's
   * owner) and that have a named port, through the set's atoms (each atom's answer cached with its
   * member version).
   */
  endpointsWithNamedPort(name: string, set: PeerSet): Endpoint[] {
    const found = new Set<Endpoint>();
    for (const a of set.atoms) for (const e of this.atomNamed(a).get(name) ?? []) found.add(e);
    for (const s of set.ips) {
      const owner = this.world.endpointByIp(s);
      if (owner?.namedPorts?.has(name)) found.add(owner);
    }
    return [...found];
  }

  /**
   * `out` matches of a named port towards destinations given by address (any destination, IP blocks, a
   * negated set): per region and name, kept up to date as endpoints come and go ({@link NamedPortGroups}).
   */
  namedByAddress(name: string, region: AddressRegion, accepts: (protocol: string) => boolean): PortMatch[] {
    let perName = this.shared.namedGroups.get(region);
    if (!perName) this.shared.namedGroups.set(region, (perName = new Map()));
    let groups = perName.get(name);
    if (!groups?.sync()) perName.set(name, (groups = new NamedPortGroups(this.world, name, region === FULL ? undefined : region)));
    return groups.matches(accepts);
  }

  /**
   * `out` matches of a named port towards a peer set of atoms: per set and name, caught up from the
   * membership log ({@link SetNamedPorts}) where that is exact, else listed from the atoms' members.
   */
  namedBySet(name: string, set: PeerSet, accepts: (protocol: string) => boolean): PortMatch[] {
    if (!SetNamedPorts.usable(this.world, set)) return namedPortMatches(this.endpointsWithNamedPort(name, set), name, accepts);
    let perName = this.shared.setNamed.get(set);
    if (!perName) this.shared.setNamed.set(set, (perName = new Map()));
    let groups = perName.get(name);
    if (!groups?.sync()) perName.set(name, (groups = new SetNamedPorts(this.world, name, set)));
    return groups.matches(accepts);
  }

  /** An atom's members' addresses' owners, per port name they have. */
  private atomNamed(a: Atom): Map<string, readonly Endpoint[]> {
    const hit = this.shared.atomsNamed.get(a);
    if (hit?.key === a.version) return hit.value;
    const byName = new Map<string, Endpoint[]>();
    for (const id of a.members) {
      const m = this.world.endpoint(id);
      if (!m) continue;
      const owner = m.namedPorts ? (this.world.endpointByIp(m.ip.s) ?? m) : this.world.endpointByIp(m.ip.s);
      if (!owner?.namedPorts || this.world.endpointByIp(owner.ip.s) !== owner) continue;
      for (const n of owner.namedPorts.keys()) {
        let l = byName.get(n);
        if (!l) byName.set(n, (l = []));
        l.push(owner);
      }
    }
    this.shared.atomsNamed.set(a, { key: a.version, value: byName });
    return byName;
  }
}

/** The port names a compiled rule's services use (empty for most rules). */
function namesOf(r: CompiledRule): string[] {
  const out: string[] = [];
  for (const s of r.services ?? []) out.push(...s.named);
  return out;
}

function pointRule(ctx: PeerContext, r: CompiledRule, dir: 'in' | 'out'): PointRule | undefined {
  const self = { ip: ctx.ep.ip, ep: ctx.ep };
  // This endpoint's own side: the destination of in rules, the source of out rules.
  const selfSet = dir === 'in' ? r.dst : r.src;
  const selfNegated = dir === 'in' ? r.dstNegated : r.srcNegated;
  if (selfSet ? peerSetMatches(selfSet, self) === selfNegated : selfNegated) return undefined;
  const cache = dir === 'out' ? ctx.shared.rulesOut : ctx.arrival.rules;
  const peerSet = dir === 'in' ? r.src : r.dst;
  const region = peerSet ? regionOfSet(ctx, peerSet, dir) : undefined;
  // An `in` rule naming ports is the same at every point whose ports of those names are the same.
  const names = dir === 'in' ? namesOf(r) : [];
  const portKey = names.length ? names.map((n) => { const p = ctx.ep.namedPorts?.get(n); return p ? `${p.protocol}/${p.port}` : '-'; }).join(',') : undefined;
  // An `out` rule naming ports of its destinations depends on their ports, not only their addresses: a
  // workload whose port changed keeps its addresses (and the region its object).
  let atoms: number | undefined;
  if (dir === 'out' && peerSet && r.services?.some((x) => x.named.length > 0)) {
    atoms = 0;
    for (const a of peerSet.atoms) atoms += a.version;
  }
  let hit = cache.get(r);
  if (hit && (hit.region !== region || hit.atoms !== atoms || (hit.endpoints !== undefined && hit.endpoints !== ctx.world.membership.endpointsVersion))) hit = undefined;
  if (hit) {
    if (portKey === undefined) return hit.rule ?? undefined;
    const known = hit.byPort?.get(portKey);
    if (known !== undefined) return known ?? undefined;
  }
  const built = peerSideOf(ctx, r, dir, region);
  const entry: RuleEntry = hit ?? { region, atoms, endpoints: built.byAddress ? ctx.world.membership.endpointsVersion : undefined, rule: built.rule ?? null, ...(portKey !== undefined ? { byPort: new Map() } : {}) };
  if (portKey !== undefined) entry.byPort!.set(portKey, built.rule ?? null);
  if (!hit) cache.set(r, entry);
  return built.rule;
}

/**
 * The peer side of a rule whose own side matches this point: its region and ports. `byAddress`: named
 * ports were found through the named-port index, so the result holds only while no endpoint comes or goes.
 */
function peerSideOf(ctx: PeerContext, r: CompiledRule, dir: 'in' | 'out', base: AddressRegion | undefined): { rule: PointRule | undefined; byAddress: boolean } {
  let byAddress = false;
  const done = (rule: PointRule | undefined) => ({ rule, byAddress });
  const peerSet = dir === 'in' ? r.src : r.dst;
  const peerNegated = dir === 'in' ? r.srcNegated : r.dstNegated;
  let peer: AddressRegion;
  if (!peerSet || !base) {
    if (peerNegated) return done(undefined); // "not any": matches nothing
    peer = FULL;
  } else if (peerNegated) {
    let c = ctx.shared.complements.get(base);
    if (!c) ctx.shared.complements.set(base, (c = complement(base)));
    peer = c;
  } else peer = base;
  if (peer.v4.length === 0 && peer.v6.length === 0) return done(undefined);
  const ports: PortMatch[] = [];
  const other: OtherMatch[] = [];
  if (!r.services || r.services.length === 0) {
    for (const p of PORT_PROTOCOLS) ports.push({ protocol: p, lo: 0, hi: 65535 });
    other.push({ protocol: 'any' });
  } else
    for (const s of r.services) {
      const protos = s.protocol === 'any' ? PORT_PROTOCOLS : (PORT_PROTOCOLS as readonly string[]).includes(s.protocol) ? [s.protocol as PortProtocol] : [];
      if (s.protocol === 'icmp' || s.protocol === 'icmpv6') {
        // Ports never match a protocol without ports; ICMP type/code are the only refinement.
        if (s.ranges.length === 0 && s.named.length === 0) other.push({ protocol: s.protocol, icmpType: s.icmpType, icmpCode: s.icmpType === undefined ? undefined : s.icmpCode });
        continue;
      }
      if (s.ranges.length === 0 && s.named.length === 0) {
        for (const p of protos) ports.push({ protocol: p, lo: 0, hi: 65535 });
        if (s.protocol === 'any') other.push({ protocol: 'any' });
        continue;
      }
      for (const p of protos) for (let i = 0; i < s.ranges.length; i += 2) ports.push({ protocol: p, lo: s.ranges[i]!, hi: s.ranges[i + 1]! });
      for (const n of s.named) {
        // A named port matches a flow whose protocol and port are those of the destination's port of that name.
        const byIndex = !peerSet || peerNegated || peerSet.blocks.length > 0;
        if (dir === 'out' && byIndex) byAddress = true;
        const accepts = (protocol: string) => protos.includes(protocol as PortProtocol);
        if (dir === 'in') {
          const np = ctx.ep.namedPorts?.get(n);
          if (np && accepts(np.protocol)) ports.push({ protocol: np.protocol as PortProtocol, lo: np.port, hi: np.port });
        } else if (byIndex) ports.push(...ctx.namedByAddress(n, peer, accepts));
        else ports.push(...ctx.namedBySet(n, peerSet, accepts));
      }
    }
  if (ports.length === 0 && other.length === 0) return done(undefined);
  return done({
    id: `${r.policy.name}/${r.name}`,
    category: r.policy.category as PointRule['category'], // rule lists hold FirewallPolicy rules only (never the NetworkPolicy layer's)
    policy: r.policy.name,
    rule: r.name,
    action: r.action,
    staged: r.policy.staged,
    logged: r.logged,
    peer,
    ports,
    other,
  });
}

const FULL: AddressRegion = { v4: [{ lo: 0n, hi: V4_MAX }], v6: [{ lo: 0n, hi: V6_MAX }] };
const EVERY_PORT: readonly PortMatch[] = PORT_PROTOCOLS.map((p) => ({ protocol: p, lo: 0, hi: 65535 }));

/**
 * The NetworkPolicy layer of a pod as point rules (engine/netpol.ts semantics): every rule of the
 * policies isolating it in this direction as an allow, then (ingress) its node's address, then a drop of
 * everything: first match over allow-only rules and a final drop is their union.
 */
function networkPolicyRules(ctx: PeerContext, dir: 'in' | 'out'): PointRule[] {
  const nps = ctx.world.networkPoliciesAt(ctx.ep, dir);
  if (!nps) return [];
  const out: PointRule[] = [];
  const mk = (policy: string, rule: string, action: 'allow' | 'drop', peer: AddressRegion, ports: readonly PortMatch[], other: readonly OtherMatch[]): PointRule => ({ id: `${policy}/${rule}`, category: 'kubernetes', policy, rule, action, staged: false, logged: false, peer, ports, other });
  for (const np of nps) {
    for (const r of (dir === 'in' ? np.ingress : np.egress)!.rules) {
      const peerSet: PeerSet | undefined = r.peers ? { atoms: r.peers.flatMap((p) => (p.atom ? [p.atom] : [])), blocks: r.peers.flatMap((p) => (p.block ? [p.block] : [])), ips: new Set() } : undefined;
      const peer = peerSet ? regionOfSet(ctx, peerSet, dir) : FULL;
      if (peer.v4.length === 0 && peer.v6.length === 0) continue;
      const ports: PortMatch[] = [];
      if (r.ports)
        for (const p of r.ports) {
          if (p.named === undefined) {
            if (p.lo <= p.hi) ports.push({ protocol: p.protocol, lo: p.lo, hi: p.hi });
            continue;
          }
          // A named port is the destination's: this pod for ingress, each possible destination for egress.
          const accepts = (protocol: string) => protocol === p.protocol;
          if (dir === 'in') {
            const np2 = ctx.ep.namedPorts?.get(p.named);
            if (np2 && accepts(np2.protocol)) ports.push({ protocol: p.protocol, lo: np2.port, hi: np2.port });
          } else if (!peerSet || peerSet.blocks.length > 0) ports.push(...ctx.namedByAddress(p.named, peer, accepts));
          else ports.push(...ctx.namedBySet(p.named, peerSet, accepts));
        }
      const other: OtherMatch[] = r.ports ? [] : [{ protocol: 'any' }];
      if (!r.ports) ports.push(...EVERY_PORT);
      if (ports.length === 0 && other.length === 0) continue;
      out.push(mk(np.key, r.decision.name, 'allow', peer, ports, other));
    }
  }
  const first = (dir === 'in' ? nps[0]!.ingress : nps[0]!.egress)!;
  const nodeIp = dir === 'in' && ctx.ep.node !== undefined ? ctx.world.clusterState(ctx.ep.cluster!)?.nodeIps.get(ctx.ep.node) : undefined;
  if (nodeIp) {
    const n = BigInt(nodeIp.n);
    out.push(mk(nps[0]!.key, first.fromNode.name, 'allow', nodeIp.v === 4 ? { v4: [{ lo: n, hi: n }], v6: [] } : { v4: [], v6: [{ lo: n, hi: n }] }, EVERY_PORT, [{ protocol: 'any' }]));
  }
  out.push(mk(nps[0]!.key, first.isolated.name, 'drop', FULL, EVERY_PORT, [{ protocol: 'any' }]));
  return out;
}

/** Addresses of a peer set as packets carry them at this point (see the module comment). */
function regionOfSet(ctx: PeerContext, set: PeerSet, dir: 'in' | 'out'): AddressRegion {
  const cache = dir === 'out' ? ctx.shared.regionsOut : ctx.arrival.regions;
  let key = 0;
  for (const a of set.atoms) key += a.version;
  const cached = cache.get(set);
  if (cached?.key === key) return cached.value;
  const at = ctx.world.membership.memberChanges;
  if (cached) {
    const caught = catchUp(ctx, set, dir, cached, at);
    if (caught) {
      cache.set(set, { key, value: caught, at });
      return caught;
    }
  }
  // IPv4 members as numbers, sorted and merged into runs before any bigint is made: a set of thousands
  // of pods becomes a few ranges, and this was most of a point's model (bigint ranges per member). Each
  // atom's addresses are listed once per point and direction (many sets share atoms).
  let points = ctx.scratch;
  let np = 0;
  const v4: AddressRange[] = [];
  const v6: AddressRange[] = [];
  const push = (n: number) => {
    if (np === points.length) {
      const grown = new Float64Array(points.length * 2);
      grown.set(points);
      points = ctx.scratch = grown;
    }
    points[np++] = n;
  };
  const add = (ip: Ip) => (ip.v === 6 ? v6.push({ lo: ip.n, hi: ip.n }) : push(ip.n));
  for (const a of set.atoms) {
    const { v4: a4, v6: a6 } = atomAddresses(ctx, a, dir);
    for (let i = 0; i < a4.length; i++) push(a4[i]!);
    for (const x of a6) v6.push({ lo: x, hi: x });
  }
  for (const s of set.ips) {
    const ip = parseIp(s);
    if (ip) add(ip);
  }
  if (np) {
    const sorted = points.subarray(0, np).sort();
    let lo = sorted[0]!;
    let hi = lo;
    for (let i = 1; i < np; i++) {
      const x = sorted[i]!;
      if (x <= hi + 1) {
        if (x > hi) hi = x;
        continue;
      }
      v4.push({ lo: BigInt(lo), hi: BigInt(hi) });
      lo = hi = x;
    }
    v4.push({ lo: BigInt(lo), hi: BigInt(hi) });
  }
  for (const b of set.blocks) {
    const list = b.cidr.v === 4 ? v4 : v6;
    let pieces: AddressRange[] = [{ lo: BigInt(b.cidr.lo), hi: BigInt(b.cidr.hi) }];
    for (const e of b.except) if (e.v === b.cidr.v) pieces = subtractRange(pieces, { lo: BigInt(e.lo), hi: BigInt(e.hi) });
    list.push(...pieces);
  }
  const r = { v4: set.blocks.length ? normalize(v4) : v4, v6: normalize(v6) };
  cache.set(set, { key, value: r, at });
  return r;
}

/**
 * A peer set's region brought up to date from the membership changes since it was computed (pod churn:
 * a few addresses join or leave one group), instead of listing every member again: each address an
 * endpoint of the set's atoms gained or lost is looked up as it is now. Undefined when it cannot be
 * (too many changes, changes no longer logged, addresses shared by endpoints): then the set is listed.
 */
function catchUp(ctx: PeerContext, set: PeerSet, dir: 'in' | 'out', cached: RegionEntry, at: number): AddressRegion | undefined {
  const { membership } = ctx.world;
  if (at - cached.at > REGION_CATCH_UP || cached.at < membership.memberLogStart || !ctx.world.addressesUnique()) return undefined;
  const atoms = set.atoms.length > 8 ? new Set(set.atoms) : set.atoms;
  const mine = (a: Atom) => (atoms instanceof Set ? atoms.has(a) : atoms.includes(a));
  let { v4, v6 } = cached.value;
  const seen = new Set<string>();
  for (let i = cached.at - membership.memberLogStart; i < membership.memberLog.length; i++) {
    const { atom, ep } = membership.memberLog[i]!;
    if (!mine(atom) || seen.has(ep.ip.s)) continue;
    seen.add(ep.ip.s);
    const ip = ep.ip;
    // Now, with unique addresses: the address's endpoint in one of the atoms (arriving as itself here),
    // one of the set's IPs, or inside one of its blocks.
    const owner = ctx.world.endpointByIp(ip.s);
    const present =
      (owner !== undefined && set.atoms.some((a) => a.members.has(owner.id)) && (dir === 'out' || ctx.arrives(owner))) ||
      (set.ips.size > 0 && [...set.ips].some((x) => parseIp(x)?.s === ip.s)) ||
      set.blocks.some((b) => ipBlockContains(b, ip));
    if (ip.v === 4) v4 = withAddress(v4, BigInt(ip.n), present);
    else v6 = withAddress(v6, ip.n, present);
  }
  return v4 === cached.value.v4 && v6 === cached.value.v6 ? cached.value : { v4, v6 };
}

function atomMaySnat(ctx: PeerContext, a: Atom): boolean {
  const hit = ctx.shared.atomSnats.get(a);
  if (hit?.key === a.version) return hit.value;
  const snats = memberMaySnat(ctx, a);
  ctx.shared.atomSnats.set(a, { key: a.version, value: snats });
  return snats;
}

/**
 * An atom's member addresses as they arrive at this point in a direction (IPv4 as numbers): as
 * destinations they are the members' own (shared by every point); as sources too, unless a member leaves
 * its cluster SNATed, then per point.
 */
function atomAddresses(ctx: PeerContext, a: Atom, dir: 'in' | 'out'): AtomAddresses {
  const { shared } = ctx;
  let out = shared.atomsOut.get(a);
  if (out?.key !== a.version) shared.atomsOut.set(a, (out = { key: a.version, value: listAddresses(ctx, a, undefined) }));
  if (dir === 'out' || !atomMaySnat(ctx, a)) return out.value;
  let inn = ctx.arrival.atoms.get(a);
  if (inn?.key !== a.version) ctx.arrival.atoms.set(a, (inn = { key: a.version, value: listAddresses(ctx, a, (m) => ctx.arrives(m)) }));
  return inn.value;
}

/** Does some member leave its cluster under another address (towards a point outside the cluster)? */
function memberMaySnat(ctx: PeerContext, a: Atom): boolean {
  for (const id of a.members) {
    const m = ctx.world.endpoint(id);
    if (!m || m.kind !== 'pod') continue;
    const cluster = ctx.world.clusterState(m.cluster!);
    if (!cluster) continue;
    let snat = ctx.shared.snats.get(id);
    if (snat === undefined) ctx.shared.snats.set(id, (snat = leavesAsOther(ctx.world, m, cluster)));
    if (snat) return true;
  }
  return false;
}

function listAddresses(ctx: PeerContext, a: Atom, keep: ((m: Endpoint) => boolean) | undefined): AtomAddresses {
  const v4 = new Float64Array(a.members.size);
  const v6: bigint[] = [];
  let n = 0;
  for (const id of a.members) {
    const m = ctx.world.endpoint(id);
    if (!m || (keep && !keep(m))) continue;
    if (m.ip.v === 4) v4[n++] = m.ip.n;
    else v6.push(m.ip.n);
  }
  return { v4: v4.subarray(0, n), v6 };
}

/**
 * Does a packet from endpoint `src` to `dst` keep `src`'s address? Mirrors traceflow's SNAT step: a pod
 * leaving its cluster is SNATed to its egress IP, or in overlay mode to its node's IP.
 */
export function arrivesAsItself(world: World, src: Endpoint, dst: Endpoint): boolean {
  if (src.kind !== 'pod') return true;
  const cluster = world.clusterState(src.cluster!);
  if (!cluster) return true;
  return staysInside(cluster, src, dst) || !leavesAsOther(world, src, cluster);
}

type ClusterOf = NonNullable<ReturnType<World['clusterState']>>;

/** Does traffic from pod `src` of `cluster` to `dst` stay inside the cluster (pod or service network)? */
function staysInside(cluster: ClusterOf, src: Pick<Endpoint, 'cluster'>, dst: Endpoint): boolean {
  return (dst.kind === 'pod' && dst.cluster === src.cluster) || !!(cluster.podCidr && cidrContains(cluster.podCidr, dst.ip)) || !!(cluster.serviceCidr && cidrContains(cluster.serviceCidr, dst.ip));
}

/** Is pod `src` SNATed when it leaves its cluster: to its egress IP, or in overlay mode to its node's IP? */
function leavesAsOther(world: World, src: Endpoint, cluster: ClusterOf): boolean {
  if (world.egressFor(src)) return true;
  return cluster.spec.networkMode === 'overlay' && !!cluster.nodeIps.get(src.node!);
}
