/** A non-durable store for unit tests and previews; same semantics as the SQLite store. */
import { applyBatch, checkEnvironment, checkKey, cloneJson, compareRefs, restoreBatch, type TxPrimitives } from './batch';
import { StoreError } from './errors';
import { checkEnvironmentInvariants, type LatestChange } from './invariants';
import { DEFAULT_AUDIT_RETENTION, DEFAULT_FLOW_RETENTION, type ApplyOptions, type AuditQuery, type AuditRecord, type ChangeLogEntry, type ChangesOptions, type FlowQuery, type FlowRecord, type FlowRetention, type IntegrityReport, type RuleStatsRow, type ListOptions, type ObjectRef, type Store, type StoredObject, type WriteOp, type WriteResult } from './types';
import { checkFlow, compareFlows, flowMatches, mergeFlow, retentionCutoff } from './flows';
import { auditCutoff, auditMatches, checkAudit } from './audit';

interface EnvState {
  objects: Map<string, StoredObject>;
  /** Reverse reference index: target key -> keys of objects referencing it. */
  referrers: Map<string, Set<string>>;
  lastLogged: Map<string, number>;
}

const key = (kind: string, name: string): string => `${kind}\u0000${name}`;

function copy(o: StoredObject): StoredObject {
  return {
    kind: o.kind,
    name: o.name,
    spec: cloneJson(o.spec),
    ...(o.status !== undefined ? { status: cloneJson(o.status) } : {}),
    references: o.references.map((r) => ({ kind: r.kind, name: r.name })),
    revision: o.revision,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    ...(o.owner !== undefined ? { owner: o.owner } : {}),
  };
}

/** In-memory adapter. Batches are atomic through an undo log replayed on failure. */
export class MemoryStore implements Store {
  readonly location = 'memory';
  private readonly envs = new Map<string, EnvState>();
  private readonly log: ChangeLogEntry[] = [];
  private seq = 0;
  private closed = false;
  private readonly flowsOf = new Map<string, Map<string, FlowRecord>>();
  private readonly auditOf = new Map<string, AuditRecord[]>();

  /** @param clock injectable for deterministic timestamps in tests. */
  constructor(private readonly clock: () => Date = () => new Date()) {}

  async get(environment: string, kind: string, name: string): Promise<StoredObject | undefined> {
    this.open();
    checkEnvironment(environment);
    checkKey(kind, name);
    const o = this.envs.get(environment)?.objects.get(key(kind, name));
    return o ? copy(o) : undefined;
  }

  async list(environment: string, options: ListOptions = {}): Promise<StoredObject[]> {
    this.open();
    checkEnvironment(environment);
    const all = [...(this.envs.get(environment)?.objects.values() ?? [])].filter((o) => options.kind === undefined || o.kind === options.kind);
    return all.sort(compareRefs).map(copy);
  }

  async apply(environment: string, ops: readonly WriteOp[], options: ApplyOptions = {}): Promise<WriteResult[]> {
    this.open();
    checkEnvironment(environment);
    options.audit?.forEach(checkAudit);
    const results = this.transaction(environment, (tx, time) => applyBatch(tx, ops, time));
    // After the batch: nothing below can fail, so the records exist exactly when the batch committed.
    if (options.audit?.length || options.auditRetention) {
      let log = this.auditOf.get(environment);
      if (!log) this.auditOf.set(environment, (log = []));
      log.push(...(options.audit ?? []).map((r) => ({ ...r })));
      if (options.auditRetention) {
        const keep = { ...DEFAULT_AUDIT_RETENTION, ...options.auditRetention };
        const cutoff = auditCutoff(this.clock(), keep);
        const kept = log.filter((r) => r.time >= cutoff);
        this.auditOf.set(environment, kept.slice(Math.max(0, kept.length - keep.maxCount)));
      }
    }
    return results;
  }

  async audit(environment: string, query: AuditQuery = {}): Promise<AuditRecord[]> {
    this.open();
    checkEnvironment(environment);
    const out = (this.auditOf.get(environment) ?? []).filter((r) => auditMatches(r, query));
    return (query.limit !== undefined ? out.slice(Math.max(0, out.length - query.limit)) : out).map((r) => ({ ...r }));
  }

  async restore(environment: string, objects: readonly StoredObject[]): Promise<void> {
    this.open();
    checkEnvironment(environment);
    this.transaction(environment, (tx) => restoreBatch(tx, environment, objects));
  }

  async lastSeq(environment: string): Promise<number> {
    this.open();
    checkEnvironment(environment);
    for (let i = this.log.length - 1; i >= 0; i--) if (this.log[i].environment === environment) return this.log[i].seq;
    return 0;
  }

  async changes(environment: string, options: ChangesOptions = {}): Promise<ChangeLogEntry[]> {
    this.open();
    checkEnvironment(environment);
    const out = this.log.filter(
      (c) =>
        c.environment === environment &&
        c.seq > (options.afterSeq ?? 0) &&
        (options.kind === undefined || c.kind === options.kind) &&
        (options.name === undefined || c.name === options.name),
    );
    return (options.limit !== undefined ? out.slice(0, options.limit) : out).map((c) => ({ ...c }));
  }

  async environments(): Promise<string[]> {
    this.open();
    return [...this.envs.entries()].filter(([, s]) => s.objects.size > 0).map(([e]) => e).sort();
  }

