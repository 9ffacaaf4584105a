/** The team-mode HTTP API on a real PostgreSQL: objects and revisions, the change log as a watch, functions, audit, OpenAPI. */
import axios from 'axios';
import { readStatuses } from '../../provider/src/agent';
import { openPostgresStore } from '../../provider/src/store';
import { startServer } from '../../provider/src/server/serve';
import { createToken, parseToken } from '../../provider/src/server/tokens';
import { seedShop, startTeam, type Team } from '../support/team';

let team: Team;
beforeAll(async () => {
  team = await startTeam();
}, 120_000);
afterAll(async () => team?.close());

const vm = (name: string, ip: string) => ({ spec: { name, interfaces: [{ ip }], labels: { app: 'web' } } });

test('health and readiness answer without a token', async () => {
  expect((await team.call('GET', '/healthz', { token: null })).data).toEqual({ status: 'ok' });
  expect((await team.call('GET', '/readyz', { token: null })).status).toBe(200);
});

test('the OpenAPI 3.1 document is generated from the model: every kind, every function, the property descriptions', async () => {
  const doc = (await team.call('GET', '/openapi.json', { token: null })).data;
  expect(doc.openapi).toBe('3.1.0');
  const paths = Object.keys(doc.paths);
  for (const kind of ['VirtualMachine', 'Workload', 'FirewallPolicy', 'ConnectivityAssertion']) expect(paths).toContain(`/v1/environments/{env}/objects/${kind}/{*}`);
  for (const fn of ['traceflow', 'getEffectiveRules', 'getGroupMembers', 'getConnectivityMatrix', 'getKubernetesManifests']) expect(paths).toContain(`/v1/environments/{env}/functions/${fn}`);
  const policyBody = doc.paths['/v1/environments/{env}/objects/FirewallPolicy/{*}'].put.requestBody.content['application/json'].schema;
  expect(policyBody.properties.spec.properties.category.enum).toEqual(['emergency', 'infrastructure', 'environment', 'application', 'baseline']);
  expect(policyBody.properties.spec.properties.appliedTo.description).toMatch(/SecurityGroup names/);
});

test('create, read with ETag, update with If-Match; a stale If-Match is 412 and a second create is 409, neither writes', async () => {
  const created = await team.call('PUT', '/v1/environments/api/objects/VirtualMachine/web-1', { body: vm('web-1', '10.0.0.1') });
  expect(created.status).toBe(201);
  expect(created.data.revision).toBe(1);
  const read = await team.call('GET', '/v1/environments/api/objects/VirtualMachine/web-1');
  expect(read.headers.etag).toBe('"1"');
  expect(read.data).toMatchObject({ kind: 'VirtualMachine', name: 'web-1', spec: { interfaces: [{ ip: '10.0.0.1' }] }, revision: 1 });
  expect((await team.call('PUT', '/v1/environments/api/objects/VirtualMachine/web-1', { body: vm('web-1', '10.0.0.9') })).status).toBe(409);
  const stale = await team.call('PUT', '/v1/environments/api/objects/VirtualMachine/web-1', { body: vm('web-1', '10.0.0.9'), headers: { 'if-match': '"7"' } });
  expect(stale.status).toBe(412);
  expect(stale.data.error.message).toMatch(/expected revision 7, found 1/);
  const updated = await team.call('PUT', '/v1/environments/api/objects/VirtualMachine/web-1', { body: vm('web-1', '10.0.0.2'), headers: { 'if-match': '"1"' } });
  expect(updated.status).toBe(200);
  expect(updated.headers.etag).toBe('"2"');
  expect((await team.call('GET', '/v1/environments/api/objects/VirtualMachine/web-1')).data.spec.interfaces).toEqual([{ ip: '10.0.0.2' }]);
  expect((await team.call('DELETE', '/v1/environments/api/objects/VirtualMachine/web-1', { headers: { 'if-match': '"1"' } })).status).toBe(412);
  expect((await team.call('DELETE', '/v1/environments/api/objects/VirtualMachine/web-1', { headers: { 'if-match': '"2"' } })).status).toBe(204);
  expect((await team.call('DELETE', '/v1/environments/api/objects/VirtualMachine/web-1')).status).toBe(404);
});

