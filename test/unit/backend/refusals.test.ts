import { EmbeddedBackend } from '../../../provider/src/backend';
import { MemoryStore } from '../../../provider/src/store';

/**
 * Inputs that used to be accepted and then silently ignored, wedged a destroy, or collided with other
 * objects (issue 9 §3). Each is refused by the backend the provider and `microseg put` share, with the
 * property path and the other object named, and nothing is stored.
 */

const cluster = (name: string, podCidr: string, serviceCidr = '10.96.0.0/12') => ({ name, podCidr, serviceCidr, nodes: [{ name: `${name}-n1`, ip: name === 'prod' ? '192.168.1.10' : '192.168.2.10' }], networkMode: 'flat' });

async function estate(): Promise<{ backend: EmbeddedBackend; store: MemoryStore }> {
  const store = new MemoryStore();
  const backend = new EmbeddedBackend({ store, environment: 'test', defaultAction: 'drop' });
  await backend.put('KubernetesCluster', 'prod', cluster('prod', '10.244.0.0/16'), 'create');
  await backend.put('Namespace', 'prod/shop', { name: 'shop', cluster: 'prod' }, 'create');
  await backend.put('Workload', 'prod/shop/frontend', { name: 'frontend', cluster: 'prod', namespace: 'shop', labels: { app: 'frontend' }, replicas: 1 }, 'create');
  await backend.put('Workload', 'prod/shop/api', { name: 'api', cluster: 'prod', namespace: 'shop', labels: { app: 'api' }, replicas: 1, ports: [{ name: 'http', port: 8080 }] }, 'create');
  await backend.put('VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '192.168.28.50' }], labels: { role: 'db' } }, 'create');
  await backend.put('SecurityGroup', 'web', { name: 'web', podSelectors: [{ podSelector: { matchLabels: { app: 'frontend' } } }] }, 'create');
  await backend.put('SecurityGroup', 'dbs', { name: 'dbs', vmSelectors: [{ matchLabels: { role: 'db' } }] }, 'create');
  return { backend, store };
}

async function refused(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error('expected the write to be refused, but it was accepted');
  return err.message;
}

describe('nested group cycles', () => {
  test('a cycle through two groups is refused on the write that closes it, naming the cycle', async () => {
    const { backend, store } = await estate();
    await backend.put('SecurityGroup', 'a', { name: 'a' }, 'create');
    await backend.put('SecurityGroup', 'b', { name: 'b', groups: ['a'] }, 'create');
    const msg = await refused(backend.put('SecurityGroup', 'a', { name: 'a', groups: ['b'] }, 'update'));
    expect(msg).toMatch(/groups\[0\]: nested groups form a cycle: (a → b → a|b → a → b)/);
    expect((await store.get('test', 'SecurityGroup', 'a'))?.spec.groups).toBeUndefined();
  });

  test('a cycle through three groups is refused too', async () => {
    const { backend } = await estate();
    await backend.put('SecurityGroup', 'a', { name: 'a' }, 'create');
    await backend.put('SecurityGroup', 'b', { name: 'b', groups: ['a'] }, 'create');
    await backend.put('SecurityGroup', 'c', { name: 'c', groups: ['b'] }, 'create');
    expect(await refused(backend.put('SecurityGroup', 'a', { name: 'a', groups: ['c'] }, 'update'))).toMatch(/nested groups form a cycle: .*a.*→.*b.*→.*c|nested groups form a cycle: .*→.*→.*→/);
  });
});

describe('standalone rules on a policy with inline rules', () => {
  test('are refused, naming the policy, instead of being stored and never enforced', async () => {
    const { backend, store } = await estate();
    await backend.put('FirewallPolicy', 'app', { name: 'app', rules: [{ name: 'web-db', action: 'allow', sources: [{ group: 'web' }] }] }, 'create');
    const msg = await refused(backend.put('FirewallRule', 'extra', { name: 'extra', policy: 'app', action: 'drop' }, 'create'));
    expect(msg).toMatch(/FirewallRule "extra" is invalid: policy: policy "app" has 1 inline rule\(s\); a standalone FirewallRule on it would never be enforced/);
    expect(await store.get('test', 'FirewallRule', 'extra')).toBeUndefined();
  });
});

describe('preview impact of rules with named ports', () => {
  test('a rule on a named port reports the flows it newly blocks, on the port the destination declares', async () => {
    const { backend } = await estate();
    const policy = (action: string) => ({ name: 'app', rules: [{ name: 'to-api', action, destinations: [{ workload: 'prod/shop/api' }], services: [{ protocol: 'tcp', ports: ['http'] }] }] });
    await backend.put('FirewallPolicy', 'app', policy('allow'), 'create');
    const r = await backend.plan('FirewallPolicy', 'app', policy('drop'));
    expect(r.infos?.join('\n')).toMatch(/2 newly blocked. newly blocked: .*workload:prod\/shop\/frontend -> workload:prod\/shop\/api tcp\/8080 \(drop by app\/to-api\)/);
  });
});

describe('address collisions', () => {
  test('an egress IP inside a pod CIDR is refused, naming the cluster', async () => {
    const { backend } = await estate();
    const msg = await refused(backend.put('EgressIp', 'out', { name: 'out', cluster: 'prod', ip: '10.244.0.200', podSelector: {} }, 'create'));
    expect(msg).toContain('ip: egress IP 10.244.0.200 is inside pod CIDR 10.244.0.0/16');
    expect(msg).toContain('collides with KubernetesCluster "prod" (podCidr)');
  });

  test('a load-balancer VIP equal to a VM IP is refused, naming the VM', async () => {
    const { backend } = await estate();
    const msg = await refused(backend.put('LoadBalancer', 'lb', { name: 'lb', vip: '192.168.28.50', listeners: [{ port: 80 }], pool: { group: 'web' } }, 'create'));
    expect(msg).toContain('vip: VIP 192.168.28.50 is also the IP of VM interface db#0');
    expect(msg).toContain('collides with VirtualMachine "db" (interfaces[0].ip)');
  });

  test('two VMs with one IP are refused, naming the first', async () => {
    const { backend } = await estate();
    const msg = await refused(backend.put('VirtualMachine', 'db2', { name: 'db2', interfaces: [{ ip: '192.168.28.50' }] }, 'create'));
    expect(msg).toContain('IP 192.168.28.50 is used twice: VirtualMachine "db2" collides with VirtualMachine "db" (interfaces[0].ip)');
  });

  test('pod CIDRs overlapping between clusters are refused, naming the other cluster', async () => {
    const { backend } = await estate();
    const msg = await refused(backend.put('KubernetesCluster', 'dev', cluster('dev', '10.244.128.0/17'), 'create'));
    expect(msg).toContain('podCidr: pod CIDRs 10.244.0.0/16 and 10.244.128.0/17 overlap');
    expect(msg).toContain('collides with KubernetesCluster "prod" (podCidr)');
  });

  test('a service CIDR overlapping the pod CIDR is refused', async () => {
    const { backend } = await estate();
    expect(await refused(backend.put('KubernetesCluster', 'dev', cluster('dev', '10.50.0.0/16', '10.50.128.0/20'), 'create'))).toContain(
      'serviceCidr: service CIDR 10.50.128.0/20 overlaps pod CIDR 10.50.0.0/16 of the same cluster',
    );
  });

  test('a VM IP inside a pod CIDR is refused (a pod could be allocated it)', async () => {
    const { backend } = await estate();
    expect(await refused(backend.put('VirtualMachine', 'odd', { name: 'odd', interfaces: [{ ip: '10.244.3.3' }] }, 'create'))).toContain('interfaces[0].ip: IP 10.244.3.3 is inside pod CIDR 10.244.0.0/16');
  });
});

describe('inputs Kubernetes or the dataplane would reject', () => {
  test('a load-balancer targetPort no pool member declares is refused', async () => {
    const { backend } = await estate();
    const msg = await refused(backend.put('LoadBalancer', 'lb', { name: 'lb', vip: '192.0.2.10', listeners: [{ port: 80, targetPort: 'https' }], pool: { group: 'web' } }, 'create'));
    expect(msg).toContain('listeners[0].targetPort: target port "https" is not a named port of any pool member (prod/shop/frontend-0)');
  });

  test('a named port against VM destinations only is refused', async () => {
    const { backend } = await estate();
    const msg = await refused(backend.put('FirewallPolicy', 'p', { name: 'p', rules: [{ name: 'r', action: 'allow', destinations: [{ vm: 'db' }], services: [{ protocol: 'tcp', ports: ['http'] }] }] }, 'create'));
    expect(msg).toContain('rules[0].services[0].ports[0]: named port "http" is used against VM destinations only');
  });

  test('a named port against a group of VMs only is refused', async () => {
    const { backend } = await estate();
    const msg = await refused(backend.put('FirewallPolicy', 'p', { name: 'p', rules: [{ name: 'r', action: 'allow', destinations: [{ group: 'dbs' }], services: [{ protocol: 'tcp', ports: ['http'] }] }] }, 'create'));
    expect(msg).toContain('rules[0].destinations[0]: named port "http" is used against group "dbs", whose members are all VM interfaces');
  });

  test.each([
    ['Namespace', 'prod/Team_A!', { name: 'Team_A!', cluster: 'prod' }, 'name: namespace name "Team_A!" is invalid'],
    ['VirtualMachine', 'vm', { name: 'vm', interfaces: [{ ip: '192.0.2.1' }], labels: { 'bad key!': 'x' } }, 'labels.bad key!: label key "bad key!" is invalid'],
    ['SecurityGroup', 'g', { name: 'g', vmSelectors: [{ matchExpressions: [{ key: '-x', operator: 'Exists' }] }] }, 'vmSelectors[0].matchExpressions[0].key: label key "-x" is invalid'],
    ['ConnectivityAssertion', 'ping', { name: 'ping', from: 'db', to: 'prod/shop/api', protocol: 'icmp', port: 80, expect: 'deny' }, 'port: protocol icmp has no ports, but port 80 is set'],
    ['FirewallPolicy', 'neg', { name: 'neg', priority: -1, rules: [] }, 'priority: Too small: expected number to be >=0'],
  ])('%s %s is refused: %s', async (kind, name, spec, message) => {
    const { backend, store } = await estate();
    expect(await refused(backend.put(kind, name, spec, 'create'))).toContain(message);
    expect(await store.get('test', kind, name)).toBeUndefined();
  });

  test('label keys with a DNS-subdomain prefix are accepted', async () => {
    const { backend } = await estate();
    await backend.put('VirtualMachine', 'vm', { name: 'vm', interfaces: [{ ip: '192.0.2.1' }], labels: { 'example.com/tier': 'web', 'app.kubernetes.io/name': 'x' } }, 'create');
  });
});

describe('messages', () => {
  test('a change that breaks an assertion says so once, in plain words', async () => {
    const { backend } = await estate();
    await backend.put('FirewallPolicy', 'app', { name: 'app', rules: [{ name: 'web-db', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'dbs' }] }] }, 'create');
    await backend.put('ConnectivityAssertion', 'web-db', { name: 'web-db', from: 'prod/shop/frontend', to: 'db', protocol: 'tcp', port: 5432, expect: 'allow' }, 'create');
    const msg = await refused(backend.put('FirewallPolicy', 'app', { name: 'app', rules: [] }, 'update'));
    expect(msg).toMatch(/^this change of FirewallPolicy "app" breaks connectivity assertion "web-db": prod\/shop\/frontend -> db tcp\/5432 expected allow, planned drop \(decided by default\)/);
    expect(msg).not.toContain('is broken');
  });
});

