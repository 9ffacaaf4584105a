import { normalize, type AddressRange, type EnforcementPointModel, type PointRule } from '../../engine';
import { boxesV4, firstMatch, portPlan, repaintPlan, type FamilyPlan, type SignedFamilyRuleBoxes, type SignedRuleBox, type V4Boxes } from './boxes';
import { sameChain, type AddressMap, type AddressSet, type Chain, type Family, type FlowSet, type NamedSet, type PortMap, type Rule, type RuleMap, type Table, type Verdict } from './ir';

/**
 * Compiles one enforcement point to one nftables table (pure: no I/O).
 *
 * Layout, per direction (`in` on the input hook, `out` on the output hook), in the point's own address
 * family only (the base chain accepts the other family: it is not this point's traffic):
 *
 *     chain input   ct state established,related accept; lo accept; not our address → accept; goto in_emergency
 *     chain in_<category>   (emergency → infrastructure → environment → application → kubernetes → baseline → default)
 *        staged rules: lookups that count and log, never decide
 *        meta l4proto tcp th dport vmap @in_<category>_tcp      (and udp, sctp: port → address class chain)
 *        tcp/udp/sctp not in a port map: goto the next category
 *        other protocols (ICMP...): the rules that can match them, in order, against named peer sets
 *        goto the next category
 *     chain in_<category>_c<k>   ct mark set ip saddr map @in_<category>_c<k> ct mark vmap @in_<category>_rules
 *                                (address → rule number → rule chain); goto the next category
 *     chain in_default   counter, the default action
 *     chain r_in_<hash>  one per rule: counter, optional log, its verdict; comment "policy/rule"
 *
 * Flow records (see docs/visibility.md): an accepting rule sets the conntrack mark to its {@link flowMark},
 * so the agent reads allowed connections, with their packet and byte counts, from conntrack; a dropping or
 * rejecting rule (and a drop default) first adds `saddr . daddr . l4proto . dport` to its own dynamic
 * set `fd_<dir>_<hash>` with a per-element counter, because a dropped packet never gets a conntrack entry.
 *
 * First-match order inside a category becomes a two-level lookup with disjoint keys (see boxes.ts
 * portPlan): the ports cut into intervals, each pointing to the address class of the rules covering it;
 * a class maps address runs to the number of the first rule holding them, and the category's rule map
 * (`in_<category>_rules`, a hash map) that number to the rule's chain: the verdict elements pod churn
 * would otherwise add (each makes the kernel validate the table's chain graph at commit) stay static.
 * Both levels are single-field interval maps (rbtrees), so a first packet costs two O(log n) lookups
 * and one hash lookup per category whatever the number of rules; an earlier layout used one
 * `addr . l4proto . dport` concatenated map (pipapo), whose lookups grow with the element count.
 * `pass` is a goto to the application chain (from the application category: to the kubernetes chain, a
 * pod's NetworkPolicy layer; from baseline: to the default chain). Only the first packet of a
 * connection is classified.
 */

/** `kubernetes` is a pod's NetworkPolicy layer (engine/enforcement.ts networkPolicyRules). */
export const CATEGORIES = ['emergency', 'infrastructure', 'environment', 'application', 'kubernetes', 'baseline'] as const;
const PORT_PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;

export interface CompileOptions {
  /** Table name; default `microseg_<point>` sanitised. */
  readonly tableName?: string;
  /** Work shared with other points compiled from models of one world (see {@link CompileCache}). */
  readonly cache?: CompileCache;
}

/**
 * What compiles of models from one world share and keep across changes. Models built with one engine
 * PointModelCache share their point-independent rule objects (and keep them while their peers do not
 * change), so:
 *
 * - a category whose rules are the same objects in the same order (VM interfaces with equal rule lists,
 *   every `out` side of one list, a category a change did not touch) has the same part: its chains,
 *   maps and sets ({@link CategoryPart}), and a direction of unchanged parts the same {@link DirectionPart};
 * - a category whose rules changed only in their peers (pod churn: a few new rule objects) repaints the
 *   last plan of the same category of the same point and keeps every chain and set whose content did
 *   not change, the same objects (the agent compares by identity first);
 * - a rule's chain depends on its identity (direction, id, action, logged, category), not on its peers:
 *   one chain object per identity.
 *
 * Retention: a part is kept while some point's category uses it (the last part of each `point|dir|
 * category` slot); a newer part for a slot releases the older one. Rule chains are kept per rule
 * identity (a few objects per rule of the world).
 */
export class CompileCache {
  private readonly ids = new WeakMap<PointRule, number>();
  private nextId = 0;
  /** Category parts by their key (direction, family, category, rule ids), with how many slots use each. */
  private readonly parts = new Map<string, { readonly part: CategoryPart; slots: number }>();
  /** The part each `point|dir|category` last used, and its key. */
  private readonly slots = new Map<string, { readonly key: string; readonly part: CategoryPart }>();
  /** The last direction of each `point|dir`: reused while its parts are the same objects. */
  private readonly lastDirections = new Map<string, { readonly parts: readonly CategoryPart[]; readonly defaultAction: string; readonly v: Family; readonly part: DirectionPart }>();
  /** Rule chains per rule identity, and the last one per rule object (no key string for a known object). */
  private readonly ruleParts = new Map<string, RulePart>();
  private readonly rulePartOf = new WeakMap<PointRule, RulePart>();
  /** The rule maps of each point's last compile, kept while its directions' maps are the same objects. */
  private readonly pointMaps = new Map<string, PointMaps & { readonly of: readonly DirectionPart[] }>();
  /** Base chains per point address and direction. */
  private readonly bases = new Map<string, Chain>();

  /**
   * The key of a rule list: its length and the ids of a few rules spread over it (O(1): a pod add
   * changes a few rules of long lists). Lists sharing a key are told apart by comparing their rules.
   */
  private keyOf(prefix: string, rules: readonly PointRule[]): string {
    let k = `${prefix}${rules.length}`;
    const n = rules.length;
    for (let s = 0; s < Math.min(n, KEY_SAMPLES); s++) {
      const r = rules[n <= KEY_SAMPLES ? s : Math.floor((s * (n - 1)) / (KEY_SAMPLES - 1))]!;
      let id = this.ids.get(r);
      if (id === undefined) this.ids.set(r, (id = this.nextId++));
      k += `,${id}`;
    }
    return k;
  }

