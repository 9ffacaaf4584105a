/**
 * The flagship example: the VCCI scenario (shared/seeds 000 and 002) segmented with microseg.
 *
 * - East-west Pod/VM → Pod: backend accepts only apigateway and the rating VM.
 * - East-west Pod/VM → VM: rating accepts only apigateway (which leaves the overlay cluster through
 *   its own egress IP, so the VM can tell it apart from other pods SNATed to the node IP).
 * - North-south: frontend may reach only apigateway and CoreDNS (53/udp, 53/tcp).
 * - Infrastructure: everything may reach CoreDNS; monitoring may scrape every workload.
 * - Quarantine: `quarantine=true` on any VM or pod isolates it except for the forensic jump host.
 * - Egress: backend leaves the cluster with a stable egress IP; the database VM accepts only that IP.
 * - A load balancer fronts the backend replicas.
 * - ConnectivityAssertions encode the intent; preview and up fail when a change breaks one.
 *
 * An ordinary Pulumi TypeScript program: the default export is the program (the nodejs language host runs it
 * under `pulumi up` and takes its result as the stack outputs), and `@microseg/pulumi` is the SDK package.
 * In this repository `npm run demo` and the tests run this same function through the Automation API.
 */
import * as pulumi from '@pulumi/pulumi';
import * as microseg from '@microseg/pulumi';

