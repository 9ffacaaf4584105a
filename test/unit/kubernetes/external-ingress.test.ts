import { getKubernetesManifests } from '../../../provider/src/export/kubernetes';
import type { World } from '../../../provider/src/engine';
import { estate, put } from '../engine/helpers';

/**
 * Flavor `kubernetes`, ingress to pods from sources outside the cluster (VMs, IP blocks, any source).
 * No standard ClusterNetworkPolicy ingress peer selects an address, so Kubernetes decides such flows in
 * the NetworkPolicy layer alone; the export writes NetworkPolicies that isolate the pods microseg does not
 * open to everything and admit exactly what microseg admits, or refuses. One behaviour per test; the
 * differential test (export-differential.test.ts) checks the verdicts on random worlds.
 *
 * The estate: cluster c1 (pod CIDR 10.1.0.0/16, nodes 192.168.0.11/12), namespaces shop (web, api) and
 * ops (tools), VMs db 172.16.0.10 and bastion 172.16.0.20.
 */

type Manifest = { kind: string; metadata: { name: string; namespace?: string }; spec: Record<string, unknown> };

function exportOf(w: World, podsOnly = true) {
  const r = getKubernetesManifests(w, { cluster: 'c1', flavor: 'kubernetes', podsOnly });
  return { refusals: r.refusals, manifests: r.manifests as unknown as Manifest[] };
}
const networkPolicies = (ms: Manifest[]) => ms.filter((m) => m.kind === 'NetworkPolicy' && m.metadata.name.startsWith('microseg-'));
const inNamespace = (ms: Manifest[], ns: string) => networkPolicies(ms).filter((m) => m.metadata.namespace === ns);
/** The api pods of namespace shop (the estate's `api` group selects app=api in every namespace). */
const API_IN_SHOP = [{ podSelector: { namespaces: ['shop'], podSelector: { matchLabels: { app: 'api' } } } }];

it('an allow from a VM becomes an ipBlock of its address in a NetworkPolicy that isolates the destination pods, with the rule ports', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'FirewallPolicy', 'app', {
    category: 'application',
    priority: 1,
    rules: [
      { name: 'bastion-to-api', action: 'allow', direction: 'in', sources: [{ group: 'bastion' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: [22] }] },
      { name: 'api-closed', action: 'drop', direction: 'in', sources: [{ group: 'bastion' }], destinations: [{ group: 'api' }] },
    ],
  });
  const { refusals, manifests } = exportOf(w);
  expect(refusals).toEqual([]);
  const shop = inNamespace(manifests, 'shop');
  expect(shop.map((m) => m.spec)).toEqual([
    {
      podSelector: { matchLabels: { app: 'api' } },
      policyTypes: ['Ingress'],
      ingress: [
        // Every other outside address keeps Kubernetes' allow, as microseg's default rule does...
        { from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.1.0.0/16', '172.16.0.20/32'] } }, { ipBlock: { cidr: '::/0' } }] },
        { from: [{ ipBlock: { cidr: '172.16.0.20/32' } }], ports: [{ protocol: 'TCP', port: 22 }] },
        // ...and so do pod sources that fall through the Admin tier (isolation must not change them).
        { from: [{ namespaceSelector: {} }] },
      ],
    },
  ]);
  // No ClusterNetworkPolicy for the VM-only rules: their ingress has no pod peer.
  expect(manifests.filter((m) => m.kind === 'ClusterNetworkPolicy')).toEqual([]);
});

it('pods no rule closes to outside sources are not isolated when the default rule allows', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'db-closed', action: 'drop', direction: 'in', sources: [{ group: 'bastion' }], destinations: API_IN_SHOP }] });
  const { manifests } = exportOf(w);
  expect(inNamespace(manifests, 'ops')).toEqual([]);
  expect(inNamespace(manifests, 'shop').map((m) => m.spec.podSelector)).toEqual([{ matchLabels: { app: 'api' } }]);
});

