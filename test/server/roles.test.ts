/**
 * Roles × operations, enforced by the server on every route (functions included), and the refusals of the
 * security review: no token, wrong token, a role outside its rights, oversized bodies, malformed JSON,
 * path traversal in names. Every refusal writes nothing; tokens never appear in logs.
 */
import { Writable } from 'node:stream';
import axios from 'axios';
import { buildApp } from '../../provider/src/server/app';
import { ROLES, type Role } from '../../provider/src/server/roles';
import { parseToken } from '../../provider/src/server/tokens';
import { openPostgresStore } from '../../provider/src/store';
import { seedShop, startTeam, type Team } from '../support/team';

let team: Team;
const ENV = 'rbac';
beforeAll(async () => {
  team = await startTeam();
  await seedShop(team, ENV);
}, 120_000);
afterAll(async () => team?.close());

const policy = (name: string, extra: Record<string, unknown>) => ({ spec: { name, rules: [{ name: 'r', action: 'allow', sources: [{ group: 'shop-pods' }] }], ...extra } });

interface Op {
  readonly name: string;
  /** Sends the operation as `role`; names are per role so allowed writes do not collide. */
  run(role: Role, token: string): Promise<{ status: number; data: unknown }>;
  /** For writes: whether the object exists afterwards (a refused write must leave nothing). */
  written?(role: Role): Promise<boolean>;
}

const exists = async (kind: string, name: string) => (await team.call('GET', `/v1/environments/${ENV}/objects/${kind}/${name}`)).status === 200;
const put = (token: string, kind: string, name: string, body: unknown) => team.call('PUT', `/v1/environments/${ENV}/objects/${kind}/${name}`, { token, body });

const status = (point: string) => ({
  point,
  table: 'microseg_x',
  desiredRevision: 1,
  realizedRevision: 1,
  state: 'realized',
  rules: 0,
  elements: 0,
  hits: [],
  agent: { host: 'h', pid: 1 },
  updatedAt: new Date(0).toISOString(),
});
/** A flow record whose rule names the role that reported it (`rbac/<role>`), so each role's write is found. */
const flowRecord = (id: string) => ({
  id,
  point: 'pod:c1/shop/web-0',
  direction: 'in',
  protocol: 'tcp',
  sourceIp: '10.10.0.9',
  sourcePort: 40000,
  destinationIp: '10.10.0.2',
  destinationPort: 8080,
  verdict: 'allow',
  rule: `rbac/${id.slice('rbac-'.length)}`,
  firstSeen: new Date().toISOString(),
  lastSeen: new Date().toISOString(),
  packets: 3,
  bytes: 180,
});
const reported = async (point: string) =>
  ((await team.call('GET', `/v1/environments/${ENV}/realization`)).data as { statuses: { point: string }[] }).statuses.some((s) => s.point === point);

