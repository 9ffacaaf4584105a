/**
 * The team-mode store on PostgreSQL: the same contract as the SQLite store (revisions, change log,
 * referential integrity inside the transaction), shared by every `microseg serve` replica.
 *
 * Writers of one environment queue on a transaction-scoped advisory lock, so revision checks and
 * change-log sequence numbers follow commit order within an environment (a reader resuming from a seq
 * never misses an entry committed later with a smaller seq). Environments write in parallel.
 *
 * The shared batch semantics (batch.ts) are synchronous; a networked database is not. So a batch first
 * reads, in a few set-based queries, every row the batch can look at (the written keys, what their new
 * references point to, who references a deleted key), runs `applyBatch` against that snapshot plus an
 * overlay of its own writes, then writes the overlay back. The advisory lock makes the snapshot exact.
 *
 * Every commit sends `NOTIFY microseg_changes, '<env>'`, so replicas learn of writes without polling.
 */
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { applyBatch, checkEnvironment, checkKey, restoreBatch, type TxPrimitives } from './batch';
import { StoreError, refText } from './errors';
import { checkEnvironmentInvariants, type LatestChange } from './invariants';
import { PG_LATEST_VERSION, PG_MIGRATIONS } from './postgres-migrations';
import { checkFlow, mergeFlow, retentionCutoff } from './flows';
import { auditCutoff, checkAudit } from './audit';
import { DEFAULT_AUDIT_RETENTION, DEFAULT_FLOW_RETENTION, type ApplyOptions, type AuditQuery, type AuditRecord, type AuditRetention, type ChangeLogEntry, type ChangesOptions, type FlowQuery, type FlowRecord, type FlowRetention, type IntegrityReport, type RuleStatsRow, type JsonObject, type ListOptions, type ObjectRef, type Store, type StoredObject, type WriteOp, type WriteResult } from './types';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (a `host=/socket/dir` query parameter selects a unix socket). */
  readonly url: string;
  /** The PostgreSQL schema holding microseg's tables (default `microseg`). */
  readonly schema?: string;
  /** Connections per process (default 10). */
  readonly poolSize?: number;
  /** How long to wait for a connection before reporting the database unavailable (ms, default 5000). */
  readonly connectTimeoutMs?: number;
  /** A statement running longer than this is cancelled (ms, default 30000). */
  readonly statementTimeoutMs?: number;
  readonly clock?: () => Date;
  /** Apply migrations only up to this version (tests of upgrades). */
  readonly targetVersion?: number;
}

/** The channel every commit notifies, with the environment as payload. */
export const CHANGES_CHANNEL = 'microseg_changes';
/** Advisory-lock class ids ('MS' + purpose), so microseg's locks never collide with another application's. */
const LOCK_MIGRATE = 0x4d53_0001;
const LOCK_ENVIRONMENT = 0x4d53_0002;
const SERIALIZATION_ATTEMPTS = 5;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

interface ObjectRow {
  kind: string;
  name: string;
  spec: string;
  status: string | null;
  refs: string;
  revision: string;
  created_at: string;
  updated_at: string;
  owner: string | null;
}

/** The URL without its password: what messages and `location` show. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** Opens (creating the schema and migrating when needed) the store in a PostgreSQL database. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const store = new PostgresStore(options);
  try {
    await store.init();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

const key = (kind: string, name: string): string => `${kind}\u0000${name}`;

const refOf = (k: string): ObjectRef => {
  const i = k.indexOf('\u0000');
  return { kind: k.slice(0, i), name: k.slice(i + 1) };
};

/** Up to this many keys are sent as a VALUES list: the planner then sees their count and uses the indexes. */
const VALUES_LIMIT = 500;

/**
 * A relation `k(kind, name)` of distinct keys, with its parameters numbered from `first`. Small sets are a
 * VALUES list, because an unnest of array parameters is estimated at 100 rows whatever it holds, which
 * makes the planner scan whole tables once they grow (every write would cost O(objects)).
 */
function keyRelation(refs: readonly ObjectRef[], first: number): { sql: string; params: string[] } {
  const seen = new Map<string, ObjectRef>();
  for (const r of refs) if (typeof r?.kind === 'string' && typeof r?.name === 'string') seen.set(key(r.kind, r.name), r);
  const keys = [...seen.values()];
  if (keys.length === 0 || keys.length > VALUES_LIMIT) {
    return { sql: `unnest($${first}::text[], $${first + 1}::text[])`, params: [keys.map((k) => k.kind), keys.map((k) => k.name)] as unknown as string[] };
  }
  return {
    sql: `(VALUES ${keys.map((_, i) => `($${first + 2 * i}::text, $${first + 2 * i + 1}::text)`).join(', ')})`,
    params: keys.flatMap((k) => [k.kind, k.name]),
  };
}

