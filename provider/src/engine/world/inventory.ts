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

  /** Drops a workload's pods; `keep`: the endpoints stay (the caller reconciles them) and so do the addresses of the first `keep.addresses` pods. */
  private releasePods(key: string, keep?: { addresses: number }): void {
    if (!keep) {
      for (const ep of this.podEndpoints.get(key) ?? []) this.dropEndpoint(ep);
      this.podEndpoints.delete(key);
    }
    const w = this.pods.get(key);
    if (w) {
      const c = this.clusters.get(this.clusterOfPods.get(key) ?? '');
      for (let i = keep?.addresses ?? 0; i < w.length; i++) {
        const ip = parseIp(w[i]!.ip);
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
    // The endpoints stay until the new pods are known: a pod whose name, address, node, labels and
    // ports did not change keeps its endpoint object, so its group memberships (and every cache keyed
    // by them) do not move. A scale-up adds one pod, not a workload's worth of new ones.
    const before = this.podEndpoints.get(key) ?? [];
    this.podEndpoints.delete(key);
    // Leading pods keeping their address in the same cluster keep it reserved: releasing and reserving
    // it again moved the pool's search back to the workload's first address, so the next allocation
    // scanned every later pod of the cluster.
    const current = w && this.clusterOfPods.get(key) === w.cluster ? this.pods.get(key) : undefined;
    let held = 0;
    while (current && priorCopy && held < w!.replicas && held < current.length && priorCopy[held]?.ip === current[held]!.ip) held++;
    this.releasePods(key, { addresses: held });
    this.allocationProblems.delete(`Workload/${key}`);
    const c = w && this.clusters.get(w.cluster);
    if (!w || !c || !c.pool) {
      // Removed, or an unknown cluster (reported by validate()).
      for (const ep of before) this.dropEndpoint(ep);
      return;
    }
    const pods: PodOutput[] = [];
    const nodes = c.spec.nodes;
    for (let i = 0; i < w.replicas; i++) {
      let ip: Ip | undefined;
      const p = priorCopy?.[i];
      if (p && i < held) ip = parseIp(p.ip);
      else if (p) {
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
    const labels = w.labels ?? {};
    const old = new Map(before.map((ep) => [ep.name, ep] as const));
    const kept = new Set<Endpoint>();
    // A workload's pods share one labels object and one ports map: each is compared once.
    const same = new Map<object | undefined, boolean>();
    const sameOnce = (x: object | undefined, f: () => boolean) => {
      let r = same.get(x);
      if (r === undefined) same.set(x, (r = f()));
      return r;
    };
    const wanted = pods.map((p) => {
      const name = `${w.cluster}/${w.namespace}/${p.name}`;
      const ep = old.get(name);
      if (ep && ep.ip.s === p.ip && ep.node === p.node && ep.cluster === w.cluster && ep.namespace === w.namespace && sameOnce(ep.labels, () => sameLabels(ep.labels, labels)) && sameOnce(ep.namedPorts, () => samePorts(ep.namedPorts, namedPorts))) {
        kept.add(ep);
        return ep;
      }
      return { name, p };
    });
    // Gone before new: a new endpoint at a freed address becomes the address's owner.
    for (const ep of before) if (!kept.has(ep)) this.dropEndpoint(ep);
    this.podEndpoints.set(
      key,
      wanted.map((x) =>
        'p' in x ? this.newEndpoint({ kind: 'pod', name: x.name, owner: key, ip: parseIp(x.p.ip)!, labels, cluster: w.cluster, namespace: w.namespace, node: x.p.node, namedPorts }) : x,
      ),
    );
  }

  /** Endpoints of a VM or workload. */
  endpointsOf(owner: string): readonly Endpoint[] {
    return this.vmEndpoints.get(owner) ?? this.podEndpoints.get(owner) ?? [];
  }
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

function samePorts(a: Endpoint['namedPorts'], b: NonNullable<Endpoint['namedPorts']>): boolean {
  if (!a || a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.port !== v.port || w.protocol !== v.protocol) return false;
  }
  return true;
}
