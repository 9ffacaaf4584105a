import type { z } from 'zod';
import type { SpecOf } from '../model';
import type { peer as peerSchema, service as serviceSchema } from '../model/common';
import { ipBlockContains, parseCidr, parseIp, type Ip, type IpBlockMatcher } from './ip';
import type { Membership, PodSelectorSpec } from './membership';
import type { Addr, Atom, Category, CompiledPolicy, CompiledRule, CompiledService, Endpoint, FlowService, IndexedRules, PeerSet, RuleIndex } from './types';

// Moved to the leaf module types.ts; re-exported for importers of this module.
export type { Action, Addr, Category, CompiledPolicy, CompiledRule, CompiledService, FlowService, IndexedRules, PeerSet, RuleIndex } from './types';

/** Rank of each layer of a side ({@link Category}) in evaluation order. */
export const CATEGORY_RANK: Readonly<Record<Category, number>> = { emergency: 0, infrastructure: 1, environment: 2, application: 3, kubernetes: 4, baseline: 5 };
export const APPLICATION_RANK = 3;
export const KUBERNETES_RANK = 4;
export const BASELINE_RANK = 5;

/**
 * A first-match scan is made in two phases around the NetworkPolicy layer: `main` covers emergency to
 * application and ends (undefined) at a pass from application or when no rule matched; `baseline` covers
 * the baseline category and ends (undefined: the default rule) at a pass or when no rule matched.
 */
export type Phase = 'main' | 'baseline';

export function peerSetMatches(s: PeerSet, a: Addr): boolean {
  if (a.ep) for (const atom of s.atoms) if (atom.members.has(a.ep.id)) return true;
  if (s.ips.size && s.ips.has(a.ip.s)) return true;
  for (const b of s.blocks) if (ipBlockContains(b, a.ip)) return true;
  return false;
}

export function servicesMatch(services: readonly CompiledService[] | undefined, f: FlowService, dst: Endpoint | undefined): boolean {
  if (!services || services.length === 0) return true;
  for (const s of services) {
    if (s.protocol !== 'any' && s.protocol !== f.protocol) continue;
    if (s.icmpType !== undefined && (f.icmpType !== s.icmpType || (s.icmpCode !== undefined && f.icmpCode !== s.icmpCode))) continue;
    if (s.ranges.length === 0 && s.named.length === 0) return true;
    if (f.port === undefined) continue;
    for (let i = 0; i < s.ranges.length; i += 2) if (f.port >= s.ranges[i]! && f.port <= s.ranges[i + 1]!) return true;
    if (dst?.namedPorts) {
      for (const n of s.named) {
        const np = dst.namedPorts.get(n);
        if (np && np.port === f.port && np.protocol === f.protocol) return true;
      }
    }
  }
  return false;
}

/** Does `rule` apply at endpoint `ep`? (policy and rule appliedTo both contain it). */
export function appliesAt(rule: CompiledRule, ep: Endpoint): boolean {
  for (const req of rule.appliedTo) {
    let ok = false;
    for (const a of req) if (ep.atoms.has(a)) { ok = true; break; }
    if (!ok) return false;
  }
  return true;
}

/** Resolves references while compiling. */
export interface CompileContext {
  readonly membership: Membership;
  /** Flattened nested group, or undefined when unknown (a rule referencing it then matches nothing). */
  group(name: string): PeerSet | undefined;
  podSelector(name: string): PodSelectorSpec | undefined;
}

type RuleSpec = NonNullable<SpecOf['FirewallPolicy']['rules']>[number] | SpecOf['FirewallRule'];
type PeerSpec = z.output<typeof peerSchema>;
type ServiceSpec = z.output<typeof serviceSchema>;

const EMPTY: PeerSet = { atoms: [], blocks: [], ips: new Set() };

