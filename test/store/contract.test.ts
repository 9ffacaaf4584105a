/** One contract, every adapter: the in-memory and PostgreSQL stores must behave exactly like the SQLite store. */
import { MemoryStore, exportState, importState, openPostgresStore, openSqliteStore, type AuditRecord, type FlowQuery, type FlowRecord, type Store } from '../../provider/src/store';
import { startPostgres, type PostgresCluster } from '../support/postgres';
import { cleanupTempDirs, expectStoreError, tempDir } from './helpers';

interface Adapter {
  name: string;
  open(clock?: () => Date): Promise<Store>;
}

const adapters: Adapter[] = [
  { name: 'memory', open: async (clock) => new MemoryStore(clock) },
  { name: 'sqlite', open: (clock) => openSqliteStore({ dataDir: tempDir(), clock }) },
  // One real cluster for the file; every open gets its own PostgreSQL schema, so each test starts empty.
  { name: 'postgres', open: async (clock) => openPostgresStore({ url: await postgresUrl(), schema: `contract_${++schemas}`, clock }) },
];

let cluster: PostgresCluster | undefined;
let database: string | undefined;
let schemas = 0;
async function postgresUrl(): Promise<string> {
  cluster ??= await startPostgres();
  database ??= await cluster.createDatabase('contract');
  return database;
}
// Started once, outside the per-test hook timeout (initdb takes seconds on a busy machine).
beforeAll(async () => void (await postgresUrl()), 120_000);

afterAll(() => {
  cleanupTempDirs();
  cluster?.destroy();
});

