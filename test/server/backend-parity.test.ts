/**
 * The provider behaves the same on both backends: the same provider core (as `pulumi-resource-microseg`
 * builds it) configured for the embedded store (a SQLite data directory) and for team mode
 * (`microseg:endpoint` + `microseg:token`, a real `microseg serve` on PostgreSQL) gets the same answers
 * to the same operations. Each scenario runs on both, and what it observed must be equal; the end-to-end
 * suites (jest project e2e-server) show the same through the real Pulumi CLI, this pins each divergence
 * found there to the operation that caused it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createProviderCore } from '../../provider/src/provider/main';
import type { ProviderCore } from '../../provider/src/provider/core';
import type { ProviderConfig } from '../../provider/src/model';
import { SECRET_SIG, SIG_KEY, type PropertyMap, type PropertyValue } from '../../provider/src/provider/values';
import { startTeam, type Team } from '../support/team';

jest.setTimeout(60_000);

let team: Team;
let dataDir: string;
beforeAll(async () => {
  team = await startTeam();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-parity-'));
}, 120_000);
afterAll(async () => {
  await team?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

type Core = ProviderCore<ProviderConfig>;
interface Run {
  core: Core;
  /** Warnings and infos the core logged, as `severity: message`. */
  logs: string[];
  urn(kind: string, name: string): string;
}

let stacks = 0;
/** Runs `scenario` on a fresh stack (environment) of each backend and returns what each observed. */
async function onBoth<T>(scenario: (run: Run) => Promise<T>): Promise<{ embedded: T; server: T }> {
  const stack = `parity-${++stacks}`;
  const results = {} as { embedded: T; server: T };
  for (const backend of ['embedded', 'server'] as const) {
    const core = createProviderCore();
    const logs: string[] = [];
    core.logger = { log: (severity: string, message: string) => void logs.push(`${severity}: ${message}`) } as Core['logger'];
    core.configure(backend === 'embedded' ? { dataDir } : { endpoint: team.server.url, token: team.tokens['security-admin'] }, { urn: `urn:pulumi:${stack}::parity::pulumi:providers:microseg::default` });
    try {
      results[backend] = await scenario({ core, logs, urn: (kind, name) => `urn:pulumi:${stack}::parity::microseg:index:${kind}::${name}` });
    } finally {
      core.close();
    }
  }
  return results;
}

/** What an operation gave: its result, or its error message. */
async function outcome<T>(p: Promise<T>): Promise<{ ok: T } | { error: string }> {
  try {
    return { ok: await p };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

const token = (kind: string) => `microseg:index:${kind}`;
const vm = (name: string, ip: string, labels: Record<string, string> = {}): PropertyMap => ({ name, interfaces: [{ ip }], labels });

test('create, read, update, delete and read again give the same outputs on both backends', async () => {
  const { embedded, server } = await onBoth(async ({ core, urn }) => {
    const u = urn('VirtualMachine', 'web-1');
    const created = await core.create({ token: token('VirtualMachine'), urn: u, properties: vm('web-1', '10.0.0.1'), preview: false });
    const read = await core.read({ token: token('VirtualMachine'), urn: u, id: created.id, inputs: {}, state: created.properties });
    const updated = await core.update({ token: token('VirtualMachine'), urn: u, id: created.id, news: vm('web-1', '10.0.0.2'), preview: false });
    const deleted = await outcome(core.delete({ token: token('VirtualMachine'), urn: u, id: created.id }));
    const gone = await core.read({ token: token('VirtualMachine'), urn: u, id: created.id, inputs: {}, state: updated.properties });
    return { created, read, updated, deleted, gone };
  });
  expect(server).toEqual(embedded);
  expect(embedded.deleted).toEqual({ ok: undefined });
  expect(embedded.gone.id).toBe('');
});

test('deleting a group whose user (naming it literally) is deleted at the same time waits for it, on both backends', async () => {
  const { embedded, server } = await onBoth(async ({ core, urn }) => {
    const g = await core.create({ token: token('SecurityGroup'), urn: urn('SecurityGroup', 'g1'), properties: { name: 'g1', ipBlocks: [{ cidr: '203.0.113.0/24' }] }, preview: false });
    const p = await core.create({ token: token('FirewallPolicy'), urn: urn('FirewallPolicy', 'p'), properties: { name: 'p', rules: [{ name: 'r', action: 'drop', sources: [{ group: 'g1' }] }] }, preview: false });
    // Pulumi knows no order between them: the group's delete may come first.
    const group = outcome(core.delete({ token: token('SecurityGroup'), urn: urn('SecurityGroup', 'g1'), id: g.id }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const policy = await outcome(core.delete({ token: token('FirewallPolicy'), urn: urn('FirewallPolicy', 'p'), id: p.id }));
    return { group: await group, policy };
  });
  expect(embedded).toEqual({ group: { ok: undefined }, policy: { ok: undefined } });
  expect(server).toEqual(embedded);
});

test('a preview reports the same policy impact and warnings, and a change that breaks an assertion fails with the same message', async () => {
  const { embedded, server } = await onBoth(async ({ core, urn, logs }) => {
    const put = (kind: string, name: string, properties: PropertyMap, preview = false) => core.create({ token: token(kind), urn: urn(kind, name), properties, preview });
    await put('VirtualMachine', 'web', vm('web', '10.1.0.1', { app: 'web' }));
    await put('VirtualMachine', 'db', vm('db', '10.2.0.1', { app: 'db' }));
    await put('SecurityGroup', 'web', { name: 'web', vmSelectors: [{ matchLabels: { app: 'web' } }] });
    await put('SecurityGroup', 'db', { name: 'db', vmSelectors: [{ matchLabels: { app: 'db' } }] });
    await put('FirewallPolicy', 'base', { name: 'base', rules: [{ name: 'web-db', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [5432] }] }] });
    await put('ConnectivityAssertion', 'no-ssh', { name: 'no-ssh', from: 'vm:web', to: 'vm:db', protocol: 'tcp', port: 22, expect: 'deny' });
    logs.length = 0;
    const opening = await outcome(put('FirewallPolicy', 'ssh', { name: 'ssh', category: 'emergency', rules: [{ name: 'all', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'db' }] }] }, true));
    const openingLogs = logs.splice(0);
    const tie = await outcome(put('FirewallPolicy', 'tie', { name: 'tie', rules: [{ name: 'http', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [80] }] }] }, true));
    return { opening, openingLogs, tie, tieLogs: logs.splice(0) };
  });
  expect(embedded.opening).toEqual({ error: expect.stringContaining('breaks connectivity assertion') });
  expect(embedded.tieLogs).toEqual(expect.arrayContaining([expect.stringMatching(/^info: policy impact of FirewallPolicy "tie": /), expect.stringMatching(/^warning: policies "base" and "tie" share priority/)]));
  expect(server).toEqual(embedded);
});