test('invalid specs are 422 with the property path; a misspelt property and a URL naming another object are 400', async () => {
  const bad = await team.call('PUT', '/v1/environments/api/objects/Workload/c9/ns/w', { body: { spec: { name: 'w', cluster: 'c9', namespace: 'ns' } } });
  expect(bad.status).toBe(422);
  expect(bad.data.error.problems[0]).toMatchObject({ path: 'cluster' });
  const typo = await team.call('PUT', '/v1/environments/api/objects/VirtualMachine/v', { body: { spec: { name: 'v', interfaces: [{ ip: '10.0.0.3' }], label: { a: 'b' } } } });
  expect(typo.status).toBe(400);
  expect(typo.data.error.message).toMatch(/unknown property label/);
  const schema = await team.call('PUT', '/v1/environments/api/objects/VirtualMachine/v', { body: { spec: { name: 'v', interfaces: [] } } });
  expect(schema.status).toBe(400);
  expect(schema.data.error.problems[0].path).toBe('spec.interfaces');
  expect((await team.call('PUT', '/v1/environments/api/objects/VirtualMachine/other', { body: vm('v', '10.0.0.3') })).status).toBe(400);
  expect((await team.call('GET', '/v1/environments/api/objects/VirtualMachine/v')).status).toBe(404);
});

test('functions run on the shared state: traceflow, members, effective rules, matrix, and the impact of a planned change', async () => {
  await seedShop(team, 'fn');
  const members = await team.call('POST', '/v1/environments/fn/functions/getGroupMembers', { body: { group: 'shop-pods' } });
  expect(members.data.count).toBe(2);
  const trace = await team.call('POST', '/v1/environments/fn/functions/traceflow', { body: { source: 'c1/shop/web', destination: 'c1/pay/api', port: 443 } });
  expect(trace.data).toMatchObject({ verdict: 'drop', decidingPolicy: 'default' });
  const policy = {
    spec: { name: 'shop-to-pay', appliedTo: ['all-pods'], rules: [{ name: 'https', action: 'allow', sources: [{ group: 'shop-pods' }], destinations: [{ group: 'pay-pods' }], services: [{ protocol: 'tcp', ports: [443] }] }] },
  };
  const impact = await team.call('POST', '/v1/environments/fn/impact/FirewallPolicy/shop-to-pay', { body: policy });
  expect(impact.status).toBe(200);
  expect(impact.data.impact.join(' ')).toMatch(/allow/);
  // Impact wrote nothing and left no planned state behind.
  expect((await team.call('GET', '/v1/environments/fn/objects/FirewallPolicy/shop-to-pay')).status).toBe(404);
  expect((await team.call('POST', '/v1/environments/fn/functions/traceflow', { body: { source: 'c1/shop/web', destination: 'c1/pay/api', port: 443 } })).data.verdict).toBe('drop');
  expect((await team.call('PUT', '/v1/environments/fn/objects/FirewallPolicy/shop-to-pay', { body: policy })).status).toBe(201);
  expect((await team.call('POST', '/v1/environments/fn/functions/traceflow', { body: { source: 'c1/shop/web', destination: 'c1/pay/api', port: 443 } })).data.verdict).toBe('allow');
  const rules = await team.call('POST', '/v1/environments/fn/functions/getEffectiveRules', { body: { target: 'c1/pay/api' } });
  expect(rules.data.rules.some((r: { policy: string }) => r.policy === 'shop-to-pay')).toBe(true);
  const matrix = await team.call('POST', '/v1/environments/fn/functions/getConnectivityMatrix', { body: { groups: ['shop-pods', 'pay-pods'], port: 443 } });
  expect(matrix.status).toBe(200);
  const bad = await team.call('POST', '/v1/environments/fn/functions/getGroupMembers', { body: { group: 'nope' } });
  expect(bad.status).toBe(422);
});

test('the visibility views are served per environment: topology, flows, traceflow; a bad query is 400 with the parameter', async () => {
  await seedShop(team, 'vis');
  const topo = await team.call('GET', '/v1/environments/vis/visibility/topology?protocol=tcp&port=443');
  expect(topo.status).toBe(200);
  expect((topo.data.nodes as { id: string }[]).map((n) => n.id)).toEqual(expect.arrayContaining(['workload:c1/shop/web', 'group:shop-pods', 'namespace:c1/pay']));
  expect((await team.call('GET', '/v1/environments/vis/visibility/flows')).data).toEqual([]);
  const trace = await team.call('GET', '/v1/environments/vis/visibility/traceflow?from=c1/shop/web&to=c1/pay/api&port=443');
  expect(trace.data).toMatchObject({ verdict: 'drop', decidingPolicy: 'default' });
  const bad = await team.call('GET', '/v1/environments/vis/visibility/flows?verdict=maybe');
  expect([bad.status, bad.data]).toEqual([400, { error: 'verdict: "maybe" is not a verdict; expected allow, drop or reject' }]);
});