/** PostgreSQL adapter; obtain one with `openPostgresStore`. */
export class PostgresStore implements Store {
  readonly location: string;
  readonly schema: string;
  private pool: Pool | undefined;
  private readonly clock: () => Date;

  /** @internal use `openPostgresStore`. */
  constructor(private readonly options: PostgresStoreOptions) {
    this.location = redactUrl(options.url);
    this.schema = options.schema ?? 'microseg';
    if (!SCHEMA_NAME.test(this.schema)) throw new StoreError('INVALID_ARGUMENT', `invalid PostgreSQL schema name ${JSON.stringify(this.schema)}: use lower-case letters, digits and '_'`);
    this.clock = options.clock ?? (() => new Date());
    const config: PoolConfig = {
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      // Every connection resolves microseg's tables in its own schema.
      options: `-c search_path=${this.schema}`,
      application_name: 'microseg',
    };
    this.pool = new Pool(config);
    // An idle connection dropped by a database restart must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  /** The pool, for a LISTEN connection of the server (same credentials). @internal */
  connectionOptions(): PoolConfig {
    return { connectionString: this.options.url, connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5000, options: `-c search_path=${this.schema}`, application_name: 'microseg-listen' };
  }

  /** @internal Creates the schema and applies pending migrations, under a lock so replicas starting together do not race. */
  async init(): Promise<void> {
    await this.withClient(async (c) => {
      await c.query('BEGIN');
      try {
        await c.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_MIGRATE]);
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${this.schema}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
        const row = (await c.query<{ value: string }>(`SELECT value FROM ${this.schema}.meta WHERE key = 'schema_version'`)).rows[0];
        const version = row ? Number(row.value) : 0;
        if (version > PG_LATEST_VERSION) {
          throw new StoreError(
            'NEWER_SCHEMA',
            `${this.location} (schema ${this.schema}) was written by a newer microseg (schema version ${version}; this version understands up to ${PG_LATEST_VERSION}); upgrade microseg on every replica`,
          );
        }
        const target = this.options.targetVersion ?? PG_LATEST_VERSION;
        const pending = PG_MIGRATIONS.filter((m) => m.version > version && m.version <= target);
        for (const m of pending) await c.query(m.sql);
        if (pending.length > 0) {
          await c.query(
            `INSERT INTO ${this.schema}.meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
            [String(pending[pending.length - 1].version)],
          );
        }
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /** The schema version of the database. */
  async schemaVersion(): Promise<number> {
    return this.withClient(async (c) => Number((await c.query<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0]?.value ?? 0));
  }

  /** Whether the database answers (readiness). Never throws. */
  async ping(): Promise<boolean> {
    try {
      await this.withClient((c) => c.query('SELECT 1'));
      return true;
    } catch {
      return false;
    }
  }

  async get(environment: string, kind: string, name: string): Promise<StoredObject | undefined> {
    checkEnvironment(environment);
    checkKey(kind, name);
    const rows = await this.query<ObjectRow>('SELECT kind, name, spec, status, refs, revision, created_at, updated_at, owner FROM objects WHERE env = $1 AND kind = $2 AND name = $3', [
      environment,
      kind,
      name,
    ]);
    return rows[0] ? this.toObject(rows[0]) : undefined;
  }

  async list(environment: string, options: ListOptions = {}): Promise<StoredObject[]> {
    checkEnvironment(environment);
    const rows =
      options.kind === undefined
        ? await this.query<ObjectRow>('SELECT kind, name, spec, status, refs, revision, created_at, updated_at, owner FROM objects WHERE env = $1 ORDER BY kind, name', [environment])
        : await this.query<ObjectRow>('SELECT kind, name, spec, status, refs, revision, created_at, updated_at, owner FROM objects WHERE env = $1 AND kind = $2 ORDER BY name', [environment, options.kind]);
    return rows.map((r) => this.toObject(r));
  }

  async apply(environment: string, ops: readonly WriteOp[], options: ApplyOptions = {}): Promise<WriteResult[]> {
    checkEnvironment(environment);
    options.audit?.forEach(checkAudit);
    const keys: ObjectRef[] = [];
    const targets: ObjectRef[] = [];
    const deleted: ObjectRef[] = [];
    for (const op of ops) {
      keys.push({ kind: op.kind, name: op.name });
      if (op.op === 'put') for (const r of op.references ?? []) targets.push(r);
      if (op.op === 'delete') deleted.push({ kind: op.kind, name: op.name });
    }
    const audited = options.audit?.length || options.auditRetention ? (c: PoolClient) => this.writeAudit(c, environment, options.audit ?? [], options.auditRetention) : undefined;
    return this.transaction(environment, { keys, targets, deleted, needEmpty: false }, (tx, time) => applyBatch(tx, ops, time), audited);
  }

  async audit(environment: string, query: AuditQuery = {}): Promise<AuditRecord[]> {
    checkEnvironment(environment);
    const where = ['env = $1'];
    const params: unknown[] = [environment];
    const add = (sql: (n: number) => string, v: unknown) => (params.push(v), where.push(sql(params.length)));
    if (query.since !== undefined) add((n) => `time > $${n}`, query.since);
    if (query.kind !== undefined) add((n) => `kind = $${n}`, query.kind);
    if (query.name !== undefined) add((n) => `name = $${n}`, query.name);
    const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
    const rows = await this.query<{ env: string; time: string; actor: string; role: string; kind: string; name: string; op: AuditRecord['op']; revision: string; summary: string }>(
      `SELECT env, time, actor, role, kind, name, op, revision, summary FROM audit WHERE ${where.join(' AND ')} ORDER BY seq DESC${limit}`,
      params,
    );
    return rows.reverse().map((r) => ({ time: r.time, actor: r.actor, role: r.role, environment: r.env, kind: r.kind, name: r.name, op: r.op, revision: Number(r.revision), summary: r.summary }));
  }

  /** Inside the write transaction: the batch's audit records (one statement), then the retention. */
  private async writeAudit(c: PoolClient, env: string, records: readonly AuditRecord[], retention: AuditRetention | undefined): Promise<void> {
    if (records.length > 0) {
      await c.query(
        `INSERT INTO audit (env, time, actor, role, kind, name, op, revision, summary)
         SELECT $1, u.time, u.actor, u.role, u.kind, u.name, u.op, u.revision, u.summary
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[]) WITH ORDINALITY AS u(time, actor, role, kind, name, op, revision, summary, ord) ORDER BY u.ord`,
        [env, records.map((r) => r.time), records.map((r) => r.actor), records.map((r) => r.role), records.map((r) => r.kind), records.map((r) => r.name), records.map((r) => r.op), records.map((r) => r.revision), records.map((r) => r.summary)],
      );
    }
    if (!retention) return;
    const keep = { ...DEFAULT_AUDIT_RETENTION, ...retention };
    await c.query('DELETE FROM audit WHERE env = $1 AND time < $2', [env, auditCutoff(this.clock(), keep)]);
    await c.query('DELETE FROM audit WHERE env = $1 AND seq <= (SELECT seq FROM audit WHERE env = $1 ORDER BY seq DESC OFFSET $2 LIMIT 1)', [env, keep.maxCount]);
  }

  async restore(environment: string, objects: readonly StoredObject[]): Promise<void> {
    checkEnvironment(environment);
    const keys = objects.map((o) => ({ kind: o.kind, name: o.name }));
    const targets = objects.flatMap((o) => o.references ?? []);
    await this.transaction(environment, { keys, targets, deleted: [], needEmpty: true }, (tx) => restoreBatch(tx, environment, objects));
  }

  async lastSeq(environment: string): Promise<number> {
    checkEnvironment(environment);
    const rows = await this.query<{ seq: string | null }>('SELECT MAX(seq) AS seq FROM changes WHERE env = $1', [environment]);
    return Number(rows[0]?.seq ?? 0);
  }

  async changes(environment: string, options: ChangesOptions = {}): Promise<ChangeLogEntry[]> {
    checkEnvironment(environment);
    const where = ['env = $1', 'seq > $2'];
    const params: Array<string | number> = [environment, options.afterSeq ?? 0];
    if (options.kind !== undefined) (params.push(options.kind), where.push(`kind = $${params.length}`));
    if (options.name !== undefined) (params.push(options.name), where.push(`name = $${params.length}`));
    const limit = options.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(options.limit))}` : '';
    const rows = await this.query<{ seq: string; env: string; kind: string; name: string; op: 'create' | 'update' | 'delete'; revision: string; time: string }>(
      `SELECT seq, env, kind, name, op, revision, time FROM changes WHERE ${where.join(' AND ')} ORDER BY seq${limit}`,
      params,
    );
    return rows.map((r) => ({ seq: Number(r.seq), environment: r.env, kind: r.kind, name: r.name, op: r.op, revision: Number(r.revision), time: r.time }));
  }

  async environments(): Promise<string[]> {
    return (await this.query<{ env: string }>('SELECT DISTINCT env FROM objects ORDER BY env')).map((r) => r.env);
  }

  async integrityCheck(): Promise<IntegrityReport> {
    const problems: string[] = [];
    await this.withClient(async (c) => {
      // One snapshot for the whole check, so concurrent writers cannot produce false problems.
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const version = Number((await c.query<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0]?.value ?? 0);
        if (version !== PG_LATEST_VERSION) problems.push(`schema version is ${version}, expected ${PG_LATEST_VERSION}`);
        const envs = (await c.query<{ env: string }>('SELECT env FROM objects UNION SELECT env FROM changes ORDER BY env')).rows.map((r) => r.env);
        for (const env of envs) {
          const objects: StoredObject[] = [];
          for (const row of (await c.query<ObjectRow>('SELECT kind, name, spec, status, refs, revision, created_at, updated_at, owner FROM objects WHERE env = $1', [env])).rows) {
            try {
              objects.push(this.toObject(row));
            } catch (err) {
              problems.push(`${env}: ${(err as Error).message}`);
            }
          }
          const latest = (
            await c.query<{ kind: string; name: string; op: LatestChange['op']; revision: string }>(
              'SELECT DISTINCT ON (kind, name) kind, name, op, revision FROM changes WHERE env = $1 ORDER BY kind, name, seq DESC',
              [env],
            )
          ).rows.map((r) => ({ kind: r.kind, name: r.name, op: r.op, revision: Number(r.revision) }));
          problems.push(...checkEnvironmentInvariants(env, objects, latest));
          const fromColumn = new Set<string>();
          for (const o of objects) for (const r of o.references) fromColumn.add(JSON.stringify([o.kind, o.name, r.kind, r.name]));
          const fromTable = new Set(
            (await c.query<Record<string, string>>('SELECT from_kind, from_name, to_kind, to_name FROM refs WHERE env = $1', [env])).rows.map((r) =>
              JSON.stringify([r.from_kind, r.from_name, r.to_kind, r.to_name]),
            ),
          );
          for (const k of fromColumn) if (!fromTable.has(k)) problems.push(`${env}: reference ${k} is missing from the reference index`);
          for (const k of fromTable) if (!fromColumn.has(k)) problems.push(`${env}: reference index holds stale entry ${k}`);
        }
      } finally {
        await c.query('COMMIT').catch(() => undefined);
      }
    });
    return { ok: problems.length === 0, problems };
  }

  async recordFlows(environment: string, records: readonly FlowRecord[], retention: FlowRetention = {}): Promise<void> {
    checkEnvironment(environment);
    records.forEach(checkFlow);
    const keep = { ...DEFAULT_FLOW_RETENTION, ...retention };
    // One row per id per statement (ON CONFLICT may touch a row once): merge repeats first, as the store would.
    const byId = new Map<string, FlowRecord>();
    for (const r of records) byId.set(r.id, mergeFlow(byId.get(r.id), r));
    const rows = [...byId.values()];
    await this.withClient(async (c) => {
      await c.query('BEGIN');
      try {
        for (let i = 0; i < rows.length; i += 1000) {
          const chunk = rows.slice(i, i + 1000);
          const params: unknown[] = [];
          const values = chunk.map((r) => {
            const base = params.length;
            params.push(environment, r.id, r.point, r.direction, r.protocol, r.sourceIp, r.sourcePort ?? null, r.destinationIp, r.destinationPort ?? null, r.verdict, r.rule, r.stagedVerdict ?? null, r.stagedRule ?? null, r.firstSeen, r.lastSeen, r.packets, r.bytes);
            return `(${Array.from({ length: 17 }, (_, k) => `$${base + k + 1}`).join(', ')})`;
          });
          // The merge of flows.ts mergeFlow, in SQL.
          await c.query(
            `INSERT INTO flows (env, id, point, direction, protocol, src_ip, src_port, dst_ip, dst_port, verdict, rule, staged_verdict, staged_rule, first_seen, last_seen, packets, bytes)
             VALUES ${values.join(', ')}
             ON CONFLICT (env, id) DO UPDATE SET point = EXCLUDED.point, direction = EXCLUDED.direction, protocol = EXCLUDED.protocol,
               src_ip = EXCLUDED.src_ip, src_port = EXCLUDED.src_port, dst_ip = EXCLUDED.dst_ip, dst_port = EXCLUDED.dst_port,
               verdict = EXCLUDED.verdict, rule = EXCLUDED.rule, staged_verdict = EXCLUDED.staged_verdict, staged_rule = EXCLUDED.staged_rule,
               first_seen = LEAST(flows.first_seen, EXCLUDED.first_seen), last_seen = GREATEST(flows.last_seen, EXCLUDED.last_seen),
               packets = GREATEST(flows.packets, EXCLUDED.packets), bytes = GREATEST(flows.bytes, EXCLUDED.bytes)`,
            params,
          );
        }
        await c.query('DELETE FROM flows WHERE env = $1 AND last_seen < $2', [environment, retentionCutoff(this.clock(), keep)]);
        await c.query(
          'DELETE FROM flows WHERE env = $1 AND id IN (SELECT id FROM flows WHERE env = $1 ORDER BY last_seen DESC, id OFFSET $2)',
          [environment, keep.maxCount],
        );
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async flows(environment: string, query: FlowQuery = {}): Promise<FlowRecord[]> {
    checkEnvironment(environment);
    const where = ['env = $1'];
    const params: unknown[] = [environment];
    const add = (sql: (n: number) => string, v: unknown) => (params.push(v), where.push(sql(params.length)));
    if (query.since !== undefined) add((n) => `last_seen >= $${n}`, query.since);
    if (query.until !== undefined) add((n) => `last_seen <= $${n}`, query.until);
    if (query.verdict !== undefined) add((n) => `verdict = $${n}`, query.verdict);
    if (query.rule !== undefined) add((n) => `rule = $${n}`, query.rule);
    if (query.point !== undefined) add((n) => `point = $${n}`, query.point);
    if (query.sourceIps !== undefined) add((n) => `src_ip = ANY($${n}::text[])`, [...query.sourceIps]);
    if (query.destinationIps !== undefined) add((n) => `dst_ip = ANY($${n}::text[])`, [...query.destinationIps]);
    const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
    const rows = await this.query<Record<string, string | number | null>>(`SELECT * FROM flows WHERE ${where.join(' AND ')} ORDER BY last_seen DESC, id${limit}`, params);
    return rows.map((r) => ({
      id: String(r.id),
      point: String(r.point),
      direction: r.direction as FlowRecord['direction'],
      protocol: String(r.protocol),
      sourceIp: String(r.src_ip),
      ...(r.src_port !== null ? { sourcePort: Number(r.src_port) } : {}),
      destinationIp: String(r.dst_ip),
      ...(r.dst_port !== null ? { destinationPort: Number(r.dst_port) } : {}),
      verdict: r.verdict as FlowRecord['verdict'],
      rule: String(r.rule),
      ...(r.staged_verdict !== null ? { stagedVerdict: String(r.staged_verdict) } : {}),
      ...(r.staged_rule !== null ? { stagedRule: String(r.staged_rule) } : {}),
      firstSeen: String(r.first_seen),
      lastSeen: String(r.last_seen),
      packets: Number(r.packets),
      bytes: Number(r.bytes),
    }));
  }

  async ruleStats(environment: string, window: Pick<FlowQuery, 'since' | 'until'> = {}): Promise<RuleStatsRow[]> {
    checkEnvironment(environment);
    const where = ['env = $1'];
    const params: string[] = [environment];
    if (window.since !== undefined) (params.push(window.since), where.push(`last_seen >= $${params.length}`));
    if (window.until !== undefined) (params.push(window.until), where.push(`last_seen <= $${params.length}`));
    const rows = await this.query<{ rule: string; point: string; flows: string; packets: string; bytes: string; last_seen: string }>(
      `SELECT rule, point, COUNT(*) AS flows, SUM(packets) AS packets, SUM(bytes) AS bytes, MAX(last_seen) AS last_seen FROM flows WHERE ${where.join(' AND ')} GROUP BY rule, point ORDER BY rule, point COLLATE "C"`,
      params,
    );
    return rows.map((r) => ({ rule: r.rule, point: r.point, flows: Number(r.flows), packets: Number(r.packets), bytes: Number(r.bytes), lastSeen: r.last_seen }));
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end().catch(() => undefined);
  }

  private async query<R extends object>(sql: string, params: unknown[] = []): Promise<R[]> {
    return this.withClient(async (c) => (await c.query<R>(sql, params)).rows);
  }

  private async withClient<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    if (!this.pool) throw new StoreError('CLOSED', `the store ${this.location} is closed`);
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.translate(err);
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      const e = this.translate(err);
      // A connection that failed at the transport level must not go back into the pool.
      if (e.code === 'UNAVAILABLE') broken = e;
      throw e;
    } finally {
      client.release(broken);
    }
  }

  /**
   * One write transaction of an environment: lock, read what the batch can see, run the shared batch
   * semantics, write back, notify, commit. Retried on serialization failures and deadlocks only.
   */
  private async transaction<T>(
    environment: string,
    wanted: { keys: readonly ObjectRef[]; targets: readonly ObjectRef[]; deleted: readonly ObjectRef[]; needEmpty: boolean },
    body: (tx: TxPrimitives, time: string) => T,
    /** More writes of the same transaction, after the batch's (its audit records). */
    after?: (c: PoolClient) => Promise<void>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withClient(async (c) => {
          // Environment names are checked against [A-Za-z0-9._-] (checkEnvironment), so they can be inlined
          // into these fixed statements, which saves a round trip each on every write.
          await c.query(`BEGIN; SELECT pg_advisory_xact_lock(${LOCK_ENVIRONMENT}, hashtext('${environment}'))`);
          try {
            const snapshot = await this.readSnapshot(c, environment, wanted);
            const overlay = new Overlay(snapshot);
            const result = body(overlay.primitives(), this.clock().toISOString());
            await this.writeBack(c, environment, overlay);
            if (after) await after(c);
            await c.query(overlay.logged.length > 0 ? `NOTIFY ${CHANGES_CHANNEL}, '${environment}'; COMMIT` : 'COMMIT');
            return result;
          } catch (err) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        });
      } catch (err) {
        if (err instanceof StoreError && err.code === 'BUSY' && attempt < SERIALIZATION_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** attempt * (0.5 + Math.random())));
          continue;
        }
        throw err;
      }
    }
  }

