import { World } from '../../provider/src/engine';
import type { Kind } from '../../provider/src/model';
import { allFlows, applyAll, describeMismatches, externalHosts, probeAll, probePorts, requireRootAndNft, type FlowOutcome } from './differential';
import { Lab } from './lab';

/**
 * The NetworkPolicy layer and the baseline category realized on pods' enforcement points: real packets
 * between network namespaces must get traceflow's verdicts. Covers a pass from application into the
 * layer, ingress isolation with a named port, namespaceSelector AND podSelector, an ipBlock with an
 * exception, egress-only isolation, and baseline deciding for pods no NetworkPolicy selects.
 */
jest.setTimeout(180_000);

function world(): World {
  const w = new World({ defaultAction: 'allow' });
  const put = (kind: Kind, name: string, spec: Record<string, unknown>) => {
    const p = w.upsert(kind, name, spec).filter((x) => x.severity !== 'warning');
    if (p.length) throw new Error(JSON.stringify(p));
  };
  put('KubernetesCluster', 'k', { podCidr: '10.71.0.0/24', serviceCidr: '10.72.0.0/24', nodes: [{ name: 'n1', ip: '192.168.71.11' }], networkMode: 'flat' });
  put('Namespace', 'k/shop', { name: 'shop', cluster: 'k', labels: { team: 'shop' } });
  put('Namespace', 'k/ops', { name: 'ops', cluster: 'k', labels: { team: 'ops' } });
  put('Workload', 'k/shop/web', { name: 'web', cluster: 'k', namespace: 'shop', labels: { app: 'web' }, ports: [{ name: 'http', port: 8080 }] });
  put('Workload', 'k/shop/cart', { name: 'cart', cluster: 'k', namespace: 'shop', labels: { app: 'cart' }, ports: [{ name: 'api', port: 9000 }] });
  put('Workload', 'k/ops/prom', { name: 'prom', cluster: 'k', namespace: 'ops', labels: { app: 'prom' } });
  put('VirtualMachine', 'admin', { interfaces: [{ ip: '192.168.71.20' }], labels: { role: 'admin' } });
  put('VirtualMachine', 'guest', { interfaces: [{ ip: '192.168.71.21' }], labels: { role: 'guest' } });
  put('KubernetesNetworkPolicy', 'k/shop/cart-in', {
    name: 'cart-in',
    cluster: 'k',
    namespace: 'shop',
    podSelector: { matchLabels: { app: 'cart' } },
    ingress: [
      { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 'api' }] },
      { from: [{ namespaceSelector: { matchLabels: { team: 'ops' } }, podSelector: { matchLabels: { app: 'prom' } } }], ports: [{ port: 9000 }, { protocol: 'UDP', port: 7777 }] },
      { from: [{ ipBlock: { cidr: '192.168.71.0/24', except: ['192.168.71.21/32'] } }], ports: [{ port: 8000, endPort: 8100 }] },
    ],
  });
  put('KubernetesNetworkPolicy', 'k/ops/prom-egress', { name: 'prom-egress', cluster: 'k', namespace: 'ops', podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 9000 }, { port: 8080 }] }] });
  put('FirewallPolicy', 'delegate', { category: 'application', priority: 1, rules: [{ name: 'to-networkpolicies', action: 'pass', direction: 'in', destinations: [{ podSelector: { namespaces: ['shop'] } }] }] });
  put('FirewallPolicy', 'base', { category: 'baseline', priority: 1, rules: [{ name: 'no-guest', action: 'drop', direction: 'in', sources: [{ vm: 'guest' }] }] });
  return w;
}

let lab: Lab | undefined;
let outcomes: FlowOutcome[] = [];
let mismatches: FlowOutcome[] = [];

beforeAll(async () => {
  requireRootAndNft();
  const w = world();
  const ports = probePorts(w);
  lab = await Lab.build(w, { externals: externalHosts(w), tcpPorts: ports.tcp, udpPorts: ports.udp });
  await applyAll(w, lab);
  ({ outcomes, mismatches } = await probeAll(w, lab, allFlows(w, lab, ports), { timeoutMs: 1200 }));
});

afterAll(async () => {
  await lab?.destroy();
});

test('every flow gets traceflow verdict in the kernel', async () => {
  const count = (k: string) => outcomes.filter((o) => o.observed === k).length;
  expect({ open: count('open') > 0, timeout: count('timeout') > 0 }).toEqual({ open: true, timeout: true });
  if (mismatches.length) throw new Error(`${mismatches.length} of ${outcomes.length} flows disagree:\n${await describeMismatches(lab!, mismatches)}`);
});
