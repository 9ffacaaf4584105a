import type { z } from 'zod';
import type { podSelectorSpec } from '../model/common';
import { Selector, type LabelSelectorSpec, type Labels } from './selector';
import type { Atom, Endpoint } from './types';

// Moved to the leaf module types.ts; re-exported for importers of this module.
export type { Atom, Endpoint, EndpointRules } from './types';

export type PodSelectorSpec = z.output<typeof podSelectorSpec>;

/** Namespace labels with the implied `kubernetes.io/metadata.name`. */
export type NamespaceLabels = (cluster: string, namespace: string) => Labels;

/**
 * Endpoints and atoms with the indexes that make updates incremental: atoms are indexed by the namespace
 * or label key they require, endpoints by label key/value, so a pod event only checks the atoms that
 * could select it and a new atom only scans the endpoints that could match it.
 */
/** How many endpoint changes {@link Membership.endpointLog} keeps. */
const ENDPOINT_LOG = 4096;
/** How many membership changes {@link Membership.memberLog} keeps. */
const MEMBER_LOG = 16384;

export class Membership {
  readonly endpoints = new Map<number, Endpoint>();
  readonly atoms = new Map<string, Atom>();
  private readonly atomIndex = new Map<string, Set<Atom>>();
  private readonly labelIndex = new Map<string, Map<string, Set<Endpoint>>>();
  private readonly byNamespace = new Map<string, Set<Endpoint>>();
  private readonly byOwner = new Map<string, Set<Endpoint>>();
  private readonly pods = new Set<Endpoint>();
  private readonly vms = new Set<Endpoint>();
  private nextAtomId = 0;
  /** Declared namespaces (cluster, name); lets a namespace-selector atom start from matching namespaces. */
  namespaces: () => Iterable<{ readonly cluster: string; readonly name?: string }> = () => [];
  /** Pods per `cluster/namespace`, for namespace-selector atoms. */
  private readonly byClusterNs = new Map<string, Set<Endpoint>>();
  /**
   * Per port name, the endpoints having it, kept up to date by add and remove: enforcement points look
   * up which destinations of an address range have a named port (enforcement.ts sorts them when needed).
   */
  readonly byNamedPort = new Map<string, Set<Endpoint>>();
  /** Bumped when an endpoint is added or removed (caches of endpoints by address check it). */
  endpointsVersion = 0;
  /**
   * The endpoints added or removed, the last {@link ENDPOINT_LOG} of them: entry i is version
   * `endpointLogStart + i + 1`. Caches catch up from it instead of starting over (too old: start over).
   */
  readonly endpointLog: { readonly ep: Endpoint; readonly added: boolean }[] = [];
  endpointLogStart = 0;
  /**
   * Membership changes, the last {@link MEMBER_LOG} of them: an endpoint joined or left an atom (entry i
   * is change `memberLogStart + i + 1`; {@link memberChanges} counts them all). Every atom version bump
   * has its entry, so a cache of addresses per atom set can catch up address by address.
   */
  readonly memberLog: { readonly atom: Atom; readonly ep: Endpoint }[] = [];
  memberLogStart = 0;
  get memberChanges(): number {
    return this.memberLogStart + this.memberLog.length;
  }
  /** Called with every endpoint whose membership changed, so its cached rules are dropped. */
  onChange: (ep: Endpoint) => void = () => {};

  constructor(private readonly nsLabels: NamespaceLabels) {}

  add(ep: Endpoint): void {
    this.endpoints.set(ep.id, ep);
    this.logEndpoint(ep, true);
    for (const n of ep.namedPorts?.keys() ?? []) addTo(this.byNamedPort, n, ep);
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
    if (ep.kind === 'pod') {
      addTo(this.byNamespace, ep.namespace!, ep);
      addTo(this.byClusterNs, `${ep.cluster}/${ep.namespace}`, ep);
    }
    addTo(this.byOwner, ep.owner, ep);
    this.recheck(ep);
  }

  remove(ep: Endpoint): void {
    this.endpoints.delete(ep.id);
    this.logEndpoint(ep, false);
    for (const n of ep.namedPorts?.keys() ?? []) this.byNamedPort.get(n)?.delete(ep);
    (ep.kind === 'pod' ? this.pods : this.vms).delete(ep);
    const prefix = ep.kind === 'pod' ? 'p' : 'v';
    for (const [k, v] of Object.entries(ep.labels)) this.labelIndex.get(`${prefix}:${k}`)?.get(v)?.delete(ep);
    if (ep.kind === 'pod') {
      this.byNamespace.get(ep.namespace!)?.delete(ep);
      this.byClusterNs.get(`${ep.cluster}/${ep.namespace}`)?.delete(ep);
    }
    this.byOwner.get(ep.owner)?.delete(ep);
    for (const a of ep.atoms) {
      a.members.delete(ep.id);
      this.memberChanged(a, ep);
    }
    ep.atoms.clear();
    ep.atomIds = undefined;
  }