test('previews are per session: one client sees its own planned objects, another does not, and nothing is written', async () => {
  const spec = vm('planned', '10.0.1.1');
  expect((await team.call('POST', '/v1/environments/plan/plan/VirtualMachine/planned', { body: spec, headers: { 'x-microseg-session': 'a' } })).status).toBe(200);
  const trace = (session: string) => team.call('POST', '/v1/environments/plan/functions/traceflow', { body: { source: 'planned', destination: '10.0.9.9' }, headers: { 'x-microseg-session': session } });
  expect((await trace('a')).status).toBe(200);
  expect((await trace('b')).status).toBe(422);
  expect((await team.call('GET', '/v1/environments/plan/objects')).data.items).toEqual([]);
});

test('the change log is a watch: resume from a seq, long-poll until a write, 410 for a seq from the future', async () => {
  const list = await team.call('GET', '/v1/environments/watch/objects');
  const since = list.data.seq;
  const waiting = team.call('GET', `/v1/environments/watch/changes?since=${since}&wait=20`);
  await new Promise((r) => setTimeout(r, 200));
  await team.call('PUT', '/v1/environments/watch/objects/VirtualMachine/w1', { body: vm('w1', '10.0.2.1') });
  const got = await waiting;
  expect(got.status).toBe(200);
  expect(got.data.changes.map((c: { name: string; op: string }) => `${c.op} ${c.name}`)).toEqual(['create w1']);
  const resumed = await team.call('GET', `/v1/environments/watch/changes?since=${got.data.seq}`);
  expect(resumed.data.changes).toEqual([]);
  const future = await team.call('GET', `/v1/environments/watch/changes?since=${got.data.seq + 1000}`);
  expect(future.status).toBe(410);
  expect(future.data.error.message).toMatch(/list the objects again/);
});

test('every change is audited: actor (token id, never the secret), role, revision and what changed', async () => {
  await team.call('PUT', '/v1/environments/audited/objects/VirtualMachine/a1', { body: vm('a1', '10.0.3.1') });
  await team.call('PUT', '/v1/environments/audited/objects/VirtualMachine/a1', { body: { spec: { name: 'a1', interfaces: [{ ip: '10.0.3.2' }], labels: { app: 'web' } } }, headers: { 'if-match': '1' } });
  await team.call('DELETE', '/v1/environments/audited/objects/VirtualMachine/a1');
  const audit = await team.call('GET', '/v1/environments/audited/audit', { token: team.tokens.auditor });
  const adminId = parseToken(team.tokens['security-admin'])!.id;
  expect(audit.data.records.map((r: Record<string, unknown>) => [r.actor, r.role, r.op, r.revision, r.summary])).toEqual([
    [`token:${adminId}`, 'security-admin', 'create', 1, 'created'],
    [`token:${adminId}`, 'security-admin', 'update', 2, 'changed interfaces'],
    [`token:${adminId}`, 'security-admin', 'delete', 3, 'deleted'],
  ]);
  expect(JSON.stringify(audit.data)).not.toContain(parseToken(team.tokens['security-admin'])!.secret);
  // Audit records are not objects of the environment, nor entries of its change log (they have their own table).
  expect((await team.call('GET', '/v1/environments/audited/objects')).data.items).toEqual([]);
  const log = (await team.call('GET', '/v1/environments/audited/changes?since=0')).data.changes as { kind: string; op: string }[];
  expect(log.map((c) => `${c.kind} ${c.op}`)).toEqual(['VirtualMachine create', 'VirtualMachine update', 'VirtualMachine delete']);
});

