import type { World } from '../../../provider/src/engine';
import type { Observation } from '../../../provider/src/engine/traceflow';
import { getKubernetesManifests } from '../../../provider/src/export/kubernetes';
import { CalicoModel, parseSelector, type CalicoEndpoint } from '../../support/calico-evaluator';
import { estate, put } from '../engine/helpers';
import { exampleTopologyWorld } from '../../support/example-topology';

/**
 * The calico flavor keeps microseg's verdicts: for every pair of endpoints and a set of services, each side
 * that Calico enforces (the pods of the cluster; the VMs too with hostEndpoints) gets from the exported
 * objects, evaluated with Calico's semantics (test/support/calico-evaluator.ts), the action microseg's
 * traceflow reports for that side. NetworkPolicies are evaluated in Calico's default tier, between
 * microseg-application and microseg-baseline.
 */

function endpoints(w: World, cluster: string, hostEndpoints: boolean): { pods: CalicoEndpoint[]; enforced: Map<string, CalicoEndpoint>; refs: string[] } {
  const pods: CalicoEndpoint[] = [];
  const enforced = new Map<string, CalicoEndpoint>();
  const refs: string[] = [];
  for (const id of w.names('Workload')) {
    const wl = w.get('Workload', id)!;
    const nsLabels = { ...(w.get('Namespace', `${wl.cluster}/${wl.namespace}`)?.labels ?? {}), 'kubernetes.io/metadata.name': wl.namespace };
    for (const ep of w.endpointsOf(id)) {
      const c: CalicoEndpoint = { ip: ep.ip.s, kind: 'pod', labels: ep.labels, namespace: ep.namespace, namespaceLabels: nsLabels, namedPorts: ep.namedPorts };
      if (wl.cluster !== cluster) continue; // other clusters' pods reach this one by address only
      pods.push(c);
      enforced.set(c.ip, c);
    }
    if (wl.cluster === cluster) refs.push(id);
  }
  for (const vm of w.names('VirtualMachine')) {
    refs.push(vm);
    if (hostEndpoints) for (const i of w.get('VirtualMachine', vm)!.interfaces) enforced.set(i.ip, { ip: i.ip, kind: 'host', labels: { ...(w.get('VirtualMachine', vm)!.labels ?? {}), 'app.kubernetes.io/managed-by': 'microseg', 'microseg.io/vm': vm } });
  }
  return { pods, enforced, refs };
}

/** Compares every enforced side of every flow; returns the disagreements and the number of sides compared. */
function compare(w: World, cluster: string, services: readonly ['tcp' | 'udp', number][], hostEndpoints = false): { compared: number; disagreements: string[] } {
  const exported = getKubernetesManifests(w, { cluster, flavor: 'calico', hostEndpoints, podsOnly: true });
  expect(exported.refusals).toEqual([]);
  const { pods, enforced, refs } = endpoints(w, cluster, hostEndpoints);
  const calico = new CalicoModel(exported.manifests, pods);
  const disagreements: string[] = [];
  let compared = 0;
  // Load-balancer VIPs as destinations too: the source side sees the VIP, the member's side the DNATed flow.
  const vips = w.names('LoadBalancer').flatMap((n) => {
    const vip = w.get('LoadBalancer', n)!.vip ?? w.outputsOf('LoadBalancer', n).allocatedVip;
    return typeof vip === 'string' && vip ? [vip] : [];
  });
  for (const src of refs)
    for (const dst of [...refs, ...vips]) {
      if (src === dst) continue;
      for (const [protocol, port] of services) {
        const t = w.traceflow({ source: src, destination: dst, protocol, port });
        if ('problem' in t) throw new Error(t.problem.message);
        const sides: [Observation | undefined, 'egress' | 'ingress'][] = [
          [t.observations.find((o) => o.component === 'source-firewall'), 'egress'],
          [t.observations.find((o) => o.component === 'destination-firewall'), 'ingress'],
        ];
        for (const [o, dir] of sides) {
          if (!o) continue;
          const local = enforced.get(dir === 'egress' ? o.sourceIp! : o.destinationIp!);
          if (!local) continue;
          const expected = o.action === 'allow' ? 'allow' : 'deny';
          // The member's side sees the port the load balancer translated to.
          const dstPort = dir === 'ingress' ? (t.observations.find((x) => x.component === 'load-balancer')?.translatedPort ?? port) : port;
          const got = calico.verdict(local, dir, dir === 'egress' ? o.destinationIp! : o.sourceIp!, protocol, dstPort);
          compared++;
          if (got !== expected) disagreements.push(`${src} → ${dst} ${protocol}/${port} ${dir} at ${local.ip}: microseg ${o.action} (${o.category}/${o.policy}/${o.rule}), calico ${got}`);
        }
      }
    }
  return { compared, disagreements };
}

const PORTS = [22, 53, 80, 443, 5432, 8080, 8443, 9000, 9090, 9100, 9999];
const SERVICES = PORTS.flatMap((p) => [['tcp', p] as ['tcp', number], ['udp', p] as ['udp', number]]);