describe('appliedTo made only of IP blocks', () => {
  test('applies the policy nowhere and warns about it', async () => {
    const { backend } = await estate();
    await backend.put('SecurityGroup', 'dmz', { name: 'dmz', ipBlocks: [{ cidr: '203.0.113.0/24' }] }, 'create');
    const r = await backend.put('FirewallPolicy', 'p', { name: 'p', appliedTo: ['dmz'], rules: [{ name: 'deny', action: 'drop' }] }, 'create');
    expect(r.warnings).toEqual([expect.stringContaining('appliedTo group "dmz" has only IP blocks or egress IPs, which are not enforcement points, so the policy applies to nothing')]);
    const t = await backend.invoke('traceflow', { source: 'prod/shop/frontend', destination: 'db', protocol: 'tcp', port: 22 });
    expect(t).toMatchObject({ decidingPolicy: 'default' });
  });
});

describe('deleting an object still used through a literal name', () => {
  async function withLiteralUser(waitForUsersMs: number) {
    const store = new MemoryStore();
    const backend = new EmbeddedBackend({ store, environment: 'test', defaultAction: 'drop', waitForUsersMs });
    await backend.put('SecurityGroup', 'g1', { name: 'g1', ipBlocks: [{ cidr: '203.0.113.0/24' }] }, 'create');
    await backend.put('FirewallPolicy', 'p', { name: 'p', rules: [{ name: 'r', action: 'drop', sources: [{ group: 'g1' }] }] }, 'create');
    return { backend, store };
  }

  test('waits for the users that are being deleted at the same time (Pulumi knows no order between them)', async () => {
    const { backend, store } = await withLiteralUser(5_000);
    const group = backend.delete('SecurityGroup', 'g1');
    await backend.delete('FirewallPolicy', 'p');
    await group;
    expect(await store.get('test', 'SecurityGroup', 'g1')).toBeUndefined();
    expect(await store.get('test', 'FirewallPolicy', 'p')).toBeUndefined();
  });

  test('when the users stay, says to use a reference so that Pulumi orders the deletes', async () => {
    const { backend, store } = await withLiteralUser(300);
    const msg = await refused(backend.delete('SecurityGroup', 'g1'));
    expect(msg).toContain('SecurityGroup "g1" is still used by FirewallPolicy "p"');
    expect(msg).toContain('refer to the resource instead (`${<resource>.name}` in YAML, `<resource>.name` in code): Pulumi then knows the dependency and deletes the users first');
    expect(await store.get('test', 'SecurityGroup', 'g1')).toBeDefined();
  });
});