it('ingress from any source: pods through a ClusterNetworkPolicy peer, outside addresses through a NetworkPolicy', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'FirewallPolicy', 'emergency', { category: 'emergency', priority: 1, rules: [{ name: 'lock-api', action: 'drop', direction: 'in', destinations: [{ group: 'api' }] }] });
  const { refusals, manifests } = exportOf(w);
  expect(refusals).toEqual([]);
  const cnp = manifests.find((m) => m.kind === 'ClusterNetworkPolicy')!;
  expect(cnp.spec.ingress).toEqual([{ name: 'lock-api', action: 'Deny', from: [{ namespaces: {} }] }]);
  // Isolated, no outside source admitted; pod sources (denied by the Admin tier before this layer) would
  // get the default rule's allow.
  expect(inNamespace(manifests, 'shop').map((m) => m.spec)).toEqual([{ podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ namespaceSelector: {} }] }] }]);
});

it('a dropping default rule isolates every namespace and admits no pod source in the NetworkPolicy layer', () => {
  const w = estate({ defaultAction: 'drop' });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'db-to-web', action: 'allow', direction: 'in', sources: [{ group: 'db' }], destinations: [{ podSelector: { namespaces: ['shop'], podSelector: { matchLabels: { app: 'web' } } } }], services: [{ protocol: 'tcp', ports: ['8000-8100'] }] }] });
  const { refusals, manifests } = exportOf(w);
  expect(refusals).toEqual([]);
  expect(inNamespace(manifests, 'ops').map((m) => m.spec)).toEqual([{ podSelector: {}, policyTypes: ['Ingress'], ingress: [] }]);
  expect(inNamespace(manifests, 'shop').map((m) => m.spec)).toEqual([
    { podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, policyTypes: ['Ingress'], ingress: [] },
    { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ ipBlock: { cidr: '172.16.0.10/32' } }], ports: [{ protocol: 'TCP', port: 8000, endPort: 8100 }] }] },
  ]);
});

it('pods two rule subjects select get their own NetworkPolicy, decided by the first matching rule', () => {
  const w = estate({ defaultAction: 'drop' });
  put(w, 'QuarantinePolicy', 'quarantine', { selector: { matchLabels: { quarantine: 'true' } } });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'db-to-api', action: 'allow', direction: 'in', sources: [{ group: 'db' }], destinations: API_IN_SHOP, services: [{ protocol: 'tcp', ports: [9090] }] }] });
  const { manifests } = exportOf(w);
  const bySelector = Object.fromEntries(inNamespace(manifests, 'shop').map((m) => [JSON.stringify(m.spec.podSelector), m.spec.ingress]));
  // A quarantined api pod: the emergency isolation comes first, so the db allow never reaches it.
  expect(bySelector).toEqual({
    [JSON.stringify({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['api'] }] })]: [],
    [JSON.stringify({ matchLabels: { app: 'api', quarantine: 'true' } })]: [],
    [JSON.stringify({ matchLabels: { app: 'api' }, matchExpressions: [{ key: 'quarantine', operator: 'NotIn', values: ['true'] }] })]: [
      { from: [{ ipBlock: { cidr: '172.16.0.10/32' } }], ports: [{ protocol: 'TCP', port: 9090 }] },
    ],
  });
});

it('pods a user NetworkPolicy isolates only gain the outside allows, never a pod rule', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'KubernetesNetworkPolicy', 'c1/shop/api-in', { name: 'api-in', cluster: 'c1', namespace: 'shop', podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'db-to-api', action: 'allow', direction: 'in', sources: [{ group: 'db' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: [9090] }] }] });
  const { refusals, manifests } = exportOf(w);
  expect(refusals).toEqual([]);
  expect(inNamespace(manifests, 'shop').map((m) => m.spec)).toEqual([
    { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ ipBlock: { cidr: '172.16.0.10/32' } }], ports: [{ protocol: 'TCP', port: 9090 }] }] },
  ]);
});

