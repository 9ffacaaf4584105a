/**
 * Environments from the CLI's side: MICROSEG_ENVIRONMENT picks the environment, the default action the
 * provider stored with an environment decides the CLI's verdicts without --default-action, objects the
 * CLI creates are owned by the CLI, and `microseg environments` lists every environment with its counts.
 */
import { EmbeddedBackend } from '../../../provider/src/backend';
import { memoryIo } from '../../../provider/src/cli/io';
import { runEnvironments, runGet, runList, runPut } from '../../../provider/src/cli/object-commands';
import { runTraceflow } from '../../../provider/src/cli/query-commands';
import { openSqliteStore } from '../../../provider/src/store';
import { runCli, tempDataDir, type MemoryIo } from '../../support/cli';

let dataDir: string;
let tmp: ReturnType<typeof tempDataDir>;
beforeAll(async () => {
  tmp = tempDataDir('microseg-cli-env-');
  ({ dataDir } = tmp);
  // What a stack with `microseg:defaultAction: allow` leaves behind: its objects and the stored setting.
  const store = await openSqliteStore({ dataDir });
  try {
    const stack = new EmbeddedBackend({ store, environment: 'dev', defaultAction: 'allow' });
    await stack.put('VirtualMachine', 'a', { name: 'a', interfaces: [{ ip: '10.0.0.1' }] }, 'create', { owner: 'urn:pulumi:dev::shop::microseg:index:VirtualMachine::a' });
    await stack.put('VirtualMachine', 'b', { name: 'b', interfaces: [{ ip: '10.0.0.2' }] }, 'create', { owner: 'urn:pulumi:dev::shop::microseg:index:VirtualMachine::b' });
  } finally {
    await store.close();
  }
});
afterAll(() => tmp.remove());

/** Runs a command as CLI user alice, with extra environment variables. */
const cli = (fn: (io: MemoryIo) => Promise<number>, env: Record<string, string> = {}) => runCli(fn, { env: { USER: 'alice', ...env } });

test('MICROSEG_ENVIRONMENT selects the environment; --environment wins over it', async () => {
  const fromEnv = await cli((io) => runList(undefined, { dataDir, json: true }, io), { MICROSEG_ENVIRONMENT: 'dev' });
  expect((JSON.parse(fromEnv.out) as { name: string }[]).map((o) => o.name)).toEqual(['a', 'b']);
  const flag = await cli((io) => runList(undefined, { dataDir, environment: 'prod' }, io), { MICROSEG_ENVIRONMENT: 'dev' });
  expect(flag.out).toContain('no objects in environment "prod"');
});

test("queries use the environment's stored default action unless --default-action overrides it", async () => {
  const stored = await cli((io) => runTraceflow({ dataDir, environment: 'dev', from: 'a', to: 'b', port: '22', json: true }, io));
  expect(JSON.parse(stored.out)).toMatchObject({ verdict: 'allow' });
  const flag = await cli((io) => runTraceflow({ dataDir, environment: 'dev', defaultAction: 'drop', from: 'a', to: 'b', port: '22', json: true }, io));
  expect(JSON.parse(flag.out)).toMatchObject({ verdict: 'drop' });
});

test('objects the CLI creates are owned by the CLI; a CLI update keeps the owning stack', async () => {
  const io = memoryIo({ env: { USER: 'alice' }, stdin: 'interfaces: [{ ip: 10.0.0.3 }]' });
  expect(await runPut('VirtualMachine', 'c', { dataDir, environment: 'dev', spec: '-' }, io)).toBe(0);
  const update = memoryIo({ env: { USER: 'alice' }, stdin: 'interfaces: [{ ip: 10.0.0.9 }]' });
  expect(await runPut('VirtualMachine', 'a', { dataDir, environment: 'dev', spec: '-' }, update)).toBe(0);
  const c = await cli((io2) => runGet('VirtualMachine', 'c', { dataDir, environment: 'dev', json: true }, io2));
  expect(JSON.parse(c.out)).toMatchObject({ owner: 'microseg-cli:alice' });
  const a = await cli((io2) => runGet('VirtualMachine', 'a', { dataDir, environment: 'dev', json: true }, io2));
  expect(JSON.parse(a.out)).toMatchObject({ owner: 'urn:pulumi:dev::shop::microseg:index:VirtualMachine::a' });
});

test('microseg environments lists each environment with its object count, default action and owners', async () => {
  const io = memoryIo({ env: { USER: 'alice' }, stdin: 'interfaces: [{ ip: 10.9.0.1 }]' });
  expect(await runPut('VirtualMachine', 'x', { dataDir, environment: 'qa', spec: '-' }, io)).toBe(0);
  const r = await cli((io2) => runEnvironments({ dataDir, json: true }, io2));
  expect(r.code).toBe(0);
  expect(JSON.parse(r.out)).toEqual([
    { environment: 'dev', objects: 3, defaultAction: 'allow', defaultActionStored: true, owners: { 'stack shop/dev': 2, 'microseg-cli:alice': 1 } },
    { environment: 'qa', objects: 1, defaultAction: 'drop', defaultActionStored: false, owners: { 'microseg-cli:alice': 1 } },
  ]);
  const table = await cli((io2) => runEnvironments({ dataDir }, io2));
  expect(table.out).toMatch(/ENVIRONMENT\s+OBJECTS\s+DEFAULT ACTION\s+OWNERS/);
  expect(table.out).toMatch(/qa\s+1\s+drop \(not set\)\s+microseg-cli:alice \(1\)/);
});
