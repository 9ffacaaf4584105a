import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreDesiredState } from '../../provider/src/agent';
import { resourceToken } from '../../provider/src/model/define';
import { createProviderCore } from '../../provider/src/provider/main';
import type { PropertyMap } from '../../provider/src/provider/values';
import { openSqliteStore } from '../../provider/src/store';
import { requireRootAndNft } from './differential';
import { Lab } from './lab';

/**
 * `microseg:waitForRealization` against a real agent: the provider (embedded SQLite store) writes a
 * FirewallPolicy, a running `microseg agent` (the CLI, inside the server VM's network namespace) applies
 * it with the real nft, and the provider's create/update returns only once the agent reports the new
 * revision realized, so the very next connection already meets the new ruleset.
 */
jest.setTimeout(180_000);

const ENV = 'wait-test';
const CLIENT = '192.168.81.10';
const SERVER = '192.168.81.20';
const POLICY = resourceToken('FirewallPolicy');
let dir: string;
let lab: Lab | undefined;
let setup: ReturnType<typeof createProviderCore> | undefined;
let waiting: ReturnType<typeof createProviderCore> | undefined;
let agent: ChildProcess | undefined;
let agentLog = '';

function policy(ports: number[]): PropertyMap {
  const spec = {
    name: 'app',
    category: 'application',
    priority: 1,
    enforcement: 'enforce',
    appliedTo: ['server'],
    rules: [
      { name: 'client-in', action: 'allow', direction: 'in', sources: [{ group: 'client' }], services: [{ protocol: 'tcp', ports }] },
      { name: 'any-out', action: 'allow', direction: 'out' },
    ],
  };
  return spec as unknown as PropertyMap;
}

const probe = (port: number) => lab!.probe(CLIENT, 'tcp', SERVER, port, undefined, 1000).then((r) => r.result);

beforeAll(async () => {
  requireRootAndNft();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-wait-'));
  setup = createProviderCore();
  setup.configure({ dataDir: dir, environment: ENV, defaultAction: 'drop' });
  const create = (type: string, properties: PropertyMap) => setup!.create({ token: resourceToken(type), properties, preview: false });
  await create('VirtualMachine', { name: 'client', interfaces: [{ ip: CLIENT }] });
  await create('VirtualMachine', { name: 'server', interfaces: [{ ip: SERVER }] });
  await create('SecurityGroup', { name: 'client', vms: ['client'] });
  await create('SecurityGroup', { name: 'server', vms: ['server'] });
  const store = await openSqliteStore({ dataDir: dir });
  const world = (await new StoreDesiredState(store, ENV).snapshot()).world;
  await store.close();
  lab = await Lab.build(world, { tcpPorts: [8080, 8081], udpPorts: [] });
  // The real agent, running (not --once), inside the server's namespace: its nft programs that host.
  const main = path.join(__dirname, '..', '..', 'dist', 'provider', 'src', 'cli', 'main.js');
  agent = spawn('ip', ['netns', 'exec', lab.hosts.get(SERVER)!.ns, process.execPath, '--no-warnings', main, 'agent', '--enforcement-point', 'vm:server#0', '--data-dir', dir, '-e', ENV, '--interval', '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout!.on('data', (d: Buffer) => (agentLog += d.toString()));
  agent.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));
  waiting = createProviderCore();
  waiting.configure({ dataDir: dir, environment: ENV, defaultAction: 'drop', waitForRealization: true });
});

afterAll(async () => {
  if (agent && agent.exitCode === null) {
    const exited = new Promise((resolve) => agent!.once('exit', resolve));
    agent.kill('SIGTERM');
    await exited;
  }
  setup?.close();
  waiting?.close();
  await lab?.destroy();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a FirewallPolicy create returns once the running agent realized it, and the kernel already enforces it', async () => {
  const r = await waiting!.create({ token: POLICY, properties: policy([8080]), preview: false, timeout: 120 }).catch((e: Error) => {
    throw new Error(`${e.message}\nagent output:\n${agentLog}`);
  });
  expect(r.properties.realization).toEqual({ desiredPointsRealized: 1, currentPointsRealized: 1, pointsNotRealized: [] });
  expect({ 8080: await probe(8080), 8081: await probe(8081) }).toEqual({ 8080: 'open', 8081: 'timeout' });
});

test('an update waits for its own revision: the port it opens is open when it returns', async () => {
  const r = await waiting!.update({ token: POLICY, id: 'app', news: policy([8080, 8081]), preview: false, timeout: 120 });
  expect(r.properties.realization).toEqual({ desiredPointsRealized: 1, currentPointsRealized: 1, pointsNotRealized: [] });
  expect(await probe(8081)).toBe('open');
});

test('a VM whose interface has no agent fails at its customTimeout, naming the interface', async () => {
  const err = await waiting!.update({ token: resourceToken('VirtualMachine'), id: 'client', news: { name: 'client', interfaces: [{ ip: CLIENT }], labels: { tier: 'front' } }, preview: false, timeout: 2 }).then(
    () => 'no error',
    (e: Error) => e.message,
  );
  expect(err).toMatch(/1 of 1 enforcement point did not realize: vm:client#0 \(unreported\) within 2 s/);
});
