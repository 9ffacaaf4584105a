/**
 * The flow routes of `microseg serve` on a real PostgreSQL: agents post flow records (validated, bounded,
 * idempotent on retry), people read them with the filters of `microseg flows`, aggregated and as rule
 * statistics, and the CLI's `flows`/`rule-stats --endpoint` print what the routes return.
 */
import { memoryIo } from '../../provider/src/cli/io';
import { runFlows, runRuleStats } from '../../provider/src/cli/flow-commands';
import type { FlowRecord } from '../../provider/src/store';
import { MAX_FLOW_BATCH } from '../../provider/src/server/flow-routes';
import { seedShop, startTeam, type Team } from '../support/team';

let team: Team;
const ENV = 'observed';
beforeAll(async () => {
  team = await startTeam();
  await seedShop(team, ENV);
}, 120_000);
afterAll(async () => team?.close());

const now = Date.now();
const at = (s: number) => new Date(now + s * 1000).toISOString();
// The shop's pods as the server allocated them: web-0 and api-0.
let web = '';
let api = '';
beforeAll(async () => {
  const ip = async (w: string) => ((await team.call('GET', `/v1/environments/${ENV}/objects/Workload/${w}`)).data.outputs.pods as { ip: string }[])[0]!.ip;
  web = await ip('c1/shop/web');
  api = await ip('c1/pay/api');
});

function record(id: string, extra: Partial<FlowRecord> = {}): FlowRecord {
  return { id, point: 'pod:c1/pay/api-0', direction: 'in', protocol: 'tcp', sourceIp: web, sourcePort: 40000, destinationIp: api, destinationPort: 8080, verdict: 'allow', rule: 'pay/from-shop', firstSeen: at(-60), lastSeen: at(-30), packets: 10, bytes: 900, ...extra };
}

const post = (records: unknown[], token = team.tokens.agent) => team.call('POST', `/v1/environments/${ENV}/flows`, { token, body: { records } });
const read = async (query = '') => (await team.call('GET', `/v1/environments/${ENV}/flows${query}`, { token: team.tokens.auditor })).data.records as FlowRecord[];

test('a retried batch counts nothing twice: the server keeps the larger counters of a known record', async () => {
  const batch = [record('ct-1'), record('drop-1', { verdict: 'drop', rule: 'default', sourcePort: undefined, destinationPort: 5432, packets: 2, bytes: 120 })];
  expect((await post(batch)).data).toEqual({ recorded: 2 });
  // The response was lost; the agent sends the same batch again, then a later reading of the same connection.
  expect((await post(batch)).status).toBe(200);
  expect((await post([record('ct-1', { packets: 14, bytes: 1300, lastSeen: at(-10) })])).status).toBe(200);
  const stats = (await team.call('GET', `/v1/environments/${ENV}/rule-stats?since=1h`, { token: team.tokens.auditor })).data.rules as { rule: string; flows: number; packets: number }[];
  expect(stats.map((s) => [s.rule, s.flows, s.packets])).toEqual([
    ['default', 1, 2],
    ['pay/from-shop', 1, 14],
  ]);
  const [ct] = await read('?rule=pay/from-shop');
  expect([ct!.firstSeen, ct!.lastSeen]).toEqual([at(-60), at(-10)]);
});

