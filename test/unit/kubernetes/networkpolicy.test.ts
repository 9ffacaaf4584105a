import type { World } from '../../../provider/src/engine';
import { decided, estate, put, trace } from '../engine/helpers';

/**
 * Kubernetes NetworkPolicy semantics, one behaviour per case, written from the API reference
 * (k8s.io/api networking/v1 types.go, "Network Policies" concept page) and the upstream e2e cases.
 * The estate (helpers.ts): cluster c1 with namespaces shop {team: shop, env: prod} and ops {team: ops};
 * shop/web (app=web, 2 pods, http=8080), shop/api (app=api, grpc=9090), ops/tools (app=tools);
 * VMs db 172.16.0.10 and bastion 172.16.0.20; nodes n1 192.168.0.11 and n2 192.168.0.12.
 * The default rule allows here, so what is denied is denied by the NetworkPolicy layer.
 */

const WEB = 'c1/shop/web';
const API = 'c1/shop/api';
const TOOLS = 'c1/ops/tools';

function world(): World {
  return estate({ defaultAction: 'allow' });
}

/** A NetworkPolicy in shop (or `namespace`), named by its identity `c1/NS/NAME`. */
function np(w: World, name: string, spec: Record<string, unknown>, namespace = 'shop'): void {
  put(w, 'KubernetesNetworkPolicy', `c1/${namespace}/${name}`, { name, cluster: 'c1', namespace, ...spec });
}

const v = (w: World, from: string, to: string, port?: number, protocol: 'tcp' | 'udp' | 'sctp' | 'icmp' = 'tcp') => trace(w, from, to, port, protocol).verdict;

describe('isolation', () => {
  it('leaves pods that no policy selects non-isolated', () => {
    const w = world();
    np(w, 'deny-api', { podSelector: { matchLabels: { app: 'api' } } });
    expect(v(w, API, WEB, 8080)).toBe('allow');
    expect(v(w, TOOLS, WEB, 8080)).toBe('allow');
  });

  it('isolates a selected pod for ingress and denies what no rule allows', () => {
    const w = world();
    np(w, 'deny-api', { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] });
    const t = trace(w, WEB, API, 9090);
    expect(decided(t)).toBe('drop c1/shop/deny-api/ingress-isolation');
    expect(t.observations.at(-1)).toMatchObject({ component: 'destination-firewall', category: 'kubernetes', policy: 'c1/shop/deny-api' });
  });

  it('selects only pods of the policy namespace, even with an empty podSelector', () => {
    const w = world();
    np(w, 'deny-all', { podSelector: {} });
    expect(v(w, WEB, API, 9090)).toBe('drop');
    expect(v(w, WEB, TOOLS, 80)).toBe('allow');
  });

  it('isolation for ingress leaves egress of the same pod free', () => {
    const w = world();
    np(w, 'deny-api', { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] });
    expect(v(w, API, TOOLS, 80)).toBe('allow');
  });

  it('isolates egress only with an egress-only policy: ingress stays open', () => {
    const w = world();
    np(w, 'no-egress', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'] });
    const t = trace(w, WEB, API, 9090);
    expect(decided(t)).toBe('drop c1/shop/no-egress/egress-isolation');
    expect(t.observations[0]).toMatchObject({ component: 'source-firewall', category: 'kubernetes' });
    expect(v(w, API, WEB, 8080)).toBe('allow');
  });

  it('needs egress allowed at the source and ingress allowed at the destination', () => {
    const w = world();
    np(w, 'api-from-web', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] });
    np(w, 'web-no-egress', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop c1/shop/web-no-egress/egress-isolation');
    w.remove('KubernetesNetworkPolicy', 'c1/shop/web-no-egress');
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow c1/shop/api-from-web/ingress[0]');
  });

  it('allows the union of every selecting policy: stacked policies are additive, with no order and no deny', () => {
    const w = world();
    np(w, 'a-from-web', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] });
    np(w, 'b-from-ops', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow c1/shop/a-from-web/ingress[0]');
    expect(decided(trace(w, TOOLS, API, 9090))).toBe('allow c1/shop/b-from-ops/ingress[0]');
    expect(v(w, 'db', API, 9090)).toBe('drop');
  });

  it('an allow-all ingress rule {} overrides a narrower policy', () => {
    const w = world();
    np(w, 'narrow', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] });
    np(w, 'open', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{}] });
    expect(v(w, 'db', API, 9090)).toBe('allow');
    expect(v(w, TOOLS, API, 1, 'udp')).toBe('allow');
  });

  it('always admits ingress from the node the pod runs on, and only from that node', () => {
    const w = world();
    np(w, 'deny-api', { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] });
    const node = (w.outputsOf('Workload', API).pods as { node: string }[])[0]!.node;
    const [own, other] = node === 'n1' ? ['192.168.0.11', '192.168.0.12'] : ['192.168.0.12', '192.168.0.11'];
    expect(decided(trace(w, own, API, 9090))).toBe('allow c1/shop/deny-api/from-node');
    expect(v(w, other, API, 9090)).toBe('drop');
  });

  it('follows label changes of pods and namespaces', () => {
    const w = world();
    np(w, 'from-ops', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { trusted: 'yes' } } }] }] });
    expect(v(w, TOOLS, API, 9090)).toBe('drop');
    put(w, 'Namespace', 'c1/ops', { name: 'ops', cluster: 'c1', labels: { team: 'ops', trusted: 'yes' } });
    expect(v(w, TOOLS, API, 9090)).toBe('allow');
    put(w, 'Workload', API, { name: 'api', cluster: 'c1', namespace: 'shop', labels: { app: 'api2' }, replicas: 1, ports: [{ name: 'grpc', port: 9090 }] });
    expect(v(w, WEB, API, 9090)).toBe('allow');
  });
});

