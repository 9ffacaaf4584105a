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
 * edge; inside one interval the problem is one-dimensional. The addresses are cut into elementary
 * segments at every range edge (sorted once per protocol); per port interval the boxes paint the
 * segments still free in rule order, a union-find "next free segment" pointer skipping what earlier
 * rules claimed, so each segment is painted once and a range already claimed costs almost nothing
 * (an earlier version subtracted each range from a sorted list of claimed ranges and spliced it in:
 * quadratic, the largest point at bench scale 1 did not compile in 8 minutes). Painting stops at a
 * rule covering every address (a catch-all) or when every segment is claimed. Runs of one rule over
 * adjacent segments become one piece, and equal pieces of adjacent port intervals are merged back.
 * Returns disjoint boxes per rule.
 */
export function firstMatchV4(boxes: readonly RuleBox[], fullHi = 0xffffffff): { rule: number; protocol: PortProtocol; lo: number; hi: number; plo: number; phi: number }[] {
  const out: { rule: number; protocol: PortProtocol; lo: number; hi: number; plo: number; phi: number }[] = [];
  for (const protocol of ['tcp', 'udp', 'sctp'] as const) {
    const mine = unshadowed(
      boxes.filter((b) => b.protocol === protocol).sort((a, b) => a.rule - b.rule),
      fullHi,
    );
    if (!mine.length) continue;
    const edges = new Set<number>();
    for (const b of mine) edges.add(b.plo).add(b.phi + 1);
    const starts = [...edges].filter((e) => e <= 65535).sort((a, b) => a - b);
    const { coords, segs } = segmentsOf(mine);
    const nSeg = Math.max(0, coords.length - 1);
    const owner = new Int32Array(nSeg).fill(-1);
    const next = new Int32Array(nSeg + 1);
    for (let i = 0; i <= nSeg; i++) next[i] = i;
    // The segments painted in the current port interval: only they are read back and reset, so an
    // interval decided by a few early rules costs little however many segments the protocol has.
    const painted = new Int32Array(nSeg);
    // Pieces keyed by rule and address range; ports of adjacent intervals are merged as they come.
    // Numeric keys (rule, low address): a string per piece made this allocation-bound.
    const open = new Map<number, { rule: number; lo: number; hi: number; plo: number; phi: number }>();
    for (let k = 0; k < starts.length; k++) {
      const plo = starts[k]!;
      const phi = (k + 1 < starts.length ? starts[k + 1]! : 65536) - 1;
      let n = 0;
      for (let bi = 0; bi < mine.length && n < nSeg; bi++) {
        const b = mine[bi]!;
        if (b.plo > plo || b.phi < phi) continue;
        const sb = segs[bi]!;
        for (let r = 0; r < sb.length; r += 2) {
          const end = sb[r + 1]!;
          for (let x = find(next, sb[r]!); x < end; x = find(next, x + 1)) {
            owner[x] = b.rule;
            next[x] = x + 1;
            painted[n++] = x;
          }
        }
        if (b.ranges.length === 1 && b.ranges[0]![0] === 0 && b.ranges[0]![1] === fullHi) break;
      }
      const done = painted.subarray(0, n).sort();
      for (let i = 0; i < n; ) {
        const x = done[i]!;
        const rule = owner[x]!;
        let j = i + 1;
        while (j < n && done[j] === done[j - 1]! + 1 && owner[done[j]!] === rule) j++;
        const lo = coords[x]!;
        const hi = coords[done[j - 1]! + 1]! - 1;
        const key = rule * 4294967296 + lo;
        const prev = open.get(key);
        if (prev && prev.hi === hi && prev.phi + 1 === plo) prev.phi = phi;
        else {
          if (prev) out.push({ protocol, ...prev });
          open.set(key, { rule, lo, hi, plo, phi });
        }
        i = j;
      }
      for (let i = 0; i < n; i++) {
        owner[done[i]!] = -1;
        next[done[i]!] = done[i]!;
      }
    }
    for (const p of open.values()) out.push({ protocol, ...p });
  }
  return out;
}

/**
 * The boxes (in rule order) minus those whose ports all lie under earlier catch-all boxes (every
 * address): they can never own anything, and skipping them before the address segments are built keeps
 * a point whose rules start with catch-alls cheap however many ranges follow.
 */
