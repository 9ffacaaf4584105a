/**
 * Realization status in Pulumi: VirtualMachine and FirewallPolicy outputs carry what the agents report,
 * a refresh reads it again, and `waitForRealization` makes create/update wait for the agents within the
 * operation's customTimeouts. The agents here are fake status writers that write `RealizationStatus`
 * objects through the store exactly as `microseg agent` does (StoreStatusSink), realizing, refusing or
 * staying silent; the provider runs on the embedded SQLite store.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreDesiredState, StoreStatusSink, type RealizationStatus } from '../../provider/src/agent';
import { resourceToken } from '../../provider/src/model/define';
import { ResourceInitError } from '../../provider/src/provider/core';
import { createProviderCore } from '../../provider/src/provider/main';
import type { PropertyMap } from '../../provider/src/provider/values';
import { openSqliteStore, type Store } from '../../provider/src/store';

const ENV = 'realize';
const VM = resourceToken('VirtualMachine');
const POLICY = resourceToken('FirewallPolicy');
const GROUP = resourceToken('SecurityGroup');
const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function provider(config: Record<string, unknown> = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-realization-'));
  dirs.push(dataDir);
  const core = createProviderCore();
  core.configure({ dataDir, environment: ENV, ...config });
  stops.push(async () => core.close());
  return { core, dataDir };
}

type Behaviour = 'realize' | { refuse: string };

/**
 * A fake agent for some points: follows the desired state's change log (as the agent does) and reports
 * every point realized at the revision it saw, or refused with `refuse`'s message.
 */
async function fakeAgent(dataDir: string, points: readonly string[], behaviour: Behaviour): Promise<void> {
  const store: Store = await openSqliteStore({ dataDir });
  const source = new StoreDesiredState(store, ENV, undefined, 10);
  const sink = new StoreStatusSink(store, ENV);
  const stop = new AbortController();
  const loop = (async () => {
    while (!stop.signal.aborted) {
      const { seq } = await source.snapshot();
      for (const point of points) {
        const refused = typeof behaviour === 'object';
        const status: RealizationStatus = {
          point,
          table: `microseg_${point.replace(/\W/g, '_')}`,
          desiredRevision: seq,
          realizedRevision: refused ? 0 : seq,
          observedRevision: seq,
          state: refused ? 'error' : 'realized',
          ...(refused ? { error: behaviour.refuse } : {}),
          rules: 1,
          elements: 0,
          hits: [],
          agent: { host: 'test', pid: process.pid },
          updatedAt: new Date().toISOString(),
        };
        await sink.report(status);
      }
      await source.waitForChange(seq, 1000, stop.signal);
    }
  })().catch((e: unknown) => {
    console.error('fake agent', e);
  });
  stops.push(async () => {
    stop.abort();
    await loop;
    await store.close();
  });
}

const web = { name: 'web', interfaces: [{ ip: '192.168.60.10' }, { ip: '192.168.61.10' }], labels: { role: 'web' } };
const db = { name: 'db', interfaces: [{ ip: '192.168.60.20' }], labels: { role: 'db' } };

function realizationOf(props: PropertyMap): unknown {
  return props.realization;
}

test('without waitForRealization a VM is created at once and its interfaces show unreported until an agent reports', async () => {
  const { core } = provider();
  const r = await core.create({ token: VM, properties: web, preview: false });
  expect(realizationOf(r.properties)).toEqual([
    { enforcementPoint: 'vm:web#0', state: 'unreported' },
    { enforcementPoint: 'vm:web#1', state: 'unreported' },
  ]);
});

test('a refresh (Read) shows what the agents report now', async () => {
  const { core, dataDir } = provider();
  await core.create({ token: VM, properties: web, preview: false });
  await fakeAgent(dataDir, ['vm:web#0'], 'realize');
  let read;
  do read = await core.read({ token: VM, id: 'web', inputs: web, state: {} });
  while ((read.properties.realization as { state: string }[])[0]!.state !== 'realized');
  expect(read.properties.realization).toEqual([
    expect.objectContaining({ enforcementPoint: 'vm:web#0', state: 'realized' }),
    { enforcementPoint: 'vm:web#1', state: 'unreported' },
  ]);
});

test('with waitForRealization a create returns once every interface reports the new revision realized', async () => {
  const { core, dataDir } = provider({ waitForRealization: true });
  await fakeAgent(dataDir, ['vm:web#0', 'vm:web#1'], 'realize');
  const r = await core.create({ token: VM, properties: web, preview: false, timeout: 60 });
  const points = r.properties.realization as { enforcementPoint: string; state: string; realizedRevision: number; desiredRevision: number }[];
  expect(points.map((p) => [p.enforcementPoint, p.state])).toEqual([
    ['vm:web#0', 'realized'],
    ['vm:web#1', 'realized'],
  ]);
  expect(points[0]!.realizedRevision).toBe(points[0]!.desiredRevision);
});

test('an update waits for the revision it wrote, not for an earlier realized one', async () => {
  const { core, dataDir } = provider({ waitForRealization: true });
  await fakeAgent(dataDir, ['vm:db#0'], 'realize');
  const first = await core.create({ token: VM, properties: db, preview: false, timeout: 60 });
  const before = (first.properties.realization as { realizedRevision: number }[])[0]!.realizedRevision;
  const r = await core.update({ token: VM, id: 'db', news: { ...db, labels: { role: 'db', tier: 'data' } }, preview: false, timeout: 60 });
  const after = (r.properties.realization as { state: string; realizedRevision: number }[])[0]!;
  expect(after.state).toBe('realized');
  expect(after.realizedRevision).toBeGreaterThan(before);
});