describe('policyTypes', () => {
  it('infers Ingress when policyTypes is absent and the policy has no egress section', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'web' } }, ingress: [] });
    expect(v(w, WEB, API, 9090)).toBe('allow');
    expect(v(w, API, WEB, 8080)).toBe('drop');
  });

  it('infers Egress too when the policy has an egress section', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'web' } }, egress: [{ to: [{ podSelector: { matchLabels: { app: 'api' } } }] }] });
    expect(v(w, WEB, API, 9090)).toBe('allow');
    expect(decided(trace(w, WEB, TOOLS, 80))).toBe('drop c1/shop/p/egress-isolation');
    expect(v(w, API, WEB, 8080)).toBe('drop');
  });

  it('does not infer Egress from an empty egress list (the apiserver tests len(egress) != 0)', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{}], egress: [] });
    expect(v(w, WEB, API, 9090)).toBe('allow');
    np(w, 'p', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: [], ingress: [], egress: [{ ports: [{ port: 1 }] }] });
    expect(v(w, WEB, API, 9090)).toBe('drop');
    expect(v(w, API, WEB, 8080)).toBe('drop');
  });

  it('with an empty egress list and Egress in policyTypes, denies all egress', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress', 'Egress'], ingress: [{}], egress: [] });
    expect(v(w, WEB, API, 9090)).toBe('drop');
    expect(v(w, API, WEB, 8080)).toBe('allow');
  });
});