export function compilePeers(ctx: CompileContext, peers: readonly PeerSpec[] | undefined, deps: Set<string>): PeerSet | undefined {
  if (!peers || peers.length === 0) return undefined;
  if (peers.length === 1 && peers[0]!.group !== undefined) {
    // The common case: one group. Share its flattened set (read-only) instead of copying it per rule.
    deps.add(`group:${peers[0]!.group}`);
    return ctx.group(peers[0]!.group) ?? EMPTY;
  }
  const atoms = new Set<Atom>();
  const blocks: IpBlockMatcher[] = [];
  const ips = new Set<string>();
  const m = ctx.membership;
  for (const p of peers) {
    if (p.group !== undefined) {
      deps.add(`group:${p.group}`);
      const g = ctx.group(p.group) ?? EMPTY;
      g.atoms.forEach((a) => atoms.add(a));
      blocks.push(...g.blocks);
      g.ips.forEach((i) => ips.add(i));
    } else if (p.podSelector) atoms.add(m.podSelectorAtom(p.podSelector));
    else if (p.podSelectorRef !== undefined) {
      deps.add(`psel:${p.podSelectorRef}`);
      const s = ctx.podSelector(p.podSelectorRef);
      if (s) atoms.add(m.podSelectorAtom(s));
    } else if (p.vmSelector) atoms.add(m.vmSelectorAtom(p.vmSelector));
    else if (p.vm !== undefined) atoms.add(m.ownerAtom('vm-interface', p.vm));
    else if (p.workload !== undefined) atoms.add(m.ownerAtom('pod', p.workload));
    else if (p.cidr !== undefined) {
      const b = compileBlock(p.cidr, p.except);
      if (b) blocks.push(b);
    }
  }
  return { atoms: [...atoms], blocks, ips };
}

export function compileBlock(cidr: string, except: readonly string[] | undefined): IpBlockMatcher | undefined {
  const c = parseCidr(cidr);
  if (!c) return undefined;
  return { cidr: c, except: (except ?? []).map((e) => parseCidr(e)).filter((x) => x !== undefined) };
}

/** Group names → atoms for appliedTo (IP blocks never are enforcement points). */
export function compileAppliedTo(ctx: CompileContext, groups: readonly string[] | undefined, deps: Set<string>): Atom[] | undefined {
  if (!groups || groups.length === 0) return undefined;
  const atoms = new Set<Atom>();
  for (const g of groups) {
    deps.add(`group:${g}`);
    ctx.group(g)?.atoms.forEach((a) => atoms.add(a));
  }
  return [...atoms];
}

export function compileServices(services: readonly ServiceSpec[] | undefined): CompiledService[] | undefined {
  if (!services || services.length === 0) return undefined;
  return services.map((s) => {
    const ranges: number[] = [];
    const named: string[] = [];
    for (const p of s.ports ?? []) {
      if (typeof p === 'number') ranges.push(p, p);
      else {
        const m = /^(\d+)-(\d+)$/.exec(p);
        if (m) ranges.push(Number(m[1]), Number(m[2]));
        else if (/^\d+$/.test(p)) ranges.push(Number(p), Number(p));
        else named.push(p);
      }
    }
    return { protocol: s.protocol, ranges, named, icmpType: s.icmpType, icmpCode: s.icmpCode };
  });
}

/** Compiles one policy with its rules (inline, or standalone sorted by priority then name). */
export function compilePolicy(
  ctx: CompileContext,
  p: { name: string; category: Category; priority: number; staged: boolean; quarantine: boolean; appliedTo?: readonly string[] },
  rules: readonly RuleSpec[],
): CompiledPolicy {
  const deps = new Set<string>();
  const policyApplied = compileAppliedTo(ctx, p.appliedTo, deps);
  const policy: CompiledPolicy = { name: p.name, category: p.category, catRank: CATEGORY_RANK[p.category], priority: p.priority, staged: p.staged, quarantine: p.quarantine, rank: 0, rules: [], deps };
  rules.forEach((r, index) => {
    const ruleApplied = compileAppliedTo(ctx, r.appliedTo, deps);
    const appliedTo: Atom[][] = [];
    if (policyApplied) appliedTo.push(policyApplied);
    if (ruleApplied) appliedTo.push(ruleApplied);
    policy.rules.push({
      policy,
      index,
      name: r.name ?? `rule-${index}`,
      action: r.action,
      dirIn: r.direction !== 'out',
      dirOut: r.direction !== 'in',
      disabled: r.disabled,
      logged: r.logged,
      appliedTo,
      src: compilePeers(ctx, r.sources, deps),
      srcNegated: r.sourcesExcluded,
      dst: compilePeers(ctx, r.destinations, deps),
      dstNegated: r.destinationsExcluded,
      services: compileServices(r.services),
    });
  });
  return policy;
}

