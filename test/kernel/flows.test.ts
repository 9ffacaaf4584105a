import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConntrackCli, RealizationAgent, type NftExecutor, readStatuses, StoreDesiredState, StoreFlowSink, StoreStatusSink } from '../../provider/src/agent';
import { engineValidator } from '../../provider/src/backend/embedded';
import type { World } from '../../provider/src/engine';
import type { Kind } from '../../provider/src/model';
import { BackendService } from '../../provider/src/service';
import { openSqliteStore, type FlowRecord, type Store } from '../../provider/src/store';
import { requireRootAndNft } from './differential';
import { kernelNft } from './kernel-nft';
import { Lab, nsExec } from './lab';
import { putSpec } from '../support/service-put';
import { FLOW_LAB_CLIENT, FLOW_LAB_OBJECTS, FLOW_LAB_PORTS, FLOW_LAB_SERVER } from '../support/flow-lab';

/**
 * Flow records from the kernel: the agent realizes the server VM's ruleset in its namespace, real TCP
 * connections are made from the client VM, and the records the agent reads back from conntrack and the
 * dropped-flow sets name the rule the kernel applied, with the verdict; the rule hit counters agree.
 */
jest.setTimeout(180_000);

const ENV = 'flows-test';
const CLIENT = FLOW_LAB_CLIENT;
const SERVER = FLOW_LAB_SERVER;
let dir: string;
let store: Store;
let service: BackendService;
let lab: Lab | undefined;

const put = (kind: Kind, name: string, spec: Record<string, unknown>): Promise<void> => putSpec(service, kind, name, spec);

const serverNs = () => lab!.hosts.get(SERVER)!.ns;
const executors: NftExecutor[] = [];
/** The server's kernel through the agent's executor (microseg-nft unless MICROSEG_TEST_NFT=nft). */
function serverNft(): NftExecutor {
  const nft = kernelNft(serverNs());
  executors.push(nft);
  return nft;
}

function agent(): RealizationAgent {
  return new RealizationAgent({
    points: ['vm:server#0'],
    source: new StoreDesiredState(store, ENV, 'drop', 10),
    nft: serverNft(),
    status: new StoreStatusSink(store, ENV),
    flows: { conntrack: new ConntrackCli(['ip', 'netns', 'exec', serverNs()]), sink: new StoreFlowSink(store, ENV) },
  });
}

/** A TCP connection attempt from the client; 500 ms is below the first SYN retransmission (1 s). */
const connect = (port: number) => lab!.probe(CLIENT, 'tcp', SERVER, port, undefined, 500).then((r) => r.result);

beforeAll(async () => {
  requireRootAndNft();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-flows-'));
  store = await openSqliteStore({ dataDir: dir });
  service = new BackendService({ store, environment: ENV, validator: engineValidator });
  for (const [kind, name, spec] of FLOW_LAB_OBJECTS) await put(kind, name, spec);
  const world: World = (await new StoreDesiredState(store, ENV, 'drop').snapshot()).world;
  lab = await Lab.build(world, FLOW_LAB_PORTS);
});

