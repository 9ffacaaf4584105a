import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RealizationAgent, readStatuses, REALIZATION_KIND, StoreDesiredState, StoreStatusSink, type NftExecutor } from '../../provider/src/agent';
import { engineValidator } from '../../provider/src/backend/embedded';
import type { World } from '../../provider/src/engine';
import type { Kind } from '../../provider/src/model';
import { BackendService } from '../../provider/src/service';
import { openSqliteStore, type Store } from '../../provider/src/store';
import { requireRootAndNft } from './differential';
import { kernelNft } from './kernel-nft';
import { Lab, nsExec } from './lab';
import { putSpec } from '../support/service-put';

/**
 * `microseg agent` against the kernel: the desired state lives in a real SQLite store, the agent applies
 * to the server VM's namespace with the real nft, and real connections show what the kernel enforces.
 */
jest.setTimeout(180_000);

const ENV = 'agent-test';
const CLIENT = '192.168.80.10';
const SERVER = '192.168.80.20';
let dir: string;
let store: Store;
let service: BackendService;
let lab: Lab | undefined;
const executors: NftExecutor[] = [];

/** The server's kernel through the agent's executor (microseg-nft unless MICROSEG_TEST_NFT=nft). */
function serverNft(): NftExecutor {
  const nft = kernelNft(lab!.hosts.get(SERVER)!.ns);
  executors.push(nft);
  return nft;
}

const put = (kind: Kind, name: string, spec: Record<string, unknown>): Promise<void> => putSpec(service, kind, name, spec);

/** v1 allows tcp/8080 from the client and the web pods; v2 also tcp/8081 from the client. Both drop 9090. */
async function policy(version: 1 | 2): Promise<void> {
  const rules = [
    { name: 'client-8080', action: 'allow', direction: 'in', sources: [{ group: 'client' }], destinations: [{ group: 'server' }], services: [{ protocol: 'tcp', ports: [8080] }] },
    { name: 'web-8080', action: 'allow', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'server' }], services: [{ protocol: 'tcp', ports: [8080] }] },
    ...(version === 2 ? [{ name: 'client-8081', action: 'allow', direction: 'in', sources: [{ group: 'client' }], destinations: [{ group: 'server' }], services: [{ protocol: 'tcp', ports: [8081] }] }] : []),
    { name: 'any-out', action: 'allow', direction: 'out' },
  ];
  await put('FirewallPolicy', 'app', { category: 'application', priority: 1, rules });
}

/**
 * Whether the kernel's application maps send tcp/`port` from `ip` to a rule: the port map names the
 * port's address-class chain (and map), whose map must hold the address (the kernel answers with the
 * interval holding a key, so a range of adjacent pods counts for each of them).
 */
async function inKernelMaps(ip: string, port: number): Promise<boolean> {
  const ns = lab!.hosts.get(SERVER)!.ns;
  const get = (map: string, key: string) => nsExec(ns, 'nft', ['get', 'element', 'inet', 'microseg_server_0', map, `{ ${key} }`]).catch(() => undefined);
  const cls = /goto (\S+)/.exec((await get('in_application_tcp', String(port))) ?? '')?.[1];
  return cls !== undefined && (await get(cls, ip)) !== undefined;
}

function agent(nft: NftExecutor = serverNft()): RealizationAgent {
  return new RealizationAgent({ points: ['vm:server#0'], source: new StoreDesiredState(store, ENV, 'drop', 10), nft, status: new StoreStatusSink(store, ENV) });
}

const probe = (port: number, timeoutMs = 1000) => lab!.probe(CLIENT, 'tcp', SERVER, port, undefined, timeoutMs).then((r) => r.result);

beforeAll(async () => {
  requireRootAndNft();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-agent-'));
  store = await openSqliteStore({ dataDir: dir });
  service = new BackendService({ store, environment: ENV, validator: engineValidator });
  await put('KubernetesCluster', 'c1', { podCidr: '10.80.0.0/16', serviceCidr: '10.96.0.0/16', networkMode: 'flat', nodes: [{ name: 'n1', ip: '192.168.80.11' }] });
  await put('Namespace', 'c1/ns', { name: 'ns', cluster: 'c1' });
  await put('Workload', 'c1/ns/web', { name: 'web', cluster: 'c1', namespace: 'ns', labels: { app: 'web' }, replicas: 1 });
  await put('VirtualMachine', 'client', { interfaces: [{ ip: CLIENT }] });
  await put('VirtualMachine', 'server', { interfaces: [{ ip: SERVER }] });
  await put('SecurityGroup', 'client', { vms: ['client'] });
  await put('SecurityGroup', 'server', { vms: ['server'] });
  await put('SecurityGroup', 'web', { podSelectors: [{ podSelector: { matchLabels: { app: 'web' } } }] });
  await policy(1);
  const world: World = (await new StoreDesiredState(store, ENV, 'drop').snapshot()).world;
  lab = await Lab.build(world, { tcpPorts: [8080, 8081, 9090], udpPorts: [] });
});