  /** An endpoint joined or left an atom: its version moves and the change is logged. */
  private memberChanged(a: Atom, ep: Endpoint): void {
    a.version++;
    this.memberLog.push({ atom: a, ep });
    if (this.memberLog.length > 2 * MEMBER_LOG) {
      const drop = this.memberLog.length - MEMBER_LOG;
      this.memberLog.splice(0, drop);
      this.memberLogStart += drop;
    }
  }

  private logEndpoint(ep: Endpoint, added: boolean): void {
    this.endpointsVersion++;
    this.endpointLog.push({ ep, added });
    if (this.endpointLog.length > 2 * ENDPOINT_LOG) {
      const drop = this.endpointLog.length - ENDPOINT_LOG;
      this.endpointLog.splice(0, drop);
      this.endpointLogStart += drop;
    }
  }

  /** Re-evaluates the atoms that could select `ep` (after a namespace relabel, for instance). */
  recheck(ep: Endpoint): void {
    const before = [...ep.atoms];
    for (const a of before) a.members.delete(ep.id);
    ep.atoms.clear();
    for (const key of this.candidateKeys(ep)) {
      const set = this.atomIndex.get(key);
      if (!set) continue;
      for (const a of set) {
        if (!ep.atoms.has(a) && a.matches(ep)) {
          a.members.add(ep.id);
          ep.atoms.add(a);
        }
      }
    }
    // Only atoms whose members changed move on (a relabel keeping most memberships must not make every
    // cache of those atoms stale).
    for (const a of before) if (!ep.atoms.has(a)) this.memberChanged(a, ep);
    const had = new Set(before);
    for (const a of ep.atoms) if (!had.has(a)) this.memberChanged(a, ep);
    ep.atomIds = undefined;
    if (before.length || ep.atoms.size) this.onChange(ep);
  }

  /** Index keys under which atoms that could select `ep` are found (mirror of the atoms' indexKeys). */
  private candidateKeys(ep: Endpoint): string[] {
    const keys = [`o:${ep.owner}`];
    const prefix = ep.kind === 'pod' ? 'p' : 'v';
    keys.push(`${prefix}:*`);
    for (const [k, v] of Object.entries(ep.labels)) keys.push(`${prefix}:${k}`, `${prefix}:${k}=${v}`);
    if (ep.kind === 'pod') {
      keys.push(`ns:${ep.namespace}`, `c:${ep.cluster}`);
      for (const [k, v] of Object.entries(this.nsLabels(ep.cluster!, ep.namespace!))) keys.push(`nsl:${k}`, `nsl:${k}=${v}`);
    }
    return keys;
  }

  /** Pods of a namespace name (any cluster). */
  podsInNamespace(namespace: string): Iterable<Endpoint> {
    return this.byNamespace.get(namespace) ?? [];
  }

  endpointsOf(owner: string): Iterable<Endpoint> {
    return this.byOwner.get(owner) ?? [];
  }

  /**
   * Atoms by the spec's JSON text: compiling 20k policies references the same selectors again and again,
   * and building two Selectors only to find the canonical key dominated. JSON is not canonical (key
   * order), so a miss falls back to the canonical key; a hit is always the right atom.
   */
  private readonly atomsBySpecText = new Map<string, Atom>();

  podSelectorAtom(spec: PodSelectorSpec, impliedCluster?: string): Atom {
    const text = `p${impliedCluster ?? ''}\u0000${JSON.stringify(spec)}`;
    let a = this.atomsBySpecText.get(text);
    if (!a) {
      a = this.podSelectorAtomSlow(spec, impliedCluster);
      this.atomsBySpecText.set(text, a);
    }
    return a;
  }

  vmSelectorAtom(spec: LabelSelectorSpec): Atom {
    const text = `v\u0000${JSON.stringify(spec)}`;
    let a = this.atomsBySpecText.get(text);
    if (!a) {
      a = this.vmSelectorAtomSlow(spec);
      this.atomsBySpecText.set(text, a);
    }
    return a;
  }

  private podSelectorAtomSlow(spec: PodSelectorSpec, impliedCluster?: string): Atom {
    const cluster = spec.cluster ?? impliedCluster;
    const nsSel = spec.namespaceSelector ? new Selector(spec.namespaceSelector) : undefined;
    const podSel = new Selector(spec.podSelector);
    const namespaces = spec.namespaces ? new Set(spec.namespaces) : undefined;
    const key = `pod|${cluster ?? '*'}|${namespaces ? [...namespaces].sort().join(',') : '*'}|${nsSel?.key ?? '*'}|${podSel.key}`;
    const nsLabels = this.nsLabels;
    return this.intern(key, () => ({
      id: this.nextAtomId++,
      key,
      members: new Set(),
      rulesVersion: 0,
      version: 0,
      // The most selective index available: namespace names, a required pod label (value), a required
      // namespace label (value), the cluster; only selectors with none of these are checked for every pod.
      indexKeys: namespaces ? [...namespaces].map((n) => `ns:${n}`) : (selectorKeys('p', podSel) ?? (nsSel && selectorKeys('nsl', nsSel)) ?? (cluster !== undefined ? [`c:${cluster}`] : ['p:*'])),
      matches: (ep) =>
        ep.kind === 'pod' &&
        (cluster === undefined || ep.cluster === cluster) &&
        (namespaces === undefined || namespaces.has(ep.namespace!)) &&
        (nsSel === undefined || nsSel.matches(nsLabels(ep.cluster!, ep.namespace!))) &&
        podSel.matches(ep.labels),
    }), () => (namespaces ? [...namespaces].flatMap((n) => [...this.podsInNamespace(n)]) : this.podCandidates(podSel, nsSel, cluster)));
  }