  private async readSnapshot(
    c: PoolClient,
    env: string,
    wanted: { keys: readonly ObjectRef[]; targets: readonly ObjectRef[]; deleted: readonly ObjectRef[]; needEmpty: boolean },
  ): Promise<Snapshot> {
    const valid = (r: ObjectRef) => typeof r?.kind === 'string' && typeof r?.name === 'string';
    // Current rows of every key the batch names or references, and the last logged revision of the
    // written keys, in one round trip.
    const current = new Map<string, { revision: number; createdAt: string; owner?: string }>();
    const lastLogged = new Map<string, number>();
    const seen = keyRelation([...wanted.keys, ...wanted.targets], 2);
    const written = keyRelation(wanted.keys, 2 + seen.params.length);
    for (const r of (
      await c.query<{ what: 'o' | 'l'; kind: string; name: string; revision: string; created_at: string | null; owner: string | null }>(
        `SELECT 'o' AS what, o.kind, o.name, o.revision, o.created_at, o.owner FROM objects o JOIN ${seen.sql} AS k(kind, name) ON o.kind = k.kind AND o.name = k.name WHERE o.env = $1
         UNION ALL
         SELECT 'l', c.kind, c.name, MAX(c.revision), NULL, NULL FROM changes c JOIN ${written.sql} AS k(kind, name) ON c.kind = k.kind AND c.name = k.name WHERE c.env = $1 GROUP BY c.kind, c.name`,
        [env, ...seen.params, ...written.params],
      )
    ).rows) {
      if (r.what === 'o') current.set(key(r.kind, r.name), { revision: Number(r.revision), createdAt: r.created_at ?? '', ...(r.owner !== null ? { owner: r.owner } : {}) });
      else lastLogged.set(key(r.kind, r.name), Number(r.revision));
    }
    const referrers = new Map<string, ObjectRef[]>();
    if (wanted.deleted.length > 0) {
      const gone = keyRelation(wanted.deleted, 2);
      for (const r of (
        await c.query<{ from_kind: string; from_name: string; to_kind: string; to_name: string }>(
          `SELECT r.from_kind, r.from_name, r.to_kind, r.to_name FROM refs r JOIN ${gone.sql} AS k(kind, name) ON r.to_kind = k.kind AND r.to_name = k.name WHERE r.env = $1`,
          [env, ...gone.params],
        )
      ).rows) {
        const t = key(r.to_kind, r.to_name);
        referrers.set(t, [...(referrers.get(t) ?? []), { kind: r.from_kind, name: r.from_name }]);
      }
    }
    const known = new Set([...wanted.keys, ...wanted.targets].filter(valid).map((r) => key(r.kind, r.name)));
    const empty = wanted.needEmpty ? (await c.query('SELECT 1 FROM objects WHERE env = $1 LIMIT 1', [env])).rowCount === 0 : false;
    return { current, lastLogged, referrers, known, deletedKeys: new Set(wanted.deleted.filter(valid).map((r) => key(r.kind, r.name))), empty };
  }

