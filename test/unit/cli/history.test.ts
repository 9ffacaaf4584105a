/**
 * `microseg history`: the change log of an environment, newest last, with who made each change: the
 * owner (a stack's resource URN, or the CLI user) while the object is at that revision, and the audit
 * record's actor when the change went through `microseg serve`.
 */
import { EmbeddedBackend } from '../../../provider/src/backend';
import { runHistory, type HistoryEntry } from '../../../provider/src/cli/history-command';
import { AuditingStore, requestContext } from '../../../provider/src/server/audit';
import { openSqliteStore } from '../../../provider/src/store';
import { runCli, tempDataDir } from '../../support/cli';

const URN_A = 'urn:pulumi:dev::shop::microseg:index:VirtualMachine::a';
let dataDir: string;

let tmp: ReturnType<typeof tempDataDir>;
beforeAll(async () => {
  tmp = tempDataDir('microseg-cli-history-');
  ({ dataDir } = tmp);
  const store = await openSqliteStore({ dataDir });
  try {
    const stack = new EmbeddedBackend({ store, environment: 'dev' });
    await stack.put('VirtualMachine', 'a', { name: 'a', interfaces: [{ ip: '10.0.0.1' }] }, 'create', { owner: URN_A });
    await stack.put('VirtualMachine', 'b', { name: 'b', interfaces: [{ ip: '10.0.0.2' }] }, 'create', { owner: 'urn:pulumi:dev::shop::microseg:index:VirtualMachine::b' });
    await stack.put('VirtualMachine', 'a', { name: 'a', interfaces: [{ ip: '10.0.0.9' }] }, 'update', { owner: URN_A });
    await stack.delete('VirtualMachine', 'b');
    // A change made through the server: the audit record in the same batch names the token and role.
    const audited = new EmbeddedBackend({ store: new AuditingStore(store), environment: 'dev' });
    await requestContext.run({ actor: 'token:t1', role: 'security-admin' }, () => audited.put('VirtualMachine', 'c', { name: 'c', interfaces: [{ ip: '10.0.0.3' }] }, 'create', { owner: 'token:t1' }));
  } finally {
    await store.close();
  }
});
afterAll(() => tmp.remove());

function history(options: { kind?: string; name?: string; limit?: string; json?: boolean }) {
  return runCli((io) => runHistory({ dataDir, environment: 'dev', ...options }, io), { env: { USER: 'alice' } });
}

test('lists every change of the environment in commit order with its revision', async () => {
  const r = await history({ json: true });
  expect(r.code).toBe(0);
  const entries = JSON.parse(r.out) as HistoryEntry[];
  expect(entries.map((e) => [e.op, `${e.kind}/${e.name}`, e.revision])).toEqual([
    ['create', 'VirtualMachine/a', 1],
    ['create', 'VirtualMachine/b', 1],
    ['update', 'VirtualMachine/a', 2],
    ['delete', 'VirtualMachine/b', 2],
    ['create', 'VirtualMachine/c', 1],
  ]);
  expect(entries.map((e) => e.seq)).toEqual([...entries.map((e) => e.seq)].sort((x, y) => x - y));
});

test('names who made a change: the owner at the current revision, the audit actor for server changes', async () => {
  const entries = JSON.parse((await history({ json: true })).out) as HistoryEntry[];
  const by = (op: string, name: string, revision: number) => entries.find((e) => e.op === op && e.name === name && e.revision === revision);
  expect(by('update', 'a', 2)?.actor).toBe(URN_A);
  // An older revision's author is not known without an audit record: nothing is made up.
  expect(by('create', 'a', 1)?.actor).toBeUndefined();
  expect(by('delete', 'b', 2)?.actor).toBeUndefined();
  expect(by('create', 'c', 1)).toMatchObject({ actor: 'token:t1 (security-admin)', summary: 'created' });
});

test('filters by object and keeps only the newest N changes', async () => {
  const one = JSON.parse((await history({ kind: 'VirtualMachine', name: 'a', json: true })).out) as HistoryEntry[];
  expect(one.map((e) => [e.op, e.revision])).toEqual([
    ['create', 1],
    ['update', 2],
  ]);
  const newest = JSON.parse((await history({ limit: '2', json: true })).out) as HistoryEntry[];
  expect(newest.map((e) => `${e.op} ${e.name}`)).toEqual(['delete b', 'create c']);
});

test('prints a table for people', async () => {
  const r = await history({});
  expect(r.out.split('\n')[0]).toMatch(/^SEQ\s+TIME\s+OP\s+OBJECT\s+REVISION\s+BY\s+SUMMARY$/);
  expect(r.out).toContain(`update  VirtualMachine/a  2         ${URN_A}`);
});

test('a bad --limit is refused as bad input', async () => {
  const r = await history({ limit: 'ten' });
  expect(r.code).toBe(2);
  expect(r.err).toContain('--limit: "ten" is not a positive whole number');
});