describe('peers', () => {
  it('a podSelector alone selects pods of the policy namespace only', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: {} }] }] });
    expect(v(w, WEB, API, 9090)).toBe('allow');
    expect(v(w, TOOLS, API, 9090)).toBe('drop');
  });

  it('a namespaceSelector alone selects every pod of the selected namespaces', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] }] });
    expect(v(w, TOOLS, API, 9090)).toBe('allow');
    expect(v(w, WEB, API, 9090)).toBe('drop');
  });

  it('namespaceSelector and podSelector in ONE peer select pods matching both (AND)', () => {
    const w = world();
    np(w, 'and', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } }, podSelector: { matchLabels: { app: 'web' } } }] }] });
    expect(v(w, TOOLS, API, 9090)).toBe('drop'); // right namespace, wrong pod
    expect(v(w, WEB, API, 9090)).toBe('drop'); // right pod, wrong namespace
    put(w, 'Workload', 'c1/ops/web', { name: 'web', cluster: 'c1', namespace: 'ops', labels: { app: 'web' }, replicas: 1 });
    expect(v(w, 'c1/ops/web', API, 9090)).toBe('allow');
  });

  it('namespaceSelector and podSelector in TWO peers select pods matching either (OR)', () => {
    const w = world();
    np(w, 'or', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }, { podSelector: { matchLabels: { app: 'web' } } }] }] });
    expect(v(w, TOOLS, API, 9090)).toBe('allow');
    expect(v(w, WEB, API, 9090)).toBe('allow');
    expect(v(w, 'db', API, 9090)).toBe('drop');
  });

  it('a NotIn requirement also selects pods without the key (apimachinery label semantics)', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['back'] }] }, policyTypes: ['Ingress'] });
    put(w, 'Workload', 'c1/shop/bare', { name: 'bare', cluster: 'c1', namespace: 'shop', labels: {}, replicas: 1 });
    expect(v(w, API, 'c1/shop/bare', 80)).toBe('drop');
    expect(v(w, API, WEB, 8080)).toBe('drop');
    expect(v(w, WEB, API, 9090)).toBe('allow');
  });

  it('selects namespaces by the implied kubernetes.io/metadata.name label', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ops' } } }] }] });
    expect(v(w, TOOLS, API, 9090)).toBe('allow');
    expect(v(w, WEB, API, 9090)).toBe('drop');
  });

  it('an empty or absent peer list admits every source', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [], ports: [{ port: 9090 }] }] });
    expect(v(w, 'db', API, 9090)).toBe('allow');
    expect(v(w, TOOLS, API, 9090)).toBe('allow');
    expect(v(w, TOOLS, API, 9091)).toBe('drop');
  });

  it('an ipBlock admits its CIDR minus the except blocks', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ ipBlock: { cidr: '172.16.0.0/24', except: ['172.16.0.10/32'] } }] }] });
    expect(v(w, 'bastion', API, 9090)).toBe('allow');
    expect(v(w, 'db', API, 9090)).toBe('drop');
    expect(v(w, '172.16.1.1', API, 9090)).toBe('drop');
  });

  it('an address in an except block is still admitted by another rule that allows it', () => {
    const w = world();
    np(w, 'p', {
      podSelector: { matchLabels: { app: 'api' } },
      ingress: [{ from: [{ ipBlock: { cidr: '172.16.0.0/24', except: ['172.16.0.10/32'] } }] }, { from: [{ ipBlock: { cidr: '172.16.0.10/32' } }] }],
    });
    expect(decided(trace(w, 'db', API, 9090))).toBe('allow c1/shop/p/ingress[1]');
  });

  it('matches egress ipBlocks on the destination address', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '172.16.0.0/28' } }] }] });
    expect(v(w, WEB, 'db', 5432)).toBe('allow');
    expect(v(w, WEB, 'bastion', 22)).toBe('drop');
  });
});

