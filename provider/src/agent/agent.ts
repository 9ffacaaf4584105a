import * as os from 'node:os';
import { endpointsOfPoint, enforcementPointModel, pointName, PointModelCache } from '../engine';
import { CompileCache, compilePoint, renderText, sameShape, type Table, type Verdict } from '../realize/nftables';
import { FlowCollector, type ConntrackEntry, type ConntrackReader, type PointFlows } from './flows';
import { elementChangesText } from './nft';
import type { DesiredState, ElementChange, FlowSink, NftExecutor, NftListing, RealizationStatus, RuleHits, StatusSink } from './ports';

/**
 * `microseg agent`: keeps the kernel's nftables tables equal to what the desired state says for some
 * enforcement points, and reports how that went.
 *
 * - Every change of the desired state recompiles the points; a point whose ruleset text did not change
 *   costs nothing in the kernel.
 * - A changed ruleset reaches the kernel in one transaction (netlink through microseg-nft, or `nft -f`): the table is swapped (add, delete,
 *   add new) so no packet ever meets a missing or half-built table; when only set or map elements
 *   changed (pod churn, group membership), the transaction adds and deletes those elements instead.
 * - A transaction the kernel refuses changes nothing there: the last good ruleset stays, the status
 *   says `error` with nft's message, and the next change (or restart) tries again.
 */

export interface AgentOptions {
  /** Enforcement-point references: `vm:NAME#i`, `vm:NAME` (every interface), `pod:CLUSTER/NS/POD`. */
  readonly points: readonly string[];
  readonly source: DesiredState;
  readonly nft: NftExecutor;
  readonly status: StatusSink;
  readonly log?: (line: string) => void;
  /** Flow records (see flows.ts): read from conntrack and the dropped-flow sets after every pass. */
  readonly flows?: { readonly conntrack: ConntrackReader; readonly sink: FlowSink };
  /**
   * How often {@link RealizationAgent.run} reads hit counters and flow records back (default 1000 ms; and
   * whenever it was idle for `intervalMs`). It does so beside the passes, not in them: reading a large
   * table's counters costs more than a pod's element update, and no change waits behind it. Status is
   * reported at every pass, with the counters last read.
   */
  readonly observeEveryMs?: number;
}

interface PointState {
  desired?: Table;
  desiredRevision: number;
  /** What the kernel holds (the last table applied successfully). */
  applied?: { table: Table; revision: number };
  error?: string;
  lastApply?: RealizationStatus['lastApply'];
  /** Counts of tables swapped out, per `direction rule`, added to what the kernel counts now. */
  carried: Map<string, { packets: number; bytes: number }>;
  /** The hit counters last read from the kernel (reported again by passes that do not read them). */
  hits?: RuleHits[];
  /** What the last pass compiled: what statuses and observations name. */
  last?: { table: string; ip: string; stats: { rules: number; elements: number }; seq: number; marks: PointFlows['marks']; flowSets: PointFlows['flowSets'] };
  /** Listings of tables swapped out since the last observation (their dropped-flow sets were emptied). */
  swapped: NftListing[];
  /** Table swaps so far (an observation that overlapped one does not use its counters). */
  swaps: number;
}

export interface ReconcileResult {
  readonly statuses: readonly RealizationStatus[];
  /** Flow records reported by this pass (empty without `flows`). */
  readonly flowRecords: number;
  /** References that named no enforcement point. */
  readonly unknown: readonly string[];
  /** The change-log position the pass compiled from. */
  readonly seq: number;
}

export class RealizationAgent {
  private readonly states = new Map<string, PointState>();
  private readonly host = os.hostname();
  private readonly collector = new FlowCollector();
  private caches?: { shared: PointModelCache; cache: CompileCache };
  private observedAt = -Infinity;
  /** The points of the last pass. */
  private current: string[] = [];
  /** Status reports, one after the other, each built when its turn comes (so none overwrites a newer one). */
  private reports: Promise<unknown> = Promise.resolve();
  private observing: Promise<unknown> | undefined;
  /** The pass in progress, if any: an observation traces flows only between passes (the world is whole then). */
  private passing: Promise<unknown> | undefined;

  constructor(private readonly options: AgentOptions) {}

  /**
   * One pass: compile every point from the current desired state, apply what changed, report. `observe`
   * (default true): then read hit counters and flow records back from the kernel ({@link observe}), so
   * the statuses carry fresh counters; otherwise they carry the counters last read.
   */
  async reconcile(options: { observe?: boolean } = {}): Promise<ReconcileResult> {
    const pass = this.pass();
    this.passing = pass.catch(() => undefined);
    let done: Awaited<typeof pass>;
    try {
      done = await pass;
    } finally {
      this.passing = undefined;
    }
    const { statuses, unknown, seq } = done;
    if (!(options.observe ?? true)) return { statuses, flowRecords: 0, unknown, seq };
    return { ...(await this.observe()), unknown, seq };
  }

