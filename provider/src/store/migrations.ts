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
];

/** The schema version this code writes. */
export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
