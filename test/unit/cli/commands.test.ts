/**
 * The store-backed commands, in-process against a temporary data directory: put (a change made outside
 * Pulumi), get, list, traceflow, effective-rules, members, matrix, delete, export-state, import-state.
 * Exit codes: 0 success, 1 the command ran and found a failure, 2 bad input.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runDelete, runGet, runList, runPut } from '../../../provider/src/cli/object-commands';
import { runEffectiveRules, runMatrix, runMembers, runTraceflow } from '../../../provider/src/cli/query-commands';
import { runExportState, runImportState } from '../../../provider/src/cli/state-commands';
import { putSpecs, runCli, tempDataDir } from '../../support/cli';

let dir: string;
let dataDir: string;
let tmp: ReturnType<typeof tempDataDir>;
beforeAll(async () => {
  tmp = tempDataDir('microseg-cli-');
  ({ dir, dataDir } = tmp);
  const specs: [string, string, string][] = [
    ['KubernetesCluster', 'c1', '{"podCidr":"10.1.0.0/16","serviceCidr":"10.96.0.0/12","nodes":[{"name":"n1","ip":"192.168.0.11"}],"networkMode":"flat"}'],
    ['Namespace', 'c1/shop', 'labels: { team: shop }'],
    ['Workload', 'c1/shop/web', 'labels: { app: web }\nreplicas: 2\nports: [{ name: http, port: 8080 }]'],
    ['VirtualMachine', 'db', 'interfaces: [{ ip: 172.16.0.10 }]\nlabels: { role: db }'],
    ['SecurityGroup', 'web', 'podSelectors: [{ podSelector: { matchLabels: { app: web } } }]'],
    ['SecurityGroup', 'db', 'vmSelectors: [{ matchLabels: { role: db } }]\nipBlocks: [{ cidr: 172.16.1.0/24 }]'],
    ['FirewallPolicy', 'web-db', 'rules:\n  - { name: allow-pg, action: allow, sources: [{ group: web }], destinations: [{ group: db }], services: [{ protocol: tcp, ports: [5432] }] }\n  - { name: reject-rest, action: reject, direction: in, appliedTo: [db] }'],
  ];
  await putSpecs(dataDir, specs);
});
afterAll(() => tmp.remove());

const cli = runCli;

test('traceflow explains each component and the deciding rule', async () => {
  const r = await cli((io) => runTraceflow({ dataDir, from: 'workload:c1/shop/web', to: 'db', port: '5432' }, io));
  expect(r.code).toBe(0);
  expect(r.out).toContain('traceflow c1/shop/web-0 (10.1.0.1) → db#0 (172.16.0.10) tcp/5432');
  expect(r.out).toMatch(/source-firewall\s+allow\s+application: web-db\/allow-pg/);
  expect(r.out).toContain('verdict: allow (decided by web-db/allow-pg)');
  const j = await cli((io) => runTraceflow({ dataDir, from: '203.0.113.5', to: '172.16.0.10', port: '22', json: true }, io));
  expect(JSON.parse(j.out)).toMatchObject({ verdict: 'reject', decidingPolicy: 'web-db', decidingRule: 'reject-rest' });
});

test('traceflow --expect exits 1 on a different verdict; bad input exits 2 naming the option', async () => {
  expect((await cli((io) => runTraceflow({ dataDir, from: 'db', to: 'c1/shop/web', port: '80', expect: 'allow' }, io))).code).toBe(1);
  expect((await cli((io) => runTraceflow({ dataDir, from: 'db', to: 'c1/shop/web', port: '80', expect: 'deny' }, io))).code).toBe(0);
  const port = await cli((io) => runTraceflow({ dataDir, from: 'db', to: 'web', port: 'http' }, io));
  expect([port.code, port.err]).toEqual([2, 'microseg: --port: "http" is not a port; expected an integer from 0 to 65535\n']);
  const proto = await cli((io) => runTraceflow({ dataDir, from: 'db', to: 'web', protocol: 'tcpp' }, io));
  expect(proto.err).toContain('--protocol: "tcpp" is not a protocol');
  const noPort = await cli((io) => runTraceflow({ dataDir, from: 'db', to: 'web' }, io));
  expect([noPort.code, noPort.err]).toEqual([2, 'microseg: --port is required for tcp: the destination port decides which rules match (e.g. --port 443); only icmp and icmpv6 flows have no port\n']);
  expect((await cli((io) => runTraceflow({ dataDir, from: 'db', to: 'c1/shop/web', protocol: 'icmp' }, io))).code).toBe(0);
  expect((await cli((io) => runMatrix(['web', 'db'], { dataDir, protocol: 'udp' }, io))).err).toContain('--port is required for udp');
  const unknown = await cli((io) => runTraceflow({ dataDir, from: 'ghost', to: 'db', port: '80' }, io));
  expect(unknown.code).toBe(2);
  expect(unknown.err).toMatch(/^microseg: --from: "ghost" is not an IP/);
});

test('effective-rules, members and matrix', async () => {
  const rules = await cli((io) => runEffectiveRules('db', { dataDir }, io));
  // allow-pg is inout, but db can only be its destination: it is listed as `in`.
  expect(rules.out).toMatch(/^ENFORCEMENT POINT\s+DIRECTION\s+CATEGORY\s+POLICY\s+PRIORITY\s+RULE\s+ACTION\s+SOURCES\s+DESTINATIONS\s+SERVICES\s+FLAGS\n/);
  expect(rules.out).toMatch(/db#0\s+in\s+application\s+web-db\s+1000\s+allow-pg\s+allow\s+group:web\s+group:db\s+tcp\/5432\n/);
  expect(rules.out).toMatch(/db#0\s+in\s+application\s+web-db\s+1000\s+reject-rest\s+reject\s+any\s+any\s+any\n/);
  const web = await cli((io) => runEffectiveRules('c1/shop/web', { dataDir, json: true }, io));
  expect((JSON.parse(web.out) as { rules: unknown[] }).rules).toEqual([
    expect.objectContaining({ enforcementPoint: 'c1/shop/web-0', direction: 'out', rule: 'allow-pg', sources: ['group:web'], destinations: ['group:db'], services: ['tcp/5432'] }),
    expect.objectContaining({ enforcementPoint: 'c1/shop/web-1', direction: 'out', rule: 'allow-pg' }),
  ]);
  const members = await cli((io) => runMembers('web', { dataDir, json: true }, io));
  expect(JSON.parse(members.out)).toMatchObject({ group: 'web', count: 2, members: [{ kind: 'pod', name: 'c1/shop/web-0' }, { kind: 'pod', name: 'c1/shop/web-1' }] });
  const dbMembers = await cli((io) => runMembers('db', { dataDir }, io));
  expect(dbMembers.out).toContain('ip block 172.16.1.0/24');
  const matrix = await cli((io) => runMatrix(['web', 'db'], { dataDir, port: '5432' }, io));
  expect(matrix.out).toMatch(/web\s+deny 0\/2\s+allow 2\/2/);
  const none = await cli((io) => runMembers('nope', { dataDir }, io));
  expect([none.code, none.err]).toEqual([2, 'microseg: SecurityGroup "nope" does not exist in environment "default"\n']);
});

test('get and list show what is stored; unknown kinds and objects exit 2', async () => {
  const got = await cli((io) => runGet('securitygroup', 'web', { dataDir, json: true }, io));
  expect(JSON.parse(got.out)).toMatchObject({ kind: 'SecurityGroup', name: 'web', revision: 1, outputs: { memberCount: 2 } });
  const list = await cli((io) => runList('Workload', { dataDir }, io));
  expect(list.out).toMatch(/^KIND\s+NAME\s+REVISION\s+UPDATED\nWorkload\s+c1\/shop\/web\s+1\s/);
  expect((await cli((io) => runGet('Gadget', 'x', { dataDir }, io))).err).toContain('unknown kind "Gadget"; expected one of VirtualMachine');
  expect((await cli((io) => runGet('SecurityGroup', 'x', { dataDir }, io))).code).toBe(2);
  const empty = await cli((io) => runList(undefined, { dataDir, environment: 'nothing-here' }, io));
  expect(empty.out).toContain('no objects in environment "nothing-here"');
});

test('put validates like the provider: schema path, unknown property, references, identity', async () => {
  const bad = await cli((io) => runPut('FirewallPolicy', 'p2', { dataDir, spec: '-' }, io), { stdin: 'rules: [{ name: a, action: alow }]' });
  expect(bad.code).toBe(2);
  expect(bad.err).toMatch(/^microseg: FirewallPolicy "p2" is invalid: rules\[0\]\.action: /);
  const typo = await cli((io) => runPut('FirewallPolicy', 'p2', { dataDir, spec: '-' }, io), { stdin: 'rule: [{ name: a, action: allow }]' });
  expect(typo.err).toBe('microseg: FirewallPolicy "p2" is invalid: rule: unknown property of FirewallPolicy\n');
  const ref = await cli((io) => runPut('SecurityGroup', 'g2', { dataDir, spec: '-' }, io), { stdin: 'groups: [nope]' });
  expect([ref.code, ref.err]).toEqual([2, expect.stringContaining('groups[0]: SecurityGroup "nope" does not exist')]);
  const ns = await cli((io) => runPut('Namespace', 'shop', { dataDir, spec: '-' }, io), { stdin: '{}' });
  expect(ns.err).toContain('a Namespace is named CLUSTER/NAME; got "shop"');
  const mismatch = await cli((io) => runPut('VirtualMachine', 'db', { dataDir, spec: '-' }, io), { stdin: 'name: other\ninterfaces: [{ ip: 1.2.3.4 }]' });
  expect(mismatch.err).toContain('the spec names the object "other"');
  const notYaml = await cli((io) => runPut('VirtualMachine', 'x', { dataDir, spec: '-' }, io), { stdin: 'a: [' });
  expect(notYaml.err).toContain('is neither JSON nor YAML');
  const missing = await cli((io) => runPut('VirtualMachine', 'x', { dataDir, spec: path.join(dir, 'none.json') }, io));
  expect(missing.err).toContain('no such file');
  // Nothing of the above was written.
  expect((await cli((io) => runList(undefined, { dataDir, json: true }, io))).out).not.toMatch(/p2|g2/);
});

test('put of an existing object is an update (drift made outside Pulumi), visible to queries at once', async () => {
  const file = path.join(dir, 'web-db.yaml');
  writeFileSync(file, 'type: microseg:index:FirewallPolicy\nproperties:\n  rules: [{ name: drop-all, action: drop }]\n');
  const r = await cli((io) => runPut('FirewallPolicy', 'drift', { dataDir, spec: file }, io));
  expect(r.out).toBe('created FirewallPolicy "drift" in environment "default" (revision 1)\n');
  const again = await cli((io) => runPut('FirewallPolicy', 'drift', { dataDir, spec: file, json: true }, io));
  expect(JSON.parse(again.out)).toMatchObject({ action: 'updated', revision: 2 });
  // Same priority as web-db: ordered by name, so "drift" now decides first; the tie is a warning.
  const t = await cli((io) => runTraceflow({ dataDir, from: 'c1/shop/web', to: 'db', port: '5432', json: true }, io));
  expect(JSON.parse(t.out)).toMatchObject({ verdict: 'drop', decidingPolicy: 'drift', decidingRule: 'drop-all' });
  expect(again.err).toMatch(/warning: .*priority/i);
  expect((await cli((io) => runDelete('FirewallPolicy', 'drift', { dataDir }, io))).code).toBe(0);
});

test('put refused by a connectivity assertion exits 1 (evaluated, a failure); put of a colliding address exits 2 (bad input)', async () => {
  const put = (kind: string, name: string, stdin: string) => cli((io) => runPut(kind, name, { dataDir, environment: 'assertions', spec: '-' }, io), { stdin });
  expect((await put('VirtualMachine', 'a', 'interfaces: [{ ip: 198.51.100.1 }]')).code).toBe(0);
  expect((await put('VirtualMachine', 'b', 'interfaces: [{ ip: 198.51.100.2 }]')).code).toBe(0);
  expect((await put('ConnectivityAssertion', 'a-b-closed', '{ from: a, to: b, protocol: tcp, port: 22, expect: deny }')).code).toBe(0);
  const broken = await put('FirewallPolicy', 'open', 'rules: [{ name: any, action: allow }]');
  expect(broken.code).toBe(1);
  expect(broken.err).toMatch(/^microseg: this change of FirewallPolicy "open" breaks connectivity assertion "a-b-closed": a -> b tcp\/22 expected deny, planned allow/);
  const collision = await put('VirtualMachine', 'c', 'interfaces: [{ ip: 198.51.100.1 }]');
  expect(collision.code).toBe(2);
  expect(collision.err).toContain('IP 198.51.100.1 is used twice: VirtualMachine "c" collides with VirtualMachine "a" (interfaces[0].ip)');
});

test('put refuses a multi-hop group cycle (exit 2) naming it, so delete can never deadlock on one', async () => {
  const put = (name: string, stdin: string) => cli((io) => runPut('SecurityGroup', name, { dataDir, environment: 'cycles', spec: '-' }, io), { stdin });
  expect((await put('a', '{}')).code).toBe(0);
  expect((await put('b', 'groups: [a]')).code).toBe(0);
  const cycle = await put('a', 'groups: [b]');
  expect(cycle.code).toBe(2);
  expect(cycle.err).toMatch(/groups\[0\]: nested groups form a cycle: (a → b → a|b → a → b)/);
  expect((await cli((io) => runDelete('SecurityGroup', 'b', { dataDir, environment: 'cycles' }, io))).code).toBe(0);
  expect((await cli((io) => runDelete('SecurityGroup', 'a', { dataDir, environment: 'cycles' }, io))).code).toBe(0);
});

test('delete: refused while referenced (exit 1), unknown object exit 2', async () => {
  const used = await cli((io) => runDelete('SecurityGroup', 'web', { dataDir }, io));
  expect([used.code, used.err]).toEqual([1, 'microseg: SecurityGroup "web" is still used by FirewallPolicy "web-db"; remove those references first\n']);
  expect((await cli((io) => runDelete('SecurityGroup', 'ghost', { dataDir }, io))).code).toBe(2);
});

test('export-state and import-state: round trip into an empty environment, refused into a non-empty one', async () => {
  const out = path.join(dir, 'state.json');
  expect((await cli((io) => runExportState({ dataDir, out }, io))).out).toBe(`exported 7 objects of 1 environment(s) to ${out}\n`);
  const doc = JSON.parse(readFileSync(out, 'utf8')) as { environments: Record<string, { objects: unknown[] }> };
  expect(Object.keys(doc.environments)).toEqual(['default']);
  const refused = await cli((io) => runImportState(out, { dataDir }, io));
  expect(refused.code).toBe(2);
  expect(refused.err).toContain('environment "default"');
  expect(refused.err).toContain('already holds objects');
  const other = path.join(dir, 'data2');
  expect((await cli((io) => runImportState(out, { dataDir: other }, io))).code).toBe(0);
  expect((await cli((io) => runImportState(out, { dataDir: other, into: 'staging' }, io))).out).toContain('imported 7 objects into "staging"');
  const t = await cli((io) => runTraceflow({ dataDir: other, environment: 'staging', from: 'c1/shop/web', to: 'db', port: '5432', json: true }, io));
  expect(JSON.parse(t.out)).toMatchObject({ verdict: 'allow', decidingRule: 'allow-pg' });
  writeFileSync(path.join(dir, 'junk.json'), '{"format":"other"}');
  const junk = await cli((io) => runImportState(path.join(dir, 'junk.json'), { dataDir: path.join(dir, 'data3') }, io));
  expect([junk.code, junk.err]).toEqual([2, expect.stringContaining('is not a microseg state export')]);
  expect((await cli((io) => runImportState(path.join(dir, 'none.json'), { dataDir }, io))).err).toContain('no such file');
});

test('MICROSEG_DATA_DIR is used when --data-dir is absent; --default-action is validated', async () => {
  const r = await cli((io) => runMembers('web', {}, io), { env: { MICROSEG_DATA_DIR: dataDir } });
  expect(r.out).toContain('2 members');
  const bad = await cli((io) => runMembers('web', { dataDir, defaultAction: 'maybe' }, io));
  expect([bad.code, bad.err]).toEqual([2, 'microseg: --default-action: "maybe" is not a default action; expected drop or allow\n']);
  const allow = await cli((io) => runTraceflow({ dataDir, defaultAction: 'allow', from: 'db', to: 'c1/shop/web', port: '80', json: true }, io));
  expect(JSON.parse(allow.out)).toMatchObject({ verdict: 'allow', decidingPolicy: 'default' });
});

test('import-state applies defaults to hand-written objects and refuses invalid ones, importing nothing', async () => {
  const doc = (spec: Record<string, unknown>) => ({
    format: 'microseg-state',
    version: 1,
    exportedAt: '2026-11-24T00:00:00.000Z',
    environments: { hand: { objects: [{ kind: 'FirewallPolicy', name: 'p', spec, references: [], revision: 1, createdAt: '2026-11-24T00:00:00.000Z', updatedAt: '2026-11-24T00:00:00.000Z' }] } },
  });
  const good = path.join(dir, 'hand.json');
  writeFileSync(good, JSON.stringify(doc({ name: 'p', rules: [] })));
  const target = path.join(dir, 'data-hand');
  expect((await cli((io) => runImportState(good, { dataDir: target }, io))).code).toBe(0);
  const got = await cli((io) => runGet('FirewallPolicy', 'p', { dataDir: target, environment: 'hand', json: true }, io));
  expect(JSON.parse(got.out)).toMatchObject({ spec: { category: 'application', priority: 1000, enforcement: 'enforce' } });

  const bad = path.join(dir, 'hand-bad.json');
  writeFileSync(bad, JSON.stringify(doc({ name: 'p', category: 'urgent' })));
  const refused = await cli((io) => runImportState(bad, { dataDir: path.join(dir, 'data-hand-bad') }, io));
  expect(refused.code).toBe(2);
  expect(refused.err).toContain('hand/FirewallPolicy/p.category');
});