/** Global policy order: category, quarantine first, priority, name. */
export function comparePolicies(a: CompiledPolicy, b: CompiledPolicy): number {
  return a.catRank - b.catRank || Number(b.quarantine) - Number(a.quarantine) || a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export function compareRules(a: CompiledRule, b: CompiledRule): number {
  return a.policy.rank - b.policy.rank || a.index - b.index;
}

/** Does the rule match the flow at this side (appliedTo is checked by the caller)? */
export function ruleMatches(r: CompiledRule, src: Addr, dst: Addr, f: FlowService): boolean {
  if (r.disabled) return false;
  // Services first: integer compares that reject most candidates before any membership lookup.
  if (r.services !== undefined && !servicesMatch(r.services, f, dst.ep)) return false;
  if (r.src) {
    if (peerSetMatches(r.src, src) === r.srcNegated) return false;
  } else if (r.srcNegated) return false;
  if (r.dst) {
    if (peerSetMatches(r.dst, dst) === r.dstNegated) return false;
  } else if (r.dstNegated) return false;
  return true;
}

/**
 * First matching rule of an ordered list in one {@link Phase}, with pass semantics: pass leaves the current
 * category and every later category before application and resumes at the application category; a pass
 * from application or baseline ends the phase. Returns undefined when the phase decides nothing.
 */
export function firstMatch(rules: readonly CompiledRule[], src: Addr, dst: Addr, f: FlowService, phase: Phase = 'main'): CompiledRule | undefined {
  let minRank = phase === 'main' ? -1 : BASELINE_RANK;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (r.policy.catRank < minRank) continue;
    if (phase === 'main' && r.policy.catRank > APPLICATION_RANK) return undefined;
    if (!ruleMatches(r, src, dst, f)) continue;
    if (r.action !== 'pass') return r;
    if (r.policy.catRank >= APPLICATION_RANK) return undefined;
    minRank = APPLICATION_RANK;
  }
  return undefined;
}

const HEADER = 3;
const IP_BIAS = 2 ** 31;

/** Flow protocols with their own service buckets ('any' is a service protocol, never a flow's). */
export const PROTOCOL_IDS: Readonly<Record<string, number>> = { tcp: 0, udp: 1, sctp: 2, icmp: 3, icmpv6: 4 };
const PROTOCOLS = ['tcp', 'udp', 'sctp', 'icmp', 'icmpv6'] as const;

/**
 * An index over an ordered list. Nothing is scanned here: per-protocol bounds and per-interval buckets
 * are built by the first flow that needs them, so a new or rebuilt list (a pod add or relabel) pays only
 * for the protocol and port its first verdict uses.
 */
export function indexRules(rules: readonly CompiledRule[], peer: 'src' | 'dst'): IndexedRules {
  return { rules, peer, bounds: new Array<Float64Array | undefined>(PROTOCOLS.length).fill(undefined), buckets: new Array<(RuleIndex | undefined)[] | undefined>(PROTOCOLS.length).fill(undefined) };
}

/** The port-interval starts of one protocol (every range bound of a service that can carry it is an edge). */
function boundsFor(ix: IndexedRules, p: number): Float64Array {
  let b = ix.bounds[p];
  if (b !== undefined) return b;
  const proto = PROTOCOLS[p]!;
  const edges = new Set<number>();
  for (const r of ix.rules) {
    if (r.disabled || !r.services) continue;
    for (const s of r.services) {
      if (s.protocol !== 'any' && s.protocol !== proto) continue;
      for (let i = 0; i < s.ranges.length; i += 2) edges.add(s.ranges[i]!).add(s.ranges[i + 1]! + 1);
    }
  }
  b = new Float64Array(edges.size + 1);
  b[0] = -Infinity;
  let k = 1;
  for (const e of edges) b[k++] = e;
  b.sort();
  ix.bounds[p] = b;
  ix.buckets[p] = new Array<RuleIndex | undefined>(b.length + 1).fill(undefined);
  return b;
}