  /** Two statements whatever the batch size: the deletes, then every insert (objects, references, log). */
  private async writeBack(c: PoolClient, env: string, overlay: Overlay): Promise<void> {
    const upserts = [...overlay.objects.values()].filter((o): o is StoredObject => o !== null);
    // Only keys that existed before the batch can have reference rows or an object row to remove.
    const existed = [...overlay.objects.keys()].filter((k) => overlay.existedBefore(k)).map(refOf);
    if (existed.length > 0) {
      const gone = [...overlay.objects.entries()].filter(([k, o]) => o === null && overlay.existedBefore(k)).map(([k]) => refOf(k));
      const from = keyRelation(existed, 2);
      const removed = keyRelation(gone, 2 + from.params.length);
      await c.query(
        `WITH r AS (DELETE FROM refs r USING ${from.sql} AS k(kind, name) WHERE r.env = $1 AND r.from_kind = k.kind AND r.from_name = k.name)
         DELETE FROM objects o USING ${removed.sql} AS k(kind, name) WHERE o.env = $1 AND o.kind = k.kind AND o.name = k.name`,
        [env, ...from.params, ...removed.params],
      );
    }
    const refs = upserts.flatMap((o) => o.references.map((r) => [o.kind, o.name, r.kind, r.name]));
    const log = overlay.logged;
    if (upserts.length === 0 && log.length === 0) return;
    // The log rows are inserted in the batch's order (defaults are computed above the sort), so their
    // sequence numbers follow it.
    await c.query(
      `WITH o AS (
         INSERT INTO objects (env, kind, name, spec, status, refs, revision, created_at, updated_at, owner)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $19::text[])
         ON CONFLICT (env, kind, name) DO UPDATE SET spec = excluded.spec, status = excluded.status, refs = excluded.refs,
           revision = excluded.revision, created_at = excluded.created_at, updated_at = excluded.updated_at, owner = excluded.owner
       ), r AS (
         INSERT INTO refs (env, from_kind, from_name, to_kind, to_name) SELECT $1, * FROM unnest($10::text[], $11::text[], $12::text[], $13::text[])
       )
       INSERT INTO changes (env, kind, name, op, revision, time)
       SELECT $1, u.kind, u.name, u.op, u.revision, u.time FROM unnest($14::text[], $15::text[], $16::text[], $17::bigint[], $18::text[]) WITH ORDINALITY AS u(kind, name, op, revision, time, ord) ORDER BY u.ord`,
      [
        env,
        upserts.map((o) => o.kind),
        upserts.map((o) => o.name),
        upserts.map((o) => JSON.stringify(o.spec)),
        upserts.map((o) => (o.status === undefined ? null : JSON.stringify(o.status))),
        upserts.map((o) => JSON.stringify(o.references)),
        upserts.map((o) => o.revision),
        upserts.map((o) => o.createdAt),
        upserts.map((o) => o.updatedAt),
        refs.map((r) => r[0]),
        refs.map((r) => r[1]),
        refs.map((r) => r[2]),
        refs.map((r) => r[3]),
        log.map((e) => e.kind),
        log.map((e) => e.name),
        log.map((e) => e.op),
        log.map((e) => e.revision),
        log.map((e) => e.time),
        upserts.map((o) => o.owner ?? null),
      ],
    );
  }

