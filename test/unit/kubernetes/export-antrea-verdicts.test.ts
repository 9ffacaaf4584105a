import { parseIp, type World } from '../../../provider/src/engine';
import type { Endpoint } from '../../../provider/src/engine/membership';
import type { Addr } from '../../../provider/src/engine/rules';
import { getKubernetesManifests } from '../../../provider/src/export/kubernetes';
import { estate, put } from '../engine/helpers';
import { AntreaSimulator, type SimFlow, type SimPeer, type SimPod } from './antrea-simulator';
import { exampleTopologyWorld } from '../../support/example-topology';

/**
 * Flavor `antrea` keeps microseg's verdicts: for every pod of a cluster, both directions, every other pod,
 * VM and outside address as the peer, and a set of services, the decision of microseg's engine at that
 * pod's firewall equals what the exported objects decide under Antrea's semantics (./antrea-simulator.ts,
 * written from Antrea's documentation). Antrea admits traffic from a pod's own node before any policy: with
 * `podsOnly` (worlds whose default rule drops it) the nodes are left out; without it the export refuses
 * wherever microseg drops them, so the nodes are compared too, as ingress from each pod's own node.
 */

const FLOWS: SimFlow[] = [
  ...[22, 53, 80, 443, 5432, 8080, 8848, 9000, 9090, 9100].map((port) => ({ protocol: 'tcp' as const, port })),
  { protocol: 'udp', port: 53 },
  { protocol: 'sctp', port: 8080 },
  { protocol: 'icmp', icmpType: 8 },
];

function compare(world: World, cluster: string, outsideIps: readonly string[], podsOnly = true): { checked: number; disagreements: string[] } {
  const r = getKubernetesManifests(world, { cluster, flavor: 'antrea', podsOnly });
  expect(r.refusals).toEqual([]);
  const namespaces = new Map(
    world
      .names('Namespace')
      .map((n) => world.get('Namespace', n)!)
      .filter((n) => n.cluster === cluster)
      .map((n) => [n.name!, n.labels ?? {}] as const),
  );
  const sim = new AntreaSimulator(r.manifests, namespaces);
  const endpoints: Endpoint[] = [...world.names('Workload'), ...world.names('VirtualMachine')].flatMap((o) => [...world.endpointsOf(o)]);
  const pods = endpoints.filter((e) => e.kind === 'pod' && e.cluster === cluster);
  const simPod = (e: Endpoint): SimPod => ({ namespace: e.namespace!, labels: e.labels, ip: e.ip.s, namedPorts: new Map(e.namedPorts ?? []) });
  // Peers: the cluster's pods (by identity), VMs and pods elsewhere (by address), outside addresses.
  const peers: { addr: Addr; sim: SimPeer; name: string }[] = [
    ...endpoints.map((e) => ({ addr: { ip: e.ip, ep: e }, sim: e.kind === 'pod' && e.cluster === cluster ? { pod: simPod(e) } : { ip: e.ip.s }, name: e.name })),
    ...outsideIps.map((ip) => ({ addr: { ip: parseIp(ip)! }, sim: { ip }, name: ip })),
  ];
  // Without podsOnly: each node as the source of ingress to a pod on it (every node may host any pod).
  const nodes: { addr: Addr; sim: SimPeer; name: string }[] = podsOnly ? [] : world.get('KubernetesCluster', cluster)!.nodes.map((n) => ({ addr: { ip: parseIp(n.ip)! }, sim: { ip: n.ip, ownNode: true }, name: `node ${n.name}` }));
  const disagreements: string[] = [];
  let checked = 0;
  for (const p of pods) {
    const at: Addr = { ip: p.ip, ep: p };
    for (const peer of peers) {
      if (peer.addr.ep === p) continue;
      for (const f of FLOWS) {
        for (const dir of ['in', 'out'] as const) {
          const [src, dst] = dir === 'in' ? [peer.addr, at] : [at, peer.addr];
          const rule = world.decideAt(p, dir, false, src, dst, { ...f, port: f.port });
          const microseg = rule ? rule.action : world.defaultAction;
          const antrea = sim.decide(simPod(p), dir === 'in' ? 'ingress' : 'egress', peer.sim, f).toLowerCase();
          checked++;
          if (microseg !== antrea) disagreements.push(`${p.name} ${dir} ${dir === 'in' ? 'from' : 'to'} ${peer.name} ${f.protocol}/${f.port ?? f.icmpType}: microseg ${microseg} (${rule ? `${rule.policy.name}/${rule.name}` : 'default'}), antrea ${antrea}`);
        }
      }
    }
    for (const node of nodes)
      for (const f of FLOWS) {
        const rule = world.decideAt(p, 'in', false, node.addr, at, { ...f, port: f.port });
        const microseg = rule ? rule.action : world.defaultAction;
        const antrea = sim.decide(simPod(p), 'ingress', node.sim, f).toLowerCase();
        checked++;
        if (microseg !== antrea) disagreements.push(`${p.name} in from ${node.name} ${f.protocol}/${f.port ?? f.icmpType}: microseg ${microseg} (${rule ? `${rule.policy.name}/${rule.name}` : 'default'}), antrea ${antrea}`);
      }
  }
  return { checked, disagreements };
}

