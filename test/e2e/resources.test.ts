/**
 * Every microseg resource kind through the real Pulumi CLI: up → no-change preview → no-change refresh →
 * one field of each resource changed (preview shows exactly that path; replace only where immutable) →
 * up → import by id into fresh stacks (the `import` resource option, and `pulumi import`) → destroy.
 *
 * One program holds a valid instance of each kind, wired by outputs so Pulumi orders the creations.
 * Runs against the embedded store and, in the jest project e2e-server, against `microseg serve` on
 * PostgreSQL (test/support/e2e-backend.ts): both must behave exactly alike.
 */
import * as pulumi from '@pulumi/pulumi';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineEvent, LocalWorkspace, Stack } from '@pulumi/pulumi/automation';
import { backendTestEnv, BackendTestEnv, configureBackend, MicrosegResource, eventLog, inlineStack } from './harness';

jest.setTimeout(600_000);

type Variant = 'v1' | 'v2';

/** Pulumi name → [kind, backend id] of every resource in the program. */
export const RESOURCES: Record<string, [string, string]> = {
  c1: ['KubernetesCluster', 'c1'],
  shop: ['Namespace', 'c1/shop'],
  ops: ['Namespace', 'c1/ops'],
  web: ['Workload', 'c1/shop/web'],
  worker: ['Workload', 'c1/shop/worker'],
  db: ['VirtualMachine', 'db'],
  api: ['VirtualMachine', 'api'],
  'web-pods': ['PodSelector', 'web-pods'],
  'sg-web': ['SecurityGroup', 'sg-web'],
  'sg-db': ['SecurityGroup', 'sg-db'],
  'sg-api': ['SecurityGroup', 'sg-api'],
  app: ['FirewallPolicy', 'app'],
  'ops-policy': ['FirewallPolicy', 'ops-policy'],
  ssh: ['FirewallRule', 'ops-policy/ssh'],
  egress: ['EgressIp', 'egress'],
  lb: ['LoadBalancer', 'web-lb'],
  quarantine: ['QuarantinePolicy', 'quarantine'],
  'api-to-db': ['ConnectivityAssertion', 'api-to-db'],
};

/** The backend id of a resource in a variant of the program (v2 moves `worker` to namespace ops). */
export function idOf(name: string, variant: Variant): string {
  return name === 'worker' && variant === 'v2' ? 'c1/ops/worker' : RESOURCES[name][1];
}

/**
 * The one field each resource changes in v2, with the detailed-diff path and kind the preview must show.
 * Only Workload.namespace (part of the workload's identity) is immutable, so only `worker` is replaced.
 */
export const CHANGES: Record<string, Record<string, string>> = {
  c1: { serviceCidr: 'update' },
  shop: { 'labels.team': 'update' },
  ops: { 'labels.team': 'add' },
  web: { replicas: 'update' },
  worker: { namespace: 'update-replace' },
  db: { host: 'update' },
  api: { 'labels.tier': 'add' },
  'web-pods': { 'podSelector.matchLabels.tier': 'add' },
  'sg-web': { description: 'add' },
  'sg-db': { egressIps: 'add' },
  'sg-api': { 'vms[1]': 'add' },
  app: { 'rules[0].logged': 'update' },
  'ops-policy': { priority: 'update' },
  ssh: { 'services[0].ports[0]': 'update' },
  egress: { pool: 'update' },
  lb: { algorithm: 'update' },
  quarantine: { 'selector.matchExpressions[0].key': 'update' },
  'api-to-db': { from: 'update' },
};