  private async pass(): Promise<{ statuses: RealizationStatus[]; unknown: string[]; seq: number }> {
    const { world, seq } = await this.options.source.snapshot();
    const statuses: RealizationStatus[] = [];
    const unknown: string[] = [];
    const current: string[] = [];
    // Kept across passes while the desired state is the same (incrementally updated) world: their entries
    // are checked against the world's versions, so a pass recompiles only what the last changes touched.
    if (this.caches?.shared.world !== world) this.caches = { shared: new PointModelCache(world), cache: new CompileCache() };
    const { shared, cache } = this.caches;
    for (const ref of this.options.points) {
      const eps = endpointsOfPoint(world, ref);
      if (!eps) {
        unknown.push(ref);
        continue;
      }
      for (const ep of eps) {
        const point = pointName(ep);
        const compiled = compilePoint(enforcementPointModel(world, ep, shared), { cache });
        await this.realize(point, compiled.table, { table: compiled.table.name, ip: ep.ip.s, stats: compiled.stats, seq, marks: compiled.marks, flowSets: compiled.flowSets });
        current.push(point);
        statuses.push(await this.report(point));
      }
    }
    // What the cache holds for points gone (a workload scaled down) is let go.
    if (current.length !== this.current.length || current.some((p, i) => p !== this.current[i])) cache.retain(new Set(current));
    this.current = current;
    return { statuses, unknown, seq };
  }

  /**
   * Reads back what the kernel counted for the points of the last pass: hit counters (reported with a
   * new status) and, with `flows`, flow records from conntrack and the dropped-flow sets.
   */
  async observe(): Promise<{ statuses: RealizationStatus[]; flowRecords: number }> {
    this.observedAt = performance.now();
    const flowPoints: PointFlows[] = [];
    const statuses: RealizationStatus[] = [];
    const taken: [PointState, NftListing[]][] = [];
    for (const point of this.current) {
      const st = this.states.get(point);
      if (!st?.last) continue;
      // `swaps` is odd while a pass swaps the table: a listing overlapping a swap may mix the old table
      // and the new one, and the pass carried what the old one counted; it is not used (the next
      // observation reads the new table). A failed listing keeps the counters last read.
      const swaps = st.swaps;
      const listing = swaps % 2 === 0 ? await this.options.nft.listTable(st.last.table).catch(() => undefined) : undefined;
      const usable = listing !== undefined && st.swaps === swaps;
      if (usable)
        st.hits = hitsOf(listing).map((h) => {
          const b = st.carried.get(`${h.direction} ${h.rule}`);
          return b ? { ...h, packets: h.packets + b.packets, bytes: h.bytes + b.bytes } : h;
        });
      taken.push([st, st.swapped]);
      flowPoints.push({ point, ip: st.last.ip, marks: st.last.marks, flowSets: st.last.flowSets, listings: [...st.swapped, ...(usable ? [listing] : [])] });
      st.swapped = [];
      statuses.push(await this.report(point));
    }
    let flowRecords = 0;
    const world = this.caches?.shared.world;
    if (this.options.flows && flowPoints.length && world) {
      try {
        const families = new Set(flowPoints.map((p) => (p.ip.includes(':') ? 6 : 4) as 4 | 6));
        const entries: ConntrackEntry[] = [];
        for (const f of families) entries.push(...(await this.options.flows.conntrack.list(f)));
        // Traced against the world between passes (a pass updates it across awaits): nothing below
        // awaits before collect() is done.
        while (this.passing) await this.passing;
        const records = this.collector.collect(world, flowPoints, entries);
        if (records.length) await this.options.flows.sink.record(records);
        // Only now: records a sink refused are reported again at the next observation (the sink merges repeats).
        this.collector.delivered();
        flowRecords = records.length;
      } catch (err) {
        // The dropped-flow sets of swapped-out tables exist nowhere else now: keep them for the next try.
        for (const [st, listings] of taken) st.swapped.unshift(...listings);
        // Visibility never stops enforcement: say why, and try again at the next observation.
        this.options.log?.(`flow records: ${(err as Error).message}`);
      }
    }
    return { statuses, flowRecords };
  }