test('graceful shutdown: every write the server accepted before shutdown is finished and acknowledged; nothing else is written', async () => {
  const url = await team.pg.createDatabase('drain');
  const server = await startServer({ listen: '127.0.0.1:0', storeUrl: url });
  const token = (await createToken(server.store, { role: 'security-admin' })).token;
  let closeStarted = Number.POSITIVE_INFINITY;
  const finishedAfterClose: number[] = [];
  const writes = Array.from({ length: 20 }, (_, i) =>
    axios
      .put(`${server.url}/v1/environments/drain/objects/VirtualMachine/d${i}`, vm(`d${i}`, `10.0.4.${i + 1}`), { headers: { authorization: `Bearer ${token}` }, validateStatus: () => true })
      .then((r) => {
        if (r.status === 201 && Date.now() > closeStarted) finishedAfterClose.push(i);
        return r;
      }),
  );
  // Once one write is acknowledged the others have reached the server and queue behind it.
  await Promise.race(writes);
  closeStarted = Date.now();
  const closing = server.close();
  // Requests not yet accepted are refused (a reset, or 503 on a kept-alive connection): clients retry elsewhere.
  const outcomes = await Promise.allSettled(writes);
  await closing;
  const statuses = outcomes.map((o) => (o.status === 'fulfilled' ? o.value.status : 'reset'));
  expect(statuses.filter((s) => s !== 201 && s !== 503 && s !== 'reset')).toEqual([]);
  expect(finishedAfterClose.length).toBeGreaterThan(0);
  const acknowledged = statuses.filter((s) => s === 201).length;
  const store = await openPostgresStore({ url });
  try {
    expect((await store.list('drain')).filter((o) => o.kind === 'VirtualMachine')).toHaveLength(acknowledged);
  } finally {
    await store.close();
  }
}, 60_000);

test('secret-marked inputs are stored encrypted and read back in clear, with their paths', async () => {
  const policy = { name: 'sealed', description: 'pager 555-0100', rules: [{ name: 'r', action: 'drop' }] };
  expect((await team.call('PUT', '/v1/environments/secrets/objects/FirewallPolicy/sealed', { body: { spec: policy, secretPaths: ['description'] } })).status).toBe(201);
  const raw = await openPostgresStore({ url: team.storeUrl });
  try {
    expect(JSON.stringify(await raw.get('secrets', 'FirewallPolicy', 'sealed'))).not.toContain('555-0100');
  } finally {
    await raw.close();
  }
  const read = await team.call('GET', '/v1/environments/secrets/objects/FirewallPolicy/sealed');
  expect(read.data.spec.description).toBe('pager 555-0100');
  expect(read.data.secretPaths).toEqual(['description']);
});

test('an agent reads the desired ruleset of its enforcement point with the seq to watch from, and its status report is what `realization` reads', async () => {
  await seedShop(team, 'agents');
  const desired = await team.call('GET', '/v1/environments/agents/realization/desired?point=workload:c1/pay/api', { token: team.tokens.agent });
  expect(desired.status).toBe(200);
  const [point] = desired.data.points;
  expect(desired.data.points).toHaveLength(1);
  expect(point.point).toMatch(/^pod:c1\/pay\/api/);
  expect(point.nft.nftables[0]).toEqual({ add: { table: { family: 'inet', name: point.table } } });
  expect(point.text).toContain(`table inet ${point.table}`);
  expect(desired.data.seq).toBe((await team.call('GET', '/v1/environments/agents/objects')).data.seq);

  const status = { point: point.point, table: point.table, desiredRevision: desired.data.seq, realizedRevision: desired.data.seq, observedRevision: desired.data.seq, state: 'realized', lastApply: 'table', rules: point.rules, elements: point.elements, hits: [{ rule: 'p/r', direction: 'in', packets: 3, bytes: 180 }], agent: { host: 'node-1', pid: 42 }, updatedAt: '2026-01-01T00:00:00.000Z' };
  const put = await team.call('PUT', '/v1/environments/agents/realization/status', { token: team.tokens.agent, body: status });
  expect(put.status).toBe(200);
  expect((await team.call('GET', '/v1/environments/agents/realization')).data.statuses).toEqual([status]);
  // Stored as the local agent stores it: the store-backed reader of `microseg realization` sees it.
  const store = await openPostgresStore({ url: team.storeUrl });
  try {
    expect(await readStatuses(store, 'agents')).toEqual([status]);
  } finally {
    await store.close();
  }
});

test('a malformed status report is 400 naming the property and writes nothing; an unknown enforcement point is 404', async () => {
  const bad = await team.call('PUT', '/v1/environments/agents2/realization/status', { token: team.tokens.agent, body: { point: 'pod:c1/a/b', state: 'done' } });
  expect(bad.status).toBe(400);
  expect(bad.data.error.message).toMatch(/state/);
  expect((await team.call('GET', '/v1/environments/agents2/realization')).data.statuses).toEqual([]);
  const unknown = await team.call('GET', '/v1/environments/agents2/realization/desired?point=vm:nope', { token: team.tokens.agent });
  expect(unknown.status).toBe(404);
  expect(unknown.data.error.message).toMatch(/vm:nope.*not an enforcement point/);
});
