import { World, type Trace } from '../../../provider/src/engine';
import type { Kind } from '../../../provider/src/model';

/** A small estate: cluster c1 (overlay) with namespaces shop and ops, VMs db and ext. */
export function estate(opts: { defaultAction?: 'allow' | 'drop'; networkMode?: 'flat' | 'overlay' } = {}): World {
  const w = new World({ defaultAction: opts.defaultAction ?? 'drop' });
  const put = (kind: Kind, name: string, spec: Record<string, unknown>) => {
    const p = w.upsert(kind, name, spec);
    if (p.some((x) => x.severity !== 'warning')) throw new Error(JSON.stringify(p));
  };
  put('KubernetesCluster', 'c1', { podCidr: '10.1.0.0/16', serviceCidr: '10.96.0.0/12', nodes: [{ name: 'n1', ip: '192.168.0.11' }, { name: 'n2', ip: '192.168.0.12' }], networkMode: opts.networkMode ?? 'overlay' });
  put('Namespace', 'c1/shop', { name: 'shop', cluster: 'c1', labels: { team: 'shop', env: 'prod' } });
  put('Namespace', 'c1/ops', { name: 'ops', cluster: 'c1', labels: { team: 'ops' } });
  put('Workload', 'c1/shop/web', { name: 'web', cluster: 'c1', namespace: 'shop', labels: { app: 'web', tier: 'front' }, replicas: 2, ports: [{ name: 'http', port: 8080 }] });
  put('Workload', 'c1/shop/api', { name: 'api', cluster: 'c1', namespace: 'shop', labels: { app: 'api', tier: 'back' }, replicas: 1, ports: [{ name: 'grpc', port: 9090 }] });
  put('Workload', 'c1/ops/tools', { name: 'tools', cluster: 'c1', namespace: 'ops', labels: { app: 'tools' }, replicas: 1 });
  put('VirtualMachine', 'db', { interfaces: [{ ip: '172.16.0.10' }], labels: { role: 'db', env: 'prod' } });
  put('VirtualMachine', 'bastion', { interfaces: [{ ip: '172.16.0.20' }], labels: { role: 'bastion' } });
  put('SecurityGroup', 'web', { podSelectors: [{ podSelector: { matchLabels: { app: 'web' } } }] });
  put('SecurityGroup', 'api', { podSelectors: [{ podSelector: { matchLabels: { app: 'api' } } }] });
  put('SecurityGroup', 'db', { vmSelectors: [{ matchLabels: { role: 'db' } }] });
  put('SecurityGroup', 'bastion', { vms: ['bastion'] });
  return w;
}

export function put(w: World, kind: Kind, name: string, spec: Record<string, unknown>): void {
  const p = w.upsert(kind, name, spec);
  if (p.some((x) => x.severity !== 'warning')) throw new Error(JSON.stringify(p));
}

/** A policy allowing everything in and out, so only the rules under test decide. */
export function allowAll(w: World, name = 'zz-allow-all', category = 'application', priority = 100000): void {
  put(w, 'FirewallPolicy', name, { category, priority, rules: [{ name: 'any', action: 'allow' }] });
}

export function trace(w: World, source: string, destination: string, port?: number, protocol: 'tcp' | 'udp' | 'sctp' | 'icmp' = 'tcp'): Trace {
  const t = w.traceflow({ source, destination, protocol, port });
  if ('problem' in t) throw new Error(t.problem.message);
  return t;
}

export function decided(t: Trace): string {
  return `${t.verdict} ${t.decidingPolicy}/${t.decidingRule}`;
}