describe('ports', () => {
  it('defaults the protocol to TCP: a port without protocol does not admit UDP', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ ports: [{ port: 53 }] }] });
    expect(v(w, WEB, API, 53)).toBe('allow');
    expect(v(w, WEB, API, 53, 'udp')).toBe('drop');
  });

  it('a UDP-only allow does not admit TCP, and an SCTP-only allow still isolates for TCP', () => {
    const w = world();
    np(w, 'udp', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ ports: [{ protocol: 'UDP', port: 9090 }] }] });
    np(w, 'sctp', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ ports: [{ protocol: 'SCTP', port: 8080 }] }] });
    expect(v(w, WEB, API, 9090, 'udp')).toBe('allow');
    expect(v(w, WEB, API, 9090)).toBe('drop');
    expect(v(w, API, WEB, 8080, 'sctp')).toBe('allow');
    expect(v(w, API, WEB, 8080)).toBe('drop');
  });

  it('a port entry with only a protocol admits every port of that protocol, and nothing else', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ ports: [{ protocol: 'UDP' }] }] });
    expect(v(w, WEB, API, 1, 'udp')).toBe('allow');
    expect(v(w, WEB, API, 65535, 'udp')).toBe('allow');
    expect(v(w, WEB, API, 9090)).toBe('drop');
    expect(v(w, WEB, API, undefined, 'icmp')).toBe('drop');
  });

  it('an empty or absent port list admits every port and protocol, ICMP included', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] });
    expect(v(w, WEB, API, 1, 'udp')).toBe('allow');
    expect(v(w, WEB, API, undefined, 'icmp')).toBe('allow');
  });

  it('endPort makes an inclusive range with port', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ ports: [{ port: 9000, endPort: 9090 }] }] });
    expect(v(w, WEB, API, 8999)).toBe('drop');
    expect(v(w, WEB, API, 9000)).toBe('allow');
    expect(v(w, WEB, API, 9090)).toBe('allow');
    expect(v(w, WEB, API, 9091)).toBe('drop');
  });

  it('resolves a named ingress port on the destination pod', () => {
    const w = world();
    np(w, 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'grpc' }] }] });
    expect(v(w, WEB, API, 9090)).toBe('allow');
    expect(v(w, WEB, API, 9091)).toBe('drop');
    // web has no port named grpc: nothing is admitted there, not even 9090.
    expect(v(w, API, WEB, 9090)).toBe('drop');
  });

  it('resolves a named egress port on the destination pod, not on the source', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'grpc' }] }] });
    expect(v(w, WEB, API, 9090)).toBe('allow');
    expect(v(w, WEB, TOOLS, 9090)).toBe('drop');
    expect(v(w, WEB, 'db', 9090)).toBe('drop');
  });

  it('a named port must also match the protocol of the container port', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ ports: [{ protocol: 'UDP', port: 'grpc' }] }] });
    expect(v(w, WEB, API, 9090, 'udp')).toBe('drop');
    expect(v(w, WEB, API, 9090)).toBe('drop');
  });
});

describe('validation', () => {
  const problems = (spec: Record<string, unknown>) => world().upsert('KubernetesNetworkPolicy', 'c1/shop/x', { name: 'x', cluster: 'c1', namespace: 'shop', ...spec });

  it('refuses a peer mixing ipBlock and selectors, and an empty peer', () => {
    expect(problems({ ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] })).toEqual([expect.objectContaining({ code: 'one-of', path: 'ingress[0].from[0]' })]);
    expect(problems({ egress: [{ to: [{}] }] })).toEqual([expect.objectContaining({ code: 'empty-peer', path: 'egress[0].to[0]' })]);
  });

  it('refuses an except outside its CIDR, an endPort without numeric port or below it, and a bad port name', () => {
    expect(problems({ ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }] })).toEqual([expect.objectContaining({ code: 'except-outside-cidr', path: 'ingress[0].from[0].ipBlock.except[0]' })]);
    expect(problems({ ingress: [{ ports: [{ port: 'http', endPort: 90 }] }] })).toEqual([expect.objectContaining({ code: 'end-port-without-port', path: 'ingress[0].ports[0].endPort' })]);
    expect(problems({ ingress: [{ ports: [{ port: 100, endPort: 90 }] }] })).toEqual([expect.objectContaining({ code: 'invalid-port-range' })]);
    expect(problems({ ingress: [{ ports: [{ port: 'Not_A_Name' }] }] })).toEqual([expect.objectContaining({ code: 'invalid-port', path: 'ingress[0].ports[0].port' })]);
    expect(problems({ ingress: [{ ports: [{ protocol: 'ICMP' }] }] })).toEqual([expect.objectContaining({ path: 'ingress[0].ports[0].protocol' })]);
  });

  it('reports an unknown namespace as a missing reference', () => {
    const w = world();
    put(w, 'KubernetesNetworkPolicy', 'c1/nowhere/x', { name: 'x', cluster: 'c1', namespace: 'nowhere' });
    expect(w.validate()).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'unknown-reference', path: 'namespace', object: { kind: 'KubernetesNetworkPolicy', name: 'c1/nowhere/x' } })]));
  });

  it('counts the pods a policy selects in its outputs', () => {
    const w = world();
    np(w, 'p', { podSelector: { matchLabels: { app: 'web' } } });
    expect(w.outputsOf('KubernetesNetworkPolicy', 'c1/shop/p')).toEqual({ podCount: 2 });
  });
});