function unshadowed(boxes: readonly RuleBox[], fullHi: number): RuleBox[] {
  const blocked: [number, number][] = []; // sorted, disjoint port intervals under a catch-all so far
  const out: RuleBox[] = [];
  for (const b of boxes) if (admit(blocked, b, fullHi)) out.push(b);
  return out;
}

/** Whether a box (boxes of one protocol come in rule order) is not under an earlier catch-all; a catch-all blocks its ports. */
function admit(blocked: [number, number][], b: RuleBox, fullHi: number): boolean {
  let i = 0;
  while (i < blocked.length && blocked[i]![1] < b.plo) i++;
  if (i < blocked.length && blocked[i]![0] <= b.plo && b.phi <= blocked[i]![1]) return false;
  if (b.ranges.length === 1 && b.ranges[0]![0] === 0 && b.ranges[0]![1] === fullHi) {
    let lo = b.plo;
    let hi = b.phi;
    let j = 0;
    while (j < blocked.length && blocked[j]![1] + 1 < lo) j++;
    let k = j;
    while (k < blocked.length && blocked[k]![0] <= hi + 1) {
      lo = Math.min(lo, blocked[k]![0]);
      hi = Math.max(hi, blocked[k]![1]);
      k++;
    }
    blocked.splice(j, k - j, [lo, hi]);
  }
  return true;
}

/** The first free segment at or after x (path halving keeps the chains short). */
function find(next: Int32Array, x: number): number {
  while (next[x] !== x) {
    next[x] = next[next[x]!]!;
    x = next[x]!;
  }
  return x;
}

/**
 * The elementary address segments of the boxes (segment s is [coords[s], coords[s + 1] - 1]) and, per
 * box, its ranges as segment index pairs [first, end).
 */