  /**
   * Reconciles on every change until `signal` aborts; reports status at every pass and at least every
   * `intervalMs`. Hit counters and flow records are read back every `observeEveryMs` beside the passes
   * (one observation at a time), and after a wait of `intervalMs` without change.
   */
  async run(signal: AbortSignal, intervalMs = 10_000): Promise<void> {
    const every = this.options.observeEveryMs ?? 1000;
    try {
      while (!signal.aborted) {
        const r = await this.reconcile({ observe: false });
        for (const u of r.unknown) this.options.log?.(`${u}: no such enforcement point in the desired state (nothing applied)`);
        collectYoungGeneration();
        if (!this.observing && performance.now() - this.observedAt >= every)
          this.observing = this.observe()
            .catch((err: unknown) => this.options.log?.(`reading counters back: ${(err as Error).message}`))
            .finally(() => (this.observing = undefined));
        await this.options.source.waitForChange(r.seq, intervalMs, signal);
      }
    } finally {
      await this.observing;
    }
  }

  /** Reports a point's status as it is when its turn comes (reports never overtake each other). */
  private report(point: string): Promise<RealizationStatus> {
    const next = this.reports.then(async () => {
      const status = this.statusOf(point);
      await this.options.status.report(status);
      return status;
    });
    this.reports = next.catch(() => undefined);
    return next;
  }

  private statusOf(point: string): RealizationStatus {
    const st = this.states.get(point)!;
    const last = st.last!;
    const realized = st.applied !== undefined && st.applied.table === st.desired && st.error === undefined;
    return {
      point,
      table: last.table,
      desiredRevision: st.desiredRevision,
      realizedRevision: st.applied?.revision ?? 0,
      observedRevision: last.seq,
      state: st.error !== undefined ? 'error' : realized ? 'realized' : 'pending',
      ...(st.error !== undefined ? { error: st.error } : {}),
      ...(st.lastApply ? { lastApply: st.lastApply } : {}),
      rules: last.stats.rules,
      elements: last.stats.elements,
      hits: st.hits ?? [],
      agent: { host: this.host, pid: process.pid },
      updatedAt: new Date().toISOString(),
    };
  }

  /** Brings the kernel to `table` for a point (element updates when they are enough), or records why not. */
  private async realize(point: string, table: Table, last: NonNullable<PointState['last']>): Promise<PointState> {
    const { stats, seq } = last;
    let st = this.states.get(point);
    if (!st) this.states.set(point, (st = { desiredRevision: seq, carried: new Map(), swapped: [], swaps: 0 }));
    // Rulesets are compared by shape (chains and set declarations: by identity, as compiles keep the
    // objects of what did not change, else by content) and by their element lists, once per pass against
    // what the kernel holds; rendering a large point as text to compare it cost more than an element update.
    const applied = st.applied;
    const appliedShape = applied !== undefined && sameShape(applied.table, table);
    const appliedChanges = appliedShape ? changedElements(applied.table, table) : undefined;
    const realized = appliedChanges?.length === 0;
    // The desired table is usually what the kernel holds (after a refusal it is not): compared once.
    const sameAsDesired = st.desired === undefined ? false : st.desired === applied?.table ? realized : sameShape(st.desired, table) && changedElements(st.desired, table).length === 0;
    if (!sameAsDesired) st.desiredRevision = seq;
    // The desired table and its figures move together, before any wait: a status built meanwhile (an
    // observation's) is the pending state of this pass, not a mixture of two.
    st.desired = table;
    st.last = last;
    let marker: string | undefined;
    // The marker renders the whole table: only for a restart's first pass and for a table swap.
    const markerOf = () => (marker ??= `microseg ruleset ${fnv(renderText(table))}`);
    if (!applied && (await this.kernelMarker(table.name)) === markerOf()) {
      // A restarted agent finds its ruleset already in the kernel: adopt it, counters keep running.
      st.applied = { table, revision: st.desiredRevision };
      st.lastApply = 'unchanged';
      st.error = undefined;
    } else if (realized) {
      // Nothing to do; a changed revision with the same ruleset is realized as it is.
      st.applied = { table, revision: applied!.revision };
      st.lastApply = 'unchanged';
    } else {
      // Elements only when the kernel holds our previous table and nothing but elements differ.
      const elementsOnly = appliedChanges !== undefined && st.error === undefined;
      // A table swap starts the kernel's counters from zero and empties the dropped-flow sets: keep what
      // the counters counted (rule ids are stable), and the sets for the next observation (a restarted
      // agent's too).
      const before = elementsOnly ? undefined : await this.options.nft.listTable(table.name).catch(() => undefined);
      const carried = before ? hitsOf(before) : [];
      try {
        if (elementsOnly) await this.options.nft.updateElements(table, appliedChanges);
        else {
          // Odd while the swap is in flight (see observe()); the counters are carried right after it.
          st.swaps++;
          try {
            await this.options.nft.replaceTable(withMarker(table, markerOf()));
          } finally {
            st.swaps++;
          }
        }
        for (const h of carried) {
          const k = `${h.direction} ${h.rule}`;
          const b = st.carried.get(k) ?? { packets: 0, bytes: 0 };
          st.carried.set(k, { packets: b.packets + h.packets, bytes: b.bytes + h.bytes });
        }
        if (before && this.options.flows) st.swapped.push(before);
        st.applied = { table, revision: st.desiredRevision };
        st.error = undefined;
        st.lastApply = elementsOnly ? 'elements' : 'table';
        this.options.log?.(`${point}: ${elementsOnly ? 'updated set elements of' : 'applied'} table ${table.name} (${stats.rules} rules, ${stats.elements} elements), revision ${st.desiredRevision}`);
      } catch (err) {
        st.error = (err as Error).message;
        this.options.log?.(`${point}: the kernel refused revision ${st.desiredRevision}, keeping ${st.applied ? `revision ${st.applied.revision}` : 'what it had'}: ${st.error}`);
      }
    }
    return st;
  }