it('refuses where a user NetworkPolicy admits outside sources that a microseg rule decides first', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'KubernetesNetworkPolicy', 'c1/shop/api-in', { name: 'api-in', cluster: 'c1', namespace: 'shop', podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ ipBlock: { cidr: '172.16.0.0/24' } }] }] });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'no-db', action: 'drop', direction: 'in', sources: [{ group: 'db' }], destinations: [{ group: 'api' }] }] });
  expect(exportOf(w).refusals).toEqual([
    { construct: 'pods of namespace shop selected by {"matchLabels":{"app":"api"}}', reason: expect.stringContaining('NetworkPolicy shop/api-in admits sources outside the cluster') },
  ]);
});

it('refuses isolation where a baseline rule decides some pod sources unlike the others', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'no-db', action: 'drop', direction: 'in', sources: [{ group: 'db' }], destinations: API_IN_SHOP }] });
  put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, rules: [{ name: 'no-web', action: 'drop', direction: 'in', sources: [{ group: 'web' }] }] });
  expect(exportOf(w).refusals).toEqual([
    { construct: 'pods of namespace shop selected by {"matchLabels":{"app":"api"}}', reason: expect.stringContaining('FirewallPolicy base/no-web (baseline) decides some pod sources differently') },
  ]);
});

it('refuses ingress sources that are IP blocks overlapping the pod CIDR (pods matched by address)', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'from-10', action: 'drop', direction: 'in', sources: [{ cidr: '10.0.0.0/8' }], destinations: [{ group: 'api' }] }] });
  expect(exportOf(w).refusals).toEqual([{ construct: 'FirewallPolicy app/from-10', reason: expect.stringContaining('overlapping the pod CIDR 10.1.0.0/16') }]);
});

it('refuses a partial allow of outside sources that would have to include ICMP (NetworkPolicy ports are TCP, UDP, SCTP)', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'no-ssh', action: 'drop', direction: 'in', destinations: API_IN_SHOP, services: [{ protocol: 'tcp', ports: [22] }] }] });
  expect(exportOf(w).refusals).toEqual([{ construct: 'pods of namespace shop selected by {"matchLabels":{"app":"api"}}', reason: expect.stringContaining('ICMP or other non-port protocols') }]);
});

it('without podsOnly, refuses when microseg drops traffic from the nodes, which Kubernetes always admits from a pod\'s own node', () => {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'api-closed', action: 'drop', direction: 'in', destinations: API_IN_SHOP }] });
  expect(exportOf(w, false).refusals).toEqual([{ construct: 'ingress from the nodes of cluster c1', reason: expect.stringContaining('microseg drops it for pods {"matchLabels":{"app":"api"}} in shop (FirewallPolicy app/api-closed)') }]);
  expect(exportOf(w, true).refusals).toEqual([]);
});

it('without podsOnly, exports when microseg admits the nodes', () => {
  const w = estate({ defaultAction: 'drop' });
  put(w, 'FirewallPolicy', 'infra', { category: 'infrastructure', priority: 1, rules: [{ name: 'kubelet', action: 'allow', direction: 'in', sources: [{ cidr: '192.168.0.0/24' }] }] });
  const { refusals, manifests } = exportOf(w, false);
  expect(refusals).toEqual([]);
  expect(inNamespace(manifests, 'ops').map((m) => m.spec.ingress)).toEqual([[{ from: [{ ipBlock: { cidr: '192.168.0.0/24' } }] }]]);
});