test('reads take the filters of `microseg flows`: endpoint references resolve on the server\'s world', async () => {
  expect((await read(`?from=workload:c1/shop/web&to=workload:c1/pay/api&verdict=drop`)).map((r) => r.id)).toEqual(['drop-1']);
  expect((await read('?from=workload:c1/pay/api')).map((r) => r.id)).toEqual([]);
  expect((await read('?point=pod:c1/pay/api-0&limit=1')).map((r) => r.id)).toEqual(['ct-1']);
  const rows = (await team.call('GET', `/v1/environments/${ENV}/flows/summary?by=group`, { token: team.tokens.auditor })).data.rows as { source: string; destination: string; verdict: string; flows: number }[];
  expect(rows.map((r) => `${r.source} → ${r.destination} ${r.verdict} ×${r.flows}`).sort()).toEqual([
    'group:all-pods → group:all-pods allow ×1',
    'group:all-pods → group:all-pods drop ×1',
    'group:all-pods → group:pay-pods allow ×1',
    'group:all-pods → group:pay-pods drop ×1',
    'group:shop-pods → group:all-pods allow ×1',
    'group:shop-pods → group:all-pods drop ×1',
    'group:shop-pods → group:pay-pods allow ×1',
    'group:shop-pods → group:pay-pods drop ×1',
  ]);
  const bad = await team.call('GET', `/v1/environments/${ENV}/flows?since=yesterday`, { token: team.tokens.auditor });
  expect([bad.status, bad.data.error.message]).toEqual([400, 'since: "yesterday" is neither a duration (90s, 15m, 24h, 7d) nor an ISO-8601 time']);
  const unknown = await team.call('GET', `/v1/environments/${ENV}/flows?from=workload:c1/shop/nope`, { token: team.tokens.auditor });
  expect([unknown.status, unknown.data.error.message]).toEqual([400, expect.stringMatching(/^from: /)]);
});

test('a malformed record is refused with its path named, and nothing of the batch is written', async () => {
  const r = await post([record('ok-2'), { ...record('bad-2'), packets: -1 }]);
  expect(r.status).toBe(400);
  expect(r.data.error.message).toContain('records.1.packets');
  const misspelt = await post([{ ...record('bad-3'), verdikt: 'allow' }]);
  expect(misspelt.status).toBe(400);
  expect((await read()).map((x) => x.id)).not.toEqual(expect.arrayContaining(['ok-2']));
});

test(`a batch of more than ${MAX_FLOW_BATCH} records, or a body over the limit, is refused`, async () => {
  const many = Array.from({ length: MAX_FLOW_BATCH + 1 }, (_, i) => record(`many-${i}`));
  expect((await post(many)).status).toBe(400);
  const huge = JSON.stringify({ records: [{ ...record('huge'), rule: 'x'.repeat(9 * 1024 * 1024) }] });
  expect((await team.call('POST', `/v1/environments/${ENV}/flows`, { token: team.tokens.agent, raw: huge })).status).toBe(413);
  expect((await read('?limit=10000')).some((x) => x.id.startsWith('many-') || x.id === 'huge')).toBe(false);
});

test('`microseg flows` and `microseg rule-stats` with --endpoint print what the server holds', async () => {
  const io = memoryIo({ env: { MICROSEG_TOKEN: team.tokens.auditor, MICROSEG_ENVIRONMENT: ENV } });
  expect(await runFlows({ endpoint: team.server.url, from: 'workload:c1/shop/web', verdict: 'allow', json: true }, io)).toBe(0);
  expect((JSON.parse(io.out()) as FlowRecord[]).map((r) => [r.id, r.rule, r.packets])).toEqual([['ct-1', 'pay/from-shop', 14]]);
  const table = memoryIo({ env: { MICROSEG_TOKEN: team.tokens.auditor, MICROSEG_ENVIRONMENT: ENV } });
  expect(await runRuleStats({ endpoint: team.server.url, since: '1h' }, table)).toBe(0);
  expect(table.out()).toMatch(/^RULE +FLOWS +PACKETS +BYTES +PER POINT +LAST SEEN\n/);
  expect(table.out()).toMatch(/pay\/from-shop +1 +14 +1300 +pod:c1\/pay\/api-0=1/);
  const unused = memoryIo({ env: { MICROSEG_TOKEN: team.tokens.auditor, MICROSEG_ENVIRONMENT: ENV } });
  expect(await runRuleStats({ endpoint: team.server.url, unusedDays: '1', json: true }, unused)).toBe(0);
  expect(JSON.parse(unused.out())).toEqual([]);
  // An agent token reports flows but does not read them: the refusal names the permission.
  const agent = memoryIo({ env: { MICROSEG_TOKEN: team.tokens.agent, MICROSEG_ENVIRONMENT: ENV } });
  await expect(runFlows({ endpoint: team.server.url }, agent)).rejects.toThrow(/403: role agent lacks permission flows\.read/);
  await expect(runFlows({ endpoint: team.server.url, since: 'yesterday' }, io)).rejects.toThrow('since: "yesterday" is neither a duration');
});
