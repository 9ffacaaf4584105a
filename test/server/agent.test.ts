/**
 * `microseg agent --endpoint`: the agent reads its enforcement points' desired state from a real
 * `microseg serve` on a real PostgreSQL and reports realization status through it. Only the kernel is
 * replaced (an executor that keeps the last applied document, as the kernel's nftables would); the
 * kernel path itself is covered by test/kernel/agent.test.ts.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ElementChange, NftExecutor, NftListing } from '../../provider/src/agent';
import { elementChangesText, readStatuses } from '../../provider/src/agent';
import { replaceTableText, type Table } from '../../provider/src/realize/nftables';
import { runAgent } from '../../provider/src/cli/realize-commands';
import { memoryIo } from '../../provider/src/cli/io';
import { startServer } from '../../provider/src/server/serve';
import { openPostgresStore } from '../../provider/src/store';
import { seedShop, startTeam, type Team } from '../support/team';

let team: Team;
const ENV = 'fleet';
beforeAll(async () => {
  team = await startTeam();
  await seedShop(team, ENV);
}, 120_000);
afterAll(async () => team?.close());

/** The kernel's nftables as far as the agent sees it: each swap or element update kept as the `nft -f` text it stands for. */
class KernelTables implements NftExecutor {
  readonly applied: unknown[] = [];
  async replaceTable(table: Table): Promise<void> {
    this.applied.push(replaceTableText(table));
  }
  async updateElements(table: Table, changes: readonly ElementChange[]): Promise<void> {
    this.applied.push(elementChangesText(table, changes));
  }
  async listTable(): Promise<NftListing | undefined> {
    return undefined;
  }
}

const agentIo = (token: string) => memoryIo({ env: { MICROSEG_TOKEN: token, MICROSEG_ENVIRONMENT: ENV } });
const statuses = async () => (await team.call('GET', `/v1/environments/${ENV}/realization`)).data.statuses as { point: string; state: string; desiredRevision: number; realizedRevision: number }[];

test('an agent with an agent token applies the ruleset the server computes and its realized status is visible through the server', async () => {
  // The ruleset the server's desired-ruleset route (and `microseg realize`) computes, before the agent runs.
  const desired = (await team.call('GET', `/v1/environments/${ENV}/realization/desired?point=workload:c1/pay/api`, { token: team.tokens.agent })).data;
  const kernel = new KernelTables();
  const io = agentIo(team.tokens.agent);
  const code = await runAgent({ points: ['workload:c1/pay/api'], once: true, endpoint: team.server.url, nft: kernel }, io);
  expect(io.out()).toMatch(/pod:c1\/pay\/api-0 +realized/);
  expect(code).toBe(0);
  const applied = kernel.applied as string[];
  expect(applied).toHaveLength(1);
  // The table swap as nft text, equal but for the agent's marker comment (how a restarted agent
  // recognises its own ruleset).
  const unmarked = (text: string) => text.replace(/ comment "microseg ruleset [0-9a-f]+"/g, '');
  const { table, text } = desired.points[0] as { table: string; text: string };
  expect(unmarked(applied[0]!)).toBe(`add table inet ${table}\ndelete table inet ${table}\n${text}`);
  const [s] = (await statuses()).filter((x) => x.point === desired.points[0].point);
  expect(s).toMatchObject({ state: 'realized', desiredRevision: desired.seq, realizedRevision: desired.seq });
  // Stored as a local agent stores it, so `microseg realization` and resource outputs read it.
  const store = await openPostgresStore({ url: team.storeUrl });
  try {
    expect((await readStatuses(store, ENV)).map((x) => x.point)).toContain(s.point);
  } finally {
    await store.close();
  }
});

test('a running agent watches the server: a policy change reaches its point and the reported revision follows', async () => {
  const kernel = new KernelTables();
  const ac = new AbortController();
  const running = runAgent({ points: ['workload:c1/shop/web'], endpoint: team.server.url, nft: kernel, intervalMs: 60_000 }, agentIo(team.tokens.agent), ac.signal);
  try {
    const reported = async (pred: (s: { desiredRevision: number; state: string }[]) => boolean) => {
      for (;;) {
        const mine = (await statuses()).filter((x) => x.point.startsWith('pod:c1/shop/web'));
        if (mine.length === 2 && pred(mine)) return mine;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const first = await reported((m) => m.every((s) => s.state === 'realized'));
    const put = await team.call('PUT', `/v1/environments/${ENV}/objects/FirewallPolicy/web-in`, {
      body: { spec: { name: 'web-in', appliedTo: ['shop-pods'], rules: [{ name: 'from-pay', action: 'allow', sources: [{ group: 'pay-pods' }], destinations: [{ group: 'shop-pods' }], services: [{ protocol: 'tcp', ports: [8080] }] }] } },
    });
    expect(put.status).toBe(201);
    const after = await reported((m) => m.every((s, i) => s.state === 'realized' && s.desiredRevision > first[i].desiredRevision));
    expect(after).toHaveLength(2);
    expect(JSON.stringify(kernel.applied[kernel.applied.length - 1])).toContain('8080');
  } finally {
    ac.abort();
    expect(await running).toBe(0);
  }
}, 30_000);

test('an auditor token cannot report status: the agent fails with the server\'s refusal and nothing is written', async () => {
  const before = await statuses();
  const io = agentIo(team.tokens.auditor);
  await expect(runAgent({ points: ['workload:c1/pay/api'], once: true, endpoint: team.server.url, nft: new KernelTables() }, io)).rejects.toThrow(/403: role auditor lacks permission realization\.report/);
  expect(await statuses()).toEqual(before);
});

test('over TLS with a private CA: refused without --ca-cert, realized with it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-agent-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  // A second replica on the same PostgreSQL, serving TLS.
  const tls = await startServer({ listen: '127.0.0.1:0', storeUrl: team.storeUrl, tlsCert: cert, tlsKey: key });
  try {
    expect(tls.url).toMatch(/^https:/);
    await expect(runAgent({ points: ['workload:c1/pay/api'], once: true, endpoint: tls.url, nft: new KernelTables() }, agentIo(team.tokens.agent))).rejects.toThrow(/cannot be reached: .*certificate.*; pass the CA of the server's certificate with --ca-cert/);
    const io = agentIo(team.tokens.agent);
    expect(await runAgent({ points: ['workload:c1/pay/api'], once: true, endpoint: tls.url, caCert: cert, nft: new KernelTables() }, io)).toBe(0);
    expect(io.out()).toMatch(/pod:c1\/pay\/api-0 +realized/);
  } finally {
    await tls.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