test('an import claims the object, and a create of another stack\'s object is refused with the same message', async () => {
  const { embedded, server } = await onBoth(async ({ core, urn }) => {
    await core.create({ token: token('VirtualMachine'), urn: urn('VirtualMachine', 'legacy'), properties: vm('legacy', '10.3.0.1'), preview: false });
    const adopter = 'urn:pulumi:other::parity::microseg:index:VirtualMachine::adopted';
    const imported = await core.read({ token: token('VirtualMachine'), urn: adopter, id: 'legacy', inputs: {}, state: {} });
    const taken = await outcome(core.create({ token: token('VirtualMachine'), urn: urn('VirtualMachine', 'legacy'), properties: vm('legacy', '10.3.0.1'), preview: true }));
    const missing = await core.read({ token: token('VirtualMachine'), urn: adopter, id: 'no-such-vm', inputs: {}, state: {} });
    return { imported, taken, missing };
  });
  expect(embedded.taken).toEqual({ error: expect.stringContaining('is managed by resource "adopted" (microseg:index:VirtualMachine) of stack "other"') });
  expect(server).toEqual(embedded);
});

test('invalid references and functions give the same results and errors', async () => {
  const { embedded, server } = await onBoth(async ({ core, urn }) => {
    await core.create({ token: token('VirtualMachine'), urn: urn('VirtualMachine', 'a'), properties: vm('a', '10.4.0.1'), preview: false });
    const dangling = await outcome(core.create({ token: token('FirewallPolicy'), urn: urn('FirewallPolicy', 'p'), properties: { name: 'p', appliedTo: ['nowhere'], rules: [{ name: 'r', action: 'drop' }] }, preview: false }));
    const trace = await core.invoke({ token: 'microseg:index:traceflow', args: { source: 'vm:a', destination: '10.9.9.9', protocol: 'tcp', port: 443 } });
    const members = await outcome(core.invoke({ token: 'microseg:index:getGroupMembers', args: { group: 'nowhere' } }));
    return { dangling, trace, members };
  });
  expect(embedded.dangling).toEqual({ error: expect.stringContaining('nowhere') });
  expect(embedded.trace.result).toMatchObject({ verdict: 'drop', decidingPolicy: 'default' });
  expect(server).toEqual(embedded);
});

test('a secret input is read back as a secret, also by an import that has no state yet', async () => {
  const secret = (value: PropertyValue): PropertyValue => ({ [SIG_KEY]: SECRET_SIG, value });
  const { embedded, server } = await onBoth(async ({ core, urn }) => {
    const properties = { name: 'sealed', description: secret('pager 555-0100'), rules: [{ name: 'r', action: 'drop' }] };
    const created = await core.create({ token: token('FirewallPolicy'), urn: urn('FirewallPolicy', 'sealed'), properties, preview: false });
    const refreshed = await core.read({ token: token('FirewallPolicy'), urn: urn('FirewallPolicy', 'sealed'), id: created.id, inputs: properties, state: created.properties });
    const imported = await core.read({ token: token('FirewallPolicy'), urn: 'urn:pulumi:other::parity::microseg:index:FirewallPolicy::sealed', id: created.id, inputs: {}, state: {} });
    return { created, refreshed, imported };
  });
  expect(embedded.imported.inputs.description).toEqual(secret('pager 555-0100'));
  expect(server).toEqual(embedded);
});

test('the server refuses deleting a referenced object with 409 in-use naming its users (what the client waits on), and deletes nothing', async () => {
  const base = '/v1/environments/parity-api/objects';
  expect((await team.call('PUT', `${base}/SecurityGroup/g1`, { body: { spec: { name: 'g1', ipBlocks: [{ cidr: '203.0.113.0/24' }] } } })).status).toBe(201);
  expect((await team.call('PUT', `${base}/FirewallPolicy/p`, { body: { spec: { name: 'p', rules: [{ name: 'r', action: 'drop', sources: [{ group: 'g1' }] }] } } })).status).toBe(201);
  const refused = await team.call('DELETE', `${base}/SecurityGroup/g1`);
  expect([refused.status, refused.data.error.code, refused.data.error.problems]).toEqual([409, 'in-use', [{ path: '', message: 'FirewallPolicy "p"' }]]);
  expect((await team.call('GET', `${base}/SecurityGroup/g1`)).status).toBe(200);
});