  /** @internal The chain (and flow-record set) of a deciding rule: one per rule identity. */
  rule(dir: 'in' | 'out', v: Family, r: PointRule): RulePart {
    const known = this.rulePartOf.get(r);
    if (known && known.dir === dir && known.v === v) return known;
    const key = `${dir}|${v}|${r.action}|${r.logged ? 1 : 0}|${r.category}|${r.id}`;
    let part = this.ruleParts.get(key);
    if (!part) {
      // Identities of rules long gone are dropped together (rare: policies renamed or edited many times).
      if (this.ruleParts.size >= 200_000) this.ruleParts.clear();
      this.ruleParts.set(key, (part = rulePartOf(dir, v, r)));
    }
    this.rulePartOf.set(r, part);
    return part;
  }

  /** @internal The base chain of a point's direction. */
  base(dir: 'in' | 'out', v: Family, ip: string): Chain {
    const key = `${dir}|${ip}`;
    let chain = this.bases.get(key);
    if (!chain) this.bases.set(key, (chain = baseChain(dir, v, ip)));
    return chain;
  }

  /**
   * @internal A direction from category parts, or undefined when it cannot be made of them (rules not
   * in category order, a name collision between rules): then the caller compiles it without the cache.
   */
  direction(model: EnforcementPointModel, dir: 'in' | 'out', v: Family): DirectionPart | undefined {
    const rules = model[dir];
    const groups: PointRule[][] = CATEGORIES.map(() => []);
    let at = 0;
    for (const r of rules) {
      const ci = CATEGORY_INDEX[r.category];
      if (ci < at) return undefined;
      groups[(at = ci)]!.push(r);
    }
    // Peer sets are shared by the rules of a direction naming the same region, across categories: a kept
    // part is used only if the sets it made and reused are still so given the categories before it.
    const peerSets = new Map<readonly AddressRange[], string>();
    const parts: CategoryPart[] = [];
    CATEGORIES.forEach((cat, ci) => {
      const inCat = groups[ci]!;
      const slot = `${model.name}|${dir}|${cat}`;
      const last = this.slots.get(slot);
      let key: string | undefined;
      let part: CategoryPart | undefined;
      if (last && sameList(last.part.rules, inCat) && last.part.v === v) {
        key = last.key;
        part = last.part;
      } else {
        key = this.keyOf(`${dir}|${v}|${cat}|`, inCat);
        part = this.parts.get(key)?.part;
        if (part && (part.v !== v || !sameList(part.rules, inCat))) part = undefined;
      }
      if (!part || !peersStillHold(part, peerSets)) part = categoryPart(this, dir, v, ci, inCat, peerSets, last?.part);
      for (const u of part.peerUses) if (u.created) peerSets.set(u.ranges, u.name);
      parts.push(part);
      this.use(slot, key, part, last);
    });
    const prev = this.lastDirections.get(`${model.name}|${dir}`);
    if (prev && prev.v === v && prev.defaultAction === model.defaultAction && sameList(prev.parts, parts)) return prev.part;
    const part = assemble(dir, v, model.defaultAction, parts, prev?.v === v ? prev : undefined);
    if (part) this.lastDirections.set(`${model.name}|${dir}`, { parts, defaultAction: model.defaultAction, v, part });
    return part;
  }

  /** @internal The rule maps of a point made of these directions. */
  maps(point: string, parts: readonly DirectionPart[]): PointMaps {
    const last = this.pointMaps.get(point);
    if (last && last.of.length === parts.length && last.of.every((p, i) => p.ruleChains === parts[i]!.ruleChains && p.marks === parts[i]!.marks && p.flowSets === parts[i]!.flowSets)) return last;
    const maps = { ...mergedMaps(parts), of: parts };
    this.pointMaps.set(point, maps);
    return maps;
  }

  /**
   * Forgets what the cache holds for points other than these (a long-lived agent whose points come and
   * go: a workload scaled down): their slots release their parts, their last directions and rule maps go,
   * and base chains are made again on demand.
   */
  retain(points: ReadonlySet<string>): void {
    // Slots are `point|dir|category`, directions `point|dir`: the point is what precedes the last bars.
    const pointOf = (key: string, bars: number) => {
      let at = key.length;
      for (let i = 0; i < bars; i++) at = key.lastIndexOf('|', at - 1);
      return key.slice(0, at);
    };
    for (const [slot, used] of this.slots)
      if (!points.has(pointOf(slot, 2))) {
        this.slots.delete(slot);
        // As in use(): a key's count is its slots', whichever part the key holds now.
        const held = this.parts.get(used.key);
        if (held && --held.slots <= 0) this.parts.delete(used.key);
      }
    for (const key of this.lastDirections.keys()) if (!points.has(pointOf(key, 1))) this.lastDirections.delete(key);
    for (const point of this.pointMaps.keys()) if (!points.has(point)) this.pointMaps.delete(point);
    if (this.bases.size > 2 * points.size) this.bases.clear();
  }

  /** Records that a slot now uses a part: the part it used before is released when no slot uses it any more. */
  private use(slot: string, key: string, part: CategoryPart, last: { readonly key: string; readonly part: CategoryPart } | undefined): void {
    if (last?.part === part) return;
    let held = this.parts.get(key);
    if (held?.part !== part) {
      // A part made again for a key (its peer sets no longer held) replaces the kept one for every slot.
      held = { part, slots: held?.slots ?? 0 };
      this.parts.set(key, held);
    }
    held.slots++;
    this.slots.set(slot, { key, part });
    if (last) {
      const old = this.parts.get(last.key);
      if (old && --old.slots <= 0) this.parts.delete(last.key);
    }
  }
}

/** Rules of a list its key names (see CompileCache.keyOf). */
const KEY_SAMPLES = 8;

const CATEGORY_INDEX: Readonly<Record<PointRule['category'], number>> = Object.fromEntries(CATEGORIES.map((c, i) => [c, i])) as Record<PointRule['category'], number>;

/** Appends `xs` to `out` (an indexed loop: it runs per compile over every chain and set of a point). */
function append<T>(out: T[], xs: readonly T[]): void {
  for (let i = 0; i < xs.length; i++) out.push(xs[i]!);
}

/** The same objects in the same order. */
function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The rule a flow record names: direction and rule id (`policy/rule`, or `default`). */
export interface FlowRule {
  readonly direction: 'in' | 'out';
  readonly rule: string;
  readonly verdict: 'allow' | 'drop' | 'reject';
}

export interface CompiledPoint {
  readonly table: Table;
  /** Rule chain name → rule id (`policy/rule`), for reading counters back. */
  readonly ruleChains: ReadonlyMap<string, string>;
  /** Conntrack mark → the accepting rule that set it. */
  readonly marks: ReadonlyMap<number, FlowRule>;
  /** Dropped-flow set name → the dropping or rejecting rule that fills it. */
  readonly flowSets: ReadonlyMap<string, FlowRule>;
  readonly stats: { readonly rules: number; readonly elements: number; readonly sets: number };
}

