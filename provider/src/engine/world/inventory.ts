import type { SpecOf } from '../../model';
import { AddressPool } from '../allocate';
import { parseCidr, parseIp, type Ip } from '../ip';
import type { Membership } from '../membership';
import type { ClusterState, Endpoint } from '../types';
import type { AllocationProblems, Specs } from './specs';

export interface PodOutput {
  readonly name: string;
  readonly ip: string;
  readonly node: string;
}

/**
 * The inventory: VM interfaces and pods as endpoints (with pod IP allocation from each cluster's pod
 * CIDR), clusters with their parsed addresses, namespace labels, and the endpoint-by-IP index.
 */
export class Inventory {
  private nextId = 1;
  readonly clusters = new Map<string, ClusterState>();
  readonly pods = new Map<string, PodOutput[]>();
  readonly vmEndpoints = new Map<string, Endpoint[]>();
  readonly podEndpoints = new Map<string, Endpoint[]>();
  readonly byIp = new Map<string, Endpoint>();
  private readonly clusterOfPods = new Map<string, string>();
  /** Labels with the implied name label, one shared object per namespace (selectors test it per pod). */
  private readonly nsLabelCache = new Map<string, Record<string, string>>();

  constructor(
    private readonly specs: Specs,
    private readonly membership: Membership,
    private readonly allocationProblems: AllocationProblems,
  ) {}

  namespaceLabels(cluster: string, namespace: string): Record<string, string> {
    const key = `${cluster}/${namespace}`;
    let l = this.nsLabelCache.get(key);
    if (!l) {
      const ns = this.specs.Namespace.get(key);
      l = { ...(ns?.labels ?? {}), 'kubernetes.io/metadata.name': namespace };
      this.nsLabelCache.set(key, l);
    }
    return l;
  }

  /** A Namespace was written or removed: its pods' namespace-selector memberships are rechecked. */
  syncNamespace(name: string, ns: SpecOf['Namespace']): void {
    this.nsLabelCache.delete(name);
    for (const ep of this.membership.podsInNamespace(ns.name!)) if (ep.cluster === ns.cluster) this.membership.recheck(ep);
  }

  private newEndpoint(e: Omit<Endpoint, 'id' | 'atoms'>): Endpoint {
    const ep: Endpoint = { ...e, id: this.nextId++, atoms: new Set() };
    if (!this.byIp.has(ep.ip.s)) this.byIp.set(ep.ip.s, ep);
    this.membership.add(ep);
    return ep;
  }

  private dropEndpoint(ep: Endpoint): void {
    this.membership.remove(ep);
    if (this.byIp.get(ep.ip.s) === ep) this.byIp.delete(ep.ip.s);
  }

  syncVm(name: string): void {
    for (const ep of this.vmEndpoints.get(name) ?? []) this.dropEndpoint(ep);
    this.vmEndpoints.delete(name);
    const vm = this.specs.VirtualMachine.get(name);
    if (!vm) return;
    const eps: Endpoint[] = [];
    vm.interfaces.forEach((itf, i) => {
      const ip = parseIp(itf.ip);
      if (ip) eps.push(this.newEndpoint({ kind: 'vm-interface', name: `${name}#${i}`, owner: name, ip, labels: vm.labels ?? {} }));
    });
    this.vmEndpoints.set(name, eps);
  }

  syncCluster(name: string): void {
    const old = this.clusters.get(name);
    const spec = this.specs.KubernetesCluster.get(name);
    const affected = [...this.specs.Workload.entries()].filter(([, w]) => w.cluster === name).map(([k]) => k);
    // Keep pod IPs when the pod CIDR is unchanged; otherwise everything is reallocated.
    const keep = old && spec && old.spec.podCidr === spec.podCidr;
    const kept = new Map(affected.map((k) => [k, keep ? this.pods.get(k) : undefined]));
    for (const k of affected) this.releasePods(k);
    this.clusters.delete(name);
    if (spec) {
      const podCidr = parseCidr(spec.podCidr);
      this.clusters.set(name, {
        spec,
        podCidr,
        serviceCidr: parseCidr(spec.serviceCidr),
        pool: podCidr ? new AddressPool(podCidr) : undefined,
        nodeIps: new Map(spec.nodes.map((n) => [n.name, parseIp(n.ip)!] as const).filter(([, ip]) => ip !== undefined)),
      });
    }
    for (const k of affected) this.syncWorkload(k, kept.get(k));
  }

  private releasePods(key: string): void {
    for (const ep of this.podEndpoints.get(key) ?? []) this.dropEndpoint(ep);
    this.podEndpoints.delete(key);
    const w = this.pods.get(key);
    if (w) {
      const c = this.clusters.get(this.clusterOfPods.get(key) ?? '');
      for (const p of w) {
        const ip = parseIp(p.ip);
        if (ip && c?.pool) c.pool.release(ip);
      }
    }
    this.pods.delete(key);
    this.clusterOfPods.delete(key);
  }

  syncWorkload(key: string, previous: PodOutput[] | undefined): void {
    const w = this.specs.Workload.get(key);
    const prior = previous ?? (w && this.clusterOfPods.get(key) === w.cluster ? this.pods.get(key) : undefined);
    const priorCopy = prior ? [...prior] : undefined;
    this.releasePods(key);
    this.allocationProblems.delete(`Workload/${key}`);
    if (!w) return;
    const c = this.clusters.get(w.cluster);
    if (!c || !c.pool) return; // unknown cluster: reported by validate()
    const pods: PodOutput[] = [];
    const nodes = c.spec.nodes;
    for (let i = 0; i < w.replicas; i++) {
      let ip: Ip | undefined;
      const p = priorCopy?.[i];
      if (p) {
        const pip = parseIp(p.ip);
        if (pip && c.pool.reserve(pip)) ip = pip;
      }
      ip ??= c.pool.allocate();
      if (!ip) {
        this.allocationProblems.set(`Workload/${key}`, {
          code: 'ip-exhausted',
          path: 'replicas',
          message: `pod CIDR ${c.spec.podCidr} of cluster "${w.cluster}" has no free address for pod ${i + 1} of ${w.replicas}; expected fewer replicas or a larger pod CIDR`,
          object: { kind: 'Workload', name: key },
        });
        break;
      }
      pods.push({ name: `${w.name}-${i}`, ip: ip.s, node: nodes[i % nodes.length]!.name });
    }
    this.pods.set(key, pods);
    this.clusterOfPods.set(key, w.cluster);
    const namedPorts = new Map((w.ports ?? []).map((p) => [p.name, { port: p.port, protocol: p.protocol }] as const));
    this.podEndpoints.set(
      key,
      pods.map((p) =>
        this.newEndpoint({ kind: 'pod', name: `${w.cluster}/${w.namespace}/${p.name}`, owner: key, ip: parseIp(p.ip)!, labels: w.labels ?? {}, cluster: w.cluster, namespace: w.namespace, node: p.node, namedPorts }),
      ),
    );
  }

  /** Endpoints of a VM or workload. */
  endpointsOf(owner: string): readonly Endpoint[] {
    return this.vmEndpoints.get(owner) ?? this.podEndpoints.get(owner) ?? [];
  }
}