  /** The ruleset marker of the table in the kernel (see {@link withMarker}), if any. */
  private async kernelMarker(table: string): Promise<string | undefined> {
    const listing = await this.options.nft.listTable(table).catch(() => undefined);
    for (const o of listing?.nftables ?? []) {
      const r = o.rule as { chain?: string; comment?: string } | undefined;
      if ((r?.chain === 'input' || r?.chain === 'output') && r.comment?.startsWith('microseg ruleset ')) return r.comment;
    }
    return undefined;
  }

  /** Per-rule hit counters read back from the kernel. */
  async hits(table: string): Promise<RuleHits[]> {
    const listing = await this.options.nft.listTable(table);
    return listing ? hitsOf(listing) : [];
  }
}

/**
 * A young-generation collection now, after a pass, while the agent waits for the next change: otherwise
 * V8 collects when the next passes have filled the young generation, in the middle of one of them, and on
 * the agent's heap (a whole environment's world) that takes several milliseconds, in the path from a pod's
 * store write to the kernel. Only where the runtime exposes `gc` (the `microseg agent` launchers start
 * node with --expose-gc); a collection right after a pass finds little alive, so it is short.
 */
function collectYoungGeneration(): void {
  (globalThis as { gc?: (options?: { type?: 'minor' | 'major' }) => void }).gc?.({ type: 'minor' });
}

/** Sums the counters of every kernel rule carrying a rule id (its comment), per direction. */
export function hitsOf(listing: NftListing): RuleHits[] {
  const sums = new Map<string, { rule: string; direction: 'in' | 'out'; packets: number; bytes: number }>();
  for (const o of listing.nftables) {
    const r = o.rule as { chain?: string; comment?: string; expr?: { counter?: { packets: number; bytes: number } }[] } | undefined;
    if (!r?.comment || !r.chain) continue;
    const direction = /^(r_)?in_/.test(r.chain) ? 'in' : 'out';
    for (const e of r.expr ?? []) {
      if (!e.counter) continue;
      const key = `${direction} ${r.comment}`;
      const s = sums.get(key) ?? { rule: r.comment, direction, packets: 0, bytes: 0 };
      s.packets += e.counter.packets;
      s.bytes += e.counter.bytes;
      sums.set(key, s);
    }
  }
  return [...sums.values()].sort((a, b) => (a.direction + a.rule < b.direction + b.rule ? -1 : 1));
}