export default async function vcciApp(): Promise<Record<string, unknown>> {
  const config = new pulumi.Config();
  const backendReplicas = config.getNumber('backendReplicas') ?? 3;

  // ---- Inventory -------------------------------------------------------------------------------
  const cluster = new microseg.KubernetesCluster('vcci', {
    name: 'vcci',
    podCidr: '10.244.0.0/16',
    serviceCidr: '10.96.0.0/12',
    networkMode: 'overlay',
    nodes: [
      { name: 'node-1', ip: '192.168.28.11' },
      { name: 'node-2', ip: '192.168.28.12' },
    ],
  });
  const ns = (name: string, labels: Record<string, string>) => new microseg.Namespace(name, { name, cluster: cluster.name, labels });
  const shop = ns('shop', { env: 'prod' });
  const kubeSystem = ns('kube-system', {});
  const monitoringNs = ns('monitoring', {});

  const workload = (name: string, namespace: microseg.Namespace, labels: Record<string, string>, ports: { name: string; port: number; protocol?: string }[], replicas = 1) =>
    new microseg.Workload(name, { name, cluster: cluster.name, namespace: namespace.name, labels, ports, replicas });
  const frontend = workload('frontend', shop, { app: 'frontend' }, [{ name: 'http', port: 8080 }], 2);
  const apigateway = workload('apigateway', shop, { app: 'apigateway' }, [{ name: 'http', port: 8080 }], 2);
  const nacos = workload('nacos', shop, { app: 'nacos' }, [{ name: 'registry', port: 8848 }]);
  const backend = workload('backend', shop, { app: 'backend' }, [{ name: 'http', port: 8080 }], backendReplicas);
  const coredns = workload('coredns', kubeSystem, { 'k8s-app': 'kube-dns' }, [{ name: 'dns', port: 53, protocol: 'udp' }, { name: 'dns-tcp', port: 53 }], 2);
  const prometheus = workload('prometheus', monitoringNs, { app: 'prometheus' }, [{ name: 'web', port: 9090 }]);

  const vm = (name: string, ip: string, labels: Record<string, string>) => new microseg.VirtualMachine(name, { name, interfaces: [{ ip }], labels });
  const rating = vm('rating', '192.168.28.213', { app: 'rating' });
  const database = vm('database', '192.168.28.50', { app: 'database' });
  const jumphost = vm('jumphost', '192.168.28.99', { role: 'forensics' });

  // ---- Egress IPs: stable SNAT addresses that VMs and external firewalls can tell apart ----------
  const backendEgress = new microseg.EgressIp('backend-egress', { name: 'backend-egress', cluster: cluster.name, ip: '192.168.28.200', podSelector: { podSelector: { matchLabels: { app: 'backend' } } } }, { dependsOn: [backend] });
  const gatewayEgress = new microseg.EgressIp('gateway-egress', { name: 'gateway-egress', cluster: cluster.name, ip: '192.168.28.201', podSelector: { podSelector: { matchLabels: { app: 'apigateway' } } } }, { dependsOn: [apigateway] });

  // ---- Groups ------------------------------------------------------------------------------------
  const pods = (name: string, matchLabels: Record<string, string>, deps: pulumi.Resource[]) =>
    new microseg.SecurityGroup(name, { name, podSelectors: [{ cluster: cluster.name, podSelector: { matchLabels } }] }, { dependsOn: deps });
  const gFrontend = pods('frontend', { app: 'frontend' }, [frontend]);
  const gGateway = pods('apigateway', { app: 'apigateway' }, [apigateway]);
  const gNacos = pods('nacos', { app: 'nacos' }, [nacos]);
  const gBackend = pods('backend', { app: 'backend' }, [backend]);
  const gDns = pods('coredns', { 'k8s-app': 'kube-dns' }, [coredns]);
  const gMonitoring = pods('monitoring', { app: 'prometheus' }, [prometheus]);
  const gRating = new microseg.SecurityGroup('rating', { name: 'rating', vms: [rating.name] });
  const gDatabase = new microseg.SecurityGroup('database', { name: 'database', vms: [database.name] });
  const gForensics = new microseg.SecurityGroup('forensics', { name: 'forensics', vmSelectors: [{ matchLabels: { role: 'forensics' } }] }, { dependsOn: [jumphost] });
  const gBackendEgress = new microseg.SecurityGroup('backend-egress-ip', { name: 'backend-egress-ip', egressIps: [backendEgress.name] });
  const gGatewayEgress = new microseg.SecurityGroup('gateway-egress-ip', { name: 'gateway-egress-ip', egressIps: [gatewayEgress.name] });
  const gPayments = new microseg.SecurityGroup('payments-api', { name: 'payments-api', ipBlocks: [{ cidr: '203.0.113.10/32' }] });

  // ---- Load balancer in front of the backend replicas ---------------------------------------------
  const backendLb = new microseg.LoadBalancer('backend-lb', {
    name: 'backend-lb',
    vip: '192.168.28.100',
    listeners: [{ port: 80, protocol: 'tcp', targetPort: 'http' }],
    pool: { group: gBackend.name },
    algorithm: 'round-robin',
    healthCheck: { protocol: 'http', path: '/healthz' },
  });

  const tcp = (...ports: (number | string)[]) => ({ protocol: 'tcp', ports });
  const udp = (...ports: (number | string)[]) => ({ protocol: 'udp', ports });
  const group = (g: microseg.SecurityGroup) => ({ group: g.name });

  // ---- Emergency: quarantine by label, with a forensic exception -----------------------------------
  const quarantine = new microseg.QuarantinePolicy('quarantine', {
    name: 'quarantine',
    selector: { matchLabels: { quarantine: 'true' } },
    forensicGroup: gForensics.name,
    forensicServices: [tcp(22)],
  });

  // ---- Infrastructure (security admins): DNS for everyone, monitoring may scrape everything ------
  const infra = new microseg.FirewallPolicy('infrastructure', {
    name: 'infrastructure',
    category: 'infrastructure',
    priority: 100,
    rules: [
      { name: 'dns', action: 'allow', destinations: [group(gDns)], services: [udp(53), tcp(53)] },
      { name: 'monitoring-scrape', action: 'allow', sources: [group(gMonitoring)], services: [tcp(8080, 9100)] },
    ],
  });

  // ---- Environment: the database VM accepts only the backend's egress IP ---------------------------
  const environment = new microseg.FirewallPolicy('prod-boundaries', {
    name: 'prod-boundaries',
    category: 'environment',
    priority: 100,
    appliedTo: [gDatabase.name],
    rules: [
      { name: 'db-from-backend-egress', action: 'allow', direction: 'in', sources: [group(gBackendEgress)], services: [tcp(5432)] },
      { name: 'db-deny-rest', action: 'drop', direction: 'in' },
    ],
  });

  // ---- Application (app owners) -------------------------------------------------------------------
  const app = new microseg.FirewallPolicy('shop', {
    name: 'shop',
    category: 'application',
    priority: 100,
    rules: [
      { name: 'frontend-to-gateway', action: 'allow', sources: [group(gFrontend)], destinations: [group(gGateway)], services: [tcp(8080)] },
      { name: 'frontend-deny-rest', action: 'drop', direction: 'out', appliedTo: [gFrontend.name], sources: [group(gFrontend)] },
      { name: 'gateway-to-backend', action: 'allow', sources: [group(gGateway)], destinations: [group(gBackend)], services: [tcp('http')] },
      { name: 'gateway-to-backend-vip', action: 'allow', direction: 'out', sources: [group(gGateway)], destinations: [{ cidr: backendLb.vip.apply((v) => `${v}/32`) }], services: [tcp(80)] },
      { name: 'rating-to-backend', action: 'allow', sources: [group(gRating)], destinations: [group(gBackend)], services: [tcp(8080)] },
      { name: 'backend-deny-rest-in', action: 'drop', direction: 'in', appliedTo: [gBackend.name], destinations: [group(gBackend)] },
      { name: 'gateway-to-rating', action: 'allow', sources: [group(gGateway), group(gGatewayEgress)], destinations: [group(gRating)], services: [tcp(8080)] },
      { name: 'rating-deny-rest-in', action: 'drop', direction: 'in', appliedTo: [gRating.name], destinations: [group(gRating)] },
      { name: 'registry', action: 'allow', sources: [group(gGateway), group(gBackend)], destinations: [group(gNacos)], services: [tcp(8848)] },
      { name: 'backend-to-database', action: 'allow', direction: 'out', sources: [group(gBackend)], destinations: [group(gDatabase)], services: [tcp(5432)] },
      { name: 'backend-to-payments', action: 'allow', direction: 'out', sources: [group(gBackend)], destinations: [group(gPayments)], services: [tcp(443)] },
    ],
  });

  // ---- Intent, checked in preview and up ----------------------------------------------------------
  const policies = [quarantine, infra, environment, app, backendLb];
  const id = (w: microseg.Workload) => pulumi.interpolate`${w.cluster}/${w.namespace}/${w.name}`;
  const assert = (name: string, from: pulumi.Input<string>, to: pulumi.Input<string>, protocol: string, port: number, expect: 'allow' | 'deny') =>
    new microseg.ConnectivityAssertion(name, { name, from, to, protocol, port, expect }, { dependsOn: policies });
  const assertions = [
    assert('frontend-cannot-reach-database', id(frontend), database.name, 'tcp', 5432, 'deny'),
    assert('frontend-reaches-gateway', id(frontend), id(apigateway), 'tcp', 8080, 'allow'),
    assert('frontend-resolves-dns', id(frontend), id(coredns), 'udp', 53, 'allow'),
    assert('frontend-cannot-reach-rating', id(frontend), rating.name, 'tcp', 8080, 'deny'),
    assert('gateway-reaches-backend', id(apigateway), id(backend), 'tcp', 8080, 'allow'),
    assert('gateway-reaches-backend-via-lb', id(apigateway), pulumi.interpolate`lb:${backendLb.name}`, 'tcp', 80, 'allow'),
    assert('gateway-reaches-rating', id(apigateway), rating.name, 'tcp', 8080, 'allow'),
    assert('rating-reaches-backend', rating.name, id(backend), 'tcp', 8080, 'allow'),
    assert('backend-reaches-database', id(backend), database.name, 'tcp', 5432, 'allow'),
    assert('nacos-cannot-reach-database', id(nacos), database.name, 'tcp', 5432, 'deny'),
  ];

  // ---- Outputs: traceflow for a handful of flows and the connectivity matrix ---------------------------
  const trace = (from: pulumi.Input<string>, to: pulumi.Input<string>, protocol: string, port: number) =>
    microseg.traceflowOutput({ source: from, destination: to, protocol, port }, { dependsOn: assertions }).apply((t) => ({
      verdict: t.verdict,
      decidedBy: t.decidingPolicy === 'default' ? 'default rule' : `${t.decidingPolicy}/${t.decidingRule}`,
      path: t.observations.map((o) => `${o.component}:${o.action}${o.translatedSourceIp ? ` snat→${o.translatedSourceIp}` : ''}${o.translatedDestinationIp ? ` dnat→${o.translatedDestinationIp}` : ''}`),
    }));
  const matrix = microseg
    .getConnectivityMatrixOutput({ groups: [gFrontend.name, gGateway.name, gBackend.name, gRating.name, gDatabase.name], protocol: 'tcp', port: 8080 }, { dependsOn: assertions })
    .apply((m) => m.cells.filter((c) => c.verdict !== 'empty' && c.from !== c.to).map((c) => `${c.from} -> ${c.to}: ${c.verdict}`));

  // Invokes see the world as it is now (members follow pod churn); `memberCount` outputs are as last applied.
  const live = (g: microseg.SecurityGroup) => microseg.getGroupMembersOutput({ group: g.name }, { dependsOn: assertions }).count;
  return {
    backendReplicas,
    backendMembers: live(gBackend),
    loadBalancerMembers: backendLb.pool.apply((p) => microseg.getGroupMembersOutput({ group: p.group ?? '' }, { dependsOn: assertions }).count),
    traceflows: {
      'frontend -> database tcp/5432': trace(id(frontend), database.name, 'tcp', 5432),
      'frontend -> apigateway tcp/8080': trace(id(frontend), id(apigateway), 'tcp', 8080),
      'apigateway -> backend-lb tcp/80': trace(id(apigateway), pulumi.interpolate`lb:${backendLb.name}`, 'tcp', 80),
      'backend -> database tcp/5432': trace(id(backend), database.name, 'tcp', 5432),
      'apigateway -> rating tcp/8080': trace(id(apigateway), rating.name, 'tcp', 8080),
    },
    connectivityMatrixTcp8080: matrix,
  };
}