/** The program; `imports` adds the `import` option with each resource's backend id. */
export function program(variant: Variant, imports = false): () => Promise<Record<string, unknown>> {
  return async () => {
    const v2 = variant === 'v2';
    const r = (kind: string, name: string, props: pulumi.Inputs, opts: pulumi.CustomResourceOptions = {}) =>
      new MicrosegResource(kind, name, props, imports ? { ...opts, import: idOf(name, variant) } : opts);

    const c1 = r('KubernetesCluster', 'c1', {
      name: 'c1',
      podCidr: '10.244.0.0/16',
      serviceCidr: v2 ? '10.96.0.0/16' : '10.96.0.0/12',
      nodes: [{ name: 'n1', ip: '192.168.1.10' }, { name: 'n2', ip: '192.168.1.11' }],
      networkMode: 'overlay',
    });
    const shop = r('Namespace', 'shop', { name: 'shop', cluster: c1.id, labels: { team: v2 ? 'storefront' : 'shop' } });
    const ops = r('Namespace', 'ops', { name: 'ops', cluster: c1.id, labels: v2 ? { team: 'sre' } : {} });
    const nsName = (ns: MicrosegResource) => ns.id.apply((id) => id.split('/')[1]);
    r('Workload', 'web', {
      name: 'web',
      cluster: c1.id,
      namespace: nsName(shop),
      labels: { app: 'web', tier: 'frontend' },
      replicas: v2 ? 3 : 2,
      ports: [{ name: 'http', port: 8080 }],
    });
    r('Workload', 'worker', { name: 'worker', cluster: c1.id, namespace: v2 ? nsName(ops) : nsName(shop), labels: { app: 'worker' }, replicas: 1 }, { dependsOn: [ops] });
    const db = r('VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '192.168.2.10' }], labels: { app: 'db' }, host: v2 ? 'esx-2' : 'esx-1' });
    const api = r('VirtualMachine', 'api', { name: 'api', interfaces: [{ ip: '192.168.2.20' }, { ip: '192.168.3.20', network: 'backup' }], labels: v2 ? { app: 'api', tier: 'backend' } : { app: 'api' } });
    const webPods = r('PodSelector', 'web-pods', {
      name: 'web-pods',
      cluster: c1.id,
      namespaces: [nsName(shop)],
      podSelector: { matchLabels: v2 ? { app: 'web', tier: 'frontend' } : { app: 'web' } },
    });
    const egress = r('EgressIp', 'egress', {
      name: 'egress',
      cluster: c1.id,
      pool: v2 ? '192.0.2.16/28' : '192.0.2.0/28',
      podSelector: { podSelector: { matchLabels: { app: 'worker' } } },
    });
    const sgWeb = r('SecurityGroup', 'sg-web', { name: 'sg-web', podSelectorRefs: [webPods.id], ...(v2 ? { description: 'web pods' } : {}) });
    const sgDb = r('SecurityGroup', 'sg-db', { name: 'sg-db', vmSelectors: [{ matchLabels: { app: 'db' } }], ...(v2 ? { egressIps: [egress.id] } : {}) });
    const sgApi = r('SecurityGroup', 'sg-api', { name: 'sg-api', vms: v2 ? [api.id, db.id] : [api.id] });
    const app = r('FirewallPolicy', 'app', {
      name: 'app',
      category: 'application',
      priority: 100,
      appliedTo: [sgApi.id, sgDb.id],
      rules: [
        { name: 'api-to-db', action: 'allow', sources: [{ group: sgApi.id }], destinations: [{ group: sgDb.id }], services: [{ protocol: 'tcp', ports: [5432] }], logged: v2 },
        { name: 'web-to-db', action: 'allow', sources: [{ group: sgWeb.id }], destinations: [{ group: sgDb.id }], services: [{ protocol: 'tcp', ports: [5432] }] },
      ],
    });
    const opsPolicy = r('FirewallPolicy', 'ops-policy', { name: 'ops-policy', category: 'infrastructure', priority: v2 ? 200 : 100 });
    r('FirewallRule', 'ssh', {
      name: 'ssh',
      policy: opsPolicy.id,
      action: 'allow',
      sources: [{ cidr: '172.16.0.0/12' }],
      destinations: [{ group: sgDb.id }],
      services: [{ protocol: 'tcp', ports: [v2 ? 2222 : 22] }],
    });
    r('LoadBalancer', 'lb', {
      name: 'web-lb',
      vipPool: '192.0.2.64/28',
      listeners: [{ port: 80, targetPort: 'http' }],
      pool: { group: sgWeb.id },
      algorithm: v2 ? 'least-connections' : 'round-robin',
    });
    r('QuarantinePolicy', 'quarantine', {
      name: 'quarantine',
      selector: { matchExpressions: [{ key: v2 ? 'isolated' : 'quarantine', operator: 'Exists' }] },
      forensicGroup: sgApi.id,
      forensicServices: [{ protocol: 'tcp', ports: [22] }],
    });
    const assertion = r(
      'ConnectivityAssertion',
      'api-to-db',
      { name: 'api-to-db', from: v2 ? '192.168.2.20' : pulumi.interpolate`vm:${api.id}`, to: pulumi.interpolate`vm:${db.id}`, protocol: 'tcp', port: 5432, expect: 'allow', verdict: undefined, passed: undefined, decidingRule: undefined },
      { dependsOn: [app] },
    );
    const out = assertion as unknown as { verdict: pulumi.Output<string>; passed: pulumi.Output<boolean>; decidingRule: pulumi.Output<string> };
    return { verdict: out.verdict, passed: out.passed, decidingRule: out.decidingRule };
  };
}

const shortName = (urn: string) => urn.split('::').pop()!;
const microsegEvents = (events: EngineEvent[]) => events.flatMap((e) => (e.resourcePreEvent && e.resourcePreEvent.metadata.type.startsWith('microseg:index:') ? [e.resourcePreEvent.metadata] : []));

/** The stacks of this file (main, adopt, cli-import) share one environment, so they can import each other's objects. */
const ENVIRONMENT = 'resources';
const CONFIG = { 'microseg:environment': ENVIRONMENT };

let env: BackendTestEnv;
let main: Stack;
beforeAll(async () => {
  env = await backendTestEnv();
}, 180_000);
afterAll(() => env?.cleanup());

const ALL = Object.keys(RESOURCES).length;

test('up creates every resource kind and the assertion passes', async () => {
  main = await inlineStack(env, 'main', program('v1'), CONFIG);
  const up = await main.up();
  expect(up.summary.result).toBe('succeeded');
  expect(up.summary.resourceChanges).toMatchObject({ create: ALL + 1 }); // + the stack
  expect([up.outputs.verdict.value, up.outputs.decidingRule.value, up.outputs.passed.value]).toEqual(['allow', 'app/api-to-db', true]);
  const state = await main.exportStack();
  const ids = Object.fromEntries((state.deployment.resources as { urn: string; id?: string; type: string }[]).filter((res) => res.type.startsWith('microseg:index:')).map((res) => [shortName(res.urn), [res.type.split(':')[2], res.id]]));
  expect(ids).toEqual(RESOURCES);
  expect(await env.backend.objects(ENVIRONMENT)).toEqual(Object.values(RESOURCES).map(([k, id]) => `${k}/${id}`).sort());
});

test('a second preview shows no changes (no perpetual diff)', async () => {
  const preview = await main.preview();
  expect(preview.changeSummary).toEqual({ same: ALL + 1 });
});

test('refresh shows no changes', async () => {
  const refresh = await main.refresh();
  expect(refresh.summary.result).toBe('succeeded');
  expect(refresh.summary.resourceChanges).toEqual({ same: ALL + 1 });
});

test('changing one field of each resource previews exactly that path, replacing only where immutable', async () => {
  main = await inlineStack(env, 'main', program('v2'), CONFIG);
  const log = eventLog();
  const preview = await main.preview({ onEvent: log.onEvent });
  const steps = microsegEvents(log.events);
  const diffs: Record<string, Record<string, string>> = {};
  const ops: Record<string, string[]> = {};
  for (const s of steps) {
    const n = shortName(s.urn);
    (ops[n] ??= []).push(s.op);
    if (s.detailedDiff && Object.keys(s.detailedDiff).length > 0) diffs[n] = Object.fromEntries(Object.entries(s.detailedDiff).map(([p, d]) => [p, d.diffKind]));
  }
  expect(diffs).toEqual(CHANGES);
  for (const n of Object.keys(CHANGES)) {
    if (n === 'worker') expect(ops[n]).toEqual(expect.arrayContaining(['create-replacement', 'replace', 'delete-replaced']));
    else expect(ops[n]).toEqual(['update']);
  }
  expect(preview.changeSummary).toEqual({ same: 1, update: ALL - 1, replace: 1 });
});

test('up applies the changes and a preview afterwards is empty', async () => {
  const up = await main.up();
  expect(up.summary.result).toBe('succeeded');
  expect(up.summary.resourceChanges).toEqual({ same: 1, update: ALL - 1, replace: 1 });
  expect(up.outputs.passed.value).toBe(true);
  const preview = await main.preview();
  expect(preview.changeSummary).toEqual({ same: ALL + 1 });
  const refresh = await main.refresh();
  expect(refresh.summary.resourceChanges).toEqual({ same: ALL + 1 });
});

test('a fresh stack imports every resource by id with the import option, then shows no changes', async () => {
  const imported = await inlineStack(env, 'adopt', program('v2', true), CONFIG);
  const log = eventLog();
  const up = await imported.up({ onEvent: log.onEvent });
  expect(up.summary.result).toBe('succeeded');
  const ops = Object.fromEntries(microsegEvents(log.events).map((s) => [shortName(s.urn), s.op]));
  expect(ops).toEqual(Object.fromEntries(Object.keys(RESOURCES).map((n) => [n, 'import'])));
  expect(up.summary.resourceChanges).toEqual({ create: 1, import: ALL });
  const preview = await imported.preview();
  expect(preview.changeSummary).toEqual({ same: ALL + 1 });
  // The adopting stack lets go of the objects without deleting them.
  await imported.workspace.removeStack('adopt', { force: true });
});

test('pulumi import adopts every resource by id (Read with the id alone returns inputs)', async () => {
  // `pulumi import` loads the project's language host even without code generation; the nodejs host
  // cannot be built from Go modules, so this stack's project is a YAML one (same project name).
  const workDir = join(env.dir, 'yaml-project');
  mkdirSync(workDir, { recursive: true });
  writeFileSync(join(workDir, 'Pulumi.yaml'), 'name: microseg-e2e\nruntime: yaml\n');
  const stack = await LocalWorkspace.createOrSelectStack({ stackName: 'cli-import', workDir }, { envVars: env.envVars, pulumiHome: env.envVars.PULUMI_HOME });
  await configureBackend(stack, env);
  await stack.setConfig('microseg:environment', { value: ENVIRONMENT });
  const result = await stack.import({
    resources: Object.entries(RESOURCES).map(([name, [kind]]) => ({ type: `microseg:index:${kind}`, name, id: idOf(name, 'v2') })),
    protect: false,
    generateCode: false,
  });
  expect(result.summary.result).toBe('succeeded');
  expect(result.summary.resourceChanges).toMatchObject({ import: ALL });
  const state = await stack.exportStack();
  const resources = state.deployment.resources as { urn: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[];
  const byName = (n: string) => resources.find((x) => x.urn.endsWith(`::${n}`))!;
  expect(byName('worker').inputs).toMatchObject({ name: 'worker', cluster: 'c1', namespace: 'ops', replicas: 1 });
  expect(byName('app').inputs).toMatchObject({ name: 'app', rules: [expect.objectContaining({ name: 'api-to-db', logged: true }), expect.objectContaining({ name: 'web-to-db' })] });
  expect(byName('lb').outputs).toMatchObject({ allocatedVip: expect.stringMatching(/^192\.0\.2\./) });
  // The importing resources now own the objects.
  const owners = await env.backend.owners(ENVIRONMENT);
  expect(owners[`VirtualMachine/${idOf('db', 'v2')}`]).toBe(byName('db').urn);
  await stack.workspace.removeStack('cli-import', { force: true });
});

test('pulumi import of an id that does not exist fails with "does not exist" and records nothing', async () => {
  const workDir = join(env.dir, 'yaml-project');
  mkdirSync(workDir, { recursive: true });
  writeFileSync(join(workDir, 'Pulumi.yaml'), 'name: microseg-e2e\nruntime: yaml\n');
  const stack = await LocalWorkspace.createOrSelectStack({ stackName: 'phantom-import', workDir }, { envVars: env.envVars, pulumiHome: env.envVars.PULUMI_HOME });
  await configureBackend(stack, env);
  const failure = await stack
    .import({ resources: [{ type: 'microseg:index:SecurityGroup', name: 'phantom', id: 'no-such-group' }], protect: false, generateCode: false })
    .then(
      () => undefined,
      (e: unknown) => e as Error,
    );
  expect(failure?.message).toMatch(/resource 'no-such-group' does not exist/);
  const state = await stack.exportStack();
  const resources = (state.deployment.resources ?? []) as { urn: string }[];
  expect(resources.filter((r) => r.urn.endsWith('::phantom'))).toEqual([]);
  await stack.workspace.removeStack('phantom-import', { force: true });
});

test('destroy deletes everything from the store', async () => {
  const destroy = await main.destroy();
  expect(destroy.summary.result).toBe('succeeded');
  expect(destroy.summary.resourceChanges).toEqual({ delete: ALL + 1 });
  expect(await env.backend.objects(ENVIRONMENT)).toEqual([]);
  // In team mode nothing of the stack ever lands in the machine's own data directory.
  if (env.backend.name === 'server') expect(existsSync(env.dataDir)).toBe(false);
});