/** Can a service list match protocol `proto` with a port in [lo, hi] (port undefined when lo is NaN)? */
function servicesCanMatch(services: readonly CompiledService[] | undefined, proto: string, lo: number): boolean {
  if (!services || services.length === 0) return true;
  for (const s of services) {
    if (s.protocol !== 'any' && s.protocol !== proto) continue;
    if (s.ranges.length === 0 && s.named.length === 0) return true;
    if (Number.isNaN(lo)) continue; // ports required, the flow has none
    // Named ports depend on the destination endpoint (lists are shared by endpoints): any port may match.
    if (s.named.length) return true;
    // Interval edges include every range bound, so the interval is inside a range iff its start is.
    for (let i = 0; i < s.ranges.length; i += 2) if (lo >= s.ranges[i]! && lo <= s.ranges[i + 1]!) return true;
  }
  return false;
}

/** The sub-index for a flow's protocol and port, built on first use. */
function bucketFor(ix: IndexedRules, protocol: string, port: number | undefined): RuleIndex {
  const p = PROTOCOL_IDS[protocol];
  if (p === undefined) return (ix.all ??= buildRuleIndex(ix.rules, ix.peer, undefined, NaN));
  const b = boundsFor(ix, p);
  let bucket = 0;
  if (port !== undefined) {
    // Largest i with b[i] <= port (b[0] is -Infinity).
    let lo = 0;
    let hi = b.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (b[mid]! <= port) lo = mid;
      else hi = mid - 1;
    }
    bucket = lo + 1;
  }
  const row = ix.buckets[p]!;
  let idx = row[bucket];
  if (idx === undefined) {
    idx = buildRuleIndex(ix.rules, ix.peer, PROTOCOLS[p], bucket === 0 ? NaN : b[bucket - 1]!);
    row[bucket] = idx;
  }
  return idx;
}

/** IPv4 addresses of a peer set's `ips` (undefined when one is IPv6), parsed once per set: sets are immutable and shared. */
const parsedIps = new WeakMap<PeerSet, number[] | undefined>();

function ipv4sOf(set: PeerSet): number[] | undefined {
  if (parsedIps.has(set)) return parsedIps.get(set);
  let out: number[] | undefined = [];
  for (const ip of set.ips) {
    const x = parseIp(ip);
    if (x?.v === 4) out.push(x.n);
    else {
      out = undefined;
      break;
    }
  }
  parsedIps.set(set, out);
  return out;
}

/**
 * Entry flags (an entry is `position * 4 + flags`, so entries sort and dedupe by position): the rule's
 * services match every flow of the bucket (no named port or ICMP type to check), and the rule was reached
 * through one of the varying peer's atoms (its peer set holds the peer). A verdict skips those checks.
 */
const SERVICE_CERTAIN = 1;
const PEER_CERTAIN = 2;

/** Do the services match every flow of protocol `proto` with a port in the interval starting at `lo` (NaN: no port)? */
function servicesCertain(services: readonly CompiledService[] | undefined, proto: string | undefined, lo: number): boolean {
  if (!services || services.length === 0) return true;
  if (proto === undefined) return false;
  for (const s of services) {
    if (s.protocol !== 'any' && s.protocol !== proto) continue;
    if (s.icmpType !== undefined) continue; // depends on the flow's ICMP type and code
    if (s.ranges.length === 0 && s.named.length === 0) return true;
    if (Number.isNaN(lo)) continue;
    for (let i = 0; i < s.ranges.length; i += 2) if (lo >= s.ranges[i]! && lo <= s.ranges[i + 1]!) return true;
  }
  return false;
}

/**
 * The sub-index of the rules whose services can match `proto` at ports from `portStart` (NaN: no port);
 * every rule when `proto` is undefined.
 */
