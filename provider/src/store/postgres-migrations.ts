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
];

export const PG_LATEST_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1].version;
