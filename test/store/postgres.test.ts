/** PostgreSQL store specifics: concurrent writers of one database, schema versions, notifications, outages. */
import { Client } from 'pg';
import { CHANGES_CHANNEL, PG_LATEST_VERSION, openPostgresStore, redactUrl, type PostgresStore } from '../../provider/src/store';
import { startPostgres, type PostgresCluster } from '../support/postgres';
import { expectStoreError } from './helpers';

let cluster: PostgresCluster;
let url: string;
const open: PostgresStore[] = [];
async function store(schema = 'microseg'): Promise<PostgresStore> {
  const s = await openPostgresStore({ url, schema, connectTimeoutMs: 2000 });
  open.push(s);
  return s;
}

beforeAll(async () => {
  cluster = await startPostgres();
  url = await cluster.createDatabase('pgstore');
}, 120_000);
afterAll(async () => {
  for (const s of open) await s.close();
  cluster?.destroy();
});

test('two stores on one database (two replicas) never lose a write: every conflicting write is refused, the rest are logged once', async () => {
  const [a, b] = [await store('race'), await store('race')];
  await a.apply('dev', [{ op: 'put', kind: 'Group', name: 'g', spec: { n: 0 } }]);
  // 40 increments from two replicas, each a read-modify-write guarded by the revision.
  let applied = 0;
  await Promise.all(
    [a, b].map(async (s) => {
      for (let i = 0; i < 20; i++) {
        for (;;) {
          const cur = await s.get('dev', 'Group', 'g');
          try {
            await s.apply('dev', [{ op: 'put', kind: 'Group', name: 'g', spec: { n: Number(cur?.spec.n) + 1 }, expectedRevision: cur?.revision }]);
            applied++;
            break;
          } catch (err) {
            if ((err as { code?: string }).code !== 'CONFLICT') throw err;
          }
        }
      }
    }),
  );
  expect(applied).toBe(40);
  const g = await a.get('dev', 'Group', 'g');
  expect(g?.spec.n).toBe(40);
  expect(g?.revision).toBe(41);
  const log = await b.changes('dev');
  expect(log.map((c) => c.revision)).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
  expect((await a.integrityCheck()).ok).toBe(true);
});

test('a delete racing a create of a referencing rule: exactly one wins, the store stays consistent', async () => {
  const [a, b] = [await store('refs'), await store('refs')];
  for (let i = 0; i < 10; i++) {
    await a.apply('dev', [{ op: 'put', kind: 'Group', name: `g${i}`, spec: {} }]);
    const results = await Promise.allSettled([
      a.apply('dev', [{ op: 'delete', kind: 'Group', name: `g${i}` }]),
      b.apply('dev', [{ op: 'put', kind: 'Rule', name: `r${i}`, spec: {}, references: [{ kind: 'Group', name: `g${i}` }] }]),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  }
  expect(await a.integrityCheck()).toEqual({ ok: true, problems: [] });
});

test('commits notify the changes channel with the environment, so replicas need not poll', async () => {
  const s = await store('notify');
  const listener = new Client({ connectionString: url });
  await listener.connect();
  try {
    const got = new Promise<string | undefined>((resolve) => listener.on('notification', (n) => resolve(n.payload)));
    await listener.query(`LISTEN ${CHANGES_CHANNEL}`);
    await s.apply('qa', [{ op: 'put', kind: 'Group', name: 'g', spec: {} }]);
    expect(await got).toBe('qa');
  } finally {
    await listener.end();
  }
});

test('a schema at version 2 moves its audit objects into the audit table on upgrade', async () => {
  const v2 = await openPostgresStore({ url, schema: 'upgrade_audit', targetVersion: 2 });
  const record = (name: string, revision: number) => ({ time: `2026-01-01T00:00:0${revision}.000Z`, actor: 'token:abc', role: 'auditor', environment: 'dev', kind: 'Group', name, op: revision === 1 ? 'create' : 'update', revision, summary: 'created' });
  try {
    await v2.apply('dev', [{ op: 'put', kind: 'Group', name: 'a', spec: { a: 1 } }, { op: 'put', kind: 'audit', name: 'z#1', spec: record('a', 1), expectedRevision: 0 }]);
    await v2.apply('dev', [{ op: 'put', kind: 'Group', name: 'a', spec: { a: 2 } }, { op: 'put', kind: 'audit', name: 'a#2', spec: record('a', 2), expectedRevision: 0 }]);
  } finally {
    await v2.close();
  }
  const v3 = await store('upgrade_audit');
  expect(await v3.schemaVersion()).toBe(PG_LATEST_VERSION);
  expect(await v3.audit('dev')).toEqual([record('a', 1), record('a', 2)]);
  expect((await v3.list('dev')).map((o) => o.kind)).toEqual(['Group']);
  expect((await v3.changes('dev')).map((c) => c.kind)).toEqual(['Group', 'Group']);
  expect(await v3.integrityCheck()).toEqual({ ok: true, problems: [] });
});

test('a schema written by a newer microseg is refused with NEWER_SCHEMA', async () => {
  const s = await store('newer');
  expect(await s.schemaVersion()).toBe(PG_LATEST_VERSION);
  const c = new Client({ connectionString: url });
  await c.connect();
  await c.query("UPDATE newer.meta SET value = '99' WHERE key = 'schema_version'");
  await c.end();
  const e = await expectStoreError(openPostgresStore({ url, schema: 'newer' }), 'NEWER_SCHEMA');
  expect(e.message).toMatch(/schema version 99/);
});

test('the password never appears in the location or in messages', () => {
  expect(redactUrl('postgres://admin:s3cret@db:5432/microseg')).toBe('postgres://admin:***@db:5432/microseg');
});

test('a stopped database is reported UNAVAILABLE, and the same store works again once it is back', async () => {
  const s = await store('outage');
  await s.apply('dev', [{ op: 'put', kind: 'Group', name: 'g', spec: {} }]);
  cluster.stop('fast');
  try {
    const e = await expectStoreError(s.apply('dev', [{ op: 'put', kind: 'Group', name: 'h', spec: {} }]), 'UNAVAILABLE');
    expect(e.message).toContain('127.0.0.1');
    expect(await s.ping()).toBe(false);
  } finally {
    cluster.start();
  }
  expect(await s.ping()).toBe(true);
  await s.apply('dev', [{ op: 'put', kind: 'Group', name: 'h', spec: {} }]);
  expect((await s.list('dev')).map((o) => o.name)).toEqual(['g', 'h']);
}, 60_000);

test('large batches (more keys than fit a VALUES list) write, reference and delete like small ones', async () => {
  const s = await store('large');
  const groups = Array.from({ length: 600 }, (_, i) => ({ op: 'put' as const, kind: 'Group', name: `g${i}`, spec: { i } }));
  const rules = Array.from({ length: 600 }, (_, i) => ({ op: 'put' as const, kind: 'Rule', name: `r${i}`, spec: {}, references: [{ kind: 'Group', name: `g${i}` }] }));
  await s.apply('dev', [...rules, ...groups]);
  await expectStoreError(s.apply('dev', groups.map((g) => ({ op: 'delete' as const, kind: g.kind, name: g.name }))), 'IN_USE');
  await s.apply('dev', [...rules, ...groups].map((o) => ({ op: 'delete' as const, kind: o.kind, name: o.name })));
  expect(await s.list('dev')).toEqual([]);
  expect((await s.changes('dev')).length).toBe(2400);
  expect((await s.integrityCheck()).ok).toBe(true);
});