describe('named ports (resolved on the destination pod, so they stand apart from port numbers)', () => {
  it('an allow on a named port from a VM becomes a named NetworkPolicy port', () => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'db-to-api', action: 'allow', direction: 'in', sources: [{ group: 'db' }], destinations: API_IN_SHOP, services: [{ protocol: 'tcp', ports: ['grpc'] }] }] });
    const { refusals, manifests } = exportOf(w);
    expect(refusals).toEqual([]);
    expect(inNamespace(manifests, 'shop').find((m) => JSON.stringify(m.spec.podSelector) === '{"matchLabels":{"app":"api"}}')!.spec.ingress).toEqual([
      { from: [{ ipBlock: { cidr: '172.16.0.10/32' } }], ports: [{ protocol: 'TCP', port: 'grpc' }] },
    ]);
  });

  it('a named port that other pods\' rules use is not written for pods whose rules do not name it', () => {
    const w = estate({ defaultAction: 'drop' });
    const WEB_IN_SHOP = [{ podSelector: { namespaces: ['shop'], podSelector: { matchLabels: { app: 'web' } } } }];
    put(w, 'FirewallPolicy', 'app', {
      category: 'application',
      priority: 1,
      rules: [
        { name: 'grpc', action: 'allow', direction: 'in', sources: [{ group: 'db' }], destinations: API_IN_SHOP, services: [{ protocol: 'tcp', ports: ['grpc'] }] },
        { name: 'web-no-9090', action: 'drop', direction: 'in', sources: [{ group: 'db' }], destinations: WEB_IN_SHOP, services: [{ protocol: 'tcp', ports: [9090] }] },
        { name: 'web-tcp', action: 'allow', direction: 'in', sources: [{ group: 'db' }], destinations: WEB_IN_SHOP, services: [{ protocol: 'tcp' }] },
      ],
    });
    const { refusals, manifests } = exportOf(w);
    expect(refusals).toEqual([]);
    // A web pod's port named grpc on 9090 must stay closed: no `port: grpc` next to the ranges.
    expect(inNamespace(manifests, 'shop').find((m) => JSON.stringify(m.spec.podSelector) === '{"matchLabels":{"app":"web"}}')!.spec.ingress).toEqual([
      {
        from: [{ ipBlock: { cidr: '172.16.0.10/32' } }],
        ports: [
          { protocol: 'TCP', port: 1, endPort: 9089 },
          { protocol: 'TCP', port: 9091, endPort: 65535 },
        ],
      },
    ]);
  });

  it('refuses named ports and port numbers of one protocol deciding outside sources for the same pods', () => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'app', {
      category: 'application',
      priority: 1,
      rules: [
        { name: 'no-9090', action: 'drop', direction: 'in', destinations: API_IN_SHOP, services: [{ protocol: 'tcp', ports: [9090] }] },
        { name: 'grpc', action: 'allow', direction: 'in', sources: [{ group: 'db' }], destinations: API_IN_SHOP, services: [{ protocol: 'tcp', ports: ['grpc'] }] },
      ],
    });
    expect(exportOf(w).refusals).toEqual([{ construct: 'pods of namespace shop selected by {"matchLabels":{"app":"api"}}', reason: expect.stringContaining('named ports and port numbers of tcp') }]);
  });

  it('refuses a named port dropped where every other port of its protocol is admitted', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'no-grpc', action: 'drop', direction: 'in', destinations: API_IN_SHOP, services: [{ protocol: 'tcp', ports: ['grpc'] }] }] });
    expect(exportOf(w).refusals).toEqual([{ construct: 'pods of namespace shop selected by {"matchLabels":{"app":"api"}}', reason: expect.stringContaining('tcp port grpc is dropped where every other tcp port is admitted') }]);
  });
});

it('refuses pod peers that name no cluster when another cluster\'s pods keep their addresses (flat mode): microseg matches them by labels', () => {
  const w = estate({ defaultAction: 'drop' });
  put(w, 'KubernetesCluster', 'c2', { podCidr: '10.2.0.0/16', serviceCidr: '10.97.0.0/16', nodes: [{ name: 'm1', ip: '192.168.0.21' }], networkMode: 'flat' });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'web-to-api', action: 'allow', direction: 'in', sources: [{ group: 'web' }], destinations: API_IN_SHOP }] });
  expect(exportOf(w).refusals).toEqual([{ construct: 'FirewallPolicy app/web-to-api', reason: expect.stringContaining('group web selects pods without naming a cluster, and the pods of c2 (flat mode)') }]);
  // Named, the selector is exact: pods of c2 are outside addresses here, as in microseg.
  put(w, 'SecurityGroup', 'web', { podSelectors: [{ cluster: 'c1', podSelector: { matchLabels: { app: 'web' } } }] });
  expect(exportOf(w).refusals).toEqual([]);
});
