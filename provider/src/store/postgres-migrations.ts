/**
 * Ordered schema migrations of the PostgreSQL store (team mode). The version lives in `meta`; migration
 * `n` upgrades a version `n-1` schema to `n`. Never edit a released migration: append a new one.
 *
 * Every table lives in its own schema (`microseg` by default), so the store can share a database with
 * other applications. Keys use the "C" collation so `ORDER BY kind, name` sorts exactly as the other
 * adapters (JavaScript code-unit order). Specs stay JSON text, not jsonb: the store hands back what was
 * written, key order included, as SQLite does.
 */
import type { Migration } from './migrations';

export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'objects (with owners), references and change log',
    sql: `
      CREATE TABLE objects (
        env TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        spec TEXT NOT NULL,
        status TEXT,
        refs TEXT NOT NULL DEFAULT '[]',
        revision BIGINT NOT NULL CHECK (revision >= 1),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        owner TEXT,
        PRIMARY KEY (env, kind, name)
      );
      CREATE TABLE refs (
        env TEXT COLLATE "C" NOT NULL,
        from_kind TEXT COLLATE "C" NOT NULL,
        from_name TEXT COLLATE "C" NOT NULL,
        to_kind TEXT COLLATE "C" NOT NULL,
        to_name TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (env, from_kind, from_name, to_kind, to_name)
      );
      CREATE INDEX refs_by_target ON refs (env, to_kind, to_name);
      CREATE TABLE changes (
        seq BIGSERIAL PRIMARY KEY,
        env TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
        revision BIGINT NOT NULL,
        time TEXT NOT NULL
      );
      CREATE INDEX changes_by_key ON changes (env, kind, name, seq);
      CREATE INDEX changes_by_env ON changes (env, seq);
    `,
  },
  {
    version: 2,
    // Flow records (docs/visibility.md), as SQLite schema v4: observations beside the objects, pruned by
    // the retention on every write.
    description: 'flow records',
    sql: `
      CREATE TABLE flows (
        env TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        point TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        protocol TEXT NOT NULL,
        src_ip TEXT COLLATE "C" NOT NULL,
        src_port INTEGER,
        dst_ip TEXT COLLATE "C" NOT NULL,
        dst_port INTEGER,
        verdict TEXT NOT NULL CHECK (verdict IN ('allow', 'drop', 'reject')),
        rule TEXT COLLATE "C" NOT NULL,
        staged_verdict TEXT,
        staged_rule TEXT,
        first_seen TEXT COLLATE "C" NOT NULL,
        last_seen TEXT COLLATE "C" NOT NULL,
        packets BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        PRIMARY KEY (env, id)
      );
      CREATE INDEX flows_by_time ON flows (env, last_seen);
      CREATE INDEX flows_by_rule ON flows (env, rule, last_seen);
      CREATE INDEX flows_by_pair ON flows (env, src_ip, dst_ip);
    `,
  },
  {
    version: 3,
    // Audit records in their own table, as SQLite schema v5: existing records (objects of the reserved kind
    // `audit`) move over in the order they were written; their objects and change-log entries go.
    description: 'audit table',
    sql: `
      CREATE TABLE audit (
        seq BIGSERIAL PRIMARY KEY,
        env TEXT COLLATE "C" NOT NULL,
        time TEXT COLLATE "C" NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
        revision BIGINT NOT NULL,
        summary TEXT NOT NULL
      );
      CREATE INDEX audit_by_env ON audit (env, seq);
      CREATE INDEX audit_by_time ON audit (env, time);
      CREATE INDEX audit_by_object ON audit (env, kind, name, seq);
      INSERT INTO audit (env, time, actor, role, kind, name, op, revision, summary)
        SELECT o.env, COALESCE(j.s->>'time', o.created_at), COALESCE(j.s->>'actor', 'unknown'), COALESCE(j.s->>'role', 'unknown'),
               COALESCE(j.s->>'kind', '?'), COALESCE(j.s->>'name', '?'),
               CASE WHEN j.s->>'op' IN ('create', 'update', 'delete') THEN j.s->>'op' ELSE 'update' END,
               COALESCE((j.s->>'revision')::bigint, 1), COALESCE(j.s->>'summary', '')
        FROM objects o CROSS JOIN LATERAL (SELECT o.spec::jsonb AS s) j
        WHERE o.kind = 'audit'
        ORDER BY (SELECT MIN(c.seq) FROM changes c WHERE c.env = o.env AND c.kind = 'audit' AND c.name = o.name), o.name;
      DELETE FROM refs WHERE from_kind = 'audit';
      DELETE FROM changes WHERE kind = 'audit';
      DELETE FROM objects WHERE kind = 'audit';
    `,
  },
];

export const PG_LATEST_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1].version;