it('the evaluator reads the selector grammar the exporter writes', () => {
  const l = { app: 'api', 'pcns.team': 'shop', 'projectcalico.org/namespace': 'shop' };
  expect(parseSelector("app == 'api' && (pcns.team in {'ops', 'shop'} || !has(x))")(l)).toBe(true);
  expect(parseSelector("app != 'api' || team not in {'a'}")(l)).toBe(true);
  expect(parseSelector("has(projectcalico.org/namespace) && pcns.team == 'ops'")(l)).toBe(false);
  expect(parseSelector('all()')({})).toBe(true);
});

it('a crafted world: pass from emergency and infrastructure, baseline, negation, except, named ports, staged, UDP', () => {
  const w = estate({ defaultAction: 'drop' });
  put(w, 'SecurityGroup', 'ops', { podSelectors: [{ namespaces: ['ops'] }] });
  put(w, 'FirewallPolicy', 'em', {
    category: 'emergency',
    priority: 1,
    rules: [
      { name: 'skip-web', action: 'pass', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] },
      { name: 'no-ssh', action: 'drop', services: [{ protocol: 'tcp', ports: [22] }] },
    ],
  });
  put(w, 'FirewallPolicy', 'infra', {
    category: 'infrastructure',
    priority: 1,
    rules: [
      { name: 'skip-tools', action: 'pass', sources: [{ group: 'ops' }], services: [{ protocol: 'tcp', ports: ['9000-9100'] }] },
      { name: 'dns', action: 'allow', services: [{ protocol: 'udp', ports: [53] }] },
      { name: 'block-app', action: 'drop', direction: 'in', destinations: [{ group: 'api' }] },
    ],
  });
  put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'no-80', action: 'drop', services: [{ protocol: 'tcp', ports: [80] }] }] });
  put(w, 'FirewallPolicy', 'staged', { category: 'application', priority: 0, enforcement: 'staged', rules: [{ name: 'all', action: 'drop' }] });
  put(w, 'FirewallPolicy', 'app', {
    category: 'application',
    priority: 1,
    rules: [
      { name: 'grpc', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: ['grpc', 80] }] },
      { name: 'not-web', action: 'drop', direction: 'in', sourcesExcluded: true, sources: [{ group: 'web' }, { cidr: '172.16.0.0/28' }], destinations: [{ group: 'api' }] },
      { name: 'db', action: 'allow', direction: 'out', sources: [{ group: 'api' }], destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [5432] }] },
      { name: 'outside', action: 'allow', direction: 'out', destinations: [{ cidr: '172.16.0.0/16', except: ['172.16.0.16/28'] }], services: [{ protocol: 'tcp', ports: ['8000-8443'] }] },
      { name: 'tools', action: 'pass', direction: 'in', sources: [{ group: 'ops' }] },
    ],
  });
  put(w, 'FirewallPolicy', 'base', {
    category: 'baseline',
    priority: 1,
    rules: [
      { name: 'metrics', action: 'allow', direction: 'in', services: [{ protocol: 'tcp', ports: [9100] }] },
      { name: 'to-base', action: 'pass', direction: 'out', sources: [{ group: 'ops' }] },
      { name: 'ops-out', action: 'allow', direction: 'out', sources: [{ group: 'ops' }] },
    ],
  });
  put(w, 'FirewallPolicy', 'vm', { category: 'application', priority: 2, appliedTo: ['db'], rules: [{ name: 'from-api', action: 'allow', direction: 'in', sources: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: [5432] }] }] });
  for (const hostEndpoints of [false, true]) {
    const r = compare(w, 'c1', SERVICES, hostEndpoints);
    expect(r.disagreements).toEqual([]);
    expect(r.compared).toBeGreaterThan(hostEndpoints ? 300 : 200);
  }
});

it('the NetworkPolicy example (examples/topologies/kubernetes-networkpolicies.yaml): pass from application into the NetworkPolicies (Calico default tier), baseline for pods they do not select', () => {
  const w = exampleTopologyWorld('kubernetes-networkpolicies.yaml');
  put(w, 'Workload', 'ake/shop/blocked-one', { name: 'blocked-one', cluster: 'ake', namespace: 'shop', labels: { app: 'cart', blocked: 'yes' }, replicas: 1 });
  const r = compare(w, 'ake', SERVICES);
  expect(r.disagreements).toEqual([]);
  expect(r.compared).toBeGreaterThan(100);
});

it('the flagship cluster (examples/vcci-app): every pod side agrees, and every VM side with hostEndpoints', async () => {
  const { vcciWorld } = await import('../../support/vcci-world');
  const w = await vcciWorld();
  for (const hostEndpoints of [false, true]) {
    const r = compare(w, 'vcci', SERVICES, hostEndpoints);
    expect(r.disagreements).toEqual([]);
    expect(r.compared).toBeGreaterThan(1000);
  }
}, 120_000);