  private toObject(row: ObjectRow): StoredObject {
    const ref = { kind: row.kind, name: row.name };
    const parse = (what: string, text: string): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        throw new StoreError('CORRUPT', `${this.location}: the ${what} of ${refText(ref)} is not valid JSON`, { object: ref });
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
      ...(row.owner !== null ? { owner: row.owner } : {}),
    };
  }

  /** Maps a pg or socket error to a StoreError naming the database and what to do. */
  private translate(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const e = err as { code?: string; message?: string };
    const msg = e.message ?? String(err);
    const where = this.location;
    const code = e.code ?? '';
    if (code === '40001' || code === '40P01' || code === '55P03') return new StoreError('BUSY', `${where} is busy (${msg})`, {}, { cause: err });
    if (code === '28P01' || code === '28000' || code === '42501') {
      return new StoreError('PERMISSION', `${where}: access refused (${msg}); check the user, password and grants in the store URL`, {}, { cause: err });
    }
    if (code === '3D000') return new StoreError('IO', `${where}: the database does not exist (${msg}); create it (createdb) first`, {}, { cause: err });
    if (code === '53100') return new StoreError('IO', `${where}: the database disk is full; free space and retry`, {}, { cause: err });
    if (
      ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'ENOENT', 'EHOSTUNREACH'].includes(code) ||
      code.startsWith('08') ||
      code.startsWith('57P') ||
      /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(msg)
    ) {
      return new StoreError('UNAVAILABLE', `PostgreSQL at ${where} is unavailable (${msg}); retry when it is back`, {}, { cause: err });
    }
    return new StoreError('IO', `${where}: ${msg}`, {}, { cause: err });
  }
}