  private vmSelectorAtomSlow(spec: LabelSelectorSpec): Atom {
    const sel = new Selector(spec);
    const key = `vm|${sel.key}`;
    return this.intern(key, () => ({
      id: this.nextAtomId++,
      key,
      members: new Set(),
      rulesVersion: 0,
      version: 0,
      indexKeys: selectorKeys('v', sel) ?? ['v:*'],
      matches: (ep) => ep.kind === 'vm-interface' && sel.matches(ep.labels),
    }), () => this.candidates('v', sel, this.vms));
  }

  /** Static members: every endpoint of a VM or workload. */
  ownerAtom(kind: 'vm-interface' | 'pod', owner: string): Atom {
    const key = `owner|${kind}|${owner}`;
    return this.intern(key, () => ({ id: this.nextAtomId++, key, members: new Set(), rulesVersion: 0,
      version: 0, indexKeys: [`o:${owner}`], matches: (ep) => ep.kind === kind && ep.owner === owner }), () => [...this.endpointsOf(owner)]);
  }

  /**
   * Pods a new pod-selector atom must test: those carrying its required label value, or those in the
   * namespaces its namespace selector matches, whichever is smaller (without this a selector such as
   * "namespaces of team X, tier web" tested a quarter of all pods, and 800 of them took half a minute).
   */
  private podCandidates(podSel: Selector, nsSel: Selector | undefined, cluster: string | undefined): Iterable<Endpoint> {
    const byLabel = this.candidates('p', podSel, this.pods);
    if (!nsSel) return byLabel;
    const byNs: Set<Endpoint>[] = [];
    let n = 0;
    for (const ns of this.namespaces()) {
      if (cluster !== undefined && ns.cluster !== cluster) continue;
      if (!nsSel.matches(this.nsLabels(ns.cluster, ns.name!))) continue;
      const pods = this.byClusterNs.get(`${ns.cluster}/${ns.name}`);
      if (pods?.size) {
        byNs.push(pods);
        n += pods.size;
      }
    }
    const labelCount = Array.isArray(byLabel) ? byLabel.length : this.pods.size;
    return n < labelCount ? byNs.flatMap((s) => [...s]) : byLabel;
  }

  private candidates(prefix: 'p' | 'v', sel: Selector, all: Set<Endpoint>): Iterable<Endpoint> {
    if (sel.requiredKey === undefined) return all;
    const byVal = this.labelIndex.get(`${prefix}:${sel.requiredKey}`);
    if (!byVal) return [];
    const values = sel.requiredValues;
    if (!values) return [...byVal.values()].flatMap((s) => [...s]);
    return [...values].flatMap((v) => [...(byVal.get(v) ?? [])]);
  }

  /** `candidates` is a thunk: most calls find the atom already interned and must not pay for the scan. */
  private intern(key: string, make: () => Atom, candidates: () => Iterable<Endpoint>): Atom {
    const existing = this.atoms.get(key);
    if (existing) return existing;
    const a = make();
    this.atoms.set(key, a);
    for (const k of a.indexKeys) addTo(this.atomIndex, k, a);
    for (const ep of candidates()) {
      if (a.matches(ep)) {
        a.members.add(ep.id);
        this.memberChanged(a, ep);
        ep.atoms.add(a);
        ep.atomIds = undefined;
        this.onChange(ep);
      }
    }
    return a;
  }
}

/**
 * Index keys of a selector: `prefix:key=value` per value of its first `In` requirement, or `prefix:key`
 * for an `Exists` one; undefined when it requires no label. Indexing by value (not only by key) matters at
 * scale: thousands of `app=X` selectors share the key `app`, and a pod must only meet the one for its value.
 */
function selectorKeys(prefix: string, sel: Selector): string[] | undefined {
  if (sel.requiredKey === undefined) return undefined;
  if (!sel.requiredValues) return [`${prefix}:${sel.requiredKey}`];
  return [...sel.requiredValues].map((v) => `${prefix}:${sel.requiredKey}=${v}`);
}

function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

/** The endpoint's atom ids, sorted (cached on the endpoint until its membership changes). */
export function atomIdsOf(ep: Endpoint): Int32Array {
  let ids = ep.atomIds;
  if (!ids) {
    ids = new Int32Array(ep.atoms.size);
    let i = 0;
    for (const a of ep.atoms) ids[i++] = a.id;
    ids.sort();
    ep.atomIds = ids;
  }
  return ids;
}
