/**
 * Policy impact as `pulumi preview` prints it: the flows a change newly allows and newly blocks, with the
 * rule that decides each, and the sampling cap on large estates.
 */
import { EmbeddedBackend } from '../../../provider/src/backend';
import { IMPACT_FLOW_BUDGET } from '../../../provider/src/backend/impact';
import { MemoryStore } from '../../../provider/src/store';

async function estate(): Promise<EmbeddedBackend> {
  const backend = new EmbeddedBackend({ store: new MemoryStore(), environment: 'test', defaultAction: 'drop' });
  await backend.put('KubernetesCluster', 'prod', { name: 'prod', podCidr: '10.244.0.0/16', serviceCidr: '10.96.0.0/12', nodes: [{ name: 'n1', ip: '192.168.1.10' }], networkMode: 'flat' }, 'create');
  await backend.put('Namespace', 'prod/shop', { name: 'shop', cluster: 'prod' }, 'create');
  await backend.put('Workload', 'prod/shop/frontend', { name: 'frontend', cluster: 'prod', namespace: 'shop', labels: { app: 'frontend' }, replicas: 1 }, 'create');
  await backend.put('VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '192.168.28.50' }], labels: { role: 'db' } }, 'create');
  await backend.put('SecurityGroup', 'web', { name: 'web', podSelectors: [{ podSelector: { matchLabels: { app: 'frontend' } } }] }, 'create');
  await backend.put('SecurityGroup', 'dbs', { name: 'dbs', vmSelectors: [{ matchLabels: { role: 'db' } }] }, 'create');
  return backend;
}

const allowWebToDb = {
  name: 'app',
  category: 'application',
  rules: [{ name: 'web-to-db', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'dbs' }], services: [{ protocol: 'tcp', ports: [5432] }] }],
};

test('removing an allow reports the flow it newly blocks and the rule that now decides it', async () => {
  const backend = await estate();
  await backend.put('FirewallPolicy', 'app', allowWebToDb, 'create');
  const r = await backend.plan('FirewallPolicy', 'app', { ...allowWebToDb, rules: [] });
  expect(r.infos).toEqual([
    'policy impact of FirewallPolicy "app": 0 flow(s) newly allowed, 1 newly blocked. newly blocked: workload:prod/shop/frontend -> vm:db tcp/5432 (drop by default)',
  ]);
});

test('a higher-category drop reports the flow it newly blocks with its own rule', async () => {
  const backend = await estate();
  await backend.put('FirewallPolicy', 'app', allowWebToDb, 'create');
  const r = await backend.plan('FirewallPolicy', 'freeze', {
    name: 'freeze',
    category: 'emergency',
    rules: [{ name: 'no-db', action: 'drop', destinations: [{ group: 'dbs' }] }],
  });
  expect(r.infos).toEqual([
    'policy impact of FirewallPolicy "freeze": 0 flow(s) newly allowed, 1 newly blocked. newly blocked: workload:prod/shop/frontend -> vm:db tcp/5432 (drop by freeze/no-db)',
  ]);
});

test('on an estate larger than the flow budget, impact is sampled and says so, listing three flows and a count of the rest', async () => {
  const backend = new EmbeddedBackend({ store: new MemoryStore(), environment: 'test', defaultAction: 'drop' });
  // 30 VMs: 870 ordered pairs × 2 sampled services (tcp, tcp/5432) = 1,740 flows, more than the budget.
  const vms = Array.from({ length: 30 }, (_, i) => `vm${String(i).padStart(2, '0')}`);
  for (const [i, name] of vms.entries()) await backend.put('VirtualMachine', name, { name, interfaces: [{ ip: `10.0.0.${i + 1}` }], labels: { role: 'app' } }, 'create');
  await backend.put('SecurityGroup', 'apps', { name: 'apps', vmSelectors: [{ matchLabels: { role: 'app' } }] }, 'create');
  const allowApps = { name: 'mesh', category: 'application', rules: [{ name: 'app-to-app', action: 'allow', sources: [{ group: 'apps' }], destinations: [{ group: 'apps' }], services: [{ protocol: 'tcp', ports: [5432] }] }] };
  await backend.put('FirewallPolicy', 'mesh', allowApps, 'create');

  const r = await backend.plan('FirewallPolicy', 'mesh', { ...allowApps, rules: [] });
  // The budget covers the first 750 source/destination pairs in name order, each with one tcp/5432 flow.
  const sampled = IMPACT_FLOW_BUDGET / 2;
  expect(r.infos).toEqual([
    `policy impact of FirewallPolicy "mesh": 0 flow(s) newly allowed, ${sampled} newly blocked. newly blocked: ` +
      'vm:vm00 -> vm:vm01 tcp/5432 (drop by default); vm:vm00 -> vm:vm02 tcp/5432 (drop by default); vm:vm00 -> vm:vm03 tcp/5432 (drop by default); ' +
      `+${sampled - 3} more. (sampled: more than ${IMPACT_FLOW_BUDGET} flows)`,
  ]);
});
