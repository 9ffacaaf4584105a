/**
 * The embedded, durable store: one SQLite file per data directory, shared by every process (each
 * `pulumi up`, the CLI, parallel stacks). WAL mode lets readers run alongside one writer; writers take
 * the write lock up front (BEGIN IMMEDIATE) so they queue on the busy timeout instead of failing on a
 * lock upgrade, and a retry loop with jittered backoff covers whatever still reports SQLITE_BUSY, so
 * users never see "database is locked".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { applyBatch, checkEnvironment, checkKey, restoreBatch, type TxPrimitives } from './batch';
import { DATABASE_FILE, resolveDataDir, type DataDirOptions } from './datadir';
import { StoreError, refText } from './errors';
import { checkEnvironmentInvariants, type LatestChange } from './invariants';
import { APPLICATION_ID, LATEST_VERSION, MIGRATIONS, type Migration } from './migrations';
import { checkFlow, retentionCutoff } from './flows';
import { auditCutoff, checkAudit } from './audit';
import { DEFAULT_AUDIT_RETENTION, DEFAULT_FLOW_RETENTION, type ApplyOptions, type AuditQuery, type AuditRecord, type AuditRetention, type ChangeLogEntry, type ChangesOptions, type FlowQuery, type FlowRecord, type FlowRetention, type IntegrityReport, type RuleStatsRow, type JsonObject, type ListOptions, type ObjectRef, type Store, type StoredObject, type WriteOp, type WriteResult } from './types';

/** Options of the SQLite store. */
export interface SqliteStoreOptions extends DataDirOptions {
  /** How long one statement waits for another process's lock inside SQLite (ms, default 5000). */
  readonly busyTimeoutMs?: number;
  /** Total time an operation keeps retrying while the store is busy before failing with BUSY (ms, default 120000). */
  readonly retryBudgetMs?: number;
  /**
   * `full` (default) syncs the WAL on every commit: a committed write survives power loss.
   * `normal` survives process crashes only, and is faster.
   */
  readonly synchronous?: 'full' | 'normal';
  /** Called before each retry of an operation that found the store busy (diagnostics; tests count retries). */
  readonly onBusyRetry?: (attempt: number) => void;
  /** Clock for timestamps (tests). */
  readonly clock?: () => Date;
  /** Apply migrations only up to this version (tests of upgrades). */
  readonly targetVersion?: number;
}

interface ObjectRow {
  env: string;
  kind: string;
  name: string;
  spec: string;
  status: string | null;
  refs: string;
  revision: number;
  created_at: string;
  updated_at: string;
  owner: string | null;
}

interface FlowRow {
  id: string;
  point: string;
  direction: 'in' | 'out';
  protocol: string;
  src_ip: string;
  src_port: number | null;
  dst_ip: string;
  dst_port: number | null;
  verdict: FlowRecord['verdict'];
  rule: string;
  staged_verdict: string | null;
  staged_rule: string | null;
  first_seen: string;
  last_seen: string;
  packets: number;
  bytes: number;
}

interface AuditRow {
  env: string;
  time: string;
  actor: string;
  role: string;
  kind: string;
  name: string;
  op: AuditRecord['op'];
  revision: number;
  summary: string;
}

function auditOf(r: AuditRow): AuditRecord {
  return { time: r.time, actor: r.actor, role: r.role, environment: r.env, kind: r.kind, name: r.name, op: r.op, revision: Number(r.revision), summary: r.summary };
}

interface ChangeRow {
  seq: number;
  env: string;
  kind: string;
  name: string;
  op: 'create' | 'update' | 'delete';
  revision: number;
  time: string;
}

/** Object columns in the order of `ObjectTuple`. */
const COLUMNS = 'kind, name, spec, status, refs, revision, created_at, updated_at, owner';
/** Before schema v3 (only reachable with `targetVersion`, in upgrade tests) there is no owner column. */
const COLUMNS_V2 = "kind, name, spec, status, refs, revision, created_at, updated_at, NULL AS owner";
type ObjectTuple = [string, string, string, string | null, string, number, string, string, string | null];

