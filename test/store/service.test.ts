/** The backend service over both adapters, with a tiny fake validator standing in for the engine. */
import { BackendService, ConflictError, InUseError, InvalidError, NotFoundError, type Problem, type SpecReference, type Validator } from '../../provider/src/service';
import { MemoryStore, openSqliteStore, type JsonObject, type Store } from '../../provider/src/store';
import { cleanupTempDirs, tempDir } from './helpers';

/** Groups may nest groups; policies reference groups from their rules. `bad: true` is invalid. */
const fakeValidator: Validator = {
  validate(kind: string, spec: JsonObject): Problem[] {
    const problems: Problem[] = [];
    if (spec.bad === true) problems.push({ code: 'bad', path: 'bad', message: 'must not be bad' });
    if (kind === 'FirewallPolicy' && !Array.isArray(spec.rules)) problems.push({ code: 'required', path: 'rules', message: 'rules are required' });
    return problems;
  },
  references(kind: string, spec: JsonObject): SpecReference[] {
    if (kind === 'SecurityGroup') return ((spec.groups as string[] | undefined) ?? []).map((g, i) => ({ kind: 'SecurityGroup', name: g, path: `groups[${i}]` }));
    if (kind === 'FirewallPolicy') {
      return ((spec.rules as Array<{ sources?: string[] }> | undefined) ?? []).flatMap((r, i) => (r.sources ?? []).map((s, j) => ({ kind: 'SecurityGroup', name: s, path: `rules[${i}].sources[${j}]` })));
    }
    return [];
  },
};

afterAll(cleanupTempDirs);

async function rejection<T extends Error>(p: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  return err as T;
}