function segmentsOf(boxes: readonly RuleBox[]): { coords: Float64Array; segs: Int32Array[] } {
  // Boxes of one rule (its protocols and port ranges) share one range list: each list is cut once.
  const lists = new Map<RuleBox['ranges'], Int32Array | undefined>();
  let n = 0;
  for (const b of boxes)
    if (!lists.has(b.ranges)) {
      lists.set(b.ranges, undefined);
      n += b.ranges.length;
    }
  const all = new Float64Array(2 * n);
  let e = 0;
  for (const ranges of lists.keys())
    for (const [lo, hi] of ranges) {
      all[e++] = lo;
      all[e++] = hi + 1;
    }
  all.sort();
  let m = 0;
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[m - 1]) all[m++] = all[i]!;
  const coords = all.slice(0, m);
  const indexOf = (v: number, from: number) => {
    let lo = from;
    let hi = m - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (coords[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const segs = boxes.map((b) => {
    let s = lists.get(b.ranges);
    if (s) return s;
    s = new Int32Array(2 * b.ranges.length);
    // Ranges are sorted: each bound is searched from the previous one's position.
    let at = 0;
    b.ranges.forEach(([lo, hi], i) => {
      s![2 * i] = at = indexOf(lo, at);
      s![2 * i + 1] = at = indexOf(hi + 1, at);
    });
    lists.set(b.ranges, s);
    return s;
  });
  return { coords, segs };
}

/**
 * A rule's port matches over its address ranges, in one family, as the compiler hands them over. A port
 * match with its own `ranges` holds only for those addresses (sorted, disjoint): the destinations whose
 * named port has that number (an `out` rule naming a port). One box per port number, not per
 * destination: at bench scale a rule to a named port of a large group made tens of thousands of
 * single-address boxes.
 */
export interface FamilyRuleBoxes {
  readonly rule: number;
  readonly ports: readonly { readonly protocol: PortProtocol; readonly lo: number; readonly hi: number; readonly ranges?: readonly AddressRange[] }[];
  readonly ranges: readonly AddressRange[];
}

/**
 * IPv4 ranges as number pairs, made once per range list: the engine's regions are shared by the points
 * and rules naming one peer set, and converting ~100,000 bigint bounds per large point was a large part
 * of its compile.
 */
const v4Pairs = new WeakMap<readonly AddressRange[], (readonly [number, number])[]>();
function pairsV4(xs: readonly AddressRange[]): (readonly [number, number])[] {
  let out = v4Pairs.get(xs);
  if (!out) v4Pairs.set(xs, (out = xs.map((x) => [Number(x.lo), Number(x.hi)] as const)));
  return out;
}

/**
 * IPv6 (bigint) addresses compressed to ranks: the sorted edges of every range and single address, so the
 * number-based first match runs on indices; `coords[i]` maps a rank back to its address.
 */
function coordinates(rules: readonly FamilyRuleBoxes[]): { coords: bigint[]; rank: Map<bigint, number> } {
  const edges = new Set<bigint>();
  for (const r of rules)
    for (const p of r.ports) for (const x of p.ranges ?? r.ranges) edges.add(x.lo).add(x.hi + 1n);
  const coords = [...edges].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { coords, rank: new Map(coords.map((c, i) => [c, i] as const)) };
}

/**
 * {@link firstMatchV4} for either family: addresses are first compressed to the ranks of every range
 * edge (IPv6 bounds do not fit a double), then mapped back. Returns disjoint pieces per rule.
 */
export function firstMatch(rules: readonly FamilyRuleBoxes[], family: 4 | 6 = 6): { rule: number; protocol: PortProtocol; lo: bigint; hi: bigint; plo: number; phi: number }[] {
  if (family === 4) {
    // IPv4 addresses are exact doubles: no compression needed.
    const boxes: RuleBox[] = [];
    for (const r of rules) for (const p of r.ports) boxes.push({ rule: r.rule, protocol: p.protocol, plo: p.lo, phi: p.hi, ranges: pairsV4(p.ranges ?? r.ranges) });
    return firstMatchV4(boxes).map((x) => ({ ...x, lo: BigInt(x.lo), hi: BigInt(x.hi) }));
  }
  const { coords, rank } = coordinates(rules);
  const boxes: RuleBox[] = [];
  for (const r of rules) {
    const ranges = r.ranges.map((x) => [rank.get(x.lo)!, rank.get(x.hi + 1n)! - 1] as const);
    for (const p of r.ports) boxes.push({ rule: r.rule, protocol: p.protocol, plo: p.lo, phi: p.hi, ranges: p.ranges ? p.ranges.map((x) => [rank.get(x.lo)!, rank.get(x.hi + 1n)! - 1] as const) : ranges });
  }
  return firstMatchV4(boxes, coords.length - 2).map((x) => ({ ...x, lo: coords[x.lo]!, hi: coords[x.hi + 1]! - 1n }));
}

/**
 * A rule box with its signature part: it names the rule and its addresses, so boxes with equal `sig`
 * must have equal ranges (the compiler uses the rule, plus the one address of a named-port box).
 */
export interface SignedRuleBox extends RuleBox {
  readonly sig: string;
}

/**
 * First match as a two-level lookup: per protocol, the ports cut into elementary intervals, each
 * pointing to an address class; a class maps disjoint address runs to the rule owning them there.
 *
 * A port interval's class is named by its *signature*: the boxes covering it, in rule order, up to the
 * first catch-all (what follows a catch-all never owns anything). Equal signatures paint equal runs, so
 * intervals share one class (one address map) whatever their port numbers. The signature depends only
 * on the rules' ports (and the addresses of named-port boxes), not on their peers' members, so pod churn
 * changes the classes' runs, not which classes exist: an element update, not a new table.
 *
 * Classes over a *base*: the boxes covering every port of the protocol (rules without ports, the common
 * case) cover every interval, so each class would repeat their runs. Instead the protocol's base boxes
 * make one class of their own, and any other class holds only the addresses where one of its port-
 * specific boxes wins, with `base` naming the class to look up otherwise. That is exact: where the first
 * matching rule of an interval has a base box holding the address, it is also the first base rule
 * holding it (base boxes cover every interval). At bench scale this removed most elements of a large
 * point's `out` side (each named-port class repeated ~7,000 runs).
 */
export interface PortPlan<A> {
  /** In order of first use: tcp ports ascending, then udp, then sctp. */
  readonly classes: readonly { readonly sig: string; readonly runs: readonly { readonly rule: number; readonly lo: A; readonly hi: A }[]; readonly base?: number }[];
  /** Per protocol, ascending, disjoint; adjacent intervals of one class merged. */
  readonly ports: readonly { readonly protocol: PortProtocol; readonly plo: number; readonly phi: number; readonly cls: number }[];
}

/** A plan over IPv4 numbers with what {@link repaintPlan} needs: the boxes it was made of and each class's covering boxes. */
export interface PlanV4 extends PortPlan<number> {
  /** The boxes that can own anything, in rule order. */
  readonly boxes: readonly SignedRuleBox[];
  /** Per class, its covering boxes (indexes into `boxes`); for a class over a base, its base's are those of the base class. */
  readonly covering: readonly (readonly number[])[];
}

export function portPlanV4(boxes: readonly SignedRuleBox[], fullHi = 0xffffffff): PlanV4 {
  const classes: { sig: string; runs: { rule: number; lo: number; hi: number }[]; base?: number }[] = [];
  const covers: number[][] = [];
  const bySig = new Map<string, number>();
  const ports: { protocol: PortProtocol; plo: number; phi: number; cls: number }[] = [];
  const isAll = (b: RuleBox) => b.ranges.length === 1 && b.ranges[0]![0] === 0 && b.ranges[0]![1] === fullHi;
  // Boxes without addresses can never match (a peer of the other family only). One address painter for
  // the three protocols: a rule without ports has the same ranges in each, cut into segments once.
  const all = ownable(boxes, fullHi);
  let painter: Painter | undefined;
  for (const protocol of ['tcp', 'udp', 'sctp'] as const) {
    const mine: number[] = [];
    all.forEach((b, i) => {
      if (b.protocol === protocol) mine.push(i);
    });
    if (!mine.length) continue;
    const edges = new Set<number>();
    for (const bi of mine) edges.add(all[bi]!.plo).add(all[bi]!.phi + 1);
    const starts = [...edges].filter((e) => e <= 65535).sort((a, b) => a - b);
    // The protocol's base: boxes of every port, in rule order, up to the first catch-all.
    const baseBoxes: number[] = [];
    let baseSig = '';
    for (const bi of mine) {
      const b = all[bi]!;
      if (b.plo !== 0 || b.phi !== 65535) continue;
      baseBoxes.push(bi);
      baseSig += `${b.sig},`;
      if (isAll(b)) break;
    }
    const isBase = new Set(baseBoxes);
    let baseCls: number | undefined;
    const baseClass = (): number => {
      if (baseCls !== undefined) return baseCls;
      painter ??= painterOf(all);
      // Painting the base also records its owners for the classes over it.
      const runs = painter.setBase(baseBoxes);
      let cls = bySig.get(baseSig);
      if (cls === undefined) {
        cls = classes.length;
        bySig.set(baseSig, cls);
        classes.push({ sig: baseSig, runs });
        covers.push([...baseBoxes]);
      }
      return (baseCls = cls);
    };
    const covering: number[] = [];
    const specific: number[] = [];
    for (let k = 0; k < starts.length; k++) {
      const plo = starts[k]!;
      const phi = (k + 1 < starts.length ? starts[k + 1]! : 65536) - 1;
      covering.length = 0;
      specific.length = 0;
      let sig = '';
      for (const bi of mine) {
        const b = all[bi]!;
        if (b.plo > plo || b.phi < phi) continue;
        covering.push(bi);
        if (!isBase.has(bi)) specific.push(bi);
        sig += `${b.sig},`;
        if (isAll(b)) break;
      }
      if (!covering.length) continue;
      // A class over a base is named by both: its runs depend on the base's owners too (the same
      // signature can be a base class in one protocol and over a base in another).
      const key = !baseBoxes.length || sig === baseSig ? sig : `${baseSig}|${sig}`;
      let cls = bySig.get(key);
      if (cls === undefined) {
        painter ??= painterOf(all);
        if (key === sig) {
          cls = classes.length;
          bySig.set(key, cls);
          classes.push({ sig: key, runs: painter.paint(covering) });
        } else {
          const base = baseClass();
          cls = classes.length;
          bySig.set(key, cls);
          classes.push({ sig: key, runs: painter.paintOverBase(specific), base });
        }
        covers[cls] = [...covering];
      }
      const last = ports[ports.length - 1];
      if (last && last.protocol === protocol && last.cls === cls && last.phi + 1 === plo) last.phi = phi;
      else ports.push({ protocol, plo, phi, cls });
    }
  }
  return { classes, ports, boxes: all, covering: covers };
}

/**
 * The boxes that can own an address, in rule order: not empty, and not under an earlier catch-all of
 * their protocol (left out before any segment is made).
 */
function ownable<B extends RuleBox>(boxes: readonly B[], fullHi: number): B[] {
  // One pass, the protocols side by side (each box is checked against its own protocol's catch-alls);
  // boxes usually come in rule order already.
  let inOrder = true;
  for (let i = 1; i < boxes.length && inOrder; i++) inOrder = boxes[i - 1]!.rule <= boxes[i]!.rule;
  const sorted = inOrder ? boxes : [...boxes].sort((a, b) => a.rule - b.rule);
  const blocked: Record<PortProtocol, [number, number][]> = { tcp: [], udp: [], sctp: [] };
  const out: B[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const b = sorted[i]!;
    if (b.ranges.length > 0 && admit(blocked[b.protocol], b, fullHi)) out.push(b);
  }
  return out;
}

interface Painter {
  /** Each segment to the first box holding it (boxes in rule order); the maximal runs of one rule, ascending. */
  paint(which: readonly number[]): { rule: number; lo: number; hi: number }[];
  /** {@link paint}, recording the owner of every segment for {@link paintOverBase}. */
  setBase(which: readonly number[]): { rule: number; lo: number; hi: number }[];
  /** The runs where one of these boxes holds a segment before its base owner (a smaller rule, or no base owner). */
  paintOverBase(which: readonly number[]): { rule: number; lo: number; hi: number }[];
}

/**
 * Paints the address segments of some boxes (indexes into `boxes`, in rule order): each segment goes to
 * the first box holding it.
 */
function painterOf(boxes: readonly RuleBox[]): Painter {
  const { coords, segs } = segmentsOf(boxes);
  const nSeg = Math.max(0, coords.length - 1);
  const owner = new Int32Array(nSeg).fill(-1);
  const next = new Int32Array(nSeg + 1);
  for (let i = 0; i <= nSeg; i++) next[i] = i;
  const painted = new Int32Array(nSeg);
  const baseOwner = new Int32Array(nSeg).fill(-1);
  /** Paints `which` in order, a box painting only segments whose base owner is a later rule (or none) when `overBase`. */
  const run = (which: readonly number[], overBase: boolean, keep: boolean) => {
    let n = 0;
    for (const bi of which) {
      if (n >= nSeg) break;
      const sb = segs[bi]!;
      const rule = boxes[bi]!.rule;
      for (let r = 0; r < sb.length; r += 2) {
        const end = sb[r + 1]!;
        for (let x = find(next, sb[r]!); x < end; x = find(next, x + 1)) {
          if (overBase) {
            const b = baseOwner[x]!;
            if (b !== -1 && b <= rule) continue;
          }
          owner[x] = rule;
          next[x] = x + 1;
          painted[n++] = x;
        }
      }
    }
    const done = painted.subarray(0, n).sort();
    const runs: { rule: number; lo: number; hi: number }[] = [];
    for (let i = 0; i < n; ) {
      const x = done[i]!;
      const rule = owner[x]!;
      let j = i + 1;
      while (j < n && done[j] === done[j - 1]! + 1 && owner[done[j]!] === rule) j++;
      runs.push({ rule, lo: coords[x]!, hi: coords[done[j - 1]! + 1]! - 1 });
      i = j;
    }
    if (keep) for (let i = 0; i < n; i++) baseOwner[done[i]!] = owner[done[i]!]!;
    for (let i = 0; i < n; i++) {
      owner[done[i]!] = -1;
      next[done[i]!] = done[i]!;
    }
    return runs;
  };
  return {
    paint: (which) => run(which, false, false),
    setBase: (which) => {
      baseOwner.fill(-1);
      return run(which, false, true);
    },
    paintOverBase: (which) => run(which, true, false),
  };
}

/** A rule's port matches with its signature part, for {@link portPlan}. */
export interface SignedFamilyRuleBoxes extends FamilyRuleBoxes {
  readonly sig: string;
}

/** {@link portPlanV4} for either family (IPv6 addresses compressed to ranks, as in {@link firstMatch}). */
/** A plan over addresses of a family; IPv4 plans keep their number form for {@link repaintPlan}. */
export interface FamilyPlan extends PortPlan<bigint> {
  readonly v4?: PlanV4;
}

/**
 * The IPv4 boxes of some rules, given per rule (`boxesV4` of each rule: a caller keeps them per rule, so a
 * repaint after a few rules changed builds only theirs).
 */
export type V4Boxes = { readonly v4: readonly SignedRuleBox[] };

export function portPlan(rules: readonly SignedFamilyRuleBoxes[] | V4Boxes, family: 4 | 6): FamilyPlan {
  if (family === 4) {
    const v4 = portPlanV4('v4' in rules ? rules.v4 : boxesV4(rules));
    return { ports: v4.ports, classes: v4.classes.map((c) => bigRuns(c)), v4 };
  }
  if ('v4' in rules) throw new Error('IPv4 boxes for an IPv6 plan');
  const { coords, rank } = coordinates(rules);
  const boxes: SignedRuleBox[] = [];
  for (const r of rules) {
    const ranges = r.ranges.map((x) => [rank.get(x.lo)!, rank.get(x.hi + 1n)! - 1] as const);
    for (const p of r.ports) boxes.push({ rule: r.rule, sig: sigOf(r, p), protocol: p.protocol, plo: p.lo, phi: p.hi, ranges: p.ranges ? p.ranges.map((x) => [rank.get(x.lo)!, rank.get(x.hi + 1n)! - 1] as const) : ranges });
  }
  const plan = portPlanV4(boxes, coords.length - 2);
  return { ports: plan.ports, classes: plan.classes.map((c) => ({ sig: c.sig, runs: c.runs.map((x) => ({ rule: x.rule, lo: coords[x.lo]!, hi: coords[x.hi + 1]! - 1n })), ...(c.base !== undefined ? { base: c.base } : {}) })) };
}

/**
 * The plan of rules whose addresses changed since `prev` was made for the same category of the same
 * point (IPv4): repainted where addresses changed ({@link repaintPlanV4}), undefined when it cannot be.
 */
export function repaintPlan(prev: FamilyPlan, rules: readonly SignedFamilyRuleBoxes[] | V4Boxes): FamilyPlan | undefined {
  if (!prev.v4) return undefined;
  const v4 = repaintPlanV4(prev.v4, 'v4' in rules ? rules.v4 : boxesV4(rules));
  return v4 && { ports: v4.ports, classes: v4.classes.map((c, k) => bigRuns(c, prev.v4!.classes[k], prev.classes[k])), v4 };
}

// A box restricted to some destinations is named by its port: one rule's boxes of one port number have equal addresses.
const sigOf = (r: SignedFamilyRuleBoxes, p: SignedFamilyRuleBoxes['ports'][number]) => (p.ranges === undefined ? r.sig : `${r.sig}@${p.protocol}/${p.lo}-${p.hi}`);

/** The IPv4 boxes of rules, in order. */
export function boxesV4(rules: readonly SignedFamilyRuleBoxes[]): SignedRuleBox[] {
  const boxes: SignedRuleBox[] = [];
  for (const r of rules) for (const p of r.ports) boxes.push({ rule: r.rule, sig: sigOf(r, p), protocol: p.protocol, plo: p.lo, phi: p.hi, ranges: pairsV4(p.ranges ?? r.ranges) });
  return boxes;
}

/** A class with bigint bounds, converted once per runs list (a repaint keeps the lists of unchanged classes). */
const bigClasses = new WeakMap<PlanV4['classes'][number], PortPlan<bigint>['classes'][number]>();
function bigRuns(c: PlanV4['classes'][number], prev?: PlanV4['classes'][number], prevBig?: PortPlan<bigint>['classes'][number]): PortPlan<bigint>['classes'][number] {
  let out = bigClasses.get(c);
  if (out) return out;
  // A repainted class keeps the runs of the class it replaces outside the changed windows: their
  // conversions are kept too (`prevBig` is `prev` converted, run for run).
  let j = 0;
  const runs = c.runs.map((x) => {
    if (prev && prevBig) {
      while (j < prev.runs.length && prev.runs[j]!.lo < x.lo) j++;
      if (prev.runs[j] === x) return prevBig.runs[j]!;
    }
    return { rule: x.rule, lo: BigInt(x.lo), hi: BigInt(x.hi) };
  });
  bigClasses.set(c, (out = { sig: c.sig, runs, ...(c.base !== undefined ? { base: c.base } : {}) }));
  return out;
}

/** A run of addresses owned by one rule. */
type Run = { rule: number; lo: number; hi: number };

/**
 * A plan made again after the boxes' addresses changed but not their rules, signatures or ports (pod
 * churn, group membership): only the addresses where some box gained or lost a range are painted again,
 * and only in the classes whose boxes changed. Returns undefined when the structure differs (a box came,
 * went, or became a catch-all): then a full {@link portPlanV4} is needed. Equal to the full plan.
 */
export function repaintPlanV4(prev: PlanV4, boxes: readonly SignedRuleBox[], fullHi = 0xffffffff): PlanV4 | undefined {
  const isAll = (b: RuleBox) => b.ranges.length === 1 && b.ranges[0]![0] === 0 && b.ranges[0]![1] === fullHi;
  const sorted = ownable(boxes, fullHi);
  if (sorted.length !== prev.boxes.length) return undefined;
  const windows: [number, number][] = [];
  const changed = new Uint8Array(sorted.length);
  for (let i = 0; i < sorted.length; i++) {
    const [b, p] = [sorted[i]!, prev.boxes[i]!];
    if (b.rule !== p.rule || b.sig !== p.sig || b.protocol !== p.protocol || b.plo !== p.plo || b.phi !== p.phi || isAll(b) !== isAll(p)) return undefined;
    if (b.ranges === p.ranges) continue;
    const d = differences(p.ranges, b.ranges);
    if (d.length) {
      changed[i] = 1;
      windows.push(...d);
    }
  }
  if (!windows.length) return { ...prev, boxes: sorted };
  const w = mergeRanges(windows);
  const classes = prev.classes.map((c, k) => {
    const covering = prev.covering[k]!;
    if (!covering.some((bi) => changed[bi])) return c;
    const inside = paintWindows(sorted, covering, w);
    const own = c.base === undefined ? inside : overBase(inside, paintWindows(sorted, prev.covering[c.base]!, w));
    // Most classes a changed box covers own the same runs there as before (the address joined a range
    // an earlier rule already claims): they stay the same objects, so their element lists are not
    // made again nor diffed by the agent.
    return sameInside(c.runs, w, own) ? c : { ...c, runs: splice(c.runs, w, own) };
  });
  return { ...prev, classes, boxes: sorted };
}

/** Sorted, disjoint windows where two sorted, disjoint range lists differ (a linear sweep). */
function differences(a: RuleBox['ranges'], b: RuleBox['ranges']): [number, number][] {
  const out: [number, number][] = [];
  let i = 0;
  let j = 0;
  let inA = false;
  let inB = false;
  let start = 0;
  // The next boundary of a list: the start of its current range, or the end + 1 once inside it.
  const nextOf = (xs: RuleBox['ranges'], k: number, inside: boolean) => (k >= xs.length ? Infinity : inside ? xs[k]![1] + 1 : xs[k]![0]);
  for (;;) {
    const x = Math.min(nextOf(a, i, inA), nextOf(b, j, inB));
    if (x === Infinity) break;
    const before = inA !== inB;
    if (nextOf(a, i, inA) === x) {
      if (inA) i++;
      inA = !inA;
    }
    if (nextOf(b, j, inB) === x) {
      if (inB) j++;
      inB = !inB;
    }
    const after = inA !== inB;
    if (!before && after) start = x;
    else if (before && !after) out.push([start, x - 1]);
  }
  return out;
}

function mergeRanges(xs: [number, number][]): [number, number][] {
  xs.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of xs) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** First match inside the windows only: per window, each box in order claims what is still free. */
function paintWindows(boxes: readonly RuleBox[], covering: readonly number[], windows: readonly [number, number][]): Run[] {
  const out: Run[] = [];
  for (const [a, b] of windows) {
    let free: [number, number][] = [[a, b]];
    for (const bi of covering) {
      if (!free.length) break;
      const box = boxes[bi]!;
      const rs = box.ranges;
      // First range ending at or after a.
      let lo = 0;
      let hi = rs.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (rs[mid]![1] < a) lo = mid + 1;
        else hi = mid;
      }
      for (let k = lo; k < rs.length && rs[k]![0] <= b && free.length; k++) {
        const [rlo, rhi] = rs[k]!;
        const rest: [number, number][] = [];
        for (const [flo, fhi] of free) {
          const x = Math.max(flo, rlo);
          const y = Math.min(fhi, rhi);
          if (x > y) {
            rest.push([flo, fhi]);
            continue;
          }
          out.push({ rule: box.rule, lo: x, hi: y });
          if (flo < x) rest.push([flo, x - 1]);
          if (y < fhi) rest.push([y + 1, fhi]);
        }
        free = rest;
      }
    }
  }
  return out.sort((p, q) => p.lo - q.lo);
}

/** The parts of `own` whose rule differs from the base's at the same addresses (what a class over a base holds). */
function overBase(own: readonly Run[], base: readonly Run[]): Run[] {
  const out: Run[] = [];
  let j = 0;
  for (const r of own) {
    let x = r.lo;
    while (j < base.length && base[j]!.hi < r.lo) j++;
    for (let k = j; k < base.length && base[k]!.lo <= r.hi; k++) {
      const bb = base[k]!;
      if (bb.rule !== r.rule) continue;
      const lo = Math.max(bb.lo, r.lo);
      const hi = Math.min(bb.hi, r.hi);
      if (x < lo) out.push({ rule: r.rule, lo: x, hi: lo - 1 });
      x = hi + 1;
    }
    if (x <= r.hi) out.push({ rule: r.rule, lo: x, hi: r.hi });
  }
  return out;
}

/**
 * Do the old runs, cut to the windows, equal the new runs inside them (both as maximal runs of one rule
 * per window)? Then {@link splice} would give the old runs back.
 */
function sameInside(old: readonly Run[], windows: readonly [number, number][], inside: readonly Run[]): boolean {
  const was: Run[] = [];
  let w = 0;
  for (const r of old) {
    while (w < windows.length && windows[w]![1] < r.lo) w++;
    for (let k = w; k < windows.length && windows[k]![0] <= r.hi; k++) {
      const [wl, wh] = windows[k]!;
      was.push({ rule: r.rule, lo: Math.max(r.lo, wl), hi: Math.min(r.hi, wh) });
    }
  }
  // The new runs merged where one rule's runs meet (paintWindows leaves them cut at box range edges).
  let n = 0;
  let last: Run | undefined;
  for (const p of inside) {
    if (last && last.rule === p.rule && last.hi + 1 === p.lo) {
      last = { rule: last.rule, lo: last.lo, hi: p.hi };
      continue;
    }
    if (last) {
      const x = was[n++];
      if (!x || x.rule !== last.rule || x.lo !== last.lo || x.hi !== last.hi) return false;
    }
    last = p;
  }
  if (last) {
    const x = was[n++];
    if (!x || x.rule !== last.rule || x.lo !== last.lo || x.hi !== last.hi) return false;
  }
  return n === was.length;
}

/** Old runs outside the windows, new runs inside, merged where one rule's runs meet (as a full paint makes them). */
function splice(old: readonly Run[], windows: readonly [number, number][], inside: readonly Run[]): Run[] {
  // Old runs no window touches stay the same objects (the compiler keeps what it made of them).
  const kept: Run[] = [];
  let w = 0;
  for (const r of old) {
    let x = r.lo;
    while (w < windows.length && windows[w]![1] < r.lo) w++;
    if (w >= windows.length || windows[w]![0] > r.hi) {
      kept.push(r);
      continue;
    }
    for (let k = w; k < windows.length && windows[k]![0] <= r.hi; k++) {
      const [wl, wh] = windows[k]!;
      if (x < wl) kept.push({ rule: r.rule, lo: x, hi: Math.min(r.hi, wl - 1) });
      x = Math.max(x, wh + 1);
    }
    if (x <= r.hi) kept.push({ rule: r.rule, lo: x, hi: r.hi });
  }
  // Both lists are sorted and disjoint: merged in one sweep.
  const out: Run[] = [];
  const add = (p: Run) => {
    const last = out[out.length - 1];
    if (last && last.rule === p.rule && last.hi + 1 === p.lo) out[out.length - 1] = { rule: last.rule, lo: last.lo, hi: p.hi };
    else out.push(p);
  };
  let i = 0;
  let j = 0;
  while (i < kept.length || j < inside.length) add(j >= inside.length || (i < kept.length && kept[i]!.lo < inside[j]!.lo) ? kept[i++]! : inside[j++]!);
  return out;
}