export function buildRuleIndex(rules: readonly CompiledRule[], peer: 'src' | 'dst', proto: string | undefined, portStart: number): RuleIndex {
  const always: number[] = [];
  const pairs: number[] = []; // atomId * m + entry, sorted below: ids ascending, positions ascending per id
  const ranges: number[] = []; // (lo, hi, entry) of IPv4 blocks and IPs
  const m = 4 * rules.length + 4;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (r.disabled) continue; // cannot match
    if (proto !== undefined && !servicesCanMatch(r.services, proto, portStart)) continue;
    // Entry: position * 4, + SERVICE_CERTAIN when every flow of this bucket matches the services.
    const e = 4 * i + (servicesCertain(r.services, proto, portStart) ? SERVICE_CERTAIN : 0);
    const set = peer === 'src' ? r.src : r.dst;
    const negated = peer === 'src' ? r.srcNegated : r.dstNegated;
    if (!set || negated) {
      always.push(e);
      continue;
    }
    let v6 = false;
    for (const b of set.blocks) if (b.cidr.v !== 4) v6 = true;
    const ips = set.ips.size ? ipv4sOf(set) : undefined;
    if (v6 || (set.ips.size && ips === undefined)) {
      always.push(e);
      continue;
    }
    if (ips) for (const n of ips) ranges.push(n, n, e);
    // Exceptions are left to ruleMatches: the block's whole CIDR makes the rule a candidate.
    for (const b of set.blocks) ranges.push(b.cidr.lo as number, b.cidr.hi as number, e);
    // Reached through one of the peer's atoms, a rule's (non-negated) peer set holds the peer.
    for (const a of set.atoms) pairs.push(a.id * m + e + PEER_CERTAIN);
  }
  // One numeric sort of packed (atom id, position) keys: no comparator call per comparison.
  const sorted = Float64Array.from(pairs).sort();
  let nKeys = 0;
  for (let k = 0; k < sorted.length; k++) if (k === 0 || Math.floor(sorted[k]! / m) !== Math.floor(sorted[k - 1]! / m)) nKeys++;
  // Elementary IPv4 intervals: every block start and end+1 is an edge, so each interval is wholly inside
  // or outside every block. Blocks per list are few (tens), so the quadratic fill is cheap. An edge past
  // 255.255.255.255 starts an interval no address falls in: dropped (it would not fit the signed bias).
  const edges = new Set<number>();
  for (let k = 0; k < ranges.length; k += 3) {
    edges.add(ranges[k]!);
    if (ranges[k + 1]! + 1 < 2 ** 32) edges.add(ranges[k + 1]! + 1);
  }
  const ipStarts = Float64Array.from(edges).sort();
  const ipRuns: number[][] = [];
  let nIpPos = 0;
  for (let e = 0; e < ipStarts.length; e++) {
    const start = ipStarts[e]!;
    const run: number[] = [];
    // Ranges were pushed in position order, but a rule's several blocks may repeat a position: dedupe.
    for (let k = 0; k < ranges.length; k += 3) if (start >= ranges[k]! && start <= ranges[k + 1]! && run[run.length - 1] !== ranges[k + 2]!) run.push(ranges[k + 2]!);
    ipRuns.push(run);
    nIpPos += run.length;
  }
  const nIp = ipStarts.length;
  const O = HEADER + nKeys;
  const S = O + nKeys + 1 + sorted.length;
  const A = S + nIp + nIp + 1 + nIpPos;
  const d = new Int32Array(A + always.length);
  d[0] = nKeys;
  d[1] = nIp;
  d[2] = A;
  let kk = -1;
  let w = O + nKeys + 1;
  for (let k = 0; k < sorted.length; k++) {
    const id = Math.floor(sorted[k]! / m);
    if (kk < 0 || d[HEADER + kk] !== id) {
      d[HEADER + ++kk] = id;
      d[O + kk] = w;
    }
    d[w++] = sorted[k]! - id * m;
  }
  d[O + nKeys] = S;
  w = S + nIp + nIp + 1;
  for (let e = 0; e < nIp; e++) {
    d[S + e] = ipStarts[e]! - IP_BIAS;
    d[S + nIp + e] = w;
    for (const pos of ipRuns[e]!) d[w++] = pos;
  }
  d[S + nIp + nIp] = A;
  for (let k = 0; k < always.length; k++) d[A + k] = always[k]!;
  return d;
}

/** Scratch buffer for candidate positions; verdicts are synchronous, so one buffer per process is enough. */
let scratch = new Int32Array(256);

function appendPositions(src: Int32Array, from: number, to: number, n: number): number {
  if (n + to - from > scratch.length) {
    const bigger = new Int32Array(Math.max(scratch.length * 2, n + to - from));
    bigger.set(scratch);
    scratch = bigger;
  }
  // A plain loop: subarray() would allocate a view per lookup, and this runs per verdict.
  for (let k = from; k < to; k++) scratch[n++] = src[k]!;
  return n;
}