/** Per set of `after`, the elements that differ from `before` (tables of the same shape, see sameShape). */
export function changedElements(before: Table, after: Table): ElementChange[] {
  const out: ElementChange[] = [];
  // Tables of one shape list their sets in one order: found by position, by name otherwise.
  let beforeSets: Map<string, Table['sets'][number]> | undefined;
  for (let i = 0; i < after.sets.length; i++) {
    const s = after.sets[i]!;
    if (s.kind === 'flow-set') continue; // the kernel fills it
    let old = before.sets[i]!;
    if (old?.name !== s.name) old = (beforeSets ??= new Map(before.sets.map((x) => [x.name, x] as const))).get(s.name)!;
    // Compiles share the element lists of what did not change: most sets are skipped here.
    if (old.elements === s.elements) continue;
    // Lists are sorted and a change touches a few elements: the common head and tail are skipped by
    // comparing fields, the middle compared by a key built from the model (rendering every element of
    // both tables cost more than the kernel's update on a large point).
    const n = old.elements.length;
    const m = s.elements.length;
    let head = 0;
    while (head < n && head < m && sameElement(old, head, s, head)) head++;
    let tail = 0;
    while (tail < n - head && tail < m - head && sameElement(old, n - 1 - tail, s, m - 1 - tail)) tail++;
    const oldKeys = new Map<string, number>();
    for (let i = head; i < n - tail; i++) oldKeys.set(elementKey(old, i), i);
    const newKeys = new Map<string, number>();
    for (let i = head; i < m - tail; i++) newKeys.set(elementKey(s, i), i);
    const removed = [...oldKeys].filter(([k]) => !newKeys.has(k)).map(([, i]) => i);
    const added = [...newKeys].filter(([k]) => !oldKeys.has(k)).map(([, i]) => i);
    if (removed.length || added.length) out.push({ old, now: s, removed, added });
  }
  return out;
}

/** One `nft -f` text transaction (what the agent applies through nft) deleting and adding the elements that differ between two tables of the same shape. */
export function elementDeltaText(before: Table, after: Table): string {
  return elementChangesText(after, changedElements(before, after));
}

/** Element i of `a` equals element j of `b` (sets of one kind): {@link elementKey} without the string. */
function sameElement(a: Table['sets'][number], i: number, b: Table['sets'][number], j: number): boolean {
  const verdict = (v: Verdict, w: Verdict) => v.kind === w.kind && (v.kind !== 'goto' || v.target === (w as typeof v).target);
  const x = a.elements[i]!;
  const y = b.elements[j]!;
  if (x === y) return true;
  switch (a.kind) {
    case 'flow-set':
      return true;
    case 'set': {
      const [p, q] = [x as (typeof a.elements)[number], y as (typeof a.elements)[number]];
      return p.lo === q.lo && p.hi === q.hi;
    }
    case 'service-set': {
      const [p, q] = [x as (typeof a.elements)[number], y as (typeof a.elements)[number]];
      return p.addr.lo === q.addr.lo && p.addr.hi === q.addr.hi && p.service.protocol === q.service.protocol && p.service.lo === q.service.lo && p.service.hi === q.service.hi;
    }
    case 'port-map': {
      const [p, q] = [x as (typeof a.elements)[number], y as (typeof a.elements)[number]];
      return p.lo === q.lo && p.hi === q.hi && verdict(p.verdict, q.verdict);
    }
    case 'addr-map': {
      const [p, q] = [x as (typeof a.elements)[number], y as (typeof a.elements)[number]];
      return p.addr.lo === q.addr.lo && p.addr.hi === q.addr.hi && p.rule === q.rule;
    }
    case 'rule-map': {
      const [p, q] = [x as (typeof a.elements)[number], y as (typeof a.elements)[number]];
      return p.rule === q.rule && verdict(p.verdict, q.verdict);
    }
  }
}

/** An element's identity (key and data), equal exactly when its `nft -j` JSON is equal. */
function elementKey(s: Table['sets'][number], i: number): string {
  const verdict = (v: Verdict) => (v.kind === 'goto' ? `goto ${v.target}` : v.kind);
  switch (s.kind) {
    case 'flow-set':
      return '';
    case 'set': {
      const a = s.elements[i]!;
      return `${a.lo}-${a.hi}`;
    }
    case 'service-set': {
      const e = s.elements[i]!;
      return `${e.addr.lo}-${e.addr.hi} ${e.service.protocol} ${e.service.lo}-${e.service.hi}`;
    }
    case 'port-map': {
      const e = s.elements[i]!;
      return `${e.lo}-${e.hi} ${verdict(e.verdict)}`;
    }
    case 'addr-map': {
      const e = s.elements[i]!;
      return `${e.addr.lo}-${e.addr.hi} ${e.rule}`;
    }
    case 'rule-map': {
      const e = s.elements[i]!;
      return `${e.rule} ${verdict(e.verdict)}`;
    }
  }
}

/**
 * The table with a hash of its full text as the comment of the input chain's first rule, so a restarted
 * agent can tell that the kernel already holds exactly this ruleset. (nft keeps no table comments in
 * this version's JSON; rule comments it keeps.) Element updates do not refresh the marker: after one, a
 * restart swaps the table, which is always safe.
 */
function withMarker(t: Table, marker: string): Table {
  return { ...t, chains: t.chains.map((c) => (c.name === 'input' ? { ...c, rules: c.rules.map((r, i) => (i === 0 ? { ...r, comment: marker } : r)) } : c)) };
}

function fnv(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