test('an interface without an agent fails the create at the customTimeout, naming it, and the VM stays written', async () => {
  const { core, dataDir } = provider({ waitForRealization: true });
  await fakeAgent(dataDir, ['vm:web#0'], 'realize');
  const err = await core.create({ token: VM, properties: web, preview: false, timeout: 1 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ResourceInitError);
  const init = err as ResourceInitError;
  expect(init.message).toMatch(/VirtualMachine "web" was written \(revision \d+\) but 1 of 2 enforcement points did not realize: vm:web#1 \(unreported\) within 1 s/);
  expect(init.id).toBe('web');
  expect((init.properties.realization as { enforcementPoint: string; state: string }[]).map((p) => p.state)).toEqual(['realized', 'unreported']);
  const read = await core.read({ token: VM, id: 'web', inputs: web, state: {} });
  expect(read.id).toBe('web');
});

test('a point whose kernel refuses the ruleset fails the wait at once with the error, without waiting for the timeout', async () => {
  const { core, dataDir } = provider({ waitForRealization: true });
  await fakeAgent(dataDir, ['vm:db#0'], { refuse: 'Error: Could not process rule: No such file or directory' });
  // 600 s: only the refusal can end this wait before jest's own timeout.
  const err = await core.create({ token: VM, properties: db, preview: false, timeout: 600 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ResourceInitError);
  expect((err as Error).message).toMatch(/the kernel refused it: 1 of 1 enforcement point did not realize: vm:db#0 \(error: Error: Could not process rule: No such file or directory\)/);
});

test('Cancel ends a wait with the points still waiting', async () => {
  const { core } = provider({ waitForRealization: true });
  const pending = core.create({ token: VM, properties: db, preview: false, timeout: 600 }).catch((e: unknown) => e);
  // The write lands first (nothing else queued), then the wait begins; cancel once the VM exists.
  while ((await core.read({ token: VM, id: 'db', inputs: {}, state: { name: 'db' } })).id === '') await new Promise((r) => setImmediate(r));
  core.cancel();
  const err = await pending;
  expect(err).toBeInstanceOf(ResourceInitError);
  expect((err as Error).message).toMatch(/vm:db#0 \(unreported\) before the Pulumi engine cancelled the operation/);
});

test('a FirewallPolicy reports its enforcement points desired vs realized, and lists the ones not realized', async () => {
  const { core, dataDir } = provider();
  await core.create({ token: VM, properties: web, preview: false });
  await core.create({ token: VM, properties: db, preview: false });
  await core.create({ token: GROUP, properties: { name: 'dbs', vmSelectors: [{ matchLabels: { role: 'db' } }] }, preview: false });
  await core.create({ token: GROUP, properties: { name: 'webs', vms: ['web'] }, preview: false });
  const policy = { name: 'app', category: 'application', priority: 100, enforcement: 'enforce', appliedTo: ['dbs', 'webs'], rules: [{ name: 'web-to-db', action: 'allow', sources: [{ group: 'webs' }], destinations: [{ group: 'dbs' }], services: [{ protocol: 'tcp', ports: [5432] }] }] };
  const created = await core.create({ token: POLICY, properties: policy, preview: false });
  expect(created.properties.realization).toEqual({ desiredPointsRealized: 3, currentPointsRealized: 0, pointsNotRealized: ['vm:db#0', 'vm:web#0', 'vm:web#1'] });
  await fakeAgent(dataDir, ['vm:db#0'], 'realize');
  let read;
  do read = await core.read({ token: POLICY, id: 'app', inputs: policy, state: {} });
  while ((read.properties.realization as { currentPointsRealized: number }).currentPointsRealized === 0);
  expect(read.properties.realization).toEqual({ desiredPointsRealized: 3, currentPointsRealized: 1, pointsNotRealized: ['vm:web#0', 'vm:web#1'] });
});

test('with waitForRealization a FirewallPolicy create waits for every point where it applies', async () => {
  const { core, dataDir } = provider({ waitForRealization: true });
  await fakeAgent(dataDir, ['vm:db#0'], 'realize');
  await core.create({ token: VM, properties: db, preview: false, timeout: 60 });
  await core.create({ token: GROUP, properties: { name: 'dbs', vms: ['db'] }, preview: false });
  const policy = { name: 'app', category: 'application', priority: 100, enforcement: 'enforce', appliedTo: ['dbs'], rules: [{ name: 'deny-all', action: 'drop', sources: [{ cidr: '0.0.0.0/0' }] }] };
  const r = await core.create({ token: POLICY, properties: policy, preview: false, timeout: 60 });
  expect(r.properties.realization).toEqual({ desiredPointsRealized: 1, currentPointsRealized: 1, pointsNotRealized: [] });
});

test('waitForRealization with a team-mode endpoint is refused, not silently ignored', async () => {
  const { core } = provider({ waitForRealization: true, endpoint: 'https://127.0.0.1:1' });
  await expect(core.create({ token: VM, properties: db, preview: false })).rejects.toThrow('microseg:waitForRealization works with the embedded store only for now; unset it, or unset microseg:endpoint');
});