  async recordFlows(environment: string, records: readonly FlowRecord[], retention: FlowRetention = {}): Promise<void> {
    this.open();
    checkEnvironment(environment);
    records.forEach(checkFlow);
    let flows = this.flowsOf.get(environment);
    if (!flows) this.flowsOf.set(environment, (flows = new Map()));
    for (const r of records) flows.set(r.id, mergeFlow(flows.get(r.id), r));
    const keep = { ...DEFAULT_FLOW_RETENTION, ...retention };
    const cutoff = retentionCutoff(this.clock(), keep);
    for (const [id, r] of flows) if (r.lastSeen < cutoff) flows.delete(id);
    if (flows.size > keep.maxCount) for (const r of [...flows.values()].sort(compareFlows).slice(keep.maxCount)) flows.delete(r.id);
  }

  async flows(environment: string, query: FlowQuery = {}): Promise<FlowRecord[]> {
    this.open();
    checkEnvironment(environment);
    const out = [...(this.flowsOf.get(environment)?.values() ?? [])].filter((r) => flowMatches(r, query)).sort(compareFlows);
    return (query.limit !== undefined ? out.slice(0, Math.max(0, query.limit)) : out).map((r) => ({ ...r }));
  }

  async ruleStats(environment: string, window: Pick<FlowQuery, 'since' | 'until'> = {}): Promise<RuleStatsRow[]> {
    this.open();
    checkEnvironment(environment);
    const by = new Map<string, { rule: string; point: string; flows: number; packets: number; bytes: number; lastSeen: string }>();
    for (const r of this.flowsOf.get(environment)?.values() ?? []) {
      if (!flowMatches(r, window)) continue;
      const k = `${r.rule}\u0000${r.point}`;
      const s = by.get(k);
      if (!s) by.set(k, { rule: r.rule, point: r.point, flows: 1, packets: r.packets, bytes: r.bytes, lastSeen: r.lastSeen });
      else (s.flows++, (s.packets += r.packets), (s.bytes += r.bytes), r.lastSeen > s.lastSeen && (s.lastSeen = r.lastSeen));
    }
    return [...by.values()].sort((a, b) => (a.rule !== b.rule ? (a.rule < b.rule ? -1 : 1) : a.point < b.point ? -1 : a.point > b.point ? 1 : 0));
  }

  async integrityCheck(): Promise<IntegrityReport> {
    this.open();
    const problems: string[] = [];
    const envNames = new Set([...this.envs.keys(), ...this.log.map((c) => c.environment)]);
    for (const env of [...envNames].sort()) {
      const latest = new Map<string, LatestChange>();
      for (const c of this.log) if (c.environment === env) latest.set(key(c.kind, c.name), c);
      problems.push(...checkEnvironmentInvariants(env, [...(this.envs.get(env)?.objects.values() ?? [])], [...latest.values()]));
    }
    return { ok: problems.length === 0, problems };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw new StoreError('CLOSED', 'the store is closed');
  }

  private state(environment: string): EnvState {
    let s = this.envs.get(environment);
    if (!s) {
      s = { objects: new Map(), referrers: new Map(), lastLogged: new Map() };
      this.envs.set(environment, s);
    }
    return s;
  }

  /** Runs `body` against primitives that record an undo step for every mutation. */
  private transaction<T>(environment: string, body: (tx: TxPrimitives, time: string) => T): T {
    const s = this.state(environment);
    const undo: Array<() => void> = [];
    const logLength = this.log.length;
    const seq = this.seq;
    const unlinkRefs = (from: string, refs: readonly ObjectRef[]): void => {
      for (const r of refs) {
        const set = s.referrers.get(key(r.kind, r.name));
        if (set?.delete(from)) undo.push(() => set.add(from));
      }
    };
    const linkRefs = (from: string, refs: readonly ObjectRef[]): void => {
      for (const r of refs) {
        const t = key(r.kind, r.name);
        let set = s.referrers.get(t);
        if (!set) s.referrers.set(t, (set = new Set()));
        if (!set.has(from)) {
          set.add(from);
          const added = set;
          undo.push(() => added.delete(from));
        }
      }
    };
    const setObject = (k: string, o: StoredObject | undefined): void => {
      const before = s.objects.get(k);
      undo.push(() => (before ? s.objects.set(k, before) : s.objects.delete(k)));
      if (o) s.objects.set(k, o);
      else s.objects.delete(k);
    };
    const tx: TxPrimitives = {
      current: (kind, name) => s.objects.get(key(kind, name)),
      lastLoggedRevision: (kind, name) => s.lastLogged.get(key(kind, name)) ?? 0,
      write: (o) => {
        const k = key(o.kind, o.name);
        const before = s.objects.get(k);
        if (before) unlinkRefs(k, before.references);
        setObject(k, copy(o));
        linkRefs(k, o.references);
      },
      remove: (kind, name) => {
        const k = key(kind, name);
        const before = s.objects.get(k);
        if (before) unlinkRefs(k, before.references);
        setObject(k, undefined);
      },
      referrers: (kind, name) =>
        [...(s.referrers.get(key(kind, name)) ?? [])].map((k) => {
          const o = s.objects.get(k);
          return { kind: o?.kind ?? '', name: o?.name ?? '' };
        }),
      isEmpty: () => s.objects.size === 0,
      log: (e) => {
        const k = key(e.kind, e.name);
        const before = s.lastLogged.get(k);
        undo.push(() => (before === undefined ? s.lastLogged.delete(k) : s.lastLogged.set(k, before)));
        s.lastLogged.set(k, Math.max(before ?? 0, e.revision));
        this.log.push({ seq: ++this.seq, environment, ...e });
      },
    };
    try {
      return body(tx, this.clock().toISOString());
    } catch (err) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]();
      this.log.length = logLength;
      this.seq = seq;
      throw err;
    }
  }
}