describe.each([
  { name: 'memory', open: async (): Promise<Store> => new MemoryStore() },
  { name: 'sqlite', open: (): Promise<Store> => openSqliteStore({ dataDir: tempDir() }) },
])('BackendService over $name', ({ open }) => {
  let store: Store;
  let svc: BackendService;
  beforeEach(async () => {
    store = await open();
    svc = new BackendService({ store, environment: 'dev', validator: fakeValidator });
  });
  afterEach(() => store.close());

  test('create, get, list, update, delete with revisions', async () => {
    const g = await svc.create('SecurityGroup', 'web', { members: ['a'] });
    expect(g).toMatchObject({ kind: 'SecurityGroup', name: 'web', spec: { members: ['a'] }, revision: 1 });
    expect(await svc.get('SecurityGroup', 'web')).toEqual(g);
    const c = await rejection(svc.create('SecurityGroup', 'web', {}), ConflictError);
    expect(c.message).toMatch(/already exists/);
    await svc.setStatus('SecurityGroup', 'web', { count: 1 });
    const u = await svc.update('SecurityGroup', 'web', { members: ['a', 'b'] }, { expectedRevision: 2 });
    expect(u).toMatchObject({ revision: 3, spec: { members: ['a', 'b'] }, status: { count: 1 } });
    const stale = await rejection(svc.update('SecurityGroup', 'web', {}, { expectedRevision: 1 }), ConflictError);
    expect(stale).toMatchObject({ code: 'Conflict', expectedRevision: 1, actualRevision: 3 });
    expect((await svc.list('SecurityGroup')).map((o) => o.name)).toEqual(['web']);
    await rejection(svc.delete('SecurityGroup', 'web', { expectedRevision: 2 }), ConflictError);
    await svc.delete('SecurityGroup', 'web', { expectedRevision: 3 });
    await rejection(svc.get('SecurityGroup', 'web'), NotFoundError);
    await rejection(svc.update('SecurityGroup', 'web', {}), NotFoundError);
    await rejection(svc.delete('SecurityGroup', 'web'), NotFoundError);
    expect((await svc.changes()).map((e) => `${e.op}@${e.revision}`)).toEqual(['create@1', 'update@2', 'update@3', 'delete@4']);
  });

  test('invalid specs are refused with problems and nothing is written', async () => {
    const e = await rejection(svc.create('FirewallPolicy', 'p', { bad: true }), InvalidError);
    expect(e.code).toBe('Invalid');
    expect(e.problems.map((p) => p.code).sort()).toEqual(['bad', 'required']);
    await svc.create('SecurityGroup', 'g', {});
    await rejection(svc.update('SecurityGroup', 'g', { bad: true }), InvalidError);
    expect((await svc.get('SecurityGroup', 'g')).revision).toBe(1);
    expect(await svc.changes()).toHaveLength(1);
  });

  test('referential integrity: missing references and deleting used objects', async () => {
    const missing = await rejection(svc.create('FirewallPolicy', 'p', { rules: [{ sources: ['web', 'db'] }] }), InvalidError);
    expect(missing.problems).toEqual([
      { code: 'missing-reference', path: 'rules[0].sources[1]', message: 'SecurityGroup "db" does not exist' },
      { code: 'missing-reference', path: 'rules[0].sources[0]', message: 'SecurityGroup "web" does not exist' },
    ]);
    await svc.create('SecurityGroup', 'web', {});
    await svc.create('SecurityGroup', 'db', {});
    await svc.create('FirewallPolicy', 'p', { rules: [{ sources: ['web', 'db'] }] });
    await svc.create('SecurityGroup', 'all', { groups: ['web'] });
    const inUse = await rejection(svc.delete('SecurityGroup', 'web'), InUseError);
    expect(inUse.users).toEqual([{ kind: 'FirewallPolicy', name: 'p' }, { kind: 'SecurityGroup', name: 'all' }]);
    expect(inUse.message).toMatch(/FirewallPolicy "p", SecurityGroup "all"/);
    await svc.update('FirewallPolicy', 'p', { rules: [{ sources: ['db'] }] });
    await svc.delete('SecurityGroup', 'all');
    await svc.delete('SecurityGroup', 'web');
    await rejection(svc.delete('SecurityGroup', 'db'), InUseError);
  });

  test('batch: all-or-nothing, every problem reported, any order', async () => {
    const bad = await rejection(
      svc.batch([
        { action: 'create', kind: 'SecurityGroup', name: 'a', spec: { bad: true } },
        { action: 'create', kind: 'FirewallPolicy', name: 'p', spec: {} },
      ]),
      InvalidError,
    );
    expect(bad.problems.map((p) => p.path)).toEqual(['SecurityGroup/a.bad', 'FirewallPolicy/p.rules']);
    const ok = await svc.batch([
      { action: 'create', kind: 'FirewallPolicy', name: 'p', spec: { rules: [{ sources: ['g'] }] } },
      { action: 'upsert', kind: 'SecurityGroup', name: 'g', spec: {} },
    ]);
    expect(ok.map((r) => r.op)).toEqual(['create', 'create']);
    const dangling = await rejection(svc.batch([{ action: 'create', kind: 'FirewallPolicy', name: 'q', spec: { rules: [{ sources: ['nope'] }] } }]), InvalidError);
    expect(dangling.problems[0].path).toBe('FirewallPolicy/q.rules[0].sources[0]');
    await svc.batch([
      { action: 'delete', kind: 'SecurityGroup', name: 'g' },
      { action: 'delete', kind: 'FirewallPolicy', name: 'p' },
    ]);
    expect(await svc.list()).toEqual([]);
  });

  test('environments are isolated per service', async () => {
    const prod = new BackendService({ store, environment: 'prod', validator: fakeValidator });
    await svc.create('SecurityGroup', 'g', { env: 'dev' });
    await rejection(prod.get('SecurityGroup', 'g'), NotFoundError);
    await prod.create('SecurityGroup', 'g', { env: 'prod' });
    expect((await svc.get('SecurityGroup', 'g')).spec).toEqual({ env: 'dev' });
  });

  test('last-writer-wins updates survive interleaved writers; revision checks do not', async () => {
    await svc.create('SecurityGroup', 'g', { n: 0 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => svc.update('SecurityGroup', 'g', { n: i + 1 })));
    expect((await svc.get('SecurityGroup', 'g')).revision).toBe(11);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => svc.update('SecurityGroup', 'g', { n: -1 }, { expectedRevision: 11 })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError);
  });
});