const OPS: Op[] = [
  { name: 'list objects', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/objects`, { token: t }) },
  { name: 'read an object', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/objects/SecurityGroup/shop-pods`, { token: t }) },
  { name: 'watch the change log', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/changes?since=0`, { token: t }) },
  { name: 'read the audit log', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/audit?limit=1`, { token: t }) },
  { name: 'traceflow', run: (_r, t) => team.call('POST', `/v1/environments/${ENV}/functions/traceflow`, { token: t, body: { source: 'c1/shop/web', destination: 'c1/pay/api' } }) },
  { name: 'effective rules', run: (_r, t) => team.call('POST', `/v1/environments/${ENV}/functions/getEffectiveRules`, { token: t, body: { target: 'c1/shop/web' } }) },
  { name: 'read the desired ruleset of an enforcement point', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/realization/desired?point=workload:c1/pay/api`, { token: t }) },
  { name: 'read realization statuses', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/realization`, { token: t }) },
  {
    name: 'report realization status',
    run: (r, t) => team.call('PUT', `/v1/environments/${ENV}/realization/status`, { token: t, body: status(`pod:c1/x/${r}`) }),
    written: (r) => reported(`pod:c1/x/${r}`),
  },
  {
    name: 'report flow records',
    run: (r, t) => team.call('POST', `/v1/environments/${ENV}/flows`, { token: t, body: { records: [flowRecord(`rbac-${r}`)] } }),
    written: async (r) => (await team.call('GET', `/v1/environments/${ENV}/flows?rule=rbac/${r}`)).data.records.length === 1,
  },
  { name: 'read flow records', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/flows?limit=1`, { token: t }) },
  { name: 'read flows aggregated', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/flows/summary?by=group`, { token: t }) },
  { name: 'read rule statistics', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/rule-stats?since=1h`, { token: t }) },
  { name: 'read the flows view of the page', run: (_r, t) => team.call('GET', `/v1/environments/${ENV}/visibility/flows`, { token: t }) },
  {
    name: 'impact of a planned change',
    run: (r, t) => team.call('POST', `/v1/environments/${ENV}/impact/FirewallPolicy/impact-${r}`, { token: t, body: policy(`impact-${r}`, { appliedTo: ['shop-pods'] }) }),
  },
  {
    name: 'create a VirtualMachine (inventory)',
    run: (r, t) => put(t, 'VirtualMachine', `vm-${r}`, { spec: { name: `vm-${r}`, interfaces: [{ ip: `10.1.${ROLES.indexOf(r)}.1` }] } }),
    written: (r) => exists('VirtualMachine', `vm-${r}`),
  },
  {
    name: 'create a SecurityGroup',
    run: (r, t) => put(t, 'SecurityGroup', `g-${r}`, { spec: { name: `g-${r}`, podSelectors: [{ cluster: 'c1', namespaces: ['shop'] }] } }),
    written: (r) => exists('SecurityGroup', `g-${r}`),
  },
  {
    name: 'create a Workload in its namespace',
    run: (r, t) => put(t, 'Workload', `c1/shop/w-${r}`, { spec: { name: `w-${r}`, cluster: 'c1', namespace: 'shop' } }),
    written: (r) => exists('Workload', `c1/shop/w-${r}`),
  },
  {
    name: 'create a Workload in another namespace',
    run: (r, t) => put(t, 'Workload', `c1/pay/w-${r}`, { spec: { name: `w-${r}`, cluster: 'c1', namespace: 'pay' } }),
    written: (r) => exists('Workload', `c1/pay/w-${r}`),
  },
  {
    name: 'create a KubernetesNetworkPolicy in its namespace',
    run: (r, t) => put(t, 'KubernetesNetworkPolicy', `c1/shop/np-${r}`, { spec: { name: `np-${r}`, cluster: 'c1', namespace: 'shop', ingress: [{}] } }),
    written: (r) => exists('KubernetesNetworkPolicy', `c1/shop/np-${r}`),
  },
  {
    name: 'create a KubernetesNetworkPolicy in another namespace',
    run: (r, t) => put(t, 'KubernetesNetworkPolicy', `c1/pay/np-${r}`, { spec: { name: `np-${r}`, cluster: 'c1', namespace: 'pay', ingress: [{}] } }),
    written: (r) => exists('KubernetesNetworkPolicy', `c1/pay/np-${r}`),
  },
  {
    name: 'preview an application policy on its pods',
    run: (r, t) => team.call('POST', `/v1/environments/${ENV}/plan/FirewallPolicy/pv-${r}`, { token: t, body: policy(`pv-${r}`, { appliedTo: ['shop-pods'] }) }),
  },
  {
    name: 'create an application policy on its pods',
    run: (r, t) => put(t, 'FirewallPolicy', `app-${r}`, policy(`app-${r}`, { appliedTo: ['shop-pods'] })),
    written: (r) => exists('FirewallPolicy', `app-${r}`),
  },
  {
    name: 'widen an application policy to every pod',
    run: (r, t) => put(t, 'FirewallPolicy', `wide-${r}`, policy(`wide-${r}`, { appliedTo: ['all-pods'] })),
    written: (r) => exists('FirewallPolicy', `wide-${r}`),
  },
  {
    name: 'create an application policy applied everywhere',
    run: (r, t) => put(t, 'FirewallPolicy', `everywhere-${r}`, policy(`everywhere-${r}`, {})),
    written: (r) => exists('FirewallPolicy', `everywhere-${r}`),
  },
  {
    name: 'create an infrastructure-category policy',
    run: (r, t) => put(t, 'FirewallPolicy', `infra-${r}`, policy(`infra-${r}`, { category: 'infrastructure', appliedTo: ['shop-pods'] })),
    written: (r) => exists('FirewallPolicy', `infra-${r}`),
  },
  {
    name: 'create a QuarantinePolicy',
    run: (r, t) => put(t, 'QuarantinePolicy', `q-${r}`, { spec: { name: `q-${r}`, selector: { matchLabels: { quarantine: 'yes' } } } }),
    written: (r) => exists('QuarantinePolicy', `q-${r}`),
  },
];

type Cell = 'allow' | 'deny';
// Rows follow OPS; columns: security-admin, app-owner (c1/shop), auditor, agent.
const MATRIX: Record<string, [Cell, Cell, Cell, Cell]> = {
  'list objects': ['allow', 'allow', 'allow', 'allow'],
  'read an object': ['allow', 'allow', 'allow', 'allow'],
  'watch the change log': ['allow', 'allow', 'allow', 'allow'],
  'read the audit log': ['allow', 'deny', 'allow', 'deny'],
  traceflow: ['allow', 'allow', 'allow', 'deny'],
  'effective rules': ['allow', 'allow', 'allow', 'allow'],
  'read the desired ruleset of an enforcement point': ['allow', 'allow', 'allow', 'allow'],
  'read realization statuses': ['allow', 'allow', 'allow', 'allow'],
  'report realization status': ['allow', 'deny', 'deny', 'allow'],
  'report flow records': ['allow', 'deny', 'deny', 'allow'],
  'read flow records': ['allow', 'allow', 'allow', 'deny'],
  'read flows aggregated': ['allow', 'allow', 'allow', 'deny'],
  'read rule statistics': ['allow', 'allow', 'allow', 'deny'],
  'read the flows view of the page': ['allow', 'allow', 'allow', 'deny'],
  'impact of a planned change': ['allow', 'allow', 'allow', 'deny'],
  'create a VirtualMachine (inventory)': ['allow', 'deny', 'deny', 'deny'],
  'create a SecurityGroup': ['allow', 'deny', 'deny', 'deny'],
  'create a Workload in its namespace': ['allow', 'allow', 'deny', 'deny'],
  'create a Workload in another namespace': ['allow', 'deny', 'deny', 'deny'],
  'create a KubernetesNetworkPolicy in its namespace': ['allow', 'allow', 'deny', 'deny'],
  'create a KubernetesNetworkPolicy in another namespace': ['allow', 'deny', 'deny', 'deny'],
  'preview an application policy on its pods': ['allow', 'allow', 'deny', 'deny'],
  'create an application policy on its pods': ['allow', 'allow', 'deny', 'deny'],
  'widen an application policy to every pod': ['allow', 'deny', 'deny', 'deny'],
  'create an application policy applied everywhere': ['allow', 'deny', 'deny', 'deny'],
  'create an infrastructure-category policy': ['allow', 'deny', 'deny', 'deny'],
  'create a QuarantinePolicy': ['allow', 'deny', 'deny', 'deny'],
};

describe.each(ROLES.map((role, column) => ({ role, column })))('role $role', ({ role, column }) => {
  test.each(OPS.map((op) => ({ op, name: op.name })))('$name', async ({ op }) => {
    const expected = MATRIX[op.name][column];
    const r = await op.run(role, team.tokens[role]);
    if (expected === 'allow') {
      expect([r.status, r.data]).toEqual([expect.any(Number), expect.anything()]);
      expect(r.status).toBeLessThan(300);
    } else {
      expect(r.status).toBe(403);
      const error = (r.data as { error: { message: string; role: string; permission: string } }).error;
      // The refusal names the role and the missing permission.
      expect(error.role).toBe(role);
      expect(error.message).toContain(`role ${role} lacks permission ${error.permission}`);
    }
    if (op.written) expect(await op.written(role)).toBe(expected === 'allow');
  });
});

test('an app owner cannot take over or delete objects outside its namespaces', async () => {
  const owner = team.tokens['app-owner'];
  // The pay namespace's workload, renamed into shop: refused because the stored object is pay's.
  expect((await team.call('DELETE', `/v1/environments/${ENV}/objects/Workload/c1/pay/api`, { token: owner })).status).toBe(403);
  expect(await exists('Workload', 'c1/pay/api')).toBe(true);
  // Another app owner (namespace pay) cannot change the shop owner's policy.
  expect((await put(owner, 'FirewallPolicy', 'shop-owned', policy('shop-owned', { appliedTo: ['shop-pods'] }))).status).toBe(201);
  const other = await put(team.tokens.appOwnerPay, 'FirewallPolicy', 'shop-owned', { ...policy('shop-owned', { appliedTo: ['pay-pods'] }), mode: 'update' });
  expect(other.status).toBe(403);
  expect((await team.call('GET', `/v1/environments/${ENV}/objects/FirewallPolicy/shop-owned`)).data.spec.appliedTo).toEqual(['shop-pods']);
});

describe('refused requests write nothing', () => {
  const vmBody = (name: string) => JSON.stringify({ spec: { name, interfaces: [{ ip: '10.9.0.1' }] } });
  const cases: Array<{ name: string; send: () => Promise<{ status: number }>; status: number }> = [
    { name: 'no token', send: () => team.call('PUT', `/v1/environments/${ENV}/objects/VirtualMachine/sec1`, { token: null, raw: vmBody('sec1') }), status: 401 },
    { name: 'a wrong token', send: () => team.call('PUT', `/v1/environments/${ENV}/objects/VirtualMachine/sec1`, { token: `mseg_aaaaaaaaaaaa_${'x'.repeat(43)}`, raw: vmBody('sec1') }), status: 401 },
    { name: 'a malformed token', send: () => team.call('PUT', `/v1/environments/${ENV}/objects/VirtualMachine/sec1`, { token: 'hunter2', raw: vmBody('sec1') }), status: 401 },
    { name: 'an oversized body', send: () => team.call('PUT', `/v1/environments/${ENV}/objects/VirtualMachine/sec1`, { raw: JSON.stringify({ spec: { name: 'sec1', interfaces: [{ ip: '10.9.0.1' }], labels: { big: 'x'.repeat(5 * 1024 * 1024) } } }) }), status: 413 },
    { name: 'malformed JSON', send: () => team.call('PUT', `/v1/environments/${ENV}/objects/VirtualMachine/sec1`, { raw: '{"spec": {"name": "sec1",' }), status: 400 },
    { name: 'a ".." name', send: () => team.call('PUT', `/v1/environments/${ENV}/objects/VirtualMachine/..%2F..%2Fsec1`, { raw: vmBody('../../sec1') }), status: 400 },
    { name: 'a name with "/../"', send: () => team.call('PUT', `/v1/environments/${ENV}/objects/Workload/c1/../sec1`, { raw: JSON.stringify({ spec: { name: 'sec1', cluster: 'c1', namespace: '..' } }) }), status: 400 },
    { name: 'the reserved system environment', send: () => team.call('GET', '/v1/environments/microseg.system/objects'), status: 400 },
  ];
  test.each(cases)('$name → $status', async ({ send, status }) => {
    const before = (await team.call('GET', `/v1/environments/${ENV}/changes?since=0&limit=10000`)).data.seq;
    expect((await send()).status).toBe(status);
    expect((await team.call('GET', `/v1/environments/${ENV}/changes?since=0&limit=10000`)).data.seq).toBe(before);
  });
});

test('tokens never appear in the request log', async () => {
  let log = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      log += String(chunk);
      cb();
    },
  });
  const store = await openPostgresStore({ url: team.storeUrl });
  const server = await buildApp({ store, logger: { level: 'trace', stream: sink, redact: ['req.headers.authorization'] } });
  try {
    const token = team.tokens['security-admin'];
    const base = await server.app.listen({ host: '127.0.0.1', port: 0 });
    await axios.get(`${base}/v1/environments/${ENV}/objects`, { headers: { authorization: `Bearer ${token}` } });
    await axios.get(`${base}/v1/environments/${ENV}/objects`, { headers: { authorization: 'Bearer mseg_bbbbbbbbbbbb_wrongwrongwrongwrongwrongwrongwrongwrongwro' }, validateStatus: () => true });
    await axios.put(`${base}/v1/environments/${ENV}/objects/VirtualMachine/x`, '{bad', { headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, validateStatus: () => true });
    expect(log).toContain('/v1/environments/rbac/objects');
    expect(log).not.toContain(parseToken(token)!.secret);
    expect(log).not.toContain('wrongwrong');
  } finally {
    await server.app.close();
    await store.close();
  }
});