/**
 * {@link firstMatch} over an indexed list (same phase). `peerIds` are the sorted atom ids of the varying peer's
 * endpoint, undefined when the peer is not a managed endpoint (an external or SNATed address); `peerIp`
 * is the varying peer's address as this firewall sees it.
 */
export function firstMatchIndexed(ix: IndexedRules, peerIds: Int32Array | undefined, peerIp: Ip, src: Addr, dst: Addr, f: FlowService, phase: Phase = 'main'): CompiledRule | undefined {
  const rules = ix.rules;
  const d = bucketFor(ix, f.protocol, f.port);
  let n = 0;
  let lists = 0;
  const nKeys = d[0]!;
  const O = HEADER + nKeys;
  if (peerIds !== undefined && nKeys !== 0) {
    for (let j = 0; j < peerIds.length; j++) {
      const id = peerIds[j]!;
      // Binary search: keys can be thousands long (a workload under 10,000 policies), peers have few atoms.
      let lo = HEADER;
      let hi = O - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const k = d[mid]!;
        if (k < id) lo = mid + 1;
        else if (k > id) hi = mid - 1;
        else {
          n = appendPositions(d, d[mid + nKeys]!, d[mid + nKeys + 1]!, n);
          lists++;
          break;
        }
      }
    }
  }
  const nIp = d[1]!;
  if (peerIp.v === 4 && nIp !== 0) {
    const S = d[O + nKeys]!;
    const ip = peerIp.n - IP_BIAS;
    if (ip >= d[S]!) {
      let lo = S;
      let hi = S + nIp - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (d[mid]! <= ip) lo = mid;
        else hi = mid - 1;
      }
      const from = d[lo + nIp]!;
      const to = d[lo + nIp + 1]!;
      if (to > from) {
        n = appendPositions(d, from, to, n);
        lists++;
      }
    }
  }
  if (lists > 1 && n > 64) scratch.subarray(0, n).sort();
  else if (lists > 1) {
    // Insertion sort: a handful of sorted runs, no allocation (typed-array sort needs a subarray view).
    for (let i = 1; i < n; i++) {
      const v = scratch[i]!;
      let j = i - 1;
      while (j >= 0 && scratch[j]! > v) {
        scratch[j + 1] = scratch[j]!;
        j--;
      }
      scratch[j + 1] = v;
    }
  }
  let a = d[2]!;
  const aEnd = d.length;
  let b = 0;
  let last = -1;
  let minRank = phase === 'main' ? -1 : BASELINE_RANK;
  const main = phase === 'main';
  const peerIsSrc = ix.peer === 'src';
  while (a < aEnd || b < n) {
    let e: number;
    if (b >= n || (a < aEnd && d[a]! <= scratch[b]!)) e = d[a++]!;
    else e = scratch[b++]!;
    const pos = e >> 2;
    // The same rule reached through two of the peer's atoms, or an atom and a block. Entries of one
    // position sort without PEER_CERTAIN first, so the one kept is checked in full when in doubt.
    if (pos === last) continue;
    last = pos;
    const r = rules[pos]!;
    if (minRank >= 0 && r.policy.catRank < minRank) continue;
    // Candidates come in list (= rank) order: the first baseline rule ends the main phase.
    if (main && r.policy.catRank > APPLICATION_RANK) return undefined;
    // ruleMatches, minus what the entry's flags make certain.
    if (r.disabled) continue;
    if ((e & SERVICE_CERTAIN) === 0 && r.services !== undefined && !servicesMatch(r.services, f, dst.ep)) continue;
    if ((e & PEER_CERTAIN) === 0 || !peerIsSrc) {
      if (r.src) {
        if (peerSetMatches(r.src, src) === r.srcNegated) continue;
      } else if (r.srcNegated) continue;
    }
    if ((e & PEER_CERTAIN) === 0 || peerIsSrc) {
      if (r.dst) {
        if (peerSetMatches(r.dst, dst) === r.dstNegated) continue;
      } else if (r.dstNegated) continue;
    }
    if (r.action !== 'pass') return r;
    if (r.policy.catRank >= APPLICATION_RANK) return undefined;
    minRank = APPLICATION_RANK;
  }
  return undefined;
}
