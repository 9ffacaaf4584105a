import { EmbeddedBackend } from '../../../provider/src/backend';
import { BackendError } from '../../../provider/src/provider/backend';
import { MemoryStore } from '../../../provider/src/store';

async function estate(): Promise<{ backend: EmbeddedBackend; store: MemoryStore }> {
  const store = new MemoryStore();
  const backend = new EmbeddedBackend({ store, environment: 'test', defaultAction: 'drop' });
  await backend.put('KubernetesCluster', 'prod', { name: 'prod', podCidr: '10.244.0.0/16', serviceCidr: '10.96.0.0/12', nodes: [{ name: 'n1', ip: '192.168.1.10' }], networkMode: 'flat' }, 'create');
  await backend.put('Namespace', 'prod/shop', { name: 'shop', cluster: 'prod' }, 'create');
  await backend.put('Workload', 'prod/shop/frontend', { name: 'frontend', cluster: 'prod', namespace: 'shop', labels: { app: 'frontend' }, replicas: 1 }, 'create');
  await backend.put('VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '192.168.28.50' }], labels: { role: 'db' } }, 'create');
  await backend.put('SecurityGroup', 'web', { name: 'web', podSelectors: [{ podSelector: { matchLabels: { app: 'frontend' } } }] }, 'create');
  await backend.put('SecurityGroup', 'dbs', { name: 'dbs', vmSelectors: [{ matchLabels: { role: 'db' } }] }, 'create');
  return { backend, store };
}

const allowWebToDb = {
  name: 'app',
  category: 'application',
  rules: [{ name: 'web-to-db', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'dbs' }], services: [{ protocol: 'tcp', ports: [5432] }] }],
};

describe('the embedded backend', () => {
  test('a preview (plan) never writes the store', async () => {
    const { backend, store } = await estate();
    const before = await store.list('test');
    await backend.plan('FirewallPolicy', 'app', allowWebToDb);
    expect(await store.list('test')).toEqual(before);
  });

  test('later planned changes see earlier ones of the same preview', async () => {
    const { backend } = await estate();
    await backend.plan('SecurityGroup', 'new-group', { name: 'new-group', vms: ['db'] });
    const r = await backend.plan('FirewallPolicy', 'p', { name: 'p', appliedTo: ['new-group'], rules: [] });
    expect(r.outputs).toEqual({});
  });

  test('a policy change reports the flows it newly allows with the deciding rule', async () => {
    const { backend } = await estate();
    const r = await backend.plan('FirewallPolicy', 'app', allowWebToDb);
    expect(r.infos?.join('\n')).toContain('1 flow(s) newly allowed');
    expect(r.infos?.join('\n')).toContain('workload:prod/shop/frontend -> vm:db tcp/5432 (allow by app/web-to-db)');
  });

  test('a connectivity assertion that does not hold fails its own creation with flow, expectation, verdict and rule', async () => {
    const { backend } = await estate();
    await expect(backend.put('ConnectivityAssertion', 'web-db', { name: 'web-db', from: 'prod/shop/frontend', to: 'db', protocol: 'tcp', port: 5432, expect: 'allow' }, 'create')).rejects.toThrow(
      /connectivity assertion "web-db" is broken: prod\/shop\/frontend -> db tcp\/5432 expected allow, planned drop \(decided by default\)/,
    );
  });

  test('a change that breaks a holding assertion fails, names the assertion, and leaves the store unchanged', async () => {
    const { backend, store } = await estate();
    await backend.put('FirewallPolicy', 'app', allowWebToDb, 'create');
    await backend.put('ConnectivityAssertion', 'web-db', { name: 'web-db', from: 'prod/shop/frontend', to: 'db', protocol: 'tcp', port: 5432, expect: 'allow' }, 'create');
    const stored = await store.get('test', 'FirewallPolicy', 'app');
    const err = await backend.put('FirewallPolicy', 'app', { ...allowWebToDb, rules: [{ ...allowWebToDb.rules[0], action: 'drop' }] }, 'update').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toContain('breaks connectivity assertion "web-db"');
    expect(await store.get('test', 'FirewallPolicy', 'app')).toEqual(stored);
  });

  test('deleting what an assertion relies on is refused', async () => {
    const { backend } = await estate();
    await backend.put('FirewallPolicy', 'app', allowWebToDb, 'create');
    await backend.put('ConnectivityAssertion', 'web-db', { name: 'web-db', from: 'prod/shop/frontend', to: 'db', protocol: 'tcp', port: 5432, expect: 'allow' }, 'create');
    await expect(backend.delete('FirewallPolicy', 'app')).rejects.toThrow(/deleting FirewallPolicy "app" breaks connectivity assertion "web-db"/);
  });

  test('an invalid object is refused with its property path and not stored', async () => {
    const { backend, store } = await estate();
    await expect(backend.put('SecurityGroup', 'bad', { name: 'bad', ipBlocks: [{ cidr: '10.0.0.0/33' }] }, 'create')).rejects.toThrow(/ipBlocks\[0\]\.cidr/);
    expect(await store.get('test', 'SecurityGroup', 'bad')).toBeUndefined();
  });

  test('deleting a group still used by a policy is refused with the users', async () => {
    const { backend } = await estate();
    await backend.put('FirewallPolicy', 'app', allowWebToDb, 'create');
    await expect(backend.delete('SecurityGroup', 'web')).rejects.toThrow(/still used by FirewallPolicy "app"/);
  });

  test('a KubernetesNetworkPolicy is stored under cluster/namespace/name, reports its pods and the flows it changes, and keeps its namespace in use', async () => {
    const { backend } = await estate();
    await backend.put('Workload', 'prod/shop/api', { name: 'api', cluster: 'prod', namespace: 'shop', labels: { app: 'api' }, replicas: 2 }, 'create');
    await backend.put('FirewallPolicy', 'open', { name: 'open', category: 'baseline', rules: [{ name: 'all', action: 'allow' }] }, 'create');
    const np = { name: 'api-from-frontend', cluster: 'prod', namespace: 'shop', podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'frontend' } } }], ports: [{ port: 8080 }] }] };
    const planned = await backend.plan('KubernetesNetworkPolicy', 'prod/shop/api-from-frontend', np);
    expect(planned.infos?.join('\n')).toContain('vm:db -> workload:prod/shop/api tcp (drop by prod/shop/api-from-frontend/ingress-isolation)');
    const r = await backend.put('KubernetesNetworkPolicy', 'prod/shop/api-from-frontend', np, 'create');
    expect(r.outputs).toEqual({ podCount: 2 });
    await expect(backend.delete('Namespace', 'prod/shop')).rejects.toThrow(/KubernetesNetworkPolicy/);
  });

  test('writes by another process are seen before the next operation', async () => {
    const { backend, store } = await estate();
    const other = new EmbeddedBackend({ store, environment: 'test', defaultAction: 'drop' });
    await other.put('FirewallPolicy', 'app', allowWebToDb, 'create');
    const got = await backend.invoke('traceflow', { source: 'prod/shop/frontend', destination: 'db', protocol: 'tcp', port: 5432 });
    expect(got).toMatchObject({ verdict: 'allow', decidingPolicy: 'app', decidingRule: 'web-to-db' });
  });

  test('environments of one store do not see each other', async () => {
    const { store } = await estate();
    const prod = new EmbeddedBackend({ store, environment: 'prod', defaultAction: 'drop' });
    expect(await prod.get('VirtualMachine', 'db')).toBeUndefined();
  });
});