const SQLITE_HEADER = 'SQLite format 3\u0000';
const WHAT_TO_DO_CORRUPT =
  'move the file aside (keep it for diagnosis) and restore the last export with `microseg import-state`, or point MICROSEG_DATA_DIR at another directory';

/** Opens (creating and migrating when needed) the store of a data directory. */
export async function openSqliteStore(options: SqliteStoreOptions = {}): Promise<SqliteStore> {
  const store = new SqliteStore(options);
  try {
    await store.retry(() => store.init());
  } catch (err) {
    store.closeQuietly();
    throw err;
  }
  return store;
}

/** SQLite adapter; obtain one with `openSqliteStore`. */
export class SqliteStore implements Store {
  /** The database file. */
  readonly location: string;

  /**
   * Every commit writes the WAL file beside the database, whichever process commits: an inotify watch on
   * the data directory (fs.watch) hears it at once, where polling the change log waited up to its interval.
   */
  watch(onChange: () => void): () => void {
    const watcher = fs.watch(this.dataDir, { persistent: false }, (_event, file) => {
      if (!file || file.startsWith(DATABASE_FILE)) onChange();
    });
    // A data directory removed under a running reader: it falls back to polling.
    watcher.on('error', () => watcher.close());
    return () => watcher.close();
  }
  /** The data directory. */
  readonly dataDir: string;
  private db: DatabaseSync | undefined;
  private readonly statements = new Map<string, StatementSync>();
  private readonly busyTimeoutMs: number;
  private readonly retryBudgetMs: number;
  private readonly clock: () => Date;

  /** @internal use `openSqliteStore`. */
  constructor(private readonly options: SqliteStoreOptions) {
    this.dataDir = resolveDataDir(options);
    this.location = path.join(this.dataDir, DATABASE_FILE);
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.retryBudgetMs = options.retryBudgetMs ?? 120_000;
    this.clock = options.clock ?? (() => new Date());
    prepareDirectory(this.dataDir, this.location);
    try {
      this.db = new DatabaseSync(this.location, { timeout: this.busyTimeoutMs, enableForeignKeyConstraints: false });
    } catch (err) {
      throw this.translate(err, 'open');
    }
  }

