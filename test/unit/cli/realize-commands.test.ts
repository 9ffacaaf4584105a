/**
 * realize (dry run), realization (status table) and hits, in-process against a temporary data directory.
 * The agent's statuses are written as an agent writes them (StoreStatusSink); `agent` itself needs root
 * and runs in the kernel suite (test/kernel/agent.test.ts).
 */
import { preflight, StoreStatusSink, type RealizationStatus } from '../../../provider/src/agent';
import { CliError, memoryIo } from '../../../provider/src/cli/io';
import { runAgent, runHits, runRealization, runRealize } from '../../../provider/src/cli/realize-commands';
import { runExportState } from '../../../provider/src/cli/state-commands';
import { openSqliteStore } from '../../../provider/src/store';
import { putSpecs, runCli, tempDataDir, type MemoryIo } from '../../support/cli';

let dataDir: string;
let tmp: ReturnType<typeof tempDataDir>;
beforeAll(async () => {
  tmp = tempDataDir('microseg-realize-');
  ({ dataDir } = tmp);
  const specs: [string, string, string][] = [
    ['VirtualMachine', 'db', 'interfaces: [{ ip: 172.16.0.10 }]\nlabels: { role: db }'],
    ['VirtualMachine', 'app', 'interfaces: [{ ip: 172.16.0.20 }, { ip: 172.16.1.20 }]\nlabels: { role: app }'],
    ['SecurityGroup', 'app', 'vms: [app]'],
    ['SecurityGroup', 'db', 'vms: [db]'],
    ['FirewallPolicy', 'app-db', 'rules:\n  - { name: allow-pg, action: allow, sources: [{ group: app }], destinations: [{ group: db }], services: [{ protocol: tcp, ports: [5432] }] }\n  - { name: reject-rest, action: reject, direction: in, appliedTo: [db] }'],
  ];
  await putSpecs(dataDir, specs);
  const store = await openSqliteStore({ dataDir });
  const status: RealizationStatus = {
    point: 'vm:db#0',
    table: 'microseg_db_0',
    desiredRevision: 5,
    realizedRevision: 5,
    state: 'realized',
    lastApply: 'table',
    rules: 40,
    elements: 6,
    hits: [
      { rule: 'app-db/allow-pg', direction: 'in', packets: 12, bytes: 720 },
      { rule: 'app-db/reject-rest', direction: 'in', packets: 0, bytes: 0 },
    ],
    agent: { host: 'db-host', pid: 42 },
    updatedAt: '2026-11-26T12:00:00.000Z',
  };
  await new StoreStatusSink(store, 'default').report(status);
  await store.close();
});
afterAll(() => tmp.remove());

const cli = (fn: (io: MemoryIo) => Promise<number>) => runCli(fn);

test('realize prints the ruleset of one interface as an atomic nft transaction', async () => {
  const r = await cli((io) => runRealize({ dataDir, point: 'vm:db#0' }, io));
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^# vm:db#0: table inet microseg_db_0, \d+ rules, \d+ set elements/);
  expect(r.out).toContain('add table inet microseg_db_0\ndelete table inet microseg_db_0\ntable inet microseg_db_0 {');
  expect(r.out).toContain('comment "app-db/reject-rest"');
});

test('realize vm:NAME prints one table per interface; --format json prints nft -j documents', async () => {
  const r = await cli((io) => runRealize({ dataDir, point: 'vm:app', format: 'json' }, io));
  const docs = JSON.parse(r.out) as { nftables: { add?: { table?: { name: string } } }[] }[];
  expect(docs.map((d) => d.nftables.find((c) => c.add?.table)!.add!.table!.name)).toEqual(['microseg_app_0', 'microseg_app_1']);
});

test('realize names the accepted forms when the point is unknown', async () => {
  const r = await cli((io) => runRealize({ dataDir, point: 'vm:nope' }, io));
  expect([r.code, r.err]).toEqual([2, 'microseg: --enforcement-point: "vm:nope" is not an enforcement point of environment "default"; expected vm:NAME#i, vm:NAME (every interface), pod:CLUSTER/NAMESPACE/POD or workload:CLUSTER/NAMESPACE/NAME\n']);
});

test('realization lists every enforcement point with its reported status, unreported ones included', async () => {
  const r = await cli((io) => runRealization({ dataDir }, io));
  const lines = r.out.trim().split('\n');
  expect(lines[0]).toMatch(/^POINT\s+IP\s+STATE\s+DESIRED\s+REALIZED/);
  expect(lines.find((l) => l.startsWith('vm:db#0'))).toMatch(/realized\s+5\s+5\s+40\s+6\s+db-host:42/);
  expect(lines.find((l) => l.startsWith('vm:app#1'))).toMatch(/unreported.*no agent has reported/);
});

test('hits shows rules that matched packets, --all every rule', async () => {
  const some = await cli((io) => runHits({ dataDir }, io));
  expect(some.out.trim().split('\n').slice(1)).toEqual([expect.stringMatching(/^vm:db#0\s+in\s+app-db\/allow-pg\s+12\s+720/)]);
  const all = await cli((io) => runHits({ dataDir, all: true, json: true }, io));
  expect((JSON.parse(all.out) as { rule: string }[]).map((h) => h.rule)).toEqual(['app-db/allow-pg', 'app-db/reject-rest']);
});

test('export-state leaves realization status out: it is observed, not declared', async () => {
  const r = await cli((io) => runExportState({ dataDir }, io));
  expect(r.out).not.toContain('RealizationStatus');
});

test('the agent refuses to start without nft, saying how to install it', async () => {
  await expect(preflight(['/nonexistent/nft'])).rejects.toThrow('/nonexistent/nft is not installed (or not on PATH); install nftables (Debian: apt-get install nftables)');
});

test('the agent against a server needs a token in MICROSEG_TOKEN and an http(s) endpoint, and says so before contacting anything', async () => {
  const nft = { replaceTable: async () => undefined, updateElements: async () => undefined, listTable: async () => undefined };
  await expect(runAgent({ points: ['vm:db'], once: true, endpoint: 'http://127.0.0.1:1', nft }, memoryIo({ env: {} }))).rejects.toThrow(/MICROSEG_TOKEN: set it to an agent token/);
  await expect(runAgent({ points: ['vm:db'], once: true, endpoint: 'ftp://x', nft }, memoryIo({ env: { MICROSEG_TOKEN: 't' } }))).rejects.toThrow(CliError);
  await expect(runAgent({ points: ['vm:db'], once: true, endpoint: 'ftp://x', nft }, memoryIo({ env: { MICROSEG_TOKEN: 't' } }))).rejects.toThrow('--endpoint: "ftp://x" is not an http(s) URL');
});