const URN_A = 'urn:pulumi:dev::shop::microseg:index:VirtualMachine::db';
const URN_B = 'urn:pulumi:prod::shop::microseg:index:VirtualMachine::db';
const dbVm = { name: 'db', interfaces: [{ ip: '192.168.28.51' }] };

describe('creating an object that already exists', () => {
  test('is refused when it has no recorded owner, with a hint to import it', async () => {
    const { backend } = await estate();
    await expect(backend.put('VirtualMachine', 'db', dbVm, 'create', { owner: URN_A })).rejects.toThrow(
      /VirtualMachine "db" already exists in environment "test" and is managed by no recorded owner.*pulumi import microseg:index:VirtualMachine <resource name> db/,
    );
  });

  test('by the same resource URN adopts it (a crashed up converges) and stores the new spec', async () => {
    const store = new MemoryStore();
    const backend = new EmbeddedBackend({ store, environment: 'test' });
    await backend.put('VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '192.168.28.50' }] }, 'create', { owner: URN_A });
    // The engine never recorded the create (killed); the rerun creates the same resource again.
    const rerun = new EmbeddedBackend({ store, environment: 'test' });
    await rerun.put('VirtualMachine', 'db', dbVm, 'create', { owner: URN_A });
    const o = await store.get('test', 'VirtualMachine', 'db');
    expect(o?.owner).toBe(URN_A);
    expect((o?.spec as { interfaces: { ip: string }[] }).interfaces[0].ip).toBe('192.168.28.51');
  });

  test('owned by another stack is refused, naming that stack and resource, in preview already', async () => {
    const store = new MemoryStore();
    await new EmbeddedBackend({ store, environment: 'test' }).put('VirtualMachine', 'db', dbVm, 'create', { owner: URN_A });
    const other = new EmbeddedBackend({ store, environment: 'test' });
    const before = await store.list('test');
    await expect(other.plan('VirtualMachine', 'db', dbVm, 'create', { owner: URN_B })).rejects.toThrow(/managed by resource "db" \(microseg:index:VirtualMachine\) of stack "dev" in project "shop"/);
    await expect(other.put('VirtualMachine', 'db', dbVm, 'create', { owner: URN_B })).rejects.toThrow(/pulumi import/);
    expect(await store.list('test')).toEqual(before);
  });

  test('a create whose spec cannot be planned yet (unknown inputs) is still checked for its owner', async () => {
    const store = new MemoryStore();
    await new EmbeddedBackend({ store, environment: 'test' }).put('VirtualMachine', 'db', dbVm, 'create', { owner: URN_A });
    const other = new EmbeddedBackend({ store, environment: 'test' });
    await expect(other.assertCreatable('VirtualMachine', 'db', { owner: URN_B })).rejects.toThrow(/of stack "dev"/);
    await expect(other.assertCreatable('VirtualMachine', 'db', { owner: URN_A })).resolves.toBeUndefined();
    await expect(other.assertCreatable('VirtualMachine', 'new', { owner: URN_B })).resolves.toBeUndefined();
  });

  test('an update or an import claim records the new owner', async () => {
    const store = new MemoryStore();
    const backend = new EmbeddedBackend({ store, environment: 'test', owner: 'microseg-cli:alice' });
    await backend.put('VirtualMachine', 'db', dbVm, 'create');
    expect((await store.get('test', 'VirtualMachine', 'db'))?.owner).toBe('microseg-cli:alice');
    await backend.claim('VirtualMachine', 'db', URN_B);
    expect((await backend.get('VirtualMachine', 'db'))?.owner).toBe(URN_B);
    await backend.put('VirtualMachine', 'db', dbVm, 'update', { owner: URN_A });
    expect((await store.get('test', 'VirtualMachine', 'db'))?.owner).toBe(URN_A);
  });
});

describe('environment settings', () => {
  const flow = { source: '192.168.28.50', destination: '10.0.0.1', protocol: 'tcp', port: 80 };

  test('a configured default action is stored with the environment and followed by readers that set none', async () => {
    const store = new MemoryStore();
    const provider = new EmbeddedBackend({ store, environment: 'test', defaultAction: 'allow' });
    await provider.put('VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '192.168.28.50' }] }, 'create');
    const cli = new EmbeddedBackend({ store, environment: 'test' });
    expect(await cli.defaultAction()).toBe('allow');
    expect(await cli.invoke('traceflow', flow)).toMatchObject({ verdict: 'allow' });
    // A reader that configures one itself keeps it (a CLI flag overrides the stored setting).
    expect(await new EmbeddedBackend({ store, environment: 'test', defaultAction: 'drop' }).defaultAction()).toBe('drop');
  });

  test('deleting the environment\'s last object removes its settings too (destroy leaves nothing)', async () => {
    const store = new MemoryStore();
    const provider = new EmbeddedBackend({ store, environment: 'test', defaultAction: 'allow' });
    await provider.put('VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '192.168.28.50' }] }, 'create');
    expect((await store.list('test')).map((o) => o.kind)).toEqual(['EnvironmentSettings', 'VirtualMachine']);
    await provider.delete('VirtualMachine', 'db');
    expect(await store.list('test')).toEqual([]);
    expect(await store.environments()).toEqual([]);
  });

  test('an environment with no stored setting drops by default, and a later change is seen by open readers', async () => {
    const store = new MemoryStore();
    const reader = new EmbeddedBackend({ store, environment: 'test' });
    expect(await reader.defaultAction()).toBe('drop');
    await new EmbeddedBackend({ store, environment: 'test', defaultAction: 'allow' }).put('VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '192.168.28.50' }] }, 'create');
    expect(await reader.defaultAction()).toBe('allow');
  });
});

describe('cancellation and timeouts', () => {
  test('an operation whose signal aborts while it waits for its turn never runs and writes nothing', async () => {
    const store = new MemoryStore();
    const backend = new EmbeddedBackend({ store, environment: 'test' });
    const controller = new AbortController();
    const first = backend.put('VirtualMachine', 'a', { name: 'a', interfaces: [{ ip: '10.0.0.1' }] }, 'create');
    const queued = backend.put('VirtualMachine', 'b', { name: 'b', interfaces: [{ ip: '10.0.0.2' }] }, 'create', { signal: controller.signal });
    controller.abort(new Error('cancelled by the engine'));
    await first;
    await expect(queued).rejects.toThrow('cancelled by the engine');
    expect((await store.list('test')).map((o) => o.name)).toEqual(['a']);
  });

  test('an already aborted signal refuses the operation before it starts', async () => {
    const store = new MemoryStore();
    const backend = new EmbeddedBackend({ store, environment: 'test' });
    await expect(backend.delete('VirtualMachine', 'a', { signal: AbortSignal.abort(new Error('timed out')) })).rejects.toThrow('timed out');
  });
});
