/**
 * Flow records in team mode: `microseg agent --endpoint` realizes the server VM's ruleset in its network
 * namespace from a real `microseg serve` on a real PostgreSQL, real TCP connections are made from the
 * client VM, and the agent posts the records it reads from conntrack and the dropped-flow sets to the
 * server, which returns them (to an auditor, and through `microseg flows --endpoint`) with the rule the
 * kernel applied. A restarted agent that posts everything again counts nothing twice.
 */
import { AgentServerClient, ConntrackCli, HttpDesiredState, type NftExecutor } from '../../provider/src/agent';
import { memoryIo } from '../../provider/src/cli/io';
import { runAgent } from '../../provider/src/cli/realize-commands';
import { runFlows } from '../../provider/src/cli/flow-commands';
import type { FlowRecord } from '../../provider/src/store';
import { FLOW_LAB_CLIENT as CLIENT, FLOW_LAB_OBJECTS, FLOW_LAB_PORTS, FLOW_LAB_SERVER as SERVER } from '../support/flow-lab';
import { startTeam, type Team } from '../support/team';
import { requireRootAndNft } from './differential';
import { kernelNft } from './kernel-nft';
import { Lab } from './lab';

jest.setTimeout(180_000);

const ENV = 'flows-team';
let team: Team;
let lab: Lab | undefined;

beforeAll(async () => {
  requireRootAndNft();
  team = await startTeam();
  for (const [kind, name, spec] of FLOW_LAB_OBJECTS) {
    const r = await team.call('PUT', `/v1/environments/${ENV}/objects/${kind}/${name}`, { body: { spec } });
    if (r.status !== 201) throw new Error(`${kind}/${name}: HTTP ${r.status} ${JSON.stringify(r.data)}`);
  }
  // The lab is built from the world the agent will compile: the server's, as the agent reads it.
  const client = new AgentServerClient({ endpoint: team.server.url, environment: ENV, token: team.tokens.agent });
  try {
    lab = await Lab.build((await new HttpDesiredState(client).snapshot()).world, FLOW_LAB_PORTS);
  } finally {
    client.close();
  }
});

afterAll(async () => {
  for (const e of executors) e.close?.();
  await lab?.destroy();
  await team?.close();
});

const serverNs = () => lab!.hosts.get(SERVER)!.ns;
const executors: NftExecutor[] = [];
/** The server's kernel through the agent's executor (microseg-nft unless MICROSEG_TEST_NFT=nft). */
function serverNft(): NftExecutor {
  const nft = kernelNft(serverNs());
  executors.push(nft);
  return nft;
}
const connect = (port: number) => lab!.probe(CLIENT, 'tcp', SERVER, port, undefined, 500).then((r) => r.result);

/** One pass of a fresh `microseg agent --endpoint --once` on the server VM's namespace, as a restarted agent would run. */
async function agentPass(): Promise<string> {
  const io = memoryIo({ env: { MICROSEG_TOKEN: team.tokens.agent, MICROSEG_ENVIRONMENT: ENV } });
  const code = await runAgent(
    {
      points: ['vm:server#0'],
      once: true,
      endpoint: team.server.url,
      nft: serverNft(),
      conntrack: new ConntrackCli(['ip', 'netns', 'exec', serverNs()]),
    },
    io,
  );
  expect([code, io.err()]).toEqual([0, expect.not.stringContaining('flow records:')]);
  return io.out();
}

const serverFlows = async (): Promise<FlowRecord[]> => (await team.call('GET', `/v1/environments/${ENV}/flows`, { token: team.tokens.auditor })).data.records;

test('an agent connected to the server posts the kernel\'s flow records, and the server returns them with the deciding rules', async () => {
  expect(await agentPass()).toMatch(/vm:server#0 +realized/);
  const results = { allowed: [] as string[], dropped: [] as string[], rejected: [] as string[] };
  for (let i = 0; i < 3; i++) results.allowed.push(await connect(8080));
  for (let i = 0; i < 2; i++) results.dropped.push(await connect(9090));
  results.rejected.push(await connect(9091));
  expect(results).toEqual({ allowed: ['open', 'open', 'open'], dropped: ['timeout', 'timeout'], rejected: ['reject'] });

  await agentPass();
  const flows = await serverFlows();
  const summary = (r: FlowRecord) => [r.point, r.direction, r.verdict, r.rule, r.protocol, r.sourceIp, r.destinationIp, r.destinationPort];
  const allowed = flows.filter((r) => r.verdict === 'allow');
  expect(allowed.map(summary)).toEqual(Array(3).fill(['vm:server#0', 'in', 'allow', 'app/client-8080', 'tcp', CLIENT, SERVER, 8080]));
  expect(allowed.map((r) => [r.stagedVerdict, r.stagedRule])).toEqual(Array(3).fill(['drop', 'next/no-8080']));
  const denied = flows.filter((r) => r.verdict !== 'allow').sort((x, y) => (x.rule < y.rule ? -1 : 1));
  expect(denied.map((r) => [...summary(r), r.packets])).toEqual([
    ['vm:server#0', 'in', 'reject', 'app/refuse-9091', 'tcp', CLIENT, SERVER, 9091, 1],
    ['vm:server#0', 'in', 'drop', 'default', 'tcp', CLIENT, SERVER, 9090, 2],
  ]);

  // The rule statistics the server computes agree with the kernel's hit counters the agent reported.
  const stats = (await team.call('GET', `/v1/environments/${ENV}/rule-stats?since=1h`, { token: team.tokens.auditor })).data.rules as { rule: string; flows: number; points: Record<string, number> }[];
  expect(Object.fromEntries(stats.map((s) => [s.rule, s.flows]))).toEqual({ 'app/client-8080': 3, 'app/refuse-9091': 1, default: 1 });
  const [status] = (await team.call('GET', `/v1/environments/${ENV}/realization`, { token: team.tokens.auditor })).data.statuses as { hits: { rule: string; direction: string; packets: number }[] }[];
  const hit = (rule: string) => status!.hits.find((h) => h.rule === rule && h.direction === 'in')?.packets ?? 0;
  expect({ allow: hit('app/client-8080'), reject: hit('app/refuse-9091'), drop: hit('default') }).toEqual({ allow: 3, reject: 1, drop: 2 });
});

test('a restarted agent posting everything again counts nothing twice on the server', async () => {
  const counters = async () => (await serverFlows()).map((r) => `${r.id} ${r.packets} ${r.bytes}`).sort();
  const before = await counters();
  await agentPass();
  expect(await counters()).toEqual(before);
});

test('`microseg flows --endpoint` shows the records the agent posted, filtered by endpoint and verdict', async () => {
  const io = memoryIo({ env: { MICROSEG_TOKEN: team.tokens.auditor, MICROSEG_ENVIRONMENT: ENV } });
  expect(await runFlows({ endpoint: team.server.url, from: 'vm:client', to: 'server', verdict: 'reject' }, io)).toBe(0);
  const lines = io.out().trimEnd().split('\n');
  expect(lines[0]).toMatch(/^LAST SEEN +POINT +DIR +PROTO +SOURCE +DESTINATION +VERDICT +RULE/);
  expect(lines.slice(1).map((l) => l.split(/ +/).slice(1, 8))).toEqual([['vm:server#0', 'in', 'tcp', CLIENT, `${SERVER}:9091`, 'reject', 'app/refuse-9091']]);
});