interface Snapshot {
  current: Map<string, { revision: number; createdAt: string; owner?: string }>;
  lastLogged: Map<string, number>;
  /** Database referrers of the keys the batch deletes. */
  referrers: Map<string, ObjectRef[]>;
  /** Keys whose current state was read. */
  known: Set<string>;
  deletedKeys: Set<string>;
  empty: boolean;
}

/** The batch's view: the snapshot read under the lock, with the batch's own writes on top. */
class Overlay {
  /** key -> the object as written by the batch, or null when the batch removed it. */
  readonly objects = new Map<string, StoredObject | null>();
  readonly logged: Array<{ kind: string; name: string; op: 'create' | 'update' | 'delete'; revision: number; time: string }> = [];
  private readonly lastLogged: Map<string, number>;

  constructor(private readonly snapshot: Snapshot) {
    this.lastLogged = new Map(snapshot.lastLogged);
  }

  /** Whether the key had an object when the batch started. */
  existedBefore(k: string): boolean {
    return this.snapshot.current.has(k);
  }

  primitives(): TxPrimitives {
    const s = this.snapshot;
    const unread = (k: string): never => {
      // applyBatch only looks at keys the batch names; reaching here is a bug in the prefetch, not user input.
      throw new StoreError('IO', `internal error: the batch looked at ${k.replace('\u0000', '/')} which was not read under the lock`);
    };
    return {
      current: (kind, name) => {
        const k = key(kind, name);
        if (this.objects.has(k)) {
          const o = this.objects.get(k);
          return o ? { revision: o.revision, createdAt: o.createdAt, ...(o.owner !== undefined ? { owner: o.owner } : {}) } : undefined;
        }
        if (!s.known.has(k)) return unread(k);
        return s.current.get(k);
      },
      lastLoggedRevision: (kind, name) => this.lastLogged.get(key(kind, name)) ?? 0,
      write: (o) => void this.objects.set(key(o.kind, o.name), o),
      remove: (kind, name) => void this.objects.set(key(kind, name), null),
      referrers: (kind, name) => {
        const t = key(kind, name);
        if (!s.deletedKeys.has(t)) return unread(t);
        const out = (s.referrers.get(t) ?? []).filter((r) => !this.objects.has(key(r.kind, r.name)));
        for (const o of this.objects.values()) if (o && o.references.some((r) => r.kind === kind && r.name === name)) out.push({ kind: o.kind, name: o.name });
        return out;
      },
      isEmpty: () => s.empty,
      log: (e) => {
        const k = key(e.kind, e.name);
        this.lastLogged.set(k, Math.max(this.lastLogged.get(k) ?? 0, e.revision));
        this.logged.push(e);
      },
    };
  }
}