afterAll(async () => {
  for (const e of executors) e.close?.();
  await lab?.destroy();
  await store?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('real connections become flow records naming the deciding rule and verdict; hit counters match the connections made', async () => {
  const a = agent();
  await a.reconcile();
  const results = { allowed: [] as string[], dropped: [] as string[], rejected: [] as string[] };
  for (let i = 0; i < 3; i++) results.allowed.push(await connect(8080));
  for (let i = 0; i < 2; i++) results.dropped.push(await connect(9090));
  results.rejected.push(await connect(9091));
  expect(results).toEqual({ allowed: ['open', 'open', 'open'], dropped: ['timeout', 'timeout'], rejected: ['reject'] });

  const pass = await a.reconcile();
  const flows = await store.flows(ENV);
  const summary = (r: FlowRecord) => [r.point, r.direction, r.verdict, r.rule, r.protocol, r.sourceIp, r.destinationIp, r.destinationPort];
  const allowed = flows.filter((r) => r.verdict === 'allow');
  expect(allowed.map(summary)).toEqual(Array(3).fill(['vm:server#0', 'in', 'allow', 'app/client-8080', 'tcp', CLIENT, SERVER, 8080]));
  // One record per connection (three source ports), with conntrack's counters of both directions.
  expect(new Set(allowed.map((r) => r.sourcePort)).size).toBe(3);
  expect(allowed.every((r) => r.packets >= 3 && r.bytes > 0)).toBe(true);
  // The staged policy's verdict beside the enforced one.
  expect(allowed.map((r) => [r.stagedVerdict, r.stagedRule])).toEqual(Array(3).fill(['drop', 'next/no-8080']));
  // Drops: one record per rule and source → destination:port, counting the connection attempts (SYNs).
  const denied = flows.filter((r) => r.verdict !== 'allow').sort((x, y) => (x.rule < y.rule ? -1 : 1));
  expect(denied.map((r) => [...summary(r), r.packets])).toEqual([
    ['vm:server#0', 'in', 'reject', 'app/refuse-9091', 'tcp', CLIENT, SERVER, 9091, 1],
    ['vm:server#0', 'in', 'drop', 'default', 'tcp', CLIENT, SERVER, 9090, 2],
  ]);
  expect(pass.flowRecords).toBe(5);

  // The kernel's rule counters count the first packet of each connection: the same numbers.
  const [status] = await readStatuses(store, ENV);
  const hit = (rule: string) => status!.hits.find((h) => h.rule === rule && h.direction === 'in')?.packets ?? 0;
  expect({ allow: hit('app/client-8080'), reject: hit('app/refuse-9091'), drop: hit('default') }).toEqual({ allow: allowed.length, reject: 1, drop: 2 });
});

test('a restarted agent counts nothing twice, and new attempts count once more', async () => {
  const dropped = async () => (await store.flows(ENV, { rule: 'default' })).reduce((n, r) => n + r.packets, 0);
  const before = await dropped();
  // A new agent swaps the table in (emptying its sets) after reading what the old one recorded, and
  // reports everything it reads again: the store keeps the larger counters.
  const a = agent();
  expect((await a.reconcile()).flowRecords).toBeGreaterThan(0);
  expect((await a.reconcile()).flowRecords).toBe(0);
  expect(await dropped()).toBe(before);
  expect(await connect(9090)).toBe('timeout');
  await a.reconcile();
  expect(await dropped()).toBe(before + 1);
});

test('conntrack holds the rule mark of an allowed connection', async () => {
  expect(await connect(8080)).toBe('open');
  const out = await nsExec(serverNs(), 'conntrack', ['-L', '-p', 'tcp', '--dport', '8080']);
  const { flowMark } = await import('../../provider/src/realize/nftables');
  expect(out).toContain(`mark=${flowMark('in', 'app/client-8080')}`);
});

/** The built CLI as users run it, on the test's store file (opened beside the test's own connection). */
function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const main = path.join(__dirname, '..', '..', 'dist', 'provider', 'src', 'cli', 'main.js');
  return new Promise((resolve) => {
    execFile(process.execPath, ['--no-warnings', main, ...argv, '--data-dir', dir, '-e', ENV], (e, out, err) => resolve({ code: e ? Number(e.code) : 0, out, err }));
  });
}

test('`microseg flows` filters the recorded flows by endpoint, verdict and rule, and aggregates them by group', async () => {
  const allowed = await cli('flows', '--from', 'vm:client', '--to', 'server', '--verdict', 'allow', '--json');
  const rows = JSON.parse(allowed.out) as FlowRecord[];
  expect({ code: allowed.code, rules: [...new Set(rows.map((r) => r.rule))], some: rows.length >= 3 }).toEqual({ code: 0, rules: ['app/client-8080'], some: true });
  const refused = JSON.parse((await cli('flows', '--rule', 'app/refuse-9091', '--since', '1h', '--json')).out) as FlowRecord[];
  expect(refused.map((r) => [r.verdict, r.destinationPort])).toEqual([['reject', 9091]]);
  const byGroup = JSON.parse((await cli('flows', '--by', 'group', '--json')).out) as { source: string; destination: string; port: number; verdict: string }[];
  expect(byGroup.map((r) => `${r.source} → ${r.destination} tcp/${r.port} ${r.verdict}`).sort()).toEqual([
    'group:client → group:server tcp/8080 allow',
    'group:client → group:server tcp/9090 drop',
    'group:client → group:server tcp/9091 reject',
  ]);
  const bad = await cli('flows', '--since', 'yesterday');
  expect([bad.code, bad.err]).toEqual([2, 'microseg: --since: "yesterday" is neither a duration (90s, 15m, 24h, 7d) nor an ISO-8601 time\n']);
});

test('`microseg rule-stats` counts flows per rule and point in the window, and lists the enforced rules never hit', async () => {
  const stats = JSON.parse((await cli('rule-stats', '--since', '1h', '--json')).out) as { rule: string; points: Record<string, number> }[];
  expect(stats.map((s) => s.rule).sort()).toEqual(['app/client-8080', 'app/refuse-9091', 'default']);
  expect(Object.keys(stats.find((s) => s.rule === 'app/refuse-9091')!.points)).toEqual(['vm:server#0']);
  const unused = JSON.parse((await cli('rule-stats', '--unused-days', '30', '--json')).out) as { id: string }[];
  // any-out never decided a new connection (replies are established); the staged rule is not listed.
  expect(unused.map((r) => r.id)).toEqual(['app/any-out']);
});

test('`microseg report` holds the observed flows against the current policy and the staged one', async () => {
  type Report = { distinct: number; compliant: number; allowedNowDenied: { port: number; observedRule: string; currentRule: string }[]; stagedWouldBlock: { port: number; staged: { action: string; rule: string } }[] };
  const before = JSON.parse((await cli('report', '--since', '1h', '--json')).out) as Report;
  expect({ distinct: before.distinct, compliant: before.compliant, denied: before.allowedNowDenied }).toEqual({ distinct: 3, compliant: 3, denied: [] });
  expect(before.stagedWouldBlock.map((r) => [r.port, r.staged])).toEqual([[8080, { action: 'drop', rule: 'next/no-8080' }]]);
  // The policy tightens: what was allowed on 8080 is now denied by the default rule.
  const rules = [
    { name: 'refuse-9091', action: 'reject', sources: [{ group: 'client' }], destinations: [{ group: 'server' }], direction: 'in', services: [{ protocol: 'tcp', ports: [9091] }] },
    { name: 'any-out', action: 'allow', direction: 'out' },
  ];
  await put('FirewallPolicy', 'app', { category: 'application', priority: 1, rules });
  const after = JSON.parse((await cli('report', '--since', '1h', '--json')).out) as Report;
  expect(after.allowedNowDenied.map((r) => [r.port, r.observedRule, r.currentRule])).toEqual([[8080, 'app/client-8080', 'default']]);
});
