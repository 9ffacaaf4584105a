/**
 * The audit log: who changed what, when, to which revision, and a summary of the change. A record is
 * written in the same store transaction as the change it describes (a store decorator hands it to
 * `Store.apply`), so there is no change without its record and no record without its change, whatever
 * crashes in between. Records live in the store's audit table, pruned to a retention (by age and count)
 * in the transaction of an audited write.
 *
 * The request's actor travels in an AsyncLocalStorage context, set by the HTTP layer, together with an
 * optional `If-Match` revision that the decorator turns into the batch's expected revision (412 on a
 * mismatch, checked atomically).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  ApplyOptions,
  AuditQuery,
  AuditRecord,
  AuditRetention,
  ChangeLogEntry,
  ChangesOptions,
  FlowQuery,
  FlowRecord,
  FlowRetention,
  IntegrityReport,
  ListOptions,
  RuleStatsRow,
  Store,
  StoredObject,
  WriteOp,
  WriteResult,
} from '../store';

export type { AuditRecord };

/** How often a server process prunes an environment's audit records (counting a million rows is not free). */
const AUDIT_PRUNE_INTERVAL_MS = 60_000;

export interface RequestContext {
  /** `token:<id>` of the caller (never the secret). */
  readonly actor: string;
  readonly role: string;
  /** An `If-Match` revision for one object of this request. */
  readonly ifMatch?: { readonly kind: string; readonly name: string; readonly revision: number };
  /** Filled with the results of the request's writes (the route reports the revision without a re-read). */
  readonly results?: WriteResult[];
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/** What changed between two specs, in a few words: `created`, `deleted`, `changed rules, priority`. */
export function summarize(before: StoredObject | undefined, op: WriteOp): string {
  if (op.op === 'delete') return 'deleted';
  if (op.op !== 'put') return '';
  if (!before) return 'created';
  const keys = [...new Set([...Object.keys(before.spec), ...Object.keys(op.spec)])].sort();
  const changed = keys.filter((k) => JSON.stringify(before.spec[k]) !== JSON.stringify(op.spec[k]));
  if (changed.length > 0) return `changed ${changed.join(', ')}`;
  return JSON.stringify(before.status ?? null) !== JSON.stringify(op.status ?? null) ? 'changed status' : 'unchanged';
}

/** Wraps a store so that every batch written inside a request context carries its audit records. */
export class AuditingStore implements Store {
  /** When each environment's audit records were last pruned (ms since epoch). */
  private readonly pruned = new Map<string, number>();

  constructor(
    private readonly inner: Store,
    /** Retention of the audit records (default DEFAULT_AUDIT_RETENTION: 400 days, 1 000 000 per environment). */
    private readonly retention: AuditRetention = {},
    /** Clock of the pruning interval (tests). */
    private readonly now: () => number = Date.now,
  ) {}

  get location(): string {
    return this.inner.location;
  }

  /** The SQLite data directory, when there is one: where the embedded backend keeps its secret key. */
  get dataDir(): string | undefined {
    return (this.inner as { dataDir?: string }).dataDir;
  }

  async apply(environment: string, ops: readonly WriteOp[], options: ApplyOptions = {}): Promise<WriteResult[]> {
    const ctx = requestContext.getStore();
    if (!ctx) return this.inner.apply(environment, ops, options);
    const time = new Date().toISOString();
    const out: WriteOp[] = [];
    const records: AuditRecord[] = [...(options.audit ?? [])];
    for (const op of ops) {
      if (op.op === 'check') {
        out.push(op);
        continue;
      }
      const before = await this.inner.get(environment, op.kind, op.name);
      let expected = op.expectedRevision;
      if (ctx.ifMatch && ctx.ifMatch.kind === op.kind && ctx.ifMatch.name === op.name) expected = ctx.ifMatch.revision;
      // The record states the revision the write produces; pinning the expected revision to what was
      // read makes the batch fail (and be retried by the caller) rather than log a wrong revision.
      if (expected === undefined && before) expected = before.revision;
      let revision: number;
      if (before) revision = before.revision + 1;
      else {
        const last = await this.inner.changes(environment, { kind: op.kind, name: op.name });
        revision = (last.length ? Math.max(...last.map((c) => c.revision)) : 0) + 1;
        if (op.op === 'put' && expected === undefined) expected = 0;
      }
      out.push({ ...op, ...(expected !== undefined ? { expectedRevision: expected } : {}) });
      const record: AuditRecord = {
        time,
        actor: ctx.actor,
        role: ctx.role,
        environment,
        kind: op.kind,
        name: op.name,
        op: op.op === 'delete' ? 'delete' : before ? 'update' : 'create',
        revision,
        summary: summarize(before, op),
      };
      records.push(record);
    }
    const now = this.now();
    const prune = now - (this.pruned.get(environment) ?? 0) >= AUDIT_PRUNE_INTERVAL_MS;
    const results = await this.inner.apply(environment, out, { audit: records, ...(prune ? { auditRetention: this.retention } : options.auditRetention ? { auditRetention: options.auditRetention } : {}) });
    if (prune) this.pruned.set(environment, now);
    ctx.results?.push(...results);
    return results;
  }

  audit(environment: string, query?: AuditQuery): Promise<AuditRecord[]> {
    return this.inner.audit(environment, query);
  }

  get(environment: string, kind: string, name: string): Promise<StoredObject | undefined> {
    return this.inner.get(environment, kind, name);
  }
  list(environment: string, options?: ListOptions): Promise<StoredObject[]> {
    return this.inner.list(environment, options);
  }
  changes(environment: string, options?: ChangesOptions): Promise<ChangeLogEntry[]> {
    return this.inner.changes(environment, options);
  }
  lastSeq(environment: string): Promise<number> {
    return this.inner.lastSeq(environment);
  }
  environments(): Promise<string[]> {
    return this.inner.environments();
  }
  restore(environment: string, objects: readonly StoredObject[]): Promise<void> {
    return this.inner.restore(environment, objects);
  }
  integrityCheck(): Promise<IntegrityReport> {
    return this.inner.integrityCheck();
  }
  // Flow records are observations the agents report, not writes of desired state: not audited.
  recordFlows(environment: string, records: readonly FlowRecord[], retention?: FlowRetention): Promise<void> {
    return this.inner.recordFlows(environment, records, retention);
  }
  flows(environment: string, query?: FlowQuery): Promise<FlowRecord[]> {
    return this.inner.flows(environment, query);
  }
  ruleStats(environment: string, window?: Pick<FlowQuery, 'since' | 'until'>): Promise<RuleStatsRow[]> {
    return this.inner.ruleStats(environment, window);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Audit records of an environment, oldest first; `limit` keeps the newest. */
export function readAudit(store: Store, environment: string, options: AuditQuery = {}): Promise<AuditRecord[]> {
  return store.audit(environment, options);
}
