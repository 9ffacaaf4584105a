import type { z } from 'zod';
import type { podSelectorSpec } from '../model/common';
import type { Ip } from './ip';
import { Selector, type LabelSelectorSpec, type Labels } from './selector';

/** A pod or a VM interface: the unit policies are enforced on. */
export interface Endpoint {
  readonly id: number;
  readonly kind: 'pod' | 'vm-interface';
  /** Pod `cluster/namespace/workload-i`, VM interface `vm#i`. */
  readonly name: string;
  /** Workload identity or VM name. */
  readonly owner: string;
  readonly ip: Ip;
  readonly labels: Labels;
  readonly cluster?: string;
  readonly namespace?: string;
  readonly node?: string;
  readonly namedPorts?: ReadonlyMap<string, { readonly port: number; readonly protocol: string }>;
  /** Atoms containing this endpoint (reverse index, kept in sync by Membership). */
  readonly atoms: Set<Atom>;
  /** Cached ordered rule lists; rebuilt when `cacheEpoch` is stale. */
  cache?: EndpointRules;
}

export interface EndpointRules {
  epoch: number;
  out: import('./rules').CompiledRule[];
  in: import('./rules').CompiledRule[];
  /** Including staged rules; undefined when no staged rule applies. */
  outAll?: import('./rules').CompiledRule[];
  inAll?: import('./rules').CompiledRule[];
}

export type PodSelectorSpec = z.output<typeof podSelectorSpec>;

/**
 * The smallest shared unit of membership: one canonical selector or static reference. Groups, rule peers,
 * appliedTo, load-balancer pools and egress IPs are unions of atoms, so equal selectors are evaluated once.
 */
export interface Atom {
  readonly key: string;
  readonly members: Set<number>;
  readonly indexKeys: readonly string[];
  matches(ep: Endpoint): boolean;
}

/** Namespace labels with the implied `kubernetes.io/metadata.name`. */
export type NamespaceLabels = (cluster: string, namespace: string) => Labels;

/**
 * Endpoints and atoms with the indexes that make updates incremental: atoms are indexed by the namespace
 * or label key they require, endpoints by label key/value, so a pod event only checks the atoms that
 * could select it and a new atom only scans the endpoints that could match it.
 */
export class Membership {
  readonly endpoints = new Map<number, Endpoint>();
  readonly atoms = new Map<string, Atom>();
  private readonly atomIndex = new Map<string, Set<Atom>>();
  private readonly labelIndex = new Map<string, Map<string, Set<Endpoint>>>();
  private readonly byNamespace = new Map<string, Set<Endpoint>>();
  private readonly byOwner = new Map<string, Set<Endpoint>>();
  private readonly pods = new Set<Endpoint>();
  private readonly vms = new Set<Endpoint>();
  /** Called with every endpoint whose membership changed, so its cached rules are dropped. */
  onChange: (ep: Endpoint) => void = () => {};

  constructor(private readonly nsLabels: NamespaceLabels) {}

  add(ep: Endpoint): void {
    this.endpoints.set(ep.id, ep);
    (ep.kind === 'pod' ? this.pods : this.vms).add(ep);
    const prefix = ep.kind === 'pod' ? 'p' : 'v';
    for (const [k, v] of Object.entries(ep.labels)) {
      const lk = `${prefix}:${k}`;
      let byVal = this.labelIndex.get(lk);
      if (!byVal) this.labelIndex.set(lk, (byVal = new Map()));
      let set = byVal.get(v);
      if (!set) byVal.set(v, (set = new Set()));
      set.add(ep);
    }
    if (ep.kind === 'pod') addTo(this.byNamespace, ep.namespace!, ep);
    addTo(this.byOwner, ep.owner, ep);
    this.recheck(ep);
  }

  remove(ep: Endpoint): void {
    this.endpoints.delete(ep.id);
    (ep.kind === 'pod' ? this.pods : this.vms).delete(ep);
    const prefix = ep.kind === 'pod' ? 'p' : 'v';
    for (const [k, v] of Object.entries(ep.labels)) this.labelIndex.get(`${prefix}:${k}`)?.get(v)?.delete(ep);
    if (ep.kind === 'pod') this.byNamespace.get(ep.namespace!)?.delete(ep);
    this.byOwner.get(ep.owner)?.delete(ep);
    for (const a of ep.atoms) a.members.delete(ep.id);
    ep.atoms.clear();
  }