describe.each(adapters)('store contract: $name', (adapter) => {
  let store: Store;
  let now: number;
  beforeEach(async () => {
    now = Date.UTC(2025, 0, 1);
    store = await adapter.open(() => new Date((now += 1000)));
  });
  afterEach(async () => store.close());

  const put = (name: string, spec: Record<string, unknown> = { v: name }, extra: Record<string, unknown> = {}) => ({ op: 'put' as const, kind: 'Group', name, spec, ...extra });

  test('create, get, update keeps createdAt and increments the revision', async () => {
    const [r1] = await store.apply('dev', [put('a', { x: 1 })]);
    expect(r1).toMatchObject({ kind: 'Group', name: 'a', op: 'create', revision: 1 });
    const o1 = await store.get('dev', 'Group', 'a');
    expect(r1.object).toEqual(o1);
    expect(o1).toMatchObject({ kind: 'Group', name: 'a', spec: { x: 1 }, revision: 1, references: [] });
    expect(o1?.createdAt).toBe(o1?.updatedAt);
    expect(o1?.status).toBeUndefined();
    const [r2] = await store.apply('dev', [put('a', { x: 2 }, { expectedRevision: 1, status: { members: 3 } })]);
    expect(r2).toMatchObject({ kind: 'Group', name: 'a', op: 'update', revision: 2 });
    const o2 = await store.get('dev', 'Group', 'a');
    expect(r2.object).toEqual(o2);
    expect(o2).toMatchObject({ spec: { x: 2 }, status: { members: 3 }, revision: 2, createdAt: o1?.createdAt });
    expect((o2?.updatedAt ?? '') > (o1?.updatedAt ?? '')).toBe(true);
    expect(await store.get('dev', 'Group', 'missing')).toBeUndefined();
  });

  test('stale or wrong expected revisions are rejected and never applied', async () => {
    await store.apply('dev', [put('a', { x: 1 })]);
    await store.apply('dev', [put('a', { x: 2 })]);
    const e = await expectStoreError(store.apply('dev', [put('a', { x: 3 }, { expectedRevision: 1 })]), 'CONFLICT');
    expect(e.details).toMatchObject({ object: { kind: 'Group', name: 'a' }, expectedRevision: 1, actualRevision: 2 });
    await expectStoreError(store.apply('dev', [put('a', { x: 3 }, { expectedRevision: 0 })]), 'CONFLICT');
    await expectStoreError(store.apply('dev', [put('b', {}, { expectedRevision: 1 })]), 'CONFLICT');
    await expectStoreError(store.apply('dev', [{ op: 'delete', kind: 'Group', name: 'a', expectedRevision: 1 }]), 'CONFLICT');
    expect((await store.get('dev', 'Group', 'a'))?.spec).toEqual({ x: 2 });
    expect(await store.get('dev', 'Group', 'b')).toBeUndefined();
    expect(await store.changes('dev')).toHaveLength(2);
  });

  test('a batch is atomic: one failing op leaves no trace of the others', async () => {
    await store.apply('dev', [put('a')]);
    await expectStoreError(store.apply('dev', [put('b'), put('c'), put('a', {}, { expectedRevision: 0 })]), 'CONFLICT');
    expect((await store.list('dev')).map((o) => o.name)).toEqual(['a']);
    expect(await store.changes('dev')).toHaveLength(1);
    const results = await store.apply('dev', [put('b'), put('c'), { op: 'check', kind: 'Group', name: 'a', expectedRevision: 1 }]);
    expect(results.map((r) => r.op)).toEqual(['create', 'create', 'check']);
    // Writing the same object twice in a batch gives two revisions.
    const twice = await store.apply('dev', [put('d', { n: 1 }), put('d', { n: 2 }, { expectedRevision: 1 })]);
    expect(twice.map((r) => r.revision)).toEqual([1, 2]);
  });

  test('delete, and revisions continue after re-create so old revisions never match again', async () => {
    await expectStoreError(store.apply('dev', [{ op: 'delete', kind: 'Group', name: 'a' }]), 'NOT_FOUND');
    await store.apply('dev', [put('a')]);
    const [d] = await store.apply('dev', [{ op: 'delete', kind: 'Group', name: 'a', expectedRevision: 1 }]);
    expect(d).toEqual({ kind: 'Group', name: 'a', op: 'delete', revision: 2 });
    expect(await store.get('dev', 'Group', 'a')).toBeUndefined();
    const [c] = await store.apply('dev', [put('a')]);
    expect(c.revision).toBe(3);
    await expectStoreError(store.apply('dev', [put('a', {}, { expectedRevision: 1 })]), 'CONFLICT');
  });

  test('referential integrity: missing targets and in-use deletes are refused, batches may order freely', async () => {
    const rule = (name: string, refs: string[]) => ({ op: 'put' as const, kind: 'Rule', name, spec: {}, references: refs.map((g) => ({ kind: 'Group', name: g })) });
    const missing = await expectStoreError(store.apply('dev', [rule('r1', ['g1', 'g2'])]), 'MISSING_REFERENCE');
    expect(missing.details.refs).toEqual([{ kind: 'Group', name: 'g1' }, { kind: 'Group', name: 'g2' }]);
    expect(missing.message).toContain('Group/g1');
    // Referencing object first, target later in the same batch: fine.
    await store.apply('dev', [rule('r1', ['g1', 'g1']), put('g1'), rule('r2', ['g1'])]);
    expect((await store.get('dev', 'Rule', 'r1'))?.references).toEqual([{ kind: 'Group', name: 'g1' }]);
    const inUse = await expectStoreError(store.apply('dev', [{ op: 'delete', kind: 'Group', name: 'g1' }]), 'IN_USE');
    expect(inUse.details.refs).toEqual([{ kind: 'Rule', name: 'r1' }, { kind: 'Rule', name: 'r2' }]);
    expect(inUse.message).toMatch(/Rule\/r1, Rule\/r2/);
    // Drop one user's reference, delete the other user and the group in one batch (group first).
    await store.apply('dev', [rule('r1', [])]);
    await store.apply('dev', [{ op: 'delete', kind: 'Group', name: 'g1' }, { op: 'delete', kind: 'Rule', name: 'r2' }]);
    expect((await store.list('dev')).map((o) => `${o.kind}/${o.name}`)).toEqual(['Rule/r1']);
    // References are per environment.
    await store.apply('prod', [put('g1')]);
    await expectStoreError(store.apply('dev', [rule('r3', ['g1'])]), 'MISSING_REFERENCE');
    expect((await store.integrityCheck()).ok).toBe(true);
  });

  test('environments are isolated', async () => {
    await store.apply('dev', [put('a', { env: 'dev' })]);
    await store.apply('prod', [put('a', { env: 'prod' }), put('b')]);
    expect((await store.get('dev', 'Group', 'a'))?.spec).toEqual({ env: 'dev' });
    expect((await store.get('prod', 'Group', 'a'))?.spec).toEqual({ env: 'prod' });
    expect(await store.list('dev')).toHaveLength(1);
    expect(await store.environments()).toEqual(['dev', 'prod']);
    expect((await store.changes('dev')).every((c) => c.environment === 'dev')).toBe(true);
    await expectStoreError(store.list('bad env'), 'INVALID_ARGUMENT');
    await expectStoreError(store.apply('dev', [put('')]), 'INVALID_ARGUMENT');
    await expectStoreError(store.apply('dev', [{ op: 'put', kind: 'Group', name: 'x', spec: [] as unknown as Record<string, unknown> }]), 'INVALID_ARGUMENT');
  });

  test('list is sorted and filters by kind; returned objects are copies', async () => {
    await store.apply('dev', [put('b'), put('a'), { op: 'put', kind: 'Alpha', name: 'z', spec: { nested: { u: undefined, k: [1] } } }]);
    expect((await store.list('dev')).map((o) => `${o.kind}/${o.name}`)).toEqual(['Alpha/z', 'Group/a', 'Group/b']);
    expect((await store.list('dev', { kind: 'Group' })).map((o) => o.name)).toEqual(['a', 'b']);
    const z = await store.get('dev', 'Alpha', 'z');
    expect(z?.spec).toEqual({ nested: { k: [1] } });
    expect(Object.keys((z?.spec.nested ?? {}) as object)).toEqual(['k']);
    (z?.spec.nested as { k: number[] }).k.push(2);
    expect((await store.get('dev', 'Alpha', 'z'))?.spec).toEqual({ nested: { k: [1] } });
  });

  test('change log: every committed write in order, with filters', async () => {
    await store.apply('dev', [put('a'), put('b')]);
    await store.apply('dev', [put('a')]);
    await store.apply('dev', [{ op: 'delete', kind: 'Group', name: 'b' }]);
    const all = await store.changes('dev');
    expect(all.map((c) => [c.name, c.op, c.revision])).toEqual([
      ['a', 'create', 1],
      ['b', 'create', 1],
      ['a', 'update', 2],
      ['b', 'delete', 2],
    ]);
    expect(all.map((c) => c.seq)).toEqual([...all.map((c) => c.seq)].sort((x, y) => x - y));
    expect(new Set(all.map((c) => c.seq)).size).toBe(4);
    expect(await store.changes('dev', { afterSeq: all[1].seq })).toEqual(all.slice(2));
    expect(await store.changes('dev', { limit: 1 })).toEqual(all.slice(0, 1));
    expect((await store.changes('dev', { name: 'b' })).map((c) => c.op)).toEqual(['create', 'delete']);
    expect(await store.changes('dev', { kind: 'Other' })).toEqual([]);
  });

  test('export then import into an empty store reproduces the same objects', async () => {
    await store.apply('dev', [put('g'), { op: 'put', kind: 'Rule', name: 'r', spec: { a: 1 }, status: { s: true }, references: [{ kind: 'Group', name: 'g' }] }]);
    await store.apply('dev', [put('g', { v: 2 })]);
    await store.apply('prod', [put('p')]);
    const doc = await exportState(store);
    expect(doc).toMatchObject({ format: 'microseg-state', version: 1 });
    const round = JSON.parse(JSON.stringify(doc)) as unknown;
    const target = await adapter.open();
    try {
      expect(await importState(target, round)).toEqual({ environments: 2, objects: 3 });
      for (const env of ['dev', 'prod']) expect(await target.list(env)).toEqual(await store.list(env));
      expect((await target.integrityCheck()).ok).toBe(true);
      // Importing again must not merge into existing objects.
      await expectStoreError(importState(target, round), 'NOT_EMPTY');
      // Revisions continue from the imported ones.
      const [r] = await target.apply('dev', [put('g', {}, { expectedRevision: 2 })]);
      expect(r.revision).toBe(3);
    } finally {
      await target.close();
    }
    await expectStoreError(importState(store, { format: 'other' }), 'INVALID_STATE_DOCUMENT');
    const newer = await expectStoreError(importState(store, { ...doc, version: 9 }), 'INVALID_STATE_DOCUMENT');
    expect(newer.message).toMatch(/newer/);
    await expectStoreError(importState(store, { ...doc, environments: { x: { objects: [{ kind: 'K' }] } } }), 'INVALID_STATE_DOCUMENT');
    // A document with a dangling reference is refused as a whole.
    const dangling = { ...doc, environments: { qa: { objects: [{ kind: 'Rule', name: 'r', spec: {}, references: [{ kind: 'Group', name: 'nope' }], revision: 1, createdAt: 'x', updatedAt: 'x' }] } } };
    await expectStoreError(importState(store, dangling), 'MISSING_REFERENCE');
    expect(await store.list('qa')).toEqual([]);
  });

  test('an owner is stored with the object, kept by puts that name none, and replaced by puts that name one', async () => {
    const stackA = 'urn:pulumi:dev::proj::microseg:index:SecurityGroup::a';
    const [created] = await store.apply('dev', [put('a', { x: 1 }, { owner: stackA }), put('b')]);
    expect(created.object?.owner).toBe(stackA);
    expect((await store.get('dev', 'Group', 'a'))?.owner).toBe(stackA);
    expect((await store.get('dev', 'Group', 'b'))?.owner).toBeUndefined();
    // A status-only or owner-less write must not orphan the object.
    await store.apply('dev', [put('a', { x: 2 }, { status: { s: 1 } })]);
    expect((await store.get('dev', 'Group', 'a'))?.owner).toBe(stackA);
    await store.apply('dev', [put('a', { x: 3 }, { owner: 'microseg-cli:alice' })]);
    expect((await store.list('dev')).map((o) => [o.name, o.owner])).toEqual([
      ['a', 'microseg-cli:alice'],
      ['b', undefined],
    ]);
    await expectStoreError(store.apply('dev', [put('c', {}, { owner: '' })]), 'INVALID_ARGUMENT');
  });

  test('owners survive export and import', async () => {
    await store.apply('dev', [put('a', {}, { owner: 'urn:pulumi:dev::p::t::a' }), put('b')]);
    const doc = await exportState(store);
    const target = await adapter.open();
    try {
      await importState(target, JSON.parse(JSON.stringify(doc)));
      expect(await target.list('dev')).toEqual(await store.list('dev'));
      expect((await target.get('dev', 'Group', 'a'))?.owner).toBe('urn:pulumi:dev::p::t::a');
    } finally {
      await target.close();
    }
  });

  test('integrity check passes on a healthy store; a closed store refuses work', async () => {
    await store.apply('dev', [put('a'), put('b')]);
    await store.apply('dev', [{ op: 'delete', kind: 'Group', name: 'a' }]);
    expect(await store.integrityCheck()).toEqual({ ok: true, problems: [] });
    await store.close();
    await expectStoreError(store.get('dev', 'Group', 'b'), 'CLOSED');
  });

  describe('flow records (schema v4)', () => {
    const t = (s: number) => new Date(Date.UTC(2025, 0, 1) + s * 1000).toISOString();
    const flow = (id: string, extra: Partial<FlowRecord> = {}): FlowRecord => ({
      id,
      point: 'vm:db#0',
      direction: 'in',
      protocol: 'tcp',
      sourceIp: '10.0.0.1',
      sourcePort: 40000,
      destinationIp: '10.0.0.2',
      destinationPort: 5432,
      verdict: 'allow',
      rule: 'app/db',
      firstSeen: t(10),
      lastSeen: t(10),
      packets: 3,
      bytes: 180,
      ...extra,
    });

    test('a recorded flow reads back as written', async () => {
      await store.recordFlows('dev', [flow('a', { stagedVerdict: 'drop', stagedRule: 'next/deny' })]);
      expect(await store.flows('dev')).toEqual([flow('a', { stagedVerdict: 'drop', stagedRule: 'next/deny' })]);
      expect(await store.flows('other')).toEqual([]);
    });

    test('recording a known id keeps the first firstSeen, takes the later lastSeen and keeps the larger counters', async () => {
      await store.recordFlows('dev', [flow('a')]);
      await store.recordFlows('dev', [flow('a', { firstSeen: t(20), lastSeen: t(25), packets: 7, bytes: 100 })]);
      expect(await store.flows('dev')).toEqual([flow('a', { firstSeen: t(10), lastSeen: t(25), packets: 7, bytes: 180 })]);
    });

    test('queries narrow by time, verdict, rule, point and addresses; newest first; limit', async () => {
      await store.recordFlows('dev', [
        flow('a', { lastSeen: t(10) }),
        flow('b', { lastSeen: t(30), verdict: 'drop', rule: 'default', sourceIp: '10.0.0.9' }),
        flow('c', { lastSeen: t(20), point: 'vm:web#0', destinationIp: '10.0.0.3' }),
      ]);
      const ids = async (q: FlowQuery) => (await store.flows('dev', q)).map((r) => r.id);
      expect(await ids({})).toEqual(['b', 'c', 'a']);
      expect(await ids({ since: t(15) })).toEqual(['b', 'c']);
      expect(await ids({ until: t(15) })).toEqual(['a']);
      expect(await ids({ verdict: 'drop' })).toEqual(['b']);
      expect(await ids({ rule: 'app/db' })).toEqual(['c', 'a']);
      expect(await ids({ point: 'vm:web#0' })).toEqual(['c']);
      expect(await ids({ sourceIps: ['10.0.0.9', '10.0.0.7'] })).toEqual(['b']);
      expect(await ids({ destinationIps: ['10.0.0.3'] })).toEqual(['c']);
      expect(await ids({ sourceIps: [] })).toEqual([]);
      expect(await ids({ limit: 2 })).toEqual(['b', 'c']);
    });

    test('retention drops records older than the maximum age, then the oldest beyond the maximum count', async () => {
      // The store clock is at about 2025-01-01T00:00:0Ns; records in the future of it are young.
      await store.recordFlows('dev', [flow('old', { firstSeen: t(-7200), lastSeen: t(-7200) }), flow('a', { lastSeen: t(10) }), flow('b', { lastSeen: t(20) }), flow('c', { lastSeen: t(30) })], {
        maxAgeMs: 3600_000,
        maxCount: 2,
      });
      expect((await store.flows('dev')).map((r) => r.id)).toEqual(['c', 'b']);
    });

    test('rule statistics sum the records of each rule and point in the window', async () => {
      await store.recordFlows('dev', [
        flow('a', { lastSeen: t(10), packets: 3, bytes: 100 }),
        flow('b', { lastSeen: t(20), packets: 4, bytes: 200 }),
        flow('c', { lastSeen: t(30), point: 'vm:db#1', packets: 5, bytes: 300 }),
        flow('d', { lastSeen: t(40), rule: 'default', verdict: 'drop', packets: 2, bytes: 120 }),
        flow('e', { lastSeen: t(5), rule: 'default', verdict: 'drop', packets: 9, bytes: 9 }),
      ]);
      expect(await store.ruleStats('dev', { since: t(10) })).toEqual([
        { rule: 'app/db', point: 'vm:db#0', flows: 2, packets: 7, bytes: 300, lastSeen: t(20) },
        { rule: 'app/db', point: 'vm:db#1', flows: 1, packets: 5, bytes: 300, lastSeen: t(30) },
        { rule: 'default', point: 'vm:db#0', flows: 1, packets: 2, bytes: 120, lastSeen: t(40) },
      ]);
      expect((await store.ruleStats('dev', { until: t(5) })).map((r) => [r.rule, r.flows])).toEqual([['default', 1]]);
      expect(await store.ruleStats('other')).toEqual([]);
    });

    test('a malformed record is refused with its field named, and nothing of the batch is written', async () => {
      const e = await expectStoreError(store.recordFlows('dev', [flow('a'), flow('b', { packets: -1 })]), 'INVALID_ARGUMENT');
      expect(e.message).toContain('flow record [1].packets');
      expect(await store.flows('dev')).toEqual([]);
    });
  });
  describe('audit records (SQLite v5, PostgreSQL 3)', () => {
    const t = (s: number) => new Date(Date.UTC(2025, 0, 1) + s * 1000).toISOString();
    const record = (name: string, revision: number, extra: Partial<AuditRecord> = {}): AuditRecord => ({
      time: t(revision),
      actor: 'token:abc',
      role: 'security-admin',
      environment: 'dev',
      kind: 'Group',
      name,
      op: revision === 1 ? 'create' : 'update',
      revision,
      summary: revision === 1 ? 'created' : 'changed v',
      ...extra,
    });

    test('records are written with the batch and read back oldest first, narrowed by time, object and count', async () => {
      await store.apply('dev', [put('a'), put('b')], { audit: [record('a', 1), record('b', 1)] });
      await store.apply('dev', [put('a', { v: 2 })], { audit: [record('a', 2)] });
      await store.apply('prod', [put('a')], { audit: [record('a', 1, { environment: 'prod' })] });
      const names = async (q = {}) => (await store.audit('dev', q)).map((r) => `${r.name}@${r.revision}`);
      expect(await store.audit('dev')).toEqual([record('a', 1), record('b', 1), record('a', 2)]);
      expect(await names({ name: 'a' })).toEqual(['a@1', 'a@2']);
      expect(await names({ kind: 'Other' })).toEqual([]);
      expect(await names({ since: t(1) })).toEqual(['a@2']);
      expect(await names({ limit: 2 })).toEqual(['b@1', 'a@2']);
      expect((await store.audit('prod')).map((r) => r.environment)).toEqual(['prod']);
      // Audit records are not objects: they neither list nor move the change log.
      expect((await store.list('dev')).map((o) => o.kind)).toEqual(['Group', 'Group']);
      expect((await store.changes('dev')).map((c) => c.kind)).toEqual(['Group', 'Group', 'Group']);
    });

    test('a batch that fails writes none of its audit records', async () => {
      await store.apply('dev', [put('a')], { audit: [record('a', 1)] });
      await expectStoreError(store.apply('dev', [put('a', { v: 2 }, { expectedRevision: 7 })], { audit: [record('a', 2)] }), 'CONFLICT');
      expect((await store.audit('dev')).map((r) => r.revision)).toEqual([1]);
    });

    test('retention drops records older than the maximum age, then the oldest beyond the maximum count', async () => {
      // The store clock is at about 2025-01-01T00:00:0Ns.
      await store.apply('dev', [put('a')], { audit: [record('a', 1, { time: t(-7200) }), record('a', 1, { time: t(-10) })] });
      await store.apply('dev', [put('b')], { audit: [record('b', 1, { time: t(-5) }), record('b', 1, { time: t(-4) })], auditRetention: { maxAgeMs: 3600_000, maxCount: 2 } });
      expect((await store.audit('dev')).map((r) => r.time)).toEqual([t(-5), t(-4)]);
    });

    test('a malformed record is refused with its field named, and the batch is not applied', async () => {
      const e = await expectStoreError(store.apply('dev', [put('a')], { audit: [record('a', 1, { op: 'rename' as AuditRecord['op'] })] }), 'INVALID_ARGUMENT');
      expect(e.message).toContain('audit record [0].op');
      expect(await store.get('dev', 'Group', 'a')).toBeUndefined();
    });
  });
});