/** `microseg_` + the point name with every character nft names refuse replaced. */
export function tableNameOf(point: string): string {
  return `microseg_${point.replace(/^(vm|pod):/, '').replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 64);
}

/** FNV-1a, for short stable chain and set names derived from rule ids. */
function fnv(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * The conntrack mark an accepting rule sets: the FNV-1a hash of `direction|rule id` (the same hash that
 * names its chain), never 0 (0 is "unmarked"). 32 bits make a collision between the rules of one point
 * unlikely; the agent maps marks back through {@link CompiledPoint.marks}, so a collision is detected.
 */
export function flowMark(direction: 'in' | 'out', ruleId: string): number {
  return parseInt(fnv(`${direction}|${ruleId}`), 16) || 1;
}

/** Idle timeout (s) and capacity of a dropped-flow set: the agent reads it far more often than that. */
const FLOW_SET_TIMEOUT = 600;
const FLOW_SET_SIZE = 65536;

/** nft limits comments to 128 bytes. */
function comment(s: string): string {
  return Buffer.byteLength(s) <= 127 ? s : `${s.slice(0, 100)}…${fnv(s)}`;
}

/** Peer-set element lists per range list, so equal inputs give the same list objects. */
const peerElements = new WeakMap<readonly AddressRange[], AddressSet['elements']>();
/** Dropped-flow sets start empty (the kernel fills them): one list for all, so the agent skips them. */
const NO_ELEMENTS: readonly never[] = [];

/**
 * One direction of a point's table without its base chain (the only part naming the point's address):
 * what points with the same rule objects in that direction share ({@link CompileCache.direction}).
 */
interface DirectionPart {
  readonly sets: readonly NamedSet[];
  readonly chains: readonly Chain[];
  readonly ruleChains: ReadonlyMap<string, string>;
  readonly marks: ReadonlyMap<number, FlowRule>;
  readonly flowSets: ReadonlyMap<string, FlowRule>;
  readonly elements: number;
}

/**
 * A category's rule map: its deciding rules' numbers to their chains. One per category, not per
 * direction: the kernel checks the chain graph for loops through every map element, and a `pass` rule
 * jumps back to an earlier category's chain (infrastructure → application), so a map shared by the
 * categories would close a loop there.
 */
function ruleMapOf(name: string, rules: readonly { readonly rule: number; readonly name: string }[]): RuleMap {
  return { kind: 'rule-map', name, elements: rules.map((r) => ({ rule: r.rule, verdict: { kind: 'goto', target: r.name } })) };
}

/** A deciding rule's chain and what it adds to the table: one per rule identity ({@link CompileCache.rule}). */
interface RulePart {
  readonly dir: 'in' | 'out';
  readonly v: Family;
  readonly id: string;
  /** The hash of `dir|id` its names carry. */
  readonly h: string;
  readonly name: string;
  /**
   * Its number in its category's rule map: the hash as a number. Unique because names are: two rules of a
   * direction with one hash have one name, {@link assemble} refuses the direction, and compileDirection
   * numbers them apart.
   */
  readonly rule: number;
  readonly chain: Chain;
  /** Its dropped-flow set (drop, reject) and the record naming the rule. */
  readonly flowSet?: FlowSet;
  readonly mark?: number;
  readonly flow?: FlowRule;
}

/** The verdicts of a rule chain. */
function verdictsOf(dir: 'in' | 'out', r: PointRule): Verdict[] {
  switch (r.action) {
    case 'allow':
      return [{ kind: 'accept' }];
    case 'drop':
      return [{ kind: 'drop' }];
    case 'reject':
      return [{ kind: 'reject-tcp' }, { kind: 'reject-icmpx' }];
    case 'pass':
      // From application to the NetworkPolicy layer (then baseline), from baseline to the default
      // rule, from the others to application.
      return [{ kind: 'goto', target: r.category === 'application' ? `${dir}_kubernetes` : r.category === 'baseline' ? `${dir}_default` : `${dir}_application` }];
  }
}

/** A rule chain as {@link compileDirection} makes it, under its base names (no collision). */
function rulePartOf(dir: 'in' | 'out', v: Family, r: PointRule): RulePart {
  const h = fnv(`${dir}|${r.id}`);
  const name = `r_${dir}_${h}`;
  const rule = parseInt(h, 16);
  const log = r.logged ? `microseg ${dir} ${r.id} `.slice(0, 120) : undefined;
  const verdicts = verdictsOf(dir, r);
  const tail = (vd: Verdict, extra: { ctMark?: number }): Rule => ({ match: vd.kind === 'reject-tcp' ? [{ m: 'l4proto' as const, protocols: ['tcp'] }] : [], counter: true, ...extra, log, verdict: vd, comment: comment(r.id) });
  if (r.action === 'allow') {
    const mark = flowMark(dir, r.id);
    return { dir, v, id: r.id, h, name, rule, chain: { name, rules: verdicts.map((vd) => tail(vd, { ctMark: mark })) }, mark, flow: { direction: dir, rule: r.id, verdict: 'allow' } };
  }
  if (r.action === 'pass') return { dir, v, id: r.id, h, name, rule, chain: { name, rules: verdicts.map((vd) => tail(vd, {})) } };
  const set = `fd_${dir}_${h}`;
  return {
    dir,
    v,
    id: r.id,
    h,
    name,
    rule,
    chain: { name, rules: [{ match: [{ m: 'l4proto', protocols: PORT_PROTOCOLS }], recordFlow: { v, set } }, ...verdicts.map((vd) => tail(vd, {}))] },
    flowSet: { kind: 'flow-set', name: set, v, timeout: FLOW_SET_TIMEOUT, size: FLOW_SET_SIZE, elements: NO_ELEMENTS },
    flow: { direction: dir, rule: r.id, verdict: r.action },
  };
}

function baseChain(dir: 'in' | 'out', v: Family, ip: string): Chain {
  const self = dir === 'in' ? 'daddr' : 'saddr';
  const rules: Rule[] = [
    { match: [{ m: 'ct-state', states: ['established', 'related'] }], verdict: { kind: 'accept' } },
    { match: [{ m: 'ifname', dir: dir === 'in' ? 'iif' : 'oif', name: 'lo' }], verdict: { kind: 'accept' } },
    // Other addresses of the host (another interface, another point) are not this point's traffic.
    { match: [{ m: 'addr', v, field: self, op: '!=', addr: ip }], verdict: { kind: 'accept' } },
    { match: [{ m: 'nfproto', v: v === 4 ? 6 : 4 }], verdict: { kind: 'accept' } },
    // A packet conntrack does not track (invalid, or `notrack`ed) cannot be classified: a rule's number
    // travels in its connection's mark. Dropped, as Calico and Antrea drop invalid packets.
    // Counted, without a comment: hit counters are per rule id (a comment), and this is no rule of a policy.
    { match: [{ m: 'ct-state', states: ['invalid', 'untracked'] }], counter: true, verdict: { kind: 'drop' } },
    { match: [], verdict: { kind: 'goto', target: `${dir}_${CATEGORIES[0]}` } },
  ];
  return { name: dir === 'in' ? 'input' : 'output', hook: dir === 'in' ? 'input' : 'output', rules };
}

/**
 * One category of one direction, as {@link compileDirection} makes it when no name collides: the
 * category chain, its class chains and maps, port maps, staged sets, peer sets of other protocols, and
 * the chains (and dropped-flow sets) of its deciding rules. Shared by points and kept across changes
 * ({@link CompileCache.direction}).
 */
interface CategoryPart {
  readonly v: Family;
  /** The category's rules (identity: a part is kept for the same objects in the same order). */
  readonly rules: readonly PointRule[];
  /** Its rules that decide (not staged), in order: the plan's rules. */
  readonly decisive: readonly PointRule[];
  /** The rule numbers of its deciding rules, in order (what its address maps' elements hold). */
  readonly targets: readonly number[];
  readonly plan?: FamilyPlan;
  /** Dropped-flow sets of its rules, in rule order (they come first in the table). */
  readonly flowSets: readonly NamedSet[];
  readonly sets: readonly NamedSet[];
  readonly chain: Chain;
  readonly classChains: readonly Chain[];
  readonly ruleParts: readonly RulePart[];
  readonly ruleChains: readonly Chain[];
  /** Its rule map (when it has address classes). */
  readonly ruleMap?: RuleMap;
  /** Peer sets (one per region object in a direction) it made, or took from an earlier category. */
  readonly peerUses: readonly { readonly ranges: readonly AddressRange[]; readonly name: string; readonly created: boolean }[];
  /** Every name {@link compileDirection} would make unique; kept the same array while equal. */
  readonly names: readonly string[];
  readonly elements: number;
}

/** The peer sets a part made are still free, and those it took are still made before it. */
function peersStillHold(part: CategoryPart, peerSets: ReadonlyMap<readonly AddressRange[], string>): boolean {
  for (const u of part.peerUses) if (u.created ? peerSets.has(u.ranges) : peerSets.get(u.ranges) !== u.name) return false;
  return true;
}

/** Sets of a part kept per input object, so what did not change keeps its objects (and element lists). */
const stagedSets = new WeakMap<PointRule, { readonly dir: string; readonly v: Family; readonly set: NamedSet | undefined; readonly elements: number }>();
const peerSetObjects = new WeakMap<readonly AddressRange[], Map<string, AddressSet>>();
/** Address maps per plan class (named, with the rule numbers its runs hold) and port maps per plan port list (named by direction and category). */
const classSets = new WeakMap<FamilyPlan['classes'][number], { readonly targets: readonly number[]; readonly elements: AddressMap['elements']; readonly name: string; readonly set: AddressMap }>();
const portSets = new WeakMap<FamilyPlan['ports'], { readonly prefix: string; readonly lists: Map<string, { readonly elements: PortMap['elements']; readonly set: PortMap }> }>();

/** IPv4 boxes per rule object and its index in its category's deciding rules. */
const ruleBoxes = new WeakMap<PointRule, { readonly at: number; readonly boxes: readonly SignedRuleBox[] }>();
function v4BoxesOf(rules: readonly PointRule[]): SignedRuleBox[] {
  const out: SignedRuleBox[] = [];
  rules.forEach((r, i) => {
    let kept = ruleBoxes.get(r);
    if (kept?.at !== i) ruleBoxes.set(r, (kept = { at: i, boxes: boxesV4([{ rule: i, sig: String(i), ports: portsOf(r, 4), ranges: r.peer.v4 }]) }));
    append(out, kept.boxes);
  });
  return out;
}

/** A deciding rule's rules for other protocols, kept per rule object while its set and target are the same. */
const otherKept = new WeakMap<PointRule, { readonly v: Family; readonly field: string; readonly target: string; readonly set: string | undefined; readonly rules: readonly Rule[] }>();
function keptOtherRules(r: PointRule, v: Family, field: 'saddr' | 'daddr', peerSet: (ranges: readonly AddressRange[]) => string, target: string): readonly Rule[] {
  const hit = otherKept.get(r);
  // The peer set is looked up (made or taken) as in a first compile; only the rules are kept.
  if (hit && hit.v === v && hit.field === field && hit.target === target && (hit.set === undefined || peerSet(v === 4 ? r.peer.v4 : r.peer.v6) === hit.set)) return hit.rules;
  let set: string | undefined;
  const rules = otherProtocolRules(r, v, field, (ranges) => (set = peerSet(ranges)), { verdict: { kind: 'goto', target } });
  otherKept.set(r, { v, field, target, set, rules });
  return rules;
}

/** Rules for the protocols without ports, against a named peer set (see compileDirection's otherRules). */
function otherProtocolRules(r: PointRule, v: Family, field: 'saddr' | 'daddr', peerSet: (ranges: readonly AddressRange[]) => string, tail: Omit<Rule, 'match'>): Rule[] {
  const out: Rule[] = [];
  if (!r.other.length) return out;
  const ranges = v === 4 ? r.peer.v4 : r.peer.v6;
  if (!ranges.length) return out;
  const matches = r.other.filter((o) => o.protocol === 'any' || (o.protocol === 'icmp') === (v === 4));
  if (!matches.length) return out;
  const full = ranges.length === 1 && ranges[0]!.lo === 0n && ranges[0]!.hi === (v === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n);
  const peerMatch: Rule['match'] = full ? [{ m: 'nfproto', v }] : [{ m: 'addr-set', v, field, set: peerSet(ranges) }];
  for (const o of matches) out.push({ match: [...peerMatch, ...(o.protocol === 'any' ? [] : [{ m: 'icmp' as const, v, type: o.icmpType, code: o.icmpCode }])], ...tail });
  return out;
}

function categoryPart(cache: CompileCache, dir: 'in' | 'out', v: Family, ci: number, inCat: readonly PointRule[], incoming: ReadonlyMap<readonly AddressRange[], string>, prev: CategoryPart | undefined): CategoryPart {
  const cat = CATEGORIES[ci]!;
  const next = ci + 1 < CATEGORIES.length ? `${dir}_${CATEGORIES[ci + 1]}` : `${dir}_default`;
  const field = dir === 'in' ? 'saddr' : 'daddr';
  const names: string[] = [];
  const sets: NamedSet[] = [];
  const flowSets: NamedSet[] = [];
  const peerUses: { ranges: readonly AddressRange[]; name: string; created: boolean }[] = [];
  const local = new Map<readonly AddressRange[], string>();
  let elements = 0;
  const peerSet = (ranges: readonly AddressRange[], fam: Family, h: string): string => {
    const known = incoming.get(ranges);
    if (known !== undefined) {
      peerUses.push({ ranges, name: known, created: false });
      return known;
    }
    let name = local.get(ranges);
    if (name !== undefined) return name;
    name = `p_${dir}_${h}_v${fam}`;
    names.push(name);
    local.set(ranges, name);
    peerUses.push({ ranges, name, created: true });
    let byName = peerSetObjects.get(ranges);
    if (!byName) peerSetObjects.set(ranges, (byName = new Map()));
    let set = byName.get(name);
    if (!set) {
      let keys = peerElements.get(ranges);
      if (!keys) peerElements.set(ranges, (keys = ranges.map((x) => ({ v: fam, lo: x.lo, hi: x.hi }))));
      byName.set(name, (set = { kind: 'set', name, v: fam, elements: keys }));
    }
    sets.push(set);
    elements += ranges.length;
    return name;
  };

  const ruleParts: RulePart[] = [];
  const decisive: PointRule[] = [];
  for (const r of inCat) {
    if (r.staged) continue;
    const rp = cache.rule(dir, v, r);
    ruleParts.push(rp);
    decisive.push(r);
    names.push(rp.name);
    if (rp.flowSet) {
      names.push(rp.flowSet.name);
      flowSets.push(rp.flowSet);
    }
  }

  const chainRules: Rule[] = [];
  // Staged rules: count and log what they would match, then fall through.
  for (const r of inCat) {
    if (!r.staged) continue;
    const h = fnv(`${dir}|staged|${r.id}`);
    const note = { counter: true, log: `microseg staged ${dir} ${r.id} `.slice(0, 120), comment: comment(`staged ${r.id}`) };
    let staged = stagedSets.get(r);
    if (staged?.dir !== dir || staged.v !== v) {
      const own = firstMatch([{ rule: 0, ports: portsOf(r, v), ranges: v === 4 ? r.peer.v4 : r.peer.v6 }], v);
      const name = `s_${dir}_${h}_v${v}`;
      const set: NamedSet | undefined = own.length ? { kind: 'service-set', name, v, elements: own.map((b) => ({ addr: { v, lo: b.lo, hi: b.hi }, service: { protocol: b.protocol, lo: b.plo, hi: b.phi } })) } : undefined;
      stagedSets.set(r, (staged = { dir, v, set, elements: own.length }));
    }
    if (staged.set) {
      names.push(staged.set.name);
      sets.push(staged.set);
      elements += staged.elements;
      chainRules.push({ match: [{ m: 'service-lookup', v, field, set: staged.set.name }], ...note });
    }
    chainRules.push(...otherProtocolRules(r, v, field, (ranges) => peerSet(ranges, v, h), note));
  }

  // Two-level lookup (see the module comment): port → address class chain → address → rule number → rule chain.
  let plan: FamilyPlan | undefined;
  if (decisive.length) {
    if (prev?.plan && prev.v === v && sameList(prev.decisive, decisive)) plan = prev.plan;
    else {
      // IPv4 boxes are kept per rule object: a repaint after a pod add builds those of the changed rules only.
      const boxes: SignedFamilyRuleBoxes[] | V4Boxes = v === 4 ? { v4: v4BoxesOf(decisive) } : decisive.map((r, i) => ({ rule: i, sig: String(i), ports: portsOf(r, v), ranges: r.peer.v6 }));
      plan = (prev?.plan && prev.v === v && repaintPlan(prev.plan, boxes)) || portPlan(boxes, v);
    }
  }
  const madeTargets = ruleParts.map((p) => p.rule);
  // One array while the rule chains are the same: classes compare it by identity.
  const targets = prev && sameList(prev.targets, madeTargets) ? prev.targets : madeTargets;
  const classChains: Chain[] = [];
  const rulesName = `${dir}_${cat}_rules`;
  const keptRules = prev !== undefined && sameList(prev.ruleParts, ruleParts);
  // The rule map stays the same object while the rules do: pod churn never touches it.
  const ruleMap = plan?.classes.length ? (keptRules && prev.ruleMap ? prev.ruleMap : ruleMapOf(rulesName, ruleParts)) : undefined;
  if (ruleMap) {
    sets.push(ruleMap);
    elements += ruleMap.elements.length;
  }
  plan?.classes.forEach((c, k) => {
    const name = `${dir}_${cat}_c${k}`;
    let made = classSets.get(c);
    if (!made || !sameList(made.targets, targets) || made.name !== name) {
      // A repainted class keeps most runs of the class it replaces (the same objects): their elements too.
      const pc = prev?.plan?.classes[k];
      const pm = pc && classSets.get(pc);
      const reuse = pm?.targets === targets && pm.name === name ? pm : undefined;
      let j = 0;
      const list =
        made && sameList(made.targets, targets)
          ? made.elements
          : c.runs.map((x) => {
              if (reuse) {
                while (j < pc!.runs.length && pc!.runs[j]!.lo < x.lo) j++;
                if (pc!.runs[j] === x) return reuse.elements[j]!;
              }
              return { addr: { v, lo: x.lo, hi: x.hi }, rule: targets[x.rule]! };
            });
      classSets.set(c, (made = { targets, elements: list, name, set: { kind: 'addr-map', name, v, elements: list } }));
    }
    sets.push(made.set);
    elements += c.runs.length;
    const chain: Chain = { name, rules: [{ match: [], vmap: { key: 'class', v, field, map: name, rules: rulesName } }, { match: [], verdict: { kind: 'goto', target: c.base !== undefined ? `${dir}_${cat}_c${c.base}` : next } }] };
    const old = prev?.classChains[k];
    classChains.push(old && sameChain(old, chain) ? old : chain);
  });
  if (plan) {
    let byProtocol = portSets.get(plan.ports);
    if (byProtocol?.prefix !== `${dir}_${cat}`) portSets.set(plan.ports, (byProtocol = { prefix: `${dir}_${cat}`, lists: new Map() }));
    for (const protocol of PORT_PROTOCOLS) {
      let list = byProtocol.lists.get(protocol);
      if (!list) {
        const elems = plan.ports.filter((p) => p.protocol === protocol).map((p) => ({ lo: p.plo, hi: p.phi, verdict: { kind: 'goto', target: `${dir}_${cat}_c${p.cls}` } }) as const);
        byProtocol.lists.set(protocol, (list = { elements: elems, set: { kind: 'port-map', name: `${dir}_${cat}_${protocol}`, elements: elems } }));
      }
      if (!list.elements.length) continue;
      sets.push(list.set);
      elements += list.elements.length;
      chainRules.push({ match: [{ m: 'l4proto', protocols: [protocol] }], vmap: { key: 'dport', map: list.set.name } });
    }
  }
  chainRules.push({ match: [{ m: 'l4proto', protocols: PORT_PROTOCOLS }], verdict: { kind: 'goto', target: next } });
  decisive.forEach((r, i) => {
    if (r.other.length) append(chainRules, keptOtherRules(r, v, field, (ranges) => peerSet(ranges, v, ruleParts[i]!.h), ruleParts[i]!.name));
  });
  chainRules.push({ match: [], verdict: { kind: 'goto', target: next } });
  const chain: Chain = { name: `${dir}_${cat}`, rules: chainRules };
  // What equals the last part of this slot stays the same object: the direction and the agent compare by identity first.
  return {
    v,
    rules: inCat,
    decisive,
    targets,
    ...(plan ? { plan } : {}),
    flowSets: keptRules ? prev.flowSets : flowSets,
    sets: prev && sameList(prev.sets, sets) ? prev.sets : sets,
    chain: prev && sameChain(prev.chain, chain) ? prev.chain : chain,
    classChains: prev && sameList(prev.classChains, classChains) ? prev.classChains : classChains,
    ruleParts: keptRules ? prev.ruleParts : ruleParts,
    ruleChains: keptRules ? prev.ruleChains : ruleParts.map((p) => p.chain),
    ...(ruleMap ? { ruleMap } : {}),
    peerUses,
    names: prev && sameStrings(prev.names, names) ? prev.names : names,
    elements,
  };
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Default chains (and their dropped-flow set) per direction, family and default action. */
const defaultParts = new Map<string, { readonly chain: Chain; readonly flowSet?: FlowSet; readonly mark?: number; readonly flow: FlowRule }>();
function defaultPart(dir: 'in' | 'out', v: Family, action: 'allow' | 'drop') {
  const key = `${dir}|${v}|${action}`;
  let part = defaultParts.get(key);
  if (part) return part;
  const h = fnv(`${dir}|default`);
  const rule = (extra: Omit<Rule, 'match'>): Rule => ({ match: [], counter: true, ...extra, verdict: { kind: action === 'allow' ? 'accept' : 'drop' }, comment: 'default' });
  if (action === 'allow') {
    const mark = flowMark(dir, 'default');
    part = { chain: { name: `${dir}_default`, rules: [rule({ ctMark: mark })] }, mark, flow: { direction: dir, rule: 'default', verdict: 'allow' } };
  } else {
    const set = `fd_${dir}_${h}`;
    part = {
      chain: { name: `${dir}_default`, rules: [{ match: [{ m: 'l4proto', protocols: PORT_PROTOCOLS }], recordFlow: { v, set } }, rule({})] },
      flowSet: { kind: 'flow-set', name: set, v, timeout: FLOW_SET_TIMEOUT, size: FLOW_SET_SIZE, elements: NO_ELEMENTS },
      flow: { direction: dir, rule: 'default', verdict: 'drop' },
    };
  }
  defaultParts.set(key, part);
  return part;
}

/** A direction made of its category parts, in {@link compileDirection}'s order; undefined when two parts' names collide. */
function assemble(dir: 'in' | 'out', v: Family, defaultAction: 'allow' | 'drop', parts: readonly CategoryPart[], prev: { readonly parts: readonly CategoryPart[]; readonly defaultAction: string; readonly part: DirectionPart } | undefined): DirectionPart | undefined {
  const prevParts = prev?.parts;
  const defaults = defaultPart(dir, v, defaultAction);
  // The names compileDirection makes unique: distinct in every part (checked once per names array) and across
  // parts (checked again only when some part's names changed since the last direction of this point).
  const sameNames = prevParts !== undefined && prev!.defaultAction === defaultAction && prevParts.length === parts.length && parts.every((p, i) => p.names === prevParts[i]!.names);
  if (!sameNames) {
    const seen = new Set<string>(defaults.flowSet ? [defaults.flowSet.name] : []);
    for (const p of parts)
      for (const n of p.names) {
        if (seen.has(n)) return undefined;
        seen.add(n);
      }
  }
  const sets: NamedSet[] = [];
  const chains: Chain[] = [];
  let elements = 0;
  for (const p of parts) append(sets, p.flowSets);
  // The rule maps depend on the rule chains only: a pod add keeps them.
  const sameRules = prev !== undefined && prev.defaultAction === defaultAction && prevParts!.length === parts.length && parts.every((p, i) => p.ruleParts === prevParts![i]!.ruleParts);
  const ruleChains = sameRules ? prev.part.ruleChains : new Map<string, string>();
  const marks = sameRules ? prev.part.marks : new Map<number, FlowRule>();
  const flowSets = sameRules ? prev.part.flowSets : new Map<string, FlowRule>();
  if (!sameRules) {
    const [rc, mk, fs] = [ruleChains as Map<string, string>, marks as Map<number, FlowRule>, flowSets as Map<string, FlowRule>];
    for (const p of parts)
      for (const r of p.ruleParts) {
        rc.set(r.name, r.id);
        if (r.mark !== undefined) mk.set(r.mark, r.flow!);
        if (r.flowSet) fs.set(r.flowSet.name, r.flow!);
      }
    if (defaults.flowSet) fs.set(defaults.flowSet.name, defaults.flow);
    else mk.set(defaults.mark!, defaults.flow);
    rc.set(`${dir}_default`, 'default');
  }
  for (const p of parts) {
    append(sets, p.sets);
    chains.push(p.chain);
    elements += p.elements;
  }
  if (defaults.flowSet) sets.push(defaults.flowSet);
  chains.push(defaults.chain);
  for (const p of parts) append(chains, p.classChains);
  for (const p of parts) append(chains, p.ruleChains);
  return { sets, chains, ruleChains, marks, flowSets, elements };
}

function compileDirection(model: EnforcementPointModel, dir: 'in' | 'out', v: Family): DirectionPart {
  const sets: NamedSet[] = [];
  const chains: Chain[] = [];
  const ruleChains = new Map<string, string>();
  const marks = new Map<number, FlowRule>();
  const flowSets = new Map<string, FlowRule>();
  // Every name below starts with the direction: the two directions never collide.
  const usedNames = new Set<string>();
  const unique = (base: string) => {
    let n = base;
    for (let i = 2; usedNames.has(n); i++) n = `${base}_${i}`;
    usedNames.add(n);
    return n;
  };
  let elements = 0;
  const peerSets = new Map<readonly AddressRange[], string>();
  const rules = model[dir];
  const field = dir === 'in' ? 'saddr' : 'daddr';
  const ruleChainOf = new Map<PointRule, string>();
  const ruleNumberOf = new Map<PointRule, number>();
  const usedNumbers = new Set<number>();
  const ruleChainList: Chain[] = [];
  const classChains: Chain[] = [];
  for (const r of rules) {
    if (r.staged) continue;
    const h = fnv(`${dir}|${r.id}`);
    const name = unique(`r_${dir}_${h}`);
    // The hash as the rule map's key, the next free number when two rules' hashes collide.
    let rule = parseInt(h, 16);
    while (usedNumbers.has(rule)) rule = (rule + 1) >>> 0;
    usedNumbers.add(rule);
    ruleChainOf.set(r, name);
    ruleNumberOf.set(r, rule);
    ruleChains.set(name, r.id);
    const log = r.logged ? `microseg ${dir} ${r.id} `.slice(0, 120) : undefined;
    const vs = verdictsOf(dir, r);
    const records = flowRecording(dir, r.id, r.action === 'allow' ? 'allow' : r.action === 'pass' ? undefined : r.action);
    ruleChainList.push({
      name,
      rules: [
        ...records.prefix,
        ...vs.map((vd) => ({ match: vd.kind === 'reject-tcp' ? [{ m: 'l4proto' as const, protocols: ['tcp'] }] : [], counter: true, ...records.mark, log, verdict: vd, comment: comment(r.id) })),
      ],
    });
  }

  CATEGORIES.forEach((cat, ci) => {
    const next = ci + 1 < CATEGORIES.length ? `${dir}_${CATEGORIES[ci + 1]}` : `${dir}_default`;
    const inCat = rules.filter((r) => r.category === cat);
    const chainRules: Rule[] = [];
    // Staged rules: count and log what they would match, then fall through.
    for (const r of inCat.filter((x) => x.staged)) {
      const h = fnv(`${dir}|staged|${r.id}`);
      const note = { counter: true, log: `microseg staged ${dir} ${r.id} `.slice(0, 120), comment: comment(`staged ${r.id}`) };
      for (const fam of [v]) {
        const own = firstMatch([{ rule: 0, ports: portsOf(r, fam), ranges: fam === 4 ? r.peer.v4 : r.peer.v6 }], fam);
        if (own.length) {
          const name = unique(`s_${dir}_${h}_v${fam}`);
          sets.push({ kind: 'service-set', name, v: fam, elements: own.map((b) => ({ addr: { v: fam, lo: b.lo, hi: b.hi }, service: { protocol: b.protocol, lo: b.plo, hi: b.phi } })) });
          elements += own.length;
          chainRules.push({ match: [{ m: 'service-lookup', v: fam, field, set: name }], ...note });
        }
      }
      chainRules.push(...otherRules(r, dir, field, h, () => note));
    }
    const decisive = inCat.filter((x) => !x.staged);
    // Two-level lookup (see the module comment): port → address class chain → address → rule number → rule chain.
    const boxes = () => decisive.map((r, i) => ({ rule: i, sig: String(i), ports: portsOf(r, v), ranges: v === 4 ? r.peer.v4 : r.peer.v6 }));
    const plan = portPlan(boxes(), v);
    const targets = decisive.map((r) => ruleNumberOf.get(r)!);
    const rulesName = `${dir}_${cat}_rules`;
    if (plan.classes.length) {
      usedNames.add(rulesName);
      sets.push(ruleMapOf(rulesName, decisive.map((r, i) => ({ rule: targets[i]!, name: ruleChainOf.get(r)! }))));
      elements += decisive.length;
    }
    plan.classes.forEach((c, k) => {
      const name = `${dir}_${cat}_c${k}`;
      usedNames.add(name);
      sets.push({ kind: 'addr-map', name, v, elements: c.runs.map((x) => ({ addr: { v, lo: x.lo, hi: x.hi }, rule: targets[x.rule]! })) });
      elements += c.runs.length;
      classChains.push({ name, rules: [{ match: [], vmap: { key: 'class', v, field, map: name, rules: rulesName } }, { match: [], verdict: { kind: 'goto', target: c.base !== undefined ? `${dir}_${cat}_c${c.base}` : next } }] });
    });
    for (const protocol of PORT_PROTOCOLS) {
      const list = plan.ports.filter((p) => p.protocol === protocol).map((p) => ({ lo: p.plo, hi: p.phi, verdict: { kind: 'goto', target: `${dir}_${cat}_c${p.cls}` } }) as const);
      if (!list.length) continue;
      const name = `${dir}_${cat}_${protocol}`;
      usedNames.add(name);
      sets.push({ kind: 'port-map', name, elements: list });
      elements += list.length;
      chainRules.push({ match: [{ m: 'l4proto', protocols: [protocol] }], vmap: { key: 'dport', map: name } });
    }
    chainRules.push({ match: [{ m: 'l4proto', protocols: PORT_PROTOCOLS }], verdict: { kind: 'goto', target: next } });
    for (const r of decisive) {
      const target = ruleChainOf.get(r)!;
      chainRules.push(...otherRules(r, dir, field, fnv(`${dir}|${r.id}`), () => ({ verdict: { kind: 'goto', target } })));
    }
    chainRules.push({ match: [], verdict: { kind: 'goto', target: next } });
    chains.push({ name: `${dir}_${cat}`, rules: chainRules });
  });
  const defaults = flowRecording(dir, 'default', model.defaultAction === 'allow' ? 'allow' : 'drop');
  chains.push({
    name: `${dir}_default`,
    rules: [...defaults.prefix, { match: [], counter: true, ...defaults.mark, verdict: { kind: model.defaultAction === 'allow' ? 'accept' : 'drop' }, comment: 'default' }],
  });
  ruleChains.set(`${dir}_default`, 'default');
  chains.push(...classChains, ...ruleChainList);

  /** What a rule chain adds so its flows are recorded: a conntrack mark (accept) or a dropped-flow set. */
  function flowRecording(d: 'in' | 'out', id: string, action: FlowRule['verdict'] | undefined): { prefix: Rule[]; mark: { ctMark?: number } } {
    if (action === undefined) return { prefix: [], mark: {} };
    if (action === 'allow') {
      const mark = flowMark(d, id);
      marks.set(mark, { direction: d, rule: id, verdict: 'allow' });
      return { prefix: [], mark: { ctMark: mark } };
    }
    const set = unique(`fd_${d}_${fnv(`${d}|${id}`)}`);
    sets.push({ kind: 'flow-set', name: set, v, timeout: FLOW_SET_TIMEOUT, size: FLOW_SET_SIZE, elements: NO_ELEMENTS });
    flowSets.set(set, { direction: d, rule: id, verdict: action });
    return { prefix: [{ match: [{ m: 'l4proto', protocols: PORT_PROTOCOLS }], recordFlow: { v, set } }], mark: {} };
  }

  /** Rules for the protocols without ports, against a named peer set per family. */
  function otherRules(r: PointRule, d: 'in' | 'out', f: 'saddr' | 'daddr', h: string, tail: (peerSet: string) => Omit<Rule, 'match'>): Rule[] {
    const out: Rule[] = [];
    if (!r.other.length) return out;
    for (const fam of [v]) {
      const ranges = fam === 4 ? r.peer.v4 : r.peer.v6;
      if (!ranges.length) continue;
      const matches = r.other.filter((o) => o.protocol === 'any' || (o.protocol === 'icmp') === (fam === 4));
      if (!matches.length) continue;
      const full = ranges.length === 1 && ranges[0]!.lo === 0n && ranges[0]!.hi === (fam === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n);
      let peerMatch: Rule['match'] = [];
      let setName = '';
      if (!full) {
        // Rules naming the same peers (one group, many rules: one region object) share one set.
        setName = peerSets.get(ranges) ?? '';
        if (!setName) {
          setName = unique(`p_${d}_${h}_v${fam}`);
          peerSets.set(ranges, setName);
          let keys = peerElements.get(ranges);
          if (!keys) peerElements.set(ranges, (keys = ranges.map((x) => ({ v: fam, lo: x.lo, hi: x.hi }))));
          sets.push({ kind: 'set', name: setName, v: fam, elements: keys });
          elements += ranges.length;
        }
        peerMatch = [{ m: 'addr-set', v: fam, field: f, set: setName }];
      } else peerMatch = [{ m: 'nfproto', v: fam }];
      for (const o of matches)
        out.push({ match: [...peerMatch, ...(o.protocol === 'any' ? [] : [{ m: 'icmp' as const, v: fam, type: o.icmpType, code: o.icmpCode }])], ...tail(setName) });
    }
    return out;
  }

  return { sets, chains, ruleChains, marks, flowSets, elements };
}

interface PointMaps {
  readonly ruleChains: ReadonlyMap<string, string>;
  readonly marks: ReadonlyMap<number, FlowRule>;
  readonly flowSets: ReadonlyMap<string, FlowRule>;
}

function mergedMaps(parts: readonly DirectionPart[]): PointMaps {
  const ruleChains = new Map<string, string>();
  const marks = new Map<number, FlowRule>();
  const flowSets = new Map<string, FlowRule>();
  for (const part of parts) {
    part.ruleChains.forEach((x, k) => ruleChains.set(k, x));
    part.marks.forEach((x, k) => marks.set(k, x));
    part.flowSets.forEach((x, k) => flowSets.set(k, x));
  }
  return { ruleChains, marks, flowSets };
}

export function compilePoint(model: EnforcementPointModel, options: CompileOptions = {}): CompiledPoint {
  const v: Family = model.ip.includes(':') ? 6 : 4;
  const cache = options.cache;
  const sets: NamedSet[] = [];
  const chains: Chain[] = [];
  const parts: DirectionPart[] = [];
  let elements = 0;
  let ruleCount = 0;
  for (const dir of ['in', 'out'] as const) {
    chains.push(cache ? cache.base(dir, v, model.ip) : baseChain(dir, v, model.ip));
    // Made of kept category parts when it can be; else (a name collision, rules out of category order) as without a cache.
    const part = cache?.direction(model, dir, v) ?? compileDirection(model, dir, v);
    append(sets, part.sets);
    append(chains, part.chains);
    parts.push(part);
    elements += part.elements;
  }
  for (let i = 0; i < chains.length; i++) ruleCount += chains[i]!.rules.length;
  const { ruleChains, marks, flowSets } = cache ? cache.maps(model.name, parts) : mergedMaps(parts);
  const table: Table = { family: 'inet', name: options.tableName ?? tableNameOf(model.name), sets, chains };
  return { table, ruleChains, marks, flowSets, stats: { rules: ruleCount, elements, sets: sets.length } };
}

type FamilyPorts = { protocol: 'tcp' | 'udp' | 'sctp'; lo: number; hi: number; ranges?: readonly AddressRange[] }[];
const portsCache = { 4: new WeakMap<PointRule, FamilyPorts>(), 6: new WeakMap<PointRule, FamilyPorts>() };

/**
 * A rule's port matches in a family. Matches restricted to some destinations (named ports: the engine
 * groups them per port number) that share a protocol and port (two names, one number) become one match
 * over the union of their addresses: boxes of one rule and port must have one address list. Kept per rule
 * object (rules are shared by points and passes).
 */
function portsOf(r: PointRule, fam: Family): FamilyPorts {
  const hit = portsCache[fam].get(r);
  if (hit) return hit;
  const out: FamilyPorts = [];
  const to = new Map<string, { protocol: 'tcp' | 'udp' | 'sctp'; lo: number; hi: number; ranges: (readonly AddressRange[])[] }>();
  for (const p of r.ports) {
    if (p.to === undefined) {
      out.push({ protocol: p.protocol, lo: p.lo, hi: p.hi });
      continue;
    }
    const ranges = fam === 4 ? p.to.v4 : p.to.v6;
    if (!ranges.length) continue;
    const k = `${p.protocol}/${p.lo}-${p.hi}`;
    const g = to.get(k);
    if (g) g.ranges.push(ranges);
    else to.set(k, { protocol: p.protocol, lo: p.lo, hi: p.hi, ranges: [ranges] });
  }
  for (const g of to.values()) out.push({ protocol: g.protocol, lo: g.lo, hi: g.hi, ranges: g.ranges.length === 1 ? g.ranges[0]! : normalize(g.ranges.flat()) });
  portsCache[fam].set(r, out);
  return out;
}

export type { AddressRange };
