/** SQLite-specific behaviour: data directory, WAL, migrations, bad files, busy handling. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DATABASE_FILE, LATEST_VERSION, MIGRATIONS, openSqliteStore, resolveDataDir, type SqliteStore } from '../../provider/src/store';
import { collect, spawnTs } from './fixtures/spawn';
import { cleanupTempDirs, expectStoreError, tempDir } from './helpers';

afterAll(cleanupTempDirs);

function raw(dataDir: string): DatabaseSync {
  return new DatabaseSync(path.join(dataDir, DATABASE_FILE));
}

describe('data directory', () => {
  test('explicit option > MICROSEG_DATA_DIR > ~/.microseg', () => {
    expect(resolveDataDir({ dataDir: '/a', env: { MICROSEG_DATA_DIR: '/b' }, homeDir: '/h' })).toBe('/a');
    expect(resolveDataDir({ env: { MICROSEG_DATA_DIR: '/b' }, homeDir: '/h' })).toBe('/b');
    expect(resolveDataDir({ env: { MICROSEG_DATA_DIR: '' }, homeDir: '/h' })).toBe('/h/.microseg');
    expect(resolveDataDir({ dataDir: '~/x', env: {}, homeDir: '/h' })).toBe('/h/x');
  });

  test('creates the directory and one WAL-mode file in it', async () => {
    const dir = path.join(tempDir(), 'nested', 'data');
    const store = await openSqliteStore({ env: { MICROSEG_DATA_DIR: dir } });
    expect(store.location).toBe(path.join(dir, DATABASE_FILE));
    await store.apply('dev', [{ op: 'put', kind: 'K', name: 'n', spec: {} }]);
    const db = raw(dir);
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    db.close();
    await store.close();
    expect(fs.statSync(dir).isDirectory()).toBe(true);
  });

  test('a new store is private to its user: directory 0700, database, WAL and shared-memory files 0600', async () => {
    const dir = path.join(tempDir(), 'private', 'data');
    const previous = process.umask(0o022); // the usual umask, under which SQLite alone would create 0644
    try {
      const store = await openSqliteStore({ dataDir: dir });
      await store.apply('dev', [{ op: 'put', kind: 'K', name: 'n', spec: {} }]);
      const modes = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, (fs.statSync(path.join(dir, f)).mode & 0o777).toString(8)]));
      expect(modes).toEqual({ [DATABASE_FILE]: '600', [`${DATABASE_FILE}-wal`]: '600', [`${DATABASE_FILE}-shm`]: '600' });
      expect((fs.statSync(dir).mode & 0o777).toString(8)).toBe('700');
      await store.close();
    } finally {
      process.umask(previous);
    }
  });

  test('the store\'s own connection syncs the WAL on every commit by default (synchronous=FULL), as documented', async () => {
    const store = await openSqliteStore({ dataDir: tempDir() });
    try {
      expect(store.durability()).toEqual({ journalMode: 'wal', synchronous: 'full' });
    } finally {
      await store.close();
    }
  });

  test('synchronous: normal is honoured on the store\'s own connection', async () => {
    const store = await openSqliteStore({ dataDir: tempDir(), synchronous: 'normal' });
    try {
      expect(store.durability()).toEqual({ journalMode: 'wal', synchronous: 'normal' });
    } finally {
      await store.close();
    }
  });

  test('a data directory path that is a file is a clear error', async () => {
    const file = path.join(tempDir(), 'file');
    fs.writeFileSync(file, 'x');
    const e = await expectStoreError(openSqliteStore({ dataDir: file }), 'IO');
    expect(e.message).toContain(file);
  });

  const asRoot = process.getuid?.() === 0;
  (asRoot ? test : test.skip)('a data directory without permission is a PERMISSION error naming it', async () => {
    const dir = tempDir();
    fs.chownSync(dir, 65534, 65534);
    fs.chmodSync(dir, 0o700); // owned by nobody: a child without CAP_DAC_OVERRIDE may not enter it
    const child = spawnTs('open-worker.ts', [path.join(dir, 'data')], { withoutCapabilities: true });
    child.stdin?.end();
    const { stdout, stderr } = await collect(child);
    const result = JSON.parse(stdout || JSON.stringify({ stderr })) as { code?: string; message?: string };
    expect(result.code).toBe('PERMISSION');
    expect(result.message).toContain(path.join(dir, 'data'));
    expect(result.message).toMatch(/MICROSEG_DATA_DIR/);
  });
});

describe('watch', () => {
  test('a commit through another connection to the same data directory calls the watcher, and stopping it ends the calls', async () => {
    const dataDir = tempDir();
    const [reader, writer] = [await openSqliteStore({ dataDir }), await openSqliteStore({ dataDir })];
    try {
      let calls = 0;
      let heard: () => void = () => {};
      const stop = reader.watch((): void => {
        calls++;
        heard();
      });
      const first = new Promise<void>((resolve) => (heard = resolve));
      await writer.apply('dev', [{ op: 'put', kind: 'Group', name: 'g', spec: { a: 1 } }]);
      await first;
      expect(calls).toBeGreaterThan(0);
      stop();
      const before = calls;
      await writer.apply('dev', [{ op: 'put', kind: 'Group', name: 'g', spec: { a: 2 } }]);
      // A stopped watcher hears nothing more; let pending inotify events arrive before looking.
      await new Promise((r) => setImmediate(r));
      await writer.apply('dev', [{ op: 'put', kind: 'Group', name: 'h', spec: {} }]);
      expect(calls).toBe(before);
    } finally {
      await reader.close();
      await writer.close();
    }
  });
});

describe('migrations', () => {
  test('versions are consecutive from 1', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(LATEST_VERSION).toBe(5);
  });

  test('a store written by schema version 2 upgrades to owners: old objects have none until a put names one', async () => {
    const dataDir = tempDir();
    const v2 = await openSqliteStore({ dataDir, targetVersion: 2 });
    await v2.apply('dev', [{ op: 'put', kind: 'Group', name: 'g', spec: { a: 1 } }]);
    const before = await v2.list('dev');
    await v2.close();
    const v3 = await openSqliteStore({ dataDir });
    try {
      expect(v3.schemaVersion()).toBe(LATEST_VERSION);
      expect(await v3.list('dev')).toEqual(before);
      expect(before[0].owner).toBeUndefined();
      await v3.apply('dev', [{ op: 'put', kind: 'Group', name: 'g', spec: { a: 1 }, owner: 'urn:pulumi:dev::p::t::g' }]);
      expect((await v3.get('dev', 'Group', 'g'))?.owner).toBe('urn:pulumi:dev::p::t::g');
      expect(await v3.integrityCheck()).toEqual({ ok: true, problems: [] });
    } finally {
      await v3.close();
    }
  });

  test('a store written by schema version 3 upgrades to flow records: its objects are kept and flows start empty', async () => {
    const dataDir = tempDir();
    const v3 = await openSqliteStore({ dataDir, targetVersion: 3 });
    await v3.apply('dev', [{ op: 'put', kind: 'Group', name: 'g', spec: { a: 1 }, owner: 'microseg-cli:me' }]);
    const before = await v3.list('dev');
    await v3.close();
    const v4 = await openSqliteStore({ dataDir });
    try {
      expect({ version: v4.schemaVersion(), objects: await v4.list('dev'), flows: await v4.flows('dev') }).toEqual({ version: LATEST_VERSION, objects: before, flows: [] });
      expect(await v4.integrityCheck()).toEqual({ ok: true, problems: [] });
    } finally {
      await v4.close();
    }
  });

  test('a store written by schema version 4 moves its audit objects into the audit table, in the order they were written', async () => {
    const dataDir = tempDir();
    const v4 = await openSqliteStore({ dataDir, targetVersion: 4 });
    // As the server wrote them before v5: objects of kind `audit`, in the batch of the change they describe.
    const record = (name: string, revision: number, time: string) => ({ time, actor: 'token:abc', role: 'security-admin', environment: 'dev', kind: 'Group', name, op: revision === 1 ? 'create' : 'update', revision, summary: revision === 1 ? 'created' : 'changed a' });
    const audit = (r: ReturnType<typeof record>, suffix: string) => ({ op: 'put' as const, kind: 'audit', name: `${r.time}#${suffix}`, spec: r, expectedRevision: 0 });
    const t0 = '2026-01-01T00:00:00.000Z';
    // Same time, names out of order: the change log's order decides.
    await v4.apply('dev', [{ op: 'put', kind: 'Group', name: 'b', spec: { a: 1 } }, { op: 'put', kind: 'Group', name: 'a', spec: { a: 1 } }, audit(record('b', 1, t0), 'ff'), audit(record('a', 1, t0), '00')]);
    await v4.apply('dev', [{ op: 'put', kind: 'Group', name: 'a', spec: { a: 2 } }, audit(record('a', 2, '2026-01-01T00:00:01.000Z'), '11')]);
    await v4.apply('other', [{ op: 'put', kind: 'Group', name: 'x', spec: {} }]);
    const groups = await v4.list('dev', { kind: 'Group' });
    await v4.close();
    const v5 = await openSqliteStore({ dataDir });
    try {
      expect(v5.schemaVersion()).toBe(5);
      expect(await v5.audit('dev')).toEqual([record('b', 1, t0), record('a', 1, t0), record('a', 2, '2026-01-01T00:00:01.000Z')]);
      expect(await v5.list('dev')).toEqual(groups);
      expect((await v5.changes('dev')).map((c) => `${c.kind}/${c.name}@${c.revision}`)).toEqual(['Group/b@1', 'Group/a@1', 'Group/a@2']);
      expect(await v5.audit('other')).toEqual([]);
      expect(await v5.integrityCheck()).toEqual({ ok: true, problems: [] });
    } finally {
      await v5.close();
    }
  });

  test('a store written by schema version 1 opens, upgrades and keeps its data', async () => {
    const dataDir = tempDir();
    const v1 = await openSqliteStore({ dataDir, targetVersion: 1 });
    expect(v1.schemaVersion()).toBe(1);
    await v1.apply('dev', [
      { op: 'put', kind: 'Group', name: 'g', spec: { a: 1 } },
      { op: 'put', kind: 'Rule', name: 'r', spec: {}, status: { s: 1 }, references: [{ kind: 'Group', name: 'g' }] },
    ]);
    await v1.apply('dev', [{ op: 'put', kind: 'Tmp', name: 't', spec: {} }]);
    await v1.apply('dev', [{ op: 'delete', kind: 'Tmp', name: 't' }]);
    const before = await v1.list('dev');
    await v1.close();
    const indexes = (db: DatabaseSync) => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'changes_%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
    let db = raw(dataDir);
    expect(indexes(db)).toEqual([]);
    db.close();

    const v2 = await openSqliteStore({ dataDir });
    try {
      expect(v2.schemaVersion()).toBe(LATEST_VERSION);
      expect(await v2.list('dev')).toEqual(before);
      expect(await v2.integrityCheck()).toEqual({ ok: true, problems: [] });
      // The v2 index is what the re-create path uses to continue revisions.
      const [r] = await v2.apply('dev', [{ op: 'put', kind: 'Tmp', name: 't', spec: {} }]);
      expect(r.revision).toBe(3);
      await expectStoreError(v2.apply('dev', [{ op: 'delete', kind: 'Group', name: 'g' }]), 'IN_USE');
    } finally {
      await v2.close();
    }
    db = raw(dataDir);
    expect(indexes(db)).toEqual(['changes_by_env', 'changes_by_key']);
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT revision FROM changes WHERE env = ? AND kind = ? AND name = ? ORDER BY seq DESC LIMIT 1').all('dev', 'Tmp', 't');
    expect(JSON.stringify(plan)).toContain('changes_by_key');
    db.close();
  });

  test('parallel first opens migrate once', async () => {
    const dataDir = tempDir();
    const stores = await Promise.all(Array.from({ length: 3 }, () => openSqliteStore({ dataDir })));
    for (const s of stores) expect(s.schemaVersion()).toBe(LATEST_VERSION);
    await Promise.all(stores.map((s) => s.close()));
  });
});

describe('bad files are refused, never reset', () => {
  test('a file from a newer schema version', async () => {
    const dataDir = tempDir();
    await (await openSqliteStore({ dataDir })).close();
    let db = raw(dataDir);
    db.exec('PRAGMA user_version = 99');
    db.close();
    const e = await expectStoreError(openSqliteStore({ dataDir }), 'NEWER_SCHEMA');
    expect(e.message).toContain(path.join(dataDir, DATABASE_FILE));
    expect(e.message).toMatch(/upgrade microseg/);
    db = raw(dataDir);
    expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: 99 });
    db.close();
  });

  test('a file that is not a database', async () => {
    const dataDir = tempDir();
    const file = path.join(dataDir, DATABASE_FILE);
    fs.writeFileSync(file, 'this is not a database\n'.repeat(300));
    const e = await expectStoreError(openSqliteStore({ dataDir }), 'CORRUPT');
    expect(e.message).toContain(file);
    expect(e.message).toMatch(/import-state/);
    expect(fs.readFileSync(file, 'utf8')).toBe('this is not a database\n'.repeat(300));
  });

  test('a SQLite database of another application', async () => {
    const dataDir = tempDir();
    const db = raw(dataDir);
    db.exec('CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES (1)');
    db.close();
    const e = await expectStoreError(openSqliteStore({ dataDir }), 'CORRUPT');
    expect(e.message).toMatch(/not a microseg store/);
  });

  test('damaged pages are reported by open, reads or the integrity check', async () => {
    const dataDir = tempDir();
    const store = await openSqliteStore({ dataDir });
    for (let i = 0; i < 20; i++) {
      await store.apply('dev', Array.from({ length: 50 }, (_, j) => ({ op: 'put' as const, kind: 'K', name: `n${i}-${j}`, spec: { pad: 'p'.repeat(100) } })));
    }
    await store.close(); // last connection: checkpoints the WAL into the main file
    const file = path.join(dataDir, DATABASE_FILE);
    const buf = fs.readFileSync(file);
    const pageSize = buf.readUInt16BE(16);
    for (let p = 2; p * pageSize < buf.length; p += 3) buf.fill(0xa5, p * pageSize, p * pageSize + 64);
    fs.writeFileSync(file, buf);
    let detected: string | undefined;
    try {
      const s = await openSqliteStore({ dataDir });
      try {
        const report = await s.integrityCheck();
        if (!report.ok) detected = report.problems[0];
        else await s.list('dev');
      } finally {
        await s.close();
      }
    } catch (err) {
      detected = (err as Error).message;
      expect((err as { code?: string }).code).toBe('CORRUPT');
    }
    expect(detected).toBeDefined();
  });
});

describe('busy handling', () => {
  let store: SqliteStore;
  let other: DatabaseSync;
  let dataDir: string;
  beforeEach(async () => {
    dataDir = tempDir();
    store = await openSqliteStore({ dataDir, busyTimeoutMs: 20, retryBudgetMs: 400 });
    other = raw(dataDir);
  });
  afterEach(async () => {
    if (other.isTransaction) other.exec('ROLLBACK');
    other.close();
    await store.close();
  });

  test('a writer waits for another process holding the write lock', async () => {
    let retries = 0;
    // The other process commits once the writer has found the store busy, before its next attempt (no timer).
    const onBusyRetry = () => {
      if (retries++ === 0) other.exec('COMMIT');
    };
    const waiting = await openSqliteStore({ dataDir, busyTimeoutMs: 20, retryBudgetMs: 60_000, onBusyRetry });
    try {
      other.exec('BEGIN IMMEDIATE');
      const [r] = await waiting.apply('dev', [{ op: 'put', kind: 'K', name: 'n', spec: {} }]);
      expect(r.revision).toBe(1);
      expect(retries).toBeGreaterThan(0);
    } finally {
      await waiting.close();
    }
  });

  test('past the retry budget the error is BUSY with advice, never "database is locked"', async () => {
    other.exec('BEGIN IMMEDIATE');
    const e = await expectStoreError(store.apply('dev', [{ op: 'put', kind: 'K', name: 'n', spec: {} }]), 'BUSY');
    expect(e.message).not.toMatch(/database is locked/);
    expect(e.message).toContain(path.join(dataDir, DATABASE_FILE));
    other.exec('ROLLBACK');
    expect(await store.get('dev', 'K', 'n')).toBeUndefined();
  });

  test('readers are not blocked by a writer', async () => {
    other.exec('BEGIN IMMEDIATE');
    expect(await store.list('dev')).toEqual([]);
  });
});

describe('integrity check', () => {
  test('reports violations of the store invariants, not only physical damage', async () => {
    const dataDir = tempDir();
    const store = await openSqliteStore({ dataDir });
    await store.apply('dev', [
      { op: 'put', kind: 'Group', name: 'g', spec: {} },
      { op: 'put', kind: 'Rule', name: 'r', spec: {}, references: [{ kind: 'Group', name: 'g' }] },
      { op: 'put', kind: 'Group', name: 'h', spec: {} },
    ]);
    expect((await store.integrityCheck()).ok).toBe(true);
    const db = raw(dataDir);
    db.exec("DELETE FROM objects WHERE kind = 'Group' AND name = 'g'"); // dangling reference, log says it exists
    db.exec("UPDATE objects SET revision = 7 WHERE name = 'h'"); // disagrees with the change log
    db.exec("UPDATE objects SET spec = '{oops' WHERE name = 'r'"); // not JSON
    db.close();
    const report = await store.integrityCheck();
    await store.close();
    expect(report.ok).toBe(false);
    const text = report.problems.join('\n');
    expect(text).toMatch(/Group\/g is missing but its last change is a create/);
    expect(text).toMatch(/Group\/h is at revision 7 but the change log says 1/);
    expect(text).toMatch(/spec of Rule\/r is not valid JSON/);
  });
});