afterAll(async () => {
  for (const e of executors) e.close?.();
  await lab?.destroy();
  await store?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('applies the ruleset, and reports it realized with the kernel hit counters', async () => {
  await policy(1);
  const a = agent();
  const first = await a.reconcile();
  expect(first.statuses.map((s) => [s.point, s.state, s.realizedRevision === s.desiredRevision])).toEqual([['vm:server#0', 'realized', true]]);
  expect([await probe(8080), await probe(9090)]).toEqual(['open', 'timeout']);
  await a.reconcile();
  const [stored] = await readStatuses(store, ENV);
  expect(stored!.state).toBe('realized');
  const hit = (rule: string) => stored!.hits.find((h) => h.rule === rule && h.direction === 'in')?.packets ?? 0;
  expect({ allowed: hit('app/client-8080') > 0, dropped: hit('default') > 0 }).toEqual({ allowed: true, dropped: true });
});

test('a re-apply is atomic: a prober never gets through what both rulesets drop while the agent swaps tables', async () => {
  await policy(1);
  let applies = 0;
  const nft = serverNft();
  const counting: NftExecutor = {
    replaceTable: (t) => (applies++, nft.replaceTable(t)),
    updateElements: (t, c) => (applies++, nft.updateElements(t, c)),
    listTable: (n) => nft.listTable(n),
  };
  const ac = new AbortController();
  const running = agent(counting).run(ac.signal, 60_000);
  const results: string[] = [];
  let probing = true;
  const prober = (async () => {
    while (probing) results.push(await probe(9090, 300));
  })();
  try {
    for (let i = 0; i < 12; i++) {
      await policy(i % 2 === 0 ? 2 : 1);
      // Wait until the agent realized this revision before the next change.
      const target = await store.lastSeq(ENV);
      for (let t = 0; t < 200; t++) {
        const [s] = await readStatuses(store, ENV);
        if (s && s.state === 'realized' && s.realizedRevision >= target) break;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  } finally {
    probing = false;
    await prober;
    ac.abort();
    await running;
  }
  expect(applies).toBeGreaterThanOrEqual(12);
  expect(results.length).toBeGreaterThan(0);
  expect(results.filter((r) => r !== 'timeout')).toEqual([]);
});

test('a ruleset the kernel refuses leaves the last good one in place and reports the error', async () => {
  await policy(1);
  const nft = serverNft();
  let corrupt = false;
  // A real refusal by the kernel: the same transaction plus a jump to a chain that does not exist.
  const faulty: NftExecutor = {
    replaceTable: (t) => nft.replaceTable(corrupt ? { ...t, chains: t.chains.map((c) => (c.name === 'input' ? { ...c, rules: [...c.rules, { match: [], verdict: { kind: 'goto', target: 'no_such_chain' } }] } : c)) } : t),
    updateElements: (t, c) => nft.updateElements(t, c),
    listTable: (n) => nft.listTable(n),
  };
  const a = agent(faulty);
  expect((await a.reconcile()).statuses[0]!.state).toBe('realized');
  const good = (await a.reconcile()).statuses[0]!.realizedRevision;
  corrupt = true;
  await policy(2);
  const failed = (await a.reconcile()).statuses[0]!;
  expect({ state: failed.state, realized: failed.realizedRevision, error: /no_such_chain|No such file/.test(failed.error ?? '') }).toEqual({ state: 'error', realized: good, error: true });
  expect([await probe(8080), await probe(8081)]).toEqual(['open', 'timeout']);
  corrupt = false;
  const fixed = (await a.reconcile()).statuses[0]!;
  expect([fixed.state, fixed.realizedRevision === fixed.desiredRevision, await probe(8081)]).toEqual(['realized', true, 'open']);
});

test('a restarted agent converges on the desired state the store holds now', async () => {
  await policy(1);
  await agent().reconcile();
  expect(await probe(8081)).toBe('timeout');
  await policy(2); // changed while no agent runs
  const restarted = await agent().reconcile();
  expect([restarted.statuses[0]!.state, restarted.statuses[0]!.lastApply, await probe(8081)]).toEqual(['realized', 'table', 'open']);
});

test('pod churn reaches the kernel as set-element updates, not a table swap', async () => {
  await policy(1);
  const a = agent();
  await a.reconcile();
  await put('Workload', 'c1/ns/web', { name: 'web', cluster: 'c1', namespace: 'ns', labels: { app: 'web' }, replicas: 3 });
  const s = (await a.reconcile()).statuses[0]!;
  const world = (await new StoreDesiredState(store, ENV, 'drop').snapshot()).world;
  const pods = world.endpointsOf('c1/ns/web').map((e) => e.ip.s);
  // Ask the kernel whether each pod's address is in the verdict maps for tcp/8080.
  const inKernel = await Promise.all(pods.map((ip) => inKernelMaps(ip, 8080)));
  expect({ apply: s.lastApply, state: s.state, inKernel }).toEqual({ apply: 'elements', state: 'realized', inKernel: [true, true, true] });
  // And back: the pods that left are deleted from the map, again without a table swap.
  await put('Workload', 'c1/ns/web', { name: 'web', cluster: 'c1', namespace: 'ns', labels: { app: 'web' }, replicas: 1 });
  const back = (await a.reconcile()).statuses[0]!;
  const still = await Promise.all(pods.map((ip) => inKernelMaps(ip, 8080)));
  expect({ apply: back.lastApply, still }).toEqual({ apply: 'elements', still: [true, false, false] });
});

test('while pods churn, the agent applies each change at once and reads the counters back only every observeEveryMs', async () => {
  await policy(1);
  const nft = serverNft();
  let lists = 0;
  const counting: NftExecutor = { replaceTable: (t) => nft.replaceTable(t), updateElements: (t, c) => nft.updateElements(t, c), listTable: (n) => (lists++, nft.listTable(n)) };
  const a = new RealizationAgent({ points: ['vm:server#0'], source: new StoreDesiredState(store, ENV, 'drop', 10), nft: counting, status: new StoreStatusSink(store, ENV), observeEveryMs: 60_000 });
  await a.reconcile(); // observes (the first pass of run() does too)
  const ac = new AbortController();
  const running = a.run(ac.signal, 60_000);
  const realized = async (target: number) => {
    for (let t = 0; t < 200; t++) {
      const [s] = await readStatuses(store, ENV);
      if (s && s.state === 'realized' && s.realizedRevision >= target) return s;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`revision ${target} not realized`);
  };
  // The newest desired-state write (status writes are not desired state).
  const desired = async () => (await store.changes(ENV)).filter((c) => c.kind !== REALIZATION_KIND).at(-1)!.seq;
  try {
    await realized(await desired());
    const before = lists;
    for (const replicas of [2, 3, 2, 1]) {
      await put('Workload', 'c1/ns/web', { name: 'web', cluster: 'c1', namespace: 'ns', labels: { app: 'web' }, replicas });
      const s = await realized(await desired());
      expect(s.hits.length).toBeGreaterThan(0); // the counters last read, reported again
    }
    // Four changes, each realized and reported, and no counters read back (the next read is a minute away).
    expect(lists - before).toBe(0);
  } finally {
    ac.abort();
    await running;
  }
});

test('`microseg agent --once` applies the point on its host and prints the status (exit 0 when realized)', async () => {
  await policy(2);
  const main = path.join(__dirname, '..', '..', 'dist', 'provider', 'src', 'cli', 'main.js');
  const ns = lab!.hosts.get(SERVER)!.ns;
  await nsExec(ns, 'nft', ['delete', 'table', 'inet', 'microseg_server_0']).catch(() => undefined);
  const out = await nsExec(ns, process.execPath, ['--no-warnings', main, 'agent', '--enforcement-point', 'vm:server#0', '--once', '--data-dir', dir, '-e', ENV]);
  expect(out).toMatch(/^POINT\s+STATE\s+DESIRED\s+REALIZED/);
  expect(out).toMatch(/vm:server#0\s+realized/);
  expect(await probe(8081)).toBe('open');
});

test('`microseg agent` names an unknown enforcement point and exits 1', async () => {
  const main = path.join(__dirname, '..', '..', 'dist', 'provider', 'src', 'cli', 'main.js');
  const err = await nsExec(lab!.hosts.get(SERVER)!.ns, process.execPath, ['--no-warnings', main, 'agent', '--enforcement-point', 'vm:nope', '--once', '--data-dir', dir, '-e', ENV], '').then(
    () => 'exit 0',
    (e: Error) => e.message,
  );
  expect(err).toContain('exit 1: microseg: vm:nope: not an enforcement point of environment "agent-test"');
});

test('hit counters survive a restart (the agent adopts the identical ruleset) and a table swap; status writes do not move the desired revision', async () => {
  await policy(1);
  const first = await agent().reconcile();
  await probe(8080);
  await probe(8080);
  const a = agent(); // a restart
  const adopted = (await a.reconcile()).statuses[0]!;
  await policy(2); // a changed rule set: the table is swapped, kernel counters start from zero
  const swapped = (await a.reconcile()).statuses[0]!;
  const hits = (s: typeof adopted) => s.hits.find((h) => h.rule === 'app/client-8080' && h.direction === 'in')?.packets ?? 0;
  expect({ adopted: adopted.lastApply, counted: hits(adopted) >= 2, swapped: swapped.lastApply, kept: hits(swapped) >= hits(adopted), revision: adopted.desiredRevision === first.statuses[0]!.desiredRevision }).toEqual({
    adopted: 'unchanged',
    counted: true,
    swapped: 'table',
    kept: true,
    revision: true,
  });
});