it('the flagship cluster, with a quarantined pod and the default rule drop', async () => {
  const { vcciWorld } = await import('../../support/vcci-world');
  const w = await vcciWorld();
  put(w, 'Workload', 'vcci/shop/suspect', { name: 'suspect', cluster: 'vcci', namespace: 'shop', labels: { app: 'backend', quarantine: 'true' }, replicas: 1, ports: [{ name: 'http', port: 8080 }] });
  const { checked, disagreements } = compare(w, 'vcci', ['203.0.113.10', '192.168.28.100', '192.168.28.200', '8.8.8.8']);
  expect(disagreements).toEqual([]);
  expect(checked).toBeGreaterThan(5000);
}, 120_000);

it('the example cluster with NetworkPolicies, a pass into them and a baseline', () => {
  const { disagreements } = compare(exampleTopologyWorld('kubernetes-networkpolicies.yaml'), 'ake', ['203.0.113.10']);
  expect(disagreements).toEqual([]);
});

it('without podsOnly, the nodes too: an estate whose drops leave the nodes out exports, and every pod admits its node in both', () => {
  const w = estate({ defaultAction: 'drop' });
  put(w, 'FirewallPolicy', 'infra', { category: 'infrastructure', priority: 1, rules: [{ name: 'kubelet', action: 'allow', direction: 'in', sources: [{ cidr: '192.168.0.0/24' }] }] });
  put(w, 'FirewallPolicy', 'app', {
    category: 'application',
    priority: 1,
    rules: [
      { name: 'web-api', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: [8080] }] },
      { name: 'not-nodes', action: 'drop', direction: 'in', sources: [{ cidr: '192.168.0.0/24' }], sourcesExcluded: true, destinations: [{ group: 'api' }] },
    ],
  });
  const { checked, disagreements } = compare(w, 'c1', ['203.0.113.10'], false);
  expect(disagreements).toEqual([]);
  expect(checked).toBeGreaterThan(0);
});

it('a small estate with every action, negation, ports, a pass before application and a baseline pass', () => {
  const w = estate({ defaultAction: 'drop' });
  put(w, 'SecurityGroup', 'mixed', { podSelectors: [{ namespaces: ['ops'] }], vms: ['bastion'], ipBlocks: [{ cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] }] });
  // Application rules on shop pods only, so that the pass into ops' NetworkPolicies skips none of them.
  put(w, 'SecurityGroup', 'shop-api', { podSelectors: [{ namespaces: ['shop'], podSelector: { matchLabels: { app: 'api' } } }] });
  put(w, 'SecurityGroup', 'shop-web', { podSelectors: [{ namespaces: ['shop'], podSelector: { matchLabels: { app: 'web' } } }] });
  put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'ops-to-np', action: 'pass', direction: 'in', destinations: [{ podSelector: { namespaces: ['ops'] } }] }] });
  put(w, 'FirewallPolicy', 'app', {
    category: 'application',
    priority: 1,
    rules: [
      { name: 'web-api', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'shop-api' }], services: [{ protocol: 'tcp', ports: ['grpc', '9000-9100'] }] },
      { name: 'rst', action: 'reject', direction: 'in', sources: [{ group: 'mixed' }], destinations: [{ group: 'shop-api' }], services: [{ protocol: 'tcp', ports: [22] }] },
      { name: 'not-db', action: 'drop', direction: 'out', sources: [{ group: 'shop-web' }], destinations: [{ group: 'db' }], destinationsExcluded: true, services: [{ protocol: 'tcp', ports: [443] }] },
      { name: 'ping', action: 'allow', sources: [{ group: 'mixed' }], destinations: [{ group: 'shop-api' }], services: [{ protocol: 'icmp', icmpType: 8 }] },
      { name: 'to-np', action: 'pass', direction: 'in', destinations: [{ group: 'shop-web' }], services: [{ protocol: 'any', ports: [53] }] },
    ],
  });
  put(w, 'FirewallPolicy', 'base', {
    category: 'baseline',
    priority: 1,
    rules: [
      { name: 'skip', action: 'pass', direction: 'out', sources: [{ group: 'api' }] },
      { name: 'web-out', action: 'allow', direction: 'out', sources: [{ group: 'web' }], destinations: [{ cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] }] },
    ],
  });
  put(w, 'KubernetesNetworkPolicy', 'c1/shop/web-in', { name: 'web-in', cluster: 'c1', namespace: 'shop', podSelector: { matchLabels: { app: 'web' } }, ingress: [{ ports: [{ port: 53, protocol: 'UDP' }] }] });
  put(w, 'KubernetesNetworkPolicy', 'c1/ops/tools-in', { name: 'tools-in', cluster: 'c1', namespace: 'ops', podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'shop' } } }], ports: [{ port: 8080 }] }] });
  const { disagreements } = compare(w, 'c1', ['192.0.2.10', '192.0.2.200', '203.0.113.10']);
  expect(disagreements).toEqual([]);
});
