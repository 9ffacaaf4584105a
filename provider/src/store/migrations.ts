/**
 * Ordered schema migrations of the SQLite store. The schema version is `PRAGMA user_version`; migration
 * `n` upgrades a version `n-1` file to version `n`. Never edit a released migration: append a new one.
 */

/** `PRAGMA application_id` of microseg stores ('MSEG'), so a foreign SQLite file is recognised. */
export const APPLICATION_ID = 0x4d534547;

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'objects, references and change log',
    sql: `
      CREATE TABLE objects (
        env TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        status TEXT,
        refs TEXT NOT NULL DEFAULT '[]',
        revision INTEGER NOT NULL CHECK (revision >= 1),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (env, kind, name)
      ) WITHOUT ROWID;
      CREATE TABLE refs (
        env TEXT NOT NULL,
        from_kind TEXT NOT NULL,
        from_name TEXT NOT NULL,
        to_kind TEXT NOT NULL,
        to_name TEXT NOT NULL,
        PRIMARY KEY (env, from_kind, from_name, to_kind, to_name)
      ) WITHOUT ROWID;
      CREATE INDEX refs_by_target ON refs (env, to_kind, to_name);
      CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        env TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
        revision INTEGER NOT NULL,
        time TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    // Without these, finding the last revision of a re-created object and reading one environment's
    // log scan the whole change log, which grows without bound.
    description: 'change-log indexes by object and by environment',
    sql: `
      CREATE INDEX changes_by_key ON changes (env, kind, name, seq);
      CREATE INDEX changes_by_env ON changes (env, seq);
    `,
  },
  {
    version: 3,
    // Who manages each object (a Pulumi resource URN, or the CLI): lets a crashed `pulumi up` adopt what it
    // wrote before the crash and refuse objects another stack or the CLI owns. NULL for older objects.
    description: 'object owners',
    sql: `
      ALTER TABLE objects ADD COLUMN owner TEXT;
    `,
  },
  {
    version: 4,
    // Flow records the agents read from the kernel (docs/visibility.md): observations, kept apart from the
    // objects and the change log, bounded by a retention (age and count) enforced on every write.
    description: 'flow records',
    sql: `
      CREATE TABLE flows (
        env TEXT NOT NULL,
        id TEXT NOT NULL,
        point TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        protocol TEXT NOT NULL,
        src_ip TEXT NOT NULL,
        src_port INTEGER,
        dst_ip TEXT NOT NULL,
        dst_port INTEGER,
        verdict TEXT NOT NULL CHECK (verdict IN ('allow', 'drop', 'reject')),
        rule TEXT NOT NULL,
        staged_verdict TEXT,
        staged_rule TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        packets INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (env, id)
      ) WITHOUT ROWID;
      CREATE INDEX flows_by_time ON flows (env, last_seen);
      CREATE INDEX flows_by_rule ON flows (env, rule, last_seen);
      CREATE INDEX flows_by_pair ON flows (env, src_ip, dst_ip);
    `,
  },
  {
    version: 5,
    // Audit records get their own table (they were objects of a reserved kind `audit` beside the ones they
    // describe, with no retention). Existing records move over in the order they were written (their
    // change-log seq); their objects and change-log entries go, so watchers at a seq past the new end of
    // the log are told to relist (410), as after a restore.
    description: 'audit table',
    sql: `
      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        env TEXT NOT NULL,
        time TEXT NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
        revision INTEGER NOT NULL,
        summary TEXT NOT NULL
      );
      CREATE INDEX audit_by_env ON audit (env, seq);
      CREATE INDEX audit_by_time ON audit (env, time);
      CREATE INDEX audit_by_object ON audit (env, kind, name, seq);
      INSERT INTO audit (env, time, actor, role, kind, name, op, revision, summary)
        SELECT o.env, COALESCE(json_extract(o.spec, '$.time'), o.created_at), COALESCE(json_extract(o.spec, '$.actor'), 'unknown'),
               COALESCE(json_extract(o.spec, '$.role'), 'unknown'), COALESCE(json_extract(o.spec, '$.kind'), '?'), COALESCE(json_extract(o.spec, '$.name'), '?'),
               CASE WHEN json_extract(o.spec, '$.op') IN ('create', 'update', 'delete') THEN json_extract(o.spec, '$.op') ELSE 'update' END,
               COALESCE(json_extract(o.spec, '$.revision'), 1), COALESCE(json_extract(o.spec, '$.summary'), '')
        FROM objects o
        WHERE o.kind = 'audit'
        ORDER BY (SELECT MIN(c.seq) FROM changes c WHERE c.env = o.env AND c.kind = 'audit' AND c.name = o.name), o.name;
      DELETE FROM refs WHERE from_kind = 'audit';
      DELETE FROM changes WHERE kind = 'audit';
      DELETE FROM objects WHERE kind = 'audit';
    `,
  },
];

/** The schema version this code writes. */
export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