  /** Re-evaluates the atoms that could select `ep` (after a namespace relabel, for instance). */
  recheck(ep: Endpoint): void {
    const before = ep.atoms.size;
    for (const a of ep.atoms) a.members.delete(ep.id);
    ep.atoms.clear();
    for (const key of candidateKeys(ep)) {
      const set = this.atomIndex.get(key);
      if (!set) continue;
      for (const a of set) {
        if (!ep.atoms.has(a) && a.matches(ep)) {
          a.members.add(ep.id);
          ep.atoms.add(a);
        }
      }
    }
    if (before || ep.atoms.size) this.onChange(ep);
  }

  /** Pods of a namespace name (any cluster). */
  podsInNamespace(namespace: string): Iterable<Endpoint> {
    return this.byNamespace.get(namespace) ?? [];
  }

  endpointsOf(owner: string): Iterable<Endpoint> {
    return this.byOwner.get(owner) ?? [];
  }

  podSelectorAtom(spec: PodSelectorSpec, impliedCluster?: string): Atom {
    const cluster = spec.cluster ?? impliedCluster;
    const nsSel = spec.namespaceSelector ? new Selector(spec.namespaceSelector) : undefined;
    const podSel = new Selector(spec.podSelector);
    const namespaces = spec.namespaces ? new Set(spec.namespaces) : undefined;
    const key = `pod|${cluster ?? '*'}|${namespaces ? [...namespaces].sort().join(',') : '*'}|${nsSel?.key ?? '*'}|${podSel.key}`;
    const nsLabels = this.nsLabels;
    return this.intern(key, () => ({
      key,
      members: new Set(),
      indexKeys: namespaces ? [...namespaces].map((n) => `ns:${n}`) : podSel.requiredKey !== undefined ? [`p:${podSel.requiredKey}`] : ['p:*'],
      matches: (ep) =>
        ep.kind === 'pod' &&
        (cluster === undefined || ep.cluster === cluster) &&
        (namespaces === undefined || namespaces.has(ep.namespace!)) &&
        (nsSel === undefined || nsSel.matches(nsLabels(ep.cluster!, ep.namespace!))) &&
        podSel.matches(ep.labels),
    }), namespaces ? [...namespaces].flatMap((n) => [...this.podsInNamespace(n)]) : this.candidates('p', podSel, this.pods));
  }

  vmSelectorAtom(spec: LabelSelectorSpec): Atom {
    const sel = new Selector(spec);
    const key = `vm|${sel.key}`;
    return this.intern(key, () => ({
      key,
      members: new Set(),
      indexKeys: [sel.requiredKey !== undefined ? `v:${sel.requiredKey}` : 'v:*'],
      matches: (ep) => ep.kind === 'vm-interface' && sel.matches(ep.labels),
    }), this.candidates('v', sel, this.vms));
  }

  /** Static members: every endpoint of a VM or workload. */
  ownerAtom(kind: 'vm-interface' | 'pod', owner: string): Atom {
    const key = `owner|${kind}|${owner}`;
    return this.intern(key, () => ({ key, members: new Set(), indexKeys: [`o:${owner}`], matches: (ep) => ep.kind === kind && ep.owner === owner }), [...this.endpointsOf(owner)]);
  }

  private candidates(prefix: 'p' | 'v', sel: Selector, all: Set<Endpoint>): Iterable<Endpoint> {
    if (sel.requiredKey === undefined) return all;
    const byVal = this.labelIndex.get(`${prefix}:${sel.requiredKey}`);
    if (!byVal) return [];
    const values = sel.requiredValues;
    if (!values) return [...byVal.values()].flatMap((s) => [...s]);
    return [...values].flatMap((v) => [...(byVal.get(v) ?? [])]);
  }

  private intern(key: string, make: () => Atom, candidates: Iterable<Endpoint>): Atom {
    const existing = this.atoms.get(key);
    if (existing) return existing;
    const a = make();
    this.atoms.set(key, a);
    for (const k of a.indexKeys) addTo(this.atomIndex, k, a);
    for (const ep of candidates) {
      if (a.matches(ep)) {
        a.members.add(ep.id);
        ep.atoms.add(a);
        this.onChange(ep);
      }
    }
    return a;
  }
}

function candidateKeys(ep: Endpoint): string[] {
  const keys = [`o:${ep.owner}`];
  if (ep.kind === 'pod') {
    keys.push('p:*', `ns:${ep.namespace}`);
    for (const k of Object.keys(ep.labels)) keys.push(`p:${k}`);
  } else {
    keys.push('v:*');
    for (const k of Object.keys(ep.labels)) keys.push(`v:${k}`);
  }
  return keys;
}

function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}