  /**
   * The durability settings of this store's own connection, as SQLite reports them (`synchronous` is a
   * per-connection setting, so another connection to the same file cannot tell).
   */
  durability(): { journalMode: string; synchronous: 'off' | 'normal' | 'full' | 'extra' } {
    const db = this.conn();
    const journalMode = (db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode;
    const level = Number((db.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous);
    return { journalMode, synchronous: (['off', 'normal', 'full', 'extra'] as const)[level] ?? 'off' };
  }

  /** The schema version of the open file. */
  schemaVersion(): number {
    return Number((this.conn().prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  }

  async get(environment: string, kind: string, name: string): Promise<StoredObject | undefined> {
    checkEnvironment(environment);
    checkKey(kind, name);
    return this.retry(() => {
      const row = this.stmt('SELECT * FROM objects WHERE env = ? AND kind = ? AND name = ?').get(environment, kind, name) as ObjectRow | undefined;
      return row ? this.toObject(row) : undefined;
    });
  }

  async list(environment: string, options: ListOptions = {}): Promise<StoredObject[]> {
    checkEnvironment(environment);
    return this.retry(() => {
      // Rows as arrays: about twice as fast as row objects at 100k objects (start-up reads everything).
      const rows = (
        options.kind === undefined
          ? this.arrayStmt(`SELECT ${this.columns()} FROM objects WHERE env = ? ORDER BY kind, name`).all(environment)
          : this.arrayStmt(`SELECT ${this.columns()} FROM objects WHERE env = ? AND kind = ? ORDER BY name`).all(environment, options.kind)
      ) as unknown as ObjectTuple[];
      return rows.map((t) =>
        this.toObject({ env: environment, kind: t[0], name: t[1], spec: t[2], status: t[3], refs: t[4], revision: t[5], created_at: t[6], updated_at: t[7], owner: t[8] }),
      );
    });
  }

  async apply(environment: string, ops: readonly WriteOp[], options: ApplyOptions = {}): Promise<WriteResult[]> {
    checkEnvironment(environment);
    options.audit?.forEach(checkAudit);
    return this.retry(() =>
      this.transaction(environment, (tx, time) => {
        const results = applyBatch(tx, ops, time);
        this.writeAudit(environment, options.audit ?? [], options.auditRetention);
        return results;
      }),
    );
  }

  async audit(environment: string, query: AuditQuery = {}): Promise<AuditRecord[]> {
    checkEnvironment(environment);
    const where = ['env = ?'];
    const params: Array<string | number> = [environment];
    if (query.since !== undefined) (where.push('time > ?'), params.push(query.since));
    if (query.kind !== undefined) (where.push('kind = ?'), params.push(query.kind));
    if (query.name !== undefined) (where.push('name = ?'), params.push(query.name));
    // The newest N, read newest first through the index, then turned oldest first.
    const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
    return this.retry(() =>
      (this.stmt(`SELECT * FROM audit WHERE ${where.join(' AND ')} ORDER BY seq DESC${limit}`).all(...params) as unknown as AuditRow[]).reverse().map(auditOf),
    );
  }

  /** Inside the write transaction: the batch's audit records, then the retention. */
  private writeAudit(env: string, records: readonly AuditRecord[], retention: AuditRetention | undefined): void {
    // Unaudited writes touch no audit statement (stores opened at an older targetVersion have no table).
    if (records.length > 0) {
      const insert = this.stmt('INSERT INTO audit (env, time, actor, role, kind, name, op, revision, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      for (const r of records) insert.run(env, r.time, r.actor, r.role, r.kind, r.name, r.op, r.revision, r.summary);
    }
    if (!retention) return;
    const keep = { ...DEFAULT_AUDIT_RETENTION, ...retention };
    this.stmt('DELETE FROM audit WHERE env = ? AND time < ?').run(env, auditCutoff(this.clock(), keep));
    const cut = this.stmt('SELECT seq FROM audit WHERE env = ? ORDER BY seq DESC LIMIT 1 OFFSET ?').get(env, keep.maxCount) as { seq: number } | undefined;
    if (cut) this.stmt('DELETE FROM audit WHERE env = ? AND seq <= ?').run(env, cut.seq);
  }

  async restore(environment: string, objects: readonly StoredObject[]): Promise<void> {
    checkEnvironment(environment);
    await this.retry(() => this.transaction(environment, (tx) => restoreBatch(tx, environment, objects)));
  }

  async lastSeq(environment: string): Promise<number> {
    checkEnvironment(environment);
    return this.retry(() => Number((this.stmt('SELECT MAX(seq) AS seq FROM changes WHERE env = ?').get(environment) as { seq: number | null }).seq ?? 0));
  }

  async changes(environment: string, options: ChangesOptions = {}): Promise<ChangeLogEntry[]> {
    checkEnvironment(environment);
    const where = ['env = ?', 'seq > ?'];
    const params: Array<string | number> = [environment, options.afterSeq ?? 0];
    if (options.kind !== undefined) (where.push('kind = ?'), params.push(options.kind));
    if (options.name !== undefined) (where.push('name = ?'), params.push(options.name));
    const limit = options.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(options.limit))}` : '';
    return this.retry(() =>
      (this.stmt(`SELECT * FROM changes WHERE ${where.join(' AND ')} ORDER BY seq${limit}`).all(...params) as unknown as ChangeRow[]).map((r) => ({
        seq: Number(r.seq),
        environment: r.env,
        kind: r.kind,
        name: r.name,
        op: r.op,
        revision: Number(r.revision),
        time: r.time,
      })),
    );
  }

  async environments(): Promise<string[]> {
    return this.retry(() => (this.stmt('SELECT DISTINCT env FROM objects ORDER BY env').all() as Array<{ env: string }>).map((r) => r.env));
  }

  async recordFlows(environment: string, records: readonly FlowRecord[], retention: FlowRetention = {}): Promise<void> {
    checkEnvironment(environment);
    records.forEach(checkFlow);
    const keep = { ...DEFAULT_FLOW_RETENTION, ...retention };
    await this.retry(() => {
      const db = this.conn();
      db.exec('BEGIN IMMEDIATE');
      try {
        // The merge of flows.ts mergeFlow, in SQL.
        const upsert = this.stmt(
          `INSERT INTO flows (env, id, point, direction, protocol, src_ip, src_port, dst_ip, dst_port, verdict, rule, staged_verdict, staged_rule, first_seen, last_seen, packets, bytes)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (env, id) DO UPDATE SET point = excluded.point, direction = excluded.direction, protocol = excluded.protocol,
             src_ip = excluded.src_ip, src_port = excluded.src_port, dst_ip = excluded.dst_ip, dst_port = excluded.dst_port,
             verdict = excluded.verdict, rule = excluded.rule, staged_verdict = excluded.staged_verdict, staged_rule = excluded.staged_rule,
             first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen),
             packets = MAX(packets, excluded.packets), bytes = MAX(bytes, excluded.bytes)`,
        );
        for (const r of records)
          upsert.run(environment, r.id, r.point, r.direction, r.protocol, r.sourceIp, r.sourcePort ?? null, r.destinationIp, r.destinationPort ?? null, r.verdict, r.rule, r.stagedVerdict ?? null, r.stagedRule ?? null, r.firstSeen, r.lastSeen, r.packets, r.bytes);
        this.stmt('DELETE FROM flows WHERE env = ? AND last_seen < ?').run(environment, retentionCutoff(this.clock(), keep));
        const count = Number((this.stmt('SELECT COUNT(*) AS n FROM flows WHERE env = ?').get(environment) as { n: number }).n);
        if (count > keep.maxCount)
          this.stmt('DELETE FROM flows WHERE env = ? AND id IN (SELECT id FROM flows WHERE env = ? ORDER BY last_seen DESC, id LIMIT -1 OFFSET ?)').run(environment, environment, keep.maxCount);
        db.exec('COMMIT');
      } catch (err) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async flows(environment: string, query: FlowQuery = {}): Promise<FlowRecord[]> {
    checkEnvironment(environment);
    const where = ['env = ?'];
    const params: Array<string | number> = [environment];
    const add = (sql: string, ...v: Array<string | number>) => (where.push(sql), params.push(...v));
    if (query.since !== undefined) add('last_seen >= ?', query.since);
    if (query.until !== undefined) add('last_seen <= ?', query.until);
    if (query.verdict !== undefined) add('verdict = ?', query.verdict);
    if (query.rule !== undefined) add('rule = ?', query.rule);
    if (query.point !== undefined) add('point = ?', query.point);
    if (query.sourceIps !== undefined) add(`src_ip IN (${query.sourceIps.map(() => '?').join(', ') || 'NULL'})`, ...query.sourceIps);
    if (query.destinationIps !== undefined) add(`dst_ip IN (${query.destinationIps.map(() => '?').join(', ') || 'NULL'})`, ...query.destinationIps);
    const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
    return this.retry(() =>
      // With address filters, `+last_seen` keeps SQLite from walking the time index for the order: the
      // pair index finds the few matching rows (100k records: about 380 ms → 30 ms, bench/flows.ts).
      (this.conn().prepare(`SELECT * FROM flows WHERE ${where.join(' AND ')} ORDER BY ${query.sourceIps || query.destinationIps ? '+' : ''}last_seen DESC, id${limit}`).all(...params) as unknown as FlowRow[]).map(
        (r) => ({
          id: r.id,
          point: r.point,
          direction: r.direction,
          protocol: r.protocol,
          sourceIp: r.src_ip,
          ...(r.src_port !== null ? { sourcePort: Number(r.src_port) } : {}),
          destinationIp: r.dst_ip,
          ...(r.dst_port !== null ? { destinationPort: Number(r.dst_port) } : {}),
          verdict: r.verdict,
          rule: r.rule,
          ...(r.staged_verdict !== null ? { stagedVerdict: r.staged_verdict } : {}),
          ...(r.staged_rule !== null ? { stagedRule: r.staged_rule } : {}),
          firstSeen: r.first_seen,
          lastSeen: r.last_seen,
          packets: Number(r.packets),
          bytes: Number(r.bytes),
        }),
      ),
    );
  }

  async ruleStats(environment: string, window: Pick<FlowQuery, 'since' | 'until'> = {}): Promise<RuleStatsRow[]> {
    checkEnvironment(environment);
    const where = ['env = ?'];
    const params: string[] = [environment];
    if (window.since !== undefined) (where.push('last_seen >= ?'), params.push(window.since));
    if (window.until !== undefined) (where.push('last_seen <= ?'), params.push(window.until));
    return this.retry(() =>
      (
        this.stmt(`SELECT rule, point, COUNT(*) AS flows, SUM(packets) AS packets, SUM(bytes) AS bytes, MAX(last_seen) AS last_seen FROM flows WHERE ${where.join(' AND ')} GROUP BY rule, point ORDER BY rule, point`).all(
          ...params,
        ) as Array<{ rule: string; point: string; flows: number; packets: number; bytes: number; last_seen: string }>
      ).map((r) => ({ rule: r.rule, point: r.point, flows: Number(r.flows), packets: Number(r.packets), bytes: Number(r.bytes), lastSeen: r.last_seen })),
    );
  }

  async integrityCheck(): Promise<IntegrityReport> {
    return this.retry(() => {
      const problems: string[] = [];
      try {
        const db = this.conn();
        for (const r of db.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>) {
          if (r.integrity_check !== 'ok') problems.push(`sqlite: ${r.integrity_check}`);
        }
        const version = this.schemaVersion();
        if (version !== LATEST_VERSION) problems.push(`schema version is ${version}, expected ${LATEST_VERSION}`);
        // One read transaction so the invariants are checked on a single consistent snapshot.
        db.exec('BEGIN');
        try {
          const envs = (db.prepare('SELECT env FROM objects UNION SELECT env FROM changes ORDER BY env').all() as Array<{ env: string }>).map((r) => r.env);
          for (const env of envs) {
            const objects: StoredObject[] = [];
            for (const row of db.prepare('SELECT * FROM objects WHERE env = ?').iterate(env) as Iterable<ObjectRow>) {
              try {
                objects.push(this.toObject(row));
              } catch (err) {
                problems.push(`${env}: ${(err as Error).message}`);
              }
            }
            const latest = db
              .prepare(
                `SELECT c.kind, c.name, c.op, c.revision FROM changes c
                 JOIN (SELECT MAX(seq) AS seq FROM changes WHERE env = ? GROUP BY kind, name) m ON c.seq = m.seq`,
              )
              .all(env) as unknown as LatestChange[];
            problems.push(...checkEnvironmentInvariants(env, objects, latest));
            problems.push(...this.checkRefsTable(env, objects));
          }
        } finally {
          db.exec('COMMIT');
        }
      } catch (err) {
        const e = this.translate(err, 'check');
        if (e.code === 'BUSY' || e.code === 'CLOSED') throw e;
        problems.push(e.message);
      }
      return { ok: problems.length === 0, problems };
    });
  }

  async close(): Promise<void> {
    this.closeQuietly();
  }

  /** @internal */
  closeQuietly(): void {
    const db = this.db;
    this.db = undefined;
    this.statements.clear();
    try {
      db?.close();
    } catch {
      // Closing a connection whose file vanished cannot be helped and must not mask the original error.
    }
  }

  /** @internal Sets WAL mode and migrates the schema; run under `retry`. */
  init(): void {
    const db = this.conn();
    try {
      // WAL: readers never block the writer, and a crash leaves committed frames intact.
      const mode = (db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string }).journal_mode;
      if (mode.toLowerCase() !== 'wal') throw new StoreError('IO', `${this.location}: cannot switch to WAL journal mode (got ${mode}); is the data directory on a network file system?`, { path: this.location });
      db.exec(`PRAGMA synchronous = ${this.options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.migrate(this.options.targetVersion ?? LATEST_VERSION);
    } catch (err) {
      throw this.translate(err, 'open');
    }
  }

  /** Whether the open file has the v3 owner column. */
  private hasOwners = true;

  private columns(): string {
    return this.hasOwners ? COLUMNS : COLUMNS_V2;
  }

  private migrate(target: number): void {
    const db = this.conn();
    // IMMEDIATE: two processes opening a fresh store at once must not both run migration 1.
    db.exec('BEGIN IMMEDIATE');
    try {
      const version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
      const appId = Number((db.prepare('PRAGMA application_id').get() as { application_id: number }).application_id);
      if (appId !== 0 && appId !== APPLICATION_ID) {
        throw new StoreError('CORRUPT', `${this.location} is a SQLite database of another application, not a microseg store; ${WHAT_TO_DO_CORRUPT}`, { path: this.location });
      }
      if (version > LATEST_VERSION) {
        throw new StoreError(
          'NEWER_SCHEMA',
          `${this.location} was written by a newer microseg (schema version ${version}; this version understands up to ${LATEST_VERSION}); upgrade microseg, or use a different data directory (MICROSEG_DATA_DIR)`,
          { path: this.location },
        );
      }
      if (version === 0) {
        const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").get() as { n: number }).n;
        if (Number(tables) > 0) {
          throw new StoreError('CORRUPT', `${this.location} holds tables but no microseg schema version, so it is not a microseg store; ${WHAT_TO_DO_CORRUPT}`, { path: this.location });
        }
      }
      const pending: Migration[] = MIGRATIONS.filter((m) => m.version > version && m.version <= target);
      this.hasOwners = Math.max(version, target) >= 3;
      for (const m of pending) db.exec(m.sql);
      if (pending.length > 0) {
        db.exec(`PRAGMA user_version = ${pending[pending.length - 1].version}`);
        db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }

  /**
   * Runs `fn`, retrying with jittered exponential backoff while another process holds the store.
   * Everything inside `fn` is synchronous, so no transaction is ever open while we wait here.
   * @internal
   */
  async retry<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + this.retryBudgetMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return fn();
      } catch (err) {
        const e = this.translate(err, 'write');
        if (e.code !== 'BUSY') throw e;
        if (Date.now() >= deadline) {
          throw new StoreError(
            'BUSY',
            `${this.location} stayed locked by other microseg processes for ${Math.round(this.retryBudgetMs / 1000)} s; check for a hung process holding it and retry`,
            { path: this.location },
            { cause: err },
          );
        }
        this.options.onBusyRetry?.(attempt + 1);
        const delay = Math.min(250, 2 ** Math.min(attempt, 8)) * (0.5 + Math.random());
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private conn(): DatabaseSync {
    if (!this.db) throw new StoreError('CLOSED', `the store ${this.location} is closed`, { path: this.location });
    return this.db;
  }

  private arrayStmt(sql: string): StatementSync {
    let s = this.statements.get(`arrays:${sql}`);
    if (!s) {
      s = this.conn().prepare(sql);
      s.setReturnArrays(true);
      this.statements.set(`arrays:${sql}`, s);
    }
    return s;
  }

  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.conn().prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Runs `body` in a BEGIN IMMEDIATE transaction; any throw rolls everything back. */
  private transaction<T>(environment: string, body: (tx: TxPrimitives, time: string) => T): T {
    const db = this.conn();
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = body(this.primitives(environment), this.clock().toISOString());
      db.exec('COMMIT');
      return result;
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }

  private primitives(env: string): TxPrimitives {
    return {
      current: (kind, name) => {
        const r = this.stmt(`SELECT revision, created_at, ${this.hasOwners ? 'owner' : 'NULL AS owner'} FROM objects WHERE env = ? AND kind = ? AND name = ?`).get(env, kind, name) as
          | { revision: number; created_at: string; owner: string | null }
          | undefined;
        return r ? { revision: Number(r.revision), createdAt: r.created_at, ...(r.owner !== null ? { owner: r.owner } : {}) } : undefined;
      },
      lastLoggedRevision: (kind, name) => {
        const r = this.stmt('SELECT revision FROM changes WHERE env = ? AND kind = ? AND name = ? ORDER BY seq DESC LIMIT 1').get(env, kind, name) as
          | { revision: number }
          | undefined;
        return r ? Number(r.revision) : 0;
      },
      write: (o) => {
        if (!this.hasOwners) {
          this.stmt(
            `INSERT INTO objects (env, kind, name, spec, status, refs, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (env, kind, name) DO UPDATE SET spec = excluded.spec, status = excluded.status, refs = excluded.refs,
               revision = excluded.revision, created_at = excluded.created_at, updated_at = excluded.updated_at`,
          ).run(env, o.kind, o.name, JSON.stringify(o.spec), o.status === undefined ? null : JSON.stringify(o.status), JSON.stringify(o.references), o.revision, o.createdAt, o.updatedAt);
        } else this.stmt(
          `INSERT INTO objects (env, kind, name, spec, status, refs, revision, created_at, updated_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (env, kind, name) DO UPDATE SET spec = excluded.spec, status = excluded.status, refs = excluded.refs,
             revision = excluded.revision, created_at = excluded.created_at, updated_at = excluded.updated_at, owner = excluded.owner`,
        ).run(env, o.kind, o.name, JSON.stringify(o.spec), o.status === undefined ? null : JSON.stringify(o.status), JSON.stringify(o.references), o.revision, o.createdAt, o.updatedAt, o.owner ?? null);
        this.stmt('DELETE FROM refs WHERE env = ? AND from_kind = ? AND from_name = ?').run(env, o.kind, o.name);
        const insert = this.stmt('INSERT INTO refs (env, from_kind, from_name, to_kind, to_name) VALUES (?, ?, ?, ?, ?)');
        for (const r of o.references) insert.run(env, o.kind, o.name, r.kind, r.name);
      },
      remove: (kind, name) => {
        this.stmt('DELETE FROM objects WHERE env = ? AND kind = ? AND name = ?').run(env, kind, name);
        this.stmt('DELETE FROM refs WHERE env = ? AND from_kind = ? AND from_name = ?').run(env, kind, name);
      },
      referrers: (kind, name) =>
        (this.stmt('SELECT from_kind, from_name FROM refs WHERE env = ? AND to_kind = ? AND to_name = ?').all(env, kind, name) as Array<{ from_kind: string; from_name: string }>).map(
          (r) => ({ kind: r.from_kind, name: r.from_name }),
        ),
      isEmpty: () => this.stmt('SELECT 1 FROM objects WHERE env = ? LIMIT 1').get(env) === undefined,
      log: (e) => {
        this.stmt('INSERT INTO changes (env, kind, name, op, revision, time) VALUES (?, ?, ?, ?, ?, ?)').run(env, e.kind, e.name, e.op, e.revision, e.time);
      },
    };
  }

  private toObject(row: ObjectRow): StoredObject {
    const ref = { kind: row.kind, name: row.name };
    const parse = (what: string, text: string): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        throw new StoreError('CORRUPT', `${this.location}: the ${what} of ${refText(ref)} is not valid JSON; ${WHAT_TO_DO_CORRUPT}`, { path: this.location, object: ref });
      }
    };
    return {
      kind: row.kind,
      name: row.name,
      spec: parse('spec', row.spec) as JsonObject,
      ...(row.status !== null ? { status: parse('status', row.status) as JsonObject } : {}),
      references: row.refs === '[]' ? [] : (parse('references', row.refs) as ObjectRef[]),
      revision: Number(row.revision),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      ...(row.owner !== null && row.owner !== undefined ? { owner: row.owner } : {}),
    };
  }

  private checkRefsTable(env: string, objects: readonly StoredObject[]): string[] {
    const fromColumn = new Set<string>();
    for (const o of objects) for (const r of o.references) fromColumn.add(JSON.stringify([o.kind, o.name, r.kind, r.name]));
    const fromTable = new Set<string>();
    for (const r of this.conn().prepare('SELECT from_kind, from_name, to_kind, to_name FROM refs WHERE env = ?').all(env) as Array<Record<string, string>>) {
      fromTable.add(JSON.stringify([r.from_kind, r.from_name, r.to_kind, r.to_name]));
    }
    const problems: string[] = [];
    for (const k of fromColumn) if (!fromTable.has(k)) problems.push(`${env}: reference ${k} is missing from the reference index`);
    for (const k of fromTable) if (!fromColumn.has(k)) problems.push(`${env}: reference index holds stale entry ${k}`);
    return problems;
  }

  /** Maps a node:sqlite error to a StoreError that names the file and what to do. */
  private translate(err: unknown, doing: 'open' | 'write' | 'check'): StoreError {
    if (err instanceof StoreError) return err;
    const e = err as { errcode?: number; message?: string; code?: string };
    const primary = typeof e.errcode === 'number' ? e.errcode & 0xff : -1;
    const msg = e.message ?? String(err);
    const file = this.location;
    switch (primary) {
      case 5: // SQLITE_BUSY
      case 6: // SQLITE_LOCKED
        return new StoreError('BUSY', `${file} is busy`, { path: file }, { cause: err });
      case 11: // SQLITE_CORRUPT
      case 26: // SQLITE_NOTADB
        return new StoreError('CORRUPT', `${file} is damaged or is not a microseg store (${msg}); ${WHAT_TO_DO_CORRUPT}`, { path: file }, { cause: err });
      case 3: // SQLITE_PERM
      case 8: // SQLITE_READONLY
      case 23: // SQLITE_AUTH
        return new StoreError('PERMISSION', `${file} cannot be written (${msg}); give this user read and write access to it and to ${this.dataDir}, or choose another data directory`, { path: file }, { cause: err });
      case 14: // SQLITE_CANTOPEN
        return new StoreError('PERMISSION', `${file} cannot be opened (${msg}); check that ${this.dataDir} exists and this user may read and write it`, { path: file }, { cause: err });
      case 13: // SQLITE_FULL
        return new StoreError('IO', `${file}: the disk is full; free space and retry`, { path: file }, { cause: err });
      default:
        return new StoreError('IO', `${file}: ${doing} failed: ${msg}`, { path: file }, { cause: err });
    }
  }
}

/** Creates the data directory and checks access before SQLite gives a vaguer error. */
function prepareDirectory(dir: string, file: string): void {
  const advice = `give this user read, write and search access (e.g. chmod u+rwx ${dir}) or choose another data directory with the provider config dataDir or MICROSEG_DATA_DIR`;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new StoreError('PERMISSION', `cannot create the data directory ${dir} (${code}); ${advice}`, { path: dir }, { cause: err });
    }
    throw new StoreError('IO', `cannot create the data directory ${dir} (${code ?? String(err)}); choose another data directory with the provider config dataDir or MICROSEG_DATA_DIR`, { path: dir }, { cause: err });
  }
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new StoreError('PERMISSION', `the data directory ${dir} is not readable and writable by this user; ${advice}`, { path: dir }, { cause: err });
  }
  let header: Buffer;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDWR);
    try {
      header = Buffer.alloc(16);
      const n = fs.readSync(fd, header, 0, 16, 0);
      header = header.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // A new store: create the file owner-only before SQLite creates it with the umask's mode (0644
      // typically); SQLite gives its -wal and -shm files the database file's mode.
      try {
        fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreError('IO', `cannot create ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { path: file }, { cause: e });
      }
      return;
    }
    if (code === 'EACCES' || code === 'EPERM') throw new StoreError('PERMISSION', `${file} is not readable and writable by this user; ${advice}`, { path: file }, { cause: err });
    if (code === 'EISDIR') throw new StoreError('CORRUPT', `${file} is a directory, not a microseg store; ${WHAT_TO_DO_CORRUPT}`, { path: file }, { cause: err });
    throw new StoreError('IO', `cannot read ${file} (${code ?? String(err)})`, { path: file }, { cause: err });
  }
  // An empty file is what SQLite itself creates first; anything else must carry the SQLite header.
  if (header.length > 0 && header.toString('latin1') !== SQLITE_HEADER) {
    throw new StoreError('CORRUPT', `${file} is not a SQLite database (damaged or overwritten); ${WHAT_TO_DO_CORRUPT}`, { path: file });
  }
}
