import { normalize, type AddressRange, type EnforcementPointModel, type PointRule } from '../../engine';
import { firstMatch, portPlan, repaintPlan, type FamilyPlan } from './boxes';
import type { AddressMap, AddressSet, Chain, Family, NamedSet, PortMap, Rule, Table, Verdict } from './ir';

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
 *     chain in_<category>_c<k>   ip saddr vmap @in_<category>_c<k> (address → rule chain); goto the next category
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
 * a class maps address runs to the first rule holding them. Both levels are single-field interval maps
 * (rbtrees), so a first packet costs two O(log n) lookups per category whatever the number of rules; an
 * earlier layout used one `addr . l4proto . dport` concatenated map (pipapo), whose lookups grow with the
 * element count. `pass` is a goto to the application chain (from the application category: to the
 * kubernetes chain, a pod's NetworkPolicy layer; from baseline: to the default chain). Only the first
 * packet of a connection is classified.
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
 * First-match plans shared by points and kept across changes: models built with one engine
 * PointModelCache share their point-independent rule objects (and keep them while their peers do not
 * change), so a category whose decisive rules are the same objects in the same order (VM interfaces
 * with equal rule lists, every `out` side of one list, the same point after an unrelated change) has the
 * same plan. Held weakly by the category's first rule, so plans of rules that are gone are collected.
 */
export class CompileCache {
  private readonly ids = new WeakMap<PointRule, number>();
  private nextId = 0;
  private readonly plans = new WeakMap<PointRule, Map<string, FamilyPlan>>();
  private readonly directions = new WeakMap<PointRule, Map<string, DirectionPart>>();
  /** The last plan of each category of each point (`point|dir|category`), to repaint after its peers changed. */
  private readonly last = new Map<string, FamilyPlan>();

  /** The key of a rule list: its rules' ids in order. */
  private keyOf(prefix: string, rules: readonly PointRule[]): string {
    let k = prefix;
    for (const r of rules) {
      let id = this.ids.get(r);
      if (id === undefined) this.ids.set(r, (id = this.nextId++));
      k += `,${id}`;
    }
    return k;
  }

  /** A direction of a table: known for these rule objects (points with equal rule lists, a point after an unrelated change), else made. */
  direction(dir: 'in' | 'out', v: Family, defaultAction: string, rules: readonly PointRule[], make: () => DirectionPart): DirectionPart {
    if (!rules.length) return make();
    const k = this.keyOf(`${dir}|${v}|${defaultAction}`, rules);
    let byKey = this.directions.get(rules[0]!);
    if (!byKey) this.directions.set(rules[0]!, (byKey = new Map()));
    let part = byKey.get(k);
    if (!part) {
      if (byKey.size >= 64) byKey.delete(byKey.keys().next().value!);
      byKey.set(k, (part = make()));
    }
    return part;
  }

  /**
   * The plan of a rule list in a family: a known one; else the last plan of the same category of the same
   * point repainted where its rules' addresses changed (pod churn: the rules are new objects with other
   * peers, the same ports); else `make()`.
   */
  plan(v: Family, rules: readonly PointRule[], slot: string, make: () => FamilyPlan, repaint: (prev: FamilyPlan) => FamilyPlan | undefined): FamilyPlan {
    const k = this.keyOf(`${v}`, rules);
    let byKey = this.plans.get(rules[0]!);
    if (!byKey) this.plans.set(rules[0]!, (byKey = new Map()));
    let plan = byKey.get(k);
    if (!plan) {
      const prev = this.last.get(slot);
      plan = (prev && repaint(prev)) ?? make();
      // Lists sharing a first rule but not the rest are kept a while (a long-lived agent sees many).
      if (byKey.size >= 64) byKey.delete(byKey.keys().next().value!);
      byKey.set(k, plan);
    }
    this.last.set(slot, plan);
    return plan;
  }
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

/** Element lists kept per plan class and per peer range list, so equal inputs give the same list objects. */
const classElements = new WeakMap<FamilyPlan['classes'][number], { readonly key: string; readonly elements: AddressMap['elements'] }>();
const peerElements = new WeakMap<readonly AddressRange[], AddressSet['elements']>();
/** Port-map element lists per plan port list (a repainted plan keeps its ports), named by direction and category. */
const portElements = new WeakMap<FamilyPlan['ports'], { readonly prefix: string; readonly lists: Map<string, PortMap['elements']> }>();
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

function compileDirection(model: EnforcementPointModel, dir: 'in' | 'out', v: Family, options: CompileOptions): DirectionPart {
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
  const ruleChainList: Chain[] = [];
  const classChains: Chain[] = [];
  for (const r of rules) {
    if (r.staged) continue;
    const name = unique(`r_${dir}_${fnv(`${dir}|${r.id}`)}`);
    ruleChainOf.set(r, name);
    ruleChains.set(name, r.id);
    const log = r.logged ? `microseg ${dir} ${r.id} `.slice(0, 120) : undefined;
    const verdict = (): Verdict[] => {
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
    };
    const vs = verdict();
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
      chainRules.push(...otherRules(r, dir, field, h, (peerSet) => ({ ...note, peerSet })));
    }
    const decisive = inCat.filter((x) => !x.staged);
    // Two-level lookup (see the module comment): port → address class chain → address → rule chain.
    const boxes = () => decisive.map((r, i) => ({ rule: i, sig: String(i), ports: portsOf(r, v), ranges: v === 4 ? r.peer.v4 : r.peer.v6 }));
    const planOf = () => portPlan(boxes(), v);
    const plan = options.cache && decisive.length ? options.cache.plan(v, decisive, `${model.name}|${dir}|${cat}`, planOf, (prev) => repaintPlan(prev, boxes())) : planOf();
    // The rule chains a class's runs name, as one key: a class of an earlier compile whose rules have the
    // same chains keeps its element list (an unchanged list is what the agent skips over when diffing).
    const targets = decisive.map((r) => ruleChainOf.get(r)!);
    const targetKey = targets.join(' ');
    plan.classes.forEach((c, k) => {
      const name = `${dir}_${cat}_c${k}`;
      usedNames.add(name);
      let made = classElements.get(c);
      if (made?.key !== targetKey) classElements.set(c, (made = { key: targetKey, elements: c.runs.map((x) => ({ addr: { v, lo: x.lo, hi: x.hi }, verdict: { kind: 'goto', target: targets[x.rule]! } })) }));
      sets.push({ kind: 'addr-map', name, v, elements: made.elements });
      elements += c.runs.length;
      classChains.push({ name, rules: [{ match: [], vmap: { key: 'addr', v, field, map: name } }, { match: [], verdict: { kind: 'goto', target: c.base !== undefined ? `${dir}_${cat}_c${c.base}` : next } }] });
    });
    let byProtocol = portElements.get(plan.ports);
    if (byProtocol?.prefix !== `${dir}_${cat}`) portElements.set(plan.ports, (byProtocol = { prefix: `${dir}_${cat}`, lists: new Map() }));
    for (const protocol of PORT_PROTOCOLS) {
      let list = byProtocol.lists.get(protocol);
      if (!list) {
        list = plan.ports.filter((p) => p.protocol === protocol).map((p) => ({ lo: p.plo, hi: p.phi, verdict: { kind: 'goto', target: `${dir}_${cat}_c${p.cls}` } }) as const);
        byProtocol.lists.set(protocol, list);
      }
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

export function compilePoint(model: EnforcementPointModel, options: CompileOptions = {}): CompiledPoint {
  const v: Family = model.ip.includes(':') ? 6 : 4;
  const sets: NamedSet[] = [];
  const chains: Chain[] = [];
  const ruleChains = new Map<string, string>();
  const marks = new Map<number, FlowRule>();
  const flowSets = new Map<string, FlowRule>();
  let elements = 0;
  for (const dir of ['in', 'out'] as const) {
    const self = dir === 'in' ? 'daddr' : 'saddr';
    const base: Rule[] = [
      { match: [{ m: 'ct-state', states: ['established', 'related'] }], verdict: { kind: 'accept' } },
      { match: [{ m: 'ifname', dir: dir === 'in' ? 'iif' : 'oif', name: 'lo' }], verdict: { kind: 'accept' } },
      // Other addresses of the host (another interface, another point) are not this point's traffic.
      { match: [{ m: 'addr', v, field: self, op: '!=', addr: model.ip }], verdict: { kind: 'accept' } },
      { match: [{ m: 'nfproto', v: v === 4 ? 6 : 4 }], verdict: { kind: 'accept' } },
      { match: [], verdict: { kind: 'goto', target: `${dir}_${CATEGORIES[0]}` } },
    ];
    chains.push({ name: dir === 'in' ? 'input' : 'output', hook: dir === 'in' ? 'input' : 'output', rules: base });
    const make = () => compileDirection(model, dir, v, options);
    const part = options.cache ? options.cache.direction(dir, v, model.defaultAction, model[dir], make) : make();
    sets.push(...part.sets);
    chains.push(...part.chains);
    for (const [k, x] of part.ruleChains) ruleChains.set(k, x);
    for (const [k, x] of part.marks) marks.set(k, x);
    for (const [k, x] of part.flowSets) flowSets.set(k, x);
    elements += part.elements;
  }

  const table: Table = { family: 'inet', name: options.tableName ?? tableNameOf(model.name), sets, chains };
  const ruleCount = chains.reduce((n, c) => n + c.rules.length, 0);
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
