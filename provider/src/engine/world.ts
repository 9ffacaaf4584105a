import { identityOf, type Kind, type SpecOf } from '../model';
import { AddressPool } from './allocate';
import { compileNetworkPolicy, decideNetworkPolicies, type CompiledNetworkPolicy } from './netpol';
import { cidrContains, cidrWithin, parseCidr, parseIp, parseRange, type Cidr, type Ip } from './ip';
import { atomIdsOf, Membership, type Atom, type Endpoint, type EndpointRules } from './membership';
import type { Problem } from './problems';
import {
  appliesAt,
  BASELINE_RANK,
  comparePolicies,
  compileBlock,
  compilePolicy,
  firstMatchIndexed,
  indexRules,
  type Addr,
  type CompileContext,
  type CompiledPolicy,
  type CompiledRule,
  type IndexedRules,
  type PeerSet,
} from './rules';
import type { StateSource } from './state';
import { validateSpec } from './validate';
import { referencesOf } from './references';
import { traceflow, verdict, type FlowSpec, type Trace, type VerdictResult } from './traceflow';

export type DefaultAction = 'allow' | 'drop';

export interface WorldOptions {
  /** Action of the default rule (provider config `defaultAction`). */
  readonly defaultAction?: DefaultAction;
}

/** A change for {@link World.apply}: `spec` undefined removes the object. */
export interface Change {
  readonly kind: Kind;
  readonly name: string;
  readonly spec?: unknown;
  readonly outputs?: Readonly<Record<string, unknown>>;
}

export interface PodOutput {
  readonly name: string;
  readonly ip: string;
  readonly node: string;
}

interface ClusterState {
  readonly spec: SpecOf['KubernetesCluster'];
  readonly podCidr: Cidr | undefined;
  readonly serviceCidr: Cidr | undefined;
  readonly pool: AddressPool | undefined;
  readonly nodeIps: ReadonlyMap<string, Ip>;
}

interface LbState {
  readonly name: string;
  readonly spec: SpecOf['LoadBalancer'];
  vip: Ip | undefined;
}

interface EgressState {
  readonly name: string;
  readonly spec: SpecOf['EgressIp'];
  ip: Ip | undefined;
  atom: Atom | undefined;
}

type Store = { [K in Kind]: Map<string, SpecOf[K]> };

/**
 * The policy world: every declared object (spec layer), its normalised form (atoms, compiled policies)
 * and what is computed from it (members, pod IPs, egress IPs, VIPs, effective rules per endpoint).
 *
 * Updates are incremental: inventory changes touch only the atoms that could select the changed endpoints;
 * segmentation changes recompile only the policies that depend on the changed objects. Queries compile
 * lazily. User errors never throw: `upsert` returns the object's problems, `validate()` the world's.
 */
export class World {
  readonly defaultAction: DefaultAction;
  private readonly specs: Store = {
    VirtualMachine: new Map(),
    KubernetesCluster: new Map(),
    Namespace: new Map(),
    Workload: new Map(),
    PodSelector: new Map(),
    SecurityGroup: new Map(),
    FirewallPolicy: new Map(),
    FirewallRule: new Map(),
    KubernetesNetworkPolicy: new Map(),
    EgressIp: new Map(),
    LoadBalancer: new Map(),
    QuarantinePolicy: new Map(),
    ConnectivityAssertion: new Map(),
  };
  readonly membership: Membership;
  private nextId = 1;
  private readonly clusters = new Map<string, ClusterState>();
  private readonly pods = new Map<string, PodOutput[]>();
  private readonly vmEndpoints = new Map<string, Endpoint[]>();
  private readonly podEndpoints = new Map<string, Endpoint[]>();
  private readonly byIp = new Map<string, Endpoint>();
  private readonly lbs = new Map<string, LbState>();
  private readonly vips = new Map<string, LbState>();
  private readonly egress = new Map<string, EgressState>();
  private readonly usedStaticIps = new Set<string>();
  private readonly allocationProblems = new Map<string, Problem>();
  private readonly unhealthy = new Set<string>();
  // Compiled layer.
  private readonly policies = new Map<string, CompiledPolicy>();
  private readonly dirtyPolicies = new Set<string>();
  private ordered: CompiledPolicy[] = [];
  private orderDirty = true;
  private readonly globalRules: CompiledRule[] = [];
  /** Policies owning a rule in globalRules (no appliedTo anywhere): candidates at every endpoint. */
  private get globalPolicies(): Set<CompiledPolicy> {
    return new Set(this.globalRules.map((r) => r.policy));
  }
  private readonly rulesByAtom = new Map<Atom, Set<CompiledRule>>();
  /** Compiled NetworkPolicies by identity, and by the atom of the pods they select. */
  private readonly netpols = new Map<string, CompiledNetworkPolicy>();
  private readonly netpolsBySubject = new Map<Atom, Set<CompiledNetworkPolicy>>();
  private readonly dirtyNetpols = new Set<string>();
  /** Bumped whenever a NetworkPolicy changes: per-endpoint NetworkPolicy lists of older epochs are stale. */
  private npEpoch = 1;
  private epoch = 1;
  private groupCache = new Map<string, PeerSet | undefined>();
  private tieWarnings: Problem[] = [];

  constructor(options: WorldOptions = {}) {
    this.defaultAction = options.defaultAction ?? 'drop';
    this.membership = new Membership((c, n) => this.namespaceLabels(c, n));
    this.membership.namespaces = () => this.specs.Namespace.values();
    this.membership.onChange = (ep) => {
      ep.cache = undefined;
      ep.netpols = undefined;
    };
    this.ctx = { membership: this.membership, group: (n) => this.group(n), podSelector: (n) => this.specs.PodSelector.get(n) };
  }

  /** Builds a world from persisted state. */
  static load(source: StateSource, options: WorldOptions = {}): { world: World; problems: Problem[] } {
    const w = new World(options);
    const problems: Problem[] = [];
    for (const o of source.load()) problems.push(...w.upsert(o.kind, o.name, o.spec, o.outputs));
    return { world: w, problems };
  }

  // ---------------------------------------------------------------- spec layer

  /**
   * Creates or replaces one object. The spec is validated first (defaults applied); on schema or
   * per-object errors the world is unchanged and the problems are returned. `outputs` carries allocations
   * to keep (Workload `pods`, EgressIp `allocatedIp`, LoadBalancer `allocatedVip`).
   */
  upsert(kind: Kind, name: string, spec: unknown, outputs?: Readonly<Record<string, unknown>>): Problem[] {
    // A spec without a name takes it from the key (for a FirewallRule keyed `policy/name`, the last part).
    const bare = kind === 'FirewallRule' ? name.slice(name.lastIndexOf('/') + 1) : name;
    const named = typeof spec === 'object' && spec !== null && (spec as { name?: unknown }).name === undefined && kind !== 'Namespace' && kind !== 'Workload' && kind !== 'KubernetesNetworkPolicy' ? { ...spec, name: bare } : spec;
    const r = validateSpec(kind, named);
    if (!r.ok) return r.problems.map((p) => ({ ...p, object: { kind, name } }));
    this.set(kind, name, r.value, outputs);
    return r.problems.map((p) => ({ ...p, object: { kind, name } }));
  }

  /**
   * Restores an object that was validated and normalised (defaults applied) when it was written, e.g.
   * when rebuilding the world from the store at start-up, where re-validating 100k specs dominates.
   */
  restore(kind: Kind, name: string, spec: SpecOf[Kind], outputs?: Readonly<Record<string, unknown>>): void {
    this.set(kind, name, spec, outputs);
  }

  /** Removes one object; unknown objects are ignored. */
  remove(kind: Kind, name: string): void {
    if (!this.specs[kind].has(name)) return;
    this.set(kind, name, undefined);
  }

  /** Applies several changes in order; returns every problem. */
  apply(changes: Iterable<Change>): Problem[] {
    const out: Problem[] = [];
    for (const c of changes) {
      if (c.spec === undefined) this.remove(c.kind, c.name);
      else out.push(...this.upsert(c.kind, c.name, c.spec, c.outputs));
    }
    return out;
  }

  get<K extends Kind>(kind: K, name: string): SpecOf[K] | undefined {
    return this.specs[kind].get(name) as SpecOf[K] | undefined;
  }

  names(kind: Kind): string[] {
    return [...this.specs[kind].keys()];
  }

  /** Every object, in insertion order per kind. */
  *objects(): Iterable<{ kind: Kind; name: string; spec: SpecOf[Kind] }> {
    for (const kind of Object.keys(this.specs) as Kind[]) for (const [name, spec] of this.specs[kind]) yield { kind, name, spec };
  }

  /** An independent copy (same specs and allocations), e.g. to preview a change and diff verdicts. */
  clone(options: WorldOptions = { defaultAction: this.defaultAction }): World {
    const w = new World(options);
    for (const { kind, name, spec } of this.objects()) w.set(kind, name, spec, this.outputsOf(kind, name));
    for (const u of this.unhealthy) w.unhealthy.add(u);
    return w;
  }

  /** Computed outputs of an object (the `outputs` of its resource definition). */
  outputsOf(kind: Kind, name: string): Record<string, unknown> {
    switch (kind) {
      case 'Workload':
        return { pods: (this.pods.get(name) ?? []).map((p) => ({ ...p })) };
      case 'EgressIp':
        return { allocatedIp: this.egress.get(name)?.ip?.s ?? '' };
      case 'LoadBalancer':
        return { allocatedVip: this.lbs.get(name)?.vip?.s ?? '', memberCount: this.lbMembers(name).length };
      case 'SecurityGroup': {
        const m = this.groupMembers(name);
        return { members: m.members, memberCount: m.members.length };
      }
      case 'PodSelector': {
        const s = this.get('PodSelector', name);
        return { memberCount: s ? this.membership.podSelectorAtom(s).members.size : 0 };
      }
      case 'KubernetesNetworkPolicy': {
        this.compile();
        return { podCount: this.netpols.get(name)?.subject.members.size ?? 0 };
      }
      case 'ConnectivityAssertion': {
        const a = this.get('ConnectivityAssertion', name);
        if (!a) return {};
        const t = this.traceflow({ source: a.from, destination: a.to, protocol: a.protocol, port: a.port });
        if ('problem' in t) return { verdict: 'drop', decidingRule: t.problem.message, passed: false };
        return { verdict: t.verdict, decidingRule: t.decidingPolicy === 'default' ? 'default' : `${t.decidingPolicy}/${t.decidingRule}`, passed: (t.verdict === 'allow') === (a.expect === 'allow') };
      }
      default:
        return {};
    }
  }

  /** Marks a load-balancer member (endpoint name) healthy or not; unhealthy members get no flows. */
  setMemberHealth(member: string, healthy: boolean): void {
    if (healthy) this.unhealthy.delete(member);
    else this.unhealthy.add(member);
  }

  private set(kind: Kind, name: string, spec: SpecOf[Kind] | undefined, outputs?: Readonly<Record<string, unknown>>): void {
    const map = this.specs[kind] as Map<string, SpecOf[Kind]>;
    const old = map.get(name);
    if (spec === undefined) map.delete(name);
    else map.set(name, spec);
    switch (kind) {
      case 'VirtualMachine':
        return this.syncVm(name);
      case 'KubernetesCluster':
        return this.syncCluster(name);
      case 'Namespace': {
        const ns = (spec ?? old) as SpecOf['Namespace'];
        this.nsLabelCache.delete(name);
        for (const ep of this.membership.podsInNamespace(ns.name!)) if (ep.cluster === ns.cluster) this.membership.recheck(ep);
        return;
      }
      case 'Workload':
        return this.syncWorkload(name, outputs?.pods as PodOutput[] | undefined);
      case 'FirewallPolicy':
        this.dirtyPolicies.add(name);
        return;
      case 'FirewallRule': {
        if (old) this.dirtyPolicies.add((old as SpecOf['FirewallRule']).policy);
        if (spec) this.dirtyPolicies.add((spec as SpecOf['FirewallRule']).policy);
        return;
      }
      case 'QuarantinePolicy':
        this.dirtyPolicies.add(`quarantine:${name}`);
        return;
      case 'KubernetesNetworkPolicy':
        this.dirtyNetpols.add(name);
        return;
      case 'SecurityGroup':
      case 'PodSelector':
        return this.invalidate(`${kind === 'SecurityGroup' ? 'group' : 'psel'}:${name}`);
      case 'EgressIp':
        this.syncEgress(name, outputs?.allocatedIp as string | undefined);
        return this.invalidate(`egress:${name}`);
      case 'LoadBalancer':
        return this.syncLb(name, outputs?.allocatedVip as string | undefined);
      case 'ConnectivityAssertion':
        return;
    }
  }

  /** A group, PodSelector or egress IP changed: recompile the policies that depend on it. */
  private invalidate(dep: string): void {
    this.groupCache = new Map();
    this.groupDepsCache = new Map();
    // deps hold the transitive closure over nested groups (see groupDeps), so one lookup per policy suffices.
    for (const p of this.policies.values()) if (p.deps.has(dep)) this.dirtyPolicies.add(p.name);
  }

  // ---------------------------------------------------------------- inventory and allocation

  /** Labels with the implied name label, one shared object per namespace (selectors test it per pod). */
  private readonly nsLabelCache = new Map<string, Record<string, string>>();

  private namespaceLabels(cluster: string, namespace: string): Record<string, string> {
    const key = `${cluster}/${namespace}`;
    let l = this.nsLabelCache.get(key);
    if (!l) {
      const ns = this.specs.Namespace.get(key);
      l = { ...(ns?.labels ?? {}), 'kubernetes.io/metadata.name': namespace };
      this.nsLabelCache.set(key, l);
    }
    return l;
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

  private syncVm(name: string): void {
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

  private syncCluster(name: string): void {
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

  private readonly clusterOfPods = new Map<string, string>();

  private syncWorkload(key: string, previous: PodOutput[] | undefined): void {
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

  private allocateStatic(owner: string, fixed: string | undefined, pool: string | undefined, previous: string | undefined, what: string): Ip | undefined {
    this.allocationProblems.delete(owner);
    if (fixed !== undefined) return parseIp(fixed);
    const range = pool !== undefined ? parseRange(pool) : undefined;
    if (!range) return undefined;
    const p = new AddressPool(range, false);
    for (const u of this.usedStaticIps) {
      const ip = parseIp(u);
      if (ip) p.reserve(ip);
    }
    const prev = previous ? parseIp(previous) : undefined;
    if (prev && cidrContains(range, prev) && !this.usedStaticIps.has(prev.s)) return prev;
    const ip = p.allocate();
    if (!ip) {
      const [kind, name] = owner.split('/') as [string, string];
      this.allocationProblems.set(owner, { code: 'ip-exhausted', path: what === 'VIP' ? 'vipPool' : 'pool', message: `pool ${pool} has no free address for the ${what}; expected a larger pool or fewer users of it`, object: { kind, name } });
    }
    return ip;
  }

  private syncEgress(name: string, previous: string | undefined): void {
    const old = this.egress.get(name);
    if (old?.ip) this.usedStaticIps.delete(old.ip.s);
    this.egress.delete(name);
    const spec = this.specs.EgressIp.get(name);
    if (!spec) return;
    const ip = this.allocateStatic(`EgressIp/${name}`, spec.ip, spec.pool, previous ?? old?.ip?.s, 'egress IP');
    if (ip) this.usedStaticIps.add(ip.s);
    this.egress.set(name, { name, spec, ip, atom: this.membership.podSelectorAtom({ ...spec.podSelector, cluster: spec.cluster }) });
  }

  private syncLb(name: string, previous: string | undefined): void {
    const old = this.lbs.get(name);
    if (old?.vip) {
      this.usedStaticIps.delete(old.vip.s);
      if (this.vips.get(old.vip.s) === old) this.vips.delete(old.vip.s);
    }
    this.lbs.delete(name);
    const spec = this.specs.LoadBalancer.get(name);
    if (!spec) return;
    const vip = this.allocateStatic(`LoadBalancer/${name}`, spec.vip, spec.vipPool, previous ?? old?.vip?.s, 'VIP');
    const st: LbState = { name, spec, vip };
    if (vip) {
      this.usedStaticIps.add(vip.s);
      if (!this.vips.has(vip.s)) this.vips.set(vip.s, st);
    }
    this.lbs.set(name, st);
  }

  /** Pool members of a load balancer, sorted by name so the choice is stable under churn of others. */
  lbMembers(name: string): Endpoint[] {
    const lb = this.lbs.get(name);
    if (!lb) return [];
    const atoms: Atom[] = [];
    const pool = lb.spec.pool;
    if (pool.group !== undefined) atoms.push(...(this.group(pool.group)?.atoms ?? []));
    else if (pool.podSelector) atoms.push(this.membership.podSelectorAtom(pool.podSelector));
    else if (pool.podSelectorRef !== undefined) {
      const s = this.specs.PodSelector.get(pool.podSelectorRef);
      if (s) atoms.push(this.membership.podSelectorAtom(s));
    }
    const ids = new Set<number>();
    for (const a of atoms) for (const id of a.members) ids.add(id);
    return [...ids].map((id) => this.membership.endpoints.get(id)!).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // ---------------------------------------------------------------- groups

  /** A SecurityGroup flattened over nested groups (cycles are cut; validate() reports them). */
  group(name: string): PeerSet | undefined {
    if (this.groupCache.has(name)) return this.groupCache.get(name);
    const r = this.flatten(name, new Set());
    this.groupCache.set(name, r);
    return r;
  }

  private flatten(name: string, visiting: Set<string>): PeerSet | undefined {
    const g = this.specs.SecurityGroup.get(name);
    if (!g || visiting.has(name)) return undefined;
    visiting.add(name);
    const m = this.membership;
    const atoms = new Set<Atom>();
    const blocks = [];
    const ips = new Set<string>();
    for (const s of g.vmSelectors ?? []) atoms.add(m.vmSelectorAtom(s));
    for (const s of g.podSelectors ?? []) atoms.add(m.podSelectorAtom(s));
    for (const r of g.podSelectorRefs ?? []) {
      const s = this.specs.PodSelector.get(r);
      if (s) atoms.add(m.podSelectorAtom(s));
    }
    for (const v of g.vms ?? []) atoms.add(m.ownerAtom('vm-interface', v));
    for (const wl of g.workloads ?? []) atoms.add(m.ownerAtom('pod', wl));
    for (const b of g.ipBlocks ?? []) {
      const c = compileBlock(b.cidr, b.except);
      if (c) blocks.push(c);
    }
    for (const e of g.egressIps ?? []) {
      const ip = this.egress.get(e)?.ip;
      if (ip) ips.add(ip.s);
    }
    for (const child of g.groups ?? []) {
      const c = this.flatten(child, visiting);
      if (!c) continue;
      c.atoms.forEach((a) => atoms.add(a));
      blocks.push(...c.blocks);
      c.ips.forEach((i) => ips.add(i));
    }
    visiting.delete(name);
    return { atoms: [...atoms], blocks, ips };
  }

  /** {@link groupDeps} per group, cached like `groupCache` (20k policies reference 5k groups). */
  private groupDepsCache = new Map<string, ReadonlySet<string>>();

  private groupDepsOf(name: string): ReadonlySet<string> {
    let d = this.groupDepsCache.get(name);
    if (!d) {
      const out = new Set<string>();
      this.groupDeps(name, out);
      this.groupDepsCache.set(name, (d = out));
    }
    return d;
  }

  /** Names of the groups, PodSelectors and egress IPs a group depends on, transitively. */
  private groupDeps(name: string, out: Set<string>, seen = new Set<string>()): void {
    if (seen.has(name)) return;
    seen.add(name);
    out.add(`group:${name}`);
    const g = this.specs.SecurityGroup.get(name);
    if (!g) return;
    for (const r of g.podSelectorRefs ?? []) out.add(`psel:${r}`);
    for (const e of g.egressIps ?? []) out.add(`egress:${e}`);
    for (const c of g.groups ?? []) this.groupDeps(c, out, seen);
  }

  // ---------------------------------------------------------------- compilation

  private readonly ctx: CompileContext;

  /** Recompiles dirty policies and re-sorts the policy order; cheap when nothing changed. */
  compile(): void {
    if (this.dirtyPolicies.size === 0 && !this.orderDirty && this.dirtyNetpols.size === 0) return;
    const standalone = new Map<string, SpecOf['FirewallRule'][]>();
    if (this.dirtyPolicies.size) {
      for (const r of this.specs.FirewallRule.values()) {
        if (!this.dirtyPolicies.has(r.policy)) continue;
        let l = standalone.get(r.policy);
        if (!l) standalone.set(r.policy, (l = []));
        l.push(r);
      }
    }
    // Which cached rule lists the change reaches: those of endpoints in the old or new appliedTo of a
    // changed policy's rules. Ranks keep their relative order, so every other list stays valid. A rule
    // enforced everywhere, or a bulk change (start-up), drops every list instead.
    let everywhere = this.dirtyPolicies.size > 64;
    const touched = new Set<Atom>();
    const reach = (p: CompiledPolicy): void => {
      if (everywhere) return;
      for (const r of p.rules) {
        // A rule is in a list only if the endpoint is in every requirement, so the last one suffices.
        const req = r.appliedTo[r.appliedTo.length - 1];
        if (!req) {
          everywhere = true;
          return;
        }
        for (const a of req) touched.add(a);
      }
    };
    for (const name of this.dirtyPolicies) {
      const old = this.policies.get(name);
      if (old) reach(old);
      if (old) this.unindex(old);
      this.policies.delete(name);
      const compiled = name.startsWith('quarantine:') ? this.compileQuarantine(name.slice('quarantine:'.length)) : this.compileFirewallPolicy(name, standalone.get(name) ?? []);
      if (compiled) {
        // Transitive group dependencies so that a nested group change reaches this policy.
        const deps = compiled.deps as Set<string>;
        for (const d of [...deps]) if (d.startsWith('group:')) for (const x of this.groupDepsOf(d.slice(6))) deps.add(x);
        this.policies.set(name, compiled);
        this.index(compiled);
        reach(compiled);
      }
      this.orderDirty = true;
    }
    this.dirtyPolicies.clear();
    // NetworkPolicies live beside the rule lists: a change only makes every endpoint's NetworkPolicy
    // selection stale (npEpoch), recomputed when a verdict next reaches the layer there.
    if (this.dirtyNetpols.size) this.npEpoch++;
    for (const key of this.dirtyNetpols) {
      const old = this.netpols.get(key);
      if (old) {
        this.netpolsBySubject.get(old.subject)?.delete(old);
        this.netpols.delete(key);
      }
      const spec = this.specs.KubernetesNetworkPolicy.get(key);
      if (!spec) continue;
      const np = compileNetworkPolicy(this.membership, key, spec);
      this.netpols.set(key, np);
      let set = this.netpolsBySubject.get(np.subject);
      if (!set) this.netpolsBySubject.set(np.subject, (set = new Set()));
      set.add(np);
    }
    this.dirtyNetpols.clear();
    if (this.orderDirty) {
      this.ordered = [...this.policies.values()].sort(comparePolicies);
      this.ordered.forEach((p, i) => (p.rank = i));
      this.tieWarnings = [];
      for (let i = 1; i < this.ordered.length; i++) {
        const a = this.ordered[i - 1]!;
        const b = this.ordered[i]!;
        if (!a.quarantine && !b.quarantine && a.catRank === b.catRank && a.priority === b.priority) {
          const message = `policies "${a.name}" and "${b.name}" share priority ${a.priority} in category ${a.category}; they are ordered by name ("${a.name}" first). Give them distinct priorities to make the order explicit`;
          // One warning per policy of the pair: whichever of the two is written creates the tie and must
          // hear about it (callers keep the warnings of the object being written).
          for (const p of [a, b]) this.tieWarnings.push({ code: 'priority-tie', path: 'priority', severity: 'warning', message, object: { kind: 'FirewallPolicy', name: p.name } });
        }
      }
      this.orderDirty = false;
    }
    if (everywhere) this.epoch++;
    else
      for (const a of touched) {
        // Lists found through the identity map are checked against the atoms' versions (rulesAt); the
        // members drop the list they hold, which another endpoint may still share: one outside `a` (whose
        // identity did not hold `a` when it was first flagged as appliedTo) keeps a list that is still right.
        a.rulesVersion++;
        for (const id of a.members) {
          const ep = this.membership.endpoints.get(id);
          if (ep) ep.cache = undefined;
        }
      }
  }

  private compileFirewallPolicy(name: string, standalone: SpecOf['FirewallRule'][]): CompiledPolicy | undefined {
    const p = this.specs.FirewallPolicy.get(name);
    if (!p) return undefined;
    // Inline rules win when both are present; validate() reports the mix as an error.
    const rules = p.rules?.length
      ? p.rules
      : standalone.sort((a, b) => a.priority - b.priority || (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
    return compilePolicy(this.ctx, { name, category: p.category, priority: p.priority, staged: p.enforcement === 'staged', quarantine: false, appliedTo: p.appliedTo }, rules);
  }

  private compileQuarantine(name: string): CompiledPolicy | undefined {
    const q = this.specs.QuarantinePolicy.get(name);
    if (!q) return undefined;
    // The quarantined set: VMs and pods (any cluster, any namespace) carrying the selector's labels.
    const qAtoms = [this.membership.vmSelectorAtom(q.selector), this.membership.podSelectorAtom({ podSelector: q.selector })];
    const base = { sourcesExcluded: false, destinationsExcluded: false, logged: true, disabled: false } as const;
    const rules: SpecOf['FirewallRule'][] = [];
    const r = (x: Omit<SpecOf['FirewallRule'], 'policy' | 'priority' | 'sourcesExcluded' | 'destinationsExcluded' | 'logged' | 'disabled'>): void => {
      rules.push({ ...base, policy: name, priority: 0, ...x });
    };
    if (q.forensicGroup !== undefined) r({ name: 'forensic-in', action: 'allow', direction: 'in', sources: [{ group: q.forensicGroup }], services: q.forensicServices });
    r({ name: 'isolate-in', action: 'drop', direction: 'in' });
    r({ name: 'isolate-out', action: 'drop', direction: 'out' });
    const compiled = compilePolicy(this.ctx, { name, category: 'emergency', priority: Number.MIN_SAFE_INTEGER, staged: false, quarantine: true }, rules);
    // appliedTo is the quarantined set itself (not a SecurityGroup), so set it directly.
    for (const rule of compiled.rules) (rule as unknown as { appliedTo: Atom[][] }).appliedTo = [qAtoms];
    return compiled;
  }

  private index(p: CompiledPolicy): void {
    for (const r of p.rules) {
      for (const req of r.appliedTo) for (const a of req) a.appliedTo = true;
      const req = r.appliedTo[r.appliedTo.length - 1];
      if (!req) this.globalRules.push(r);
      else
        for (const a of req) {
          let s = this.rulesByAtom.get(a);
          if (!s) this.rulesByAtom.set(a, (s = new Set()));
          s.add(r);
        }
    }
  }

  private unindex(p: CompiledPolicy): void {
    for (const r of p.rules) {
      const req = r.appliedTo[r.appliedTo.length - 1];
      if (!req) {
        const i = this.globalRules.indexOf(r);
        if (i >= 0) this.globalRules.splice(i, 1);
      } else for (const a of req) this.rulesByAtom.get(a)?.delete(r);
    }
  }

  /**
   * Rule lists per identity (the sorted ids of an endpoint's appliedTo atoms, see ruleIdentity) for the
   * current epoch: which rules apply at an endpoint depends only on those, so endpoints with equal ones (replicas, look-alike pods)
   * share one list and one index, which halves compile time and memory on our benchmark estate.
   */
  private identityRules = new Map<string, EndpointRules>();

  /** Ordered rules enforced at an endpoint, cached until the endpoint's membership or the policies change. */
  rulesAt(ep: Endpoint): EndpointRules {
    this.compile();
    const c = ep.cache;
    if (c && c.epoch === this.epoch) return c;
    const sig = ruleIdentity(ep);
    let res = this.identityRules.get(sig);
    if (!res || res.epoch !== this.epoch || res.version !== rulesVersionOf(ep)) {
      // Entries of identities nobody has any more are only dropped wholesale; bound the map under churn.
      if (this.identityRules.size > 2 * this.membership.endpoints.size + 1024) this.identityRules = new Map();
      res = this.buildRules(ep);
      this.identityRules.set(sig, res);
    }
    ep.cache = res;
    return res;
  }

  /**
   * Builds an endpoint's lists: the candidate policies (those with a rule indexed under one of its atoms,
   * plus policies enforced everywhere) in rank order, each contributing its rules that apply here in rule
   * order. Sorting policies instead of rules keeps a workload under 10,000 policies to one sort of 10,000.
   */
  private buildRules(ep: Endpoint): EndpointRules {
    const policies = new Set<CompiledPolicy>(this.globalPolicies);
    for (const a of ep.atoms) {
      const rules = this.rulesByAtom.get(a);
      if (rules) for (const r of rules) policies.add(r.policy);
    }
    const ordered = [...policies].sort((a, b) => a.rank - b.rank);
    const all: CompiledRule[] = [];
    const out: CompiledRule[] = [];
    const inn: CompiledRule[] = [];
    let staged = false;
    let baseline = false;
    for (const p of ordered) {
      for (const r of p.rules) {
        if (!appliesAt(r, ep)) continue;
        all.push(r);
        if (p.catRank === BASELINE_RANK) baseline = true;
        if (p.staged) staged = true;
        else {
          if (r.dirOut) out.push(r);
          if (r.dirIn) inn.push(r);
        }
      }
    }
    return {
      epoch: this.epoch,
      version: rulesVersionOf(ep),
      all,
      out,
      in: inn,
      outAll: staged ? all.filter((r) => r.dirOut) : undefined,
      inAll: staged ? all.filter((r) => r.dirIn) : undefined,
      baseline,
    };
  }

  /**
   * Deciding rule at the source (out rules) or destination (in rules) firewall: first match over the
   * endpoint's ordered list, through its peer-atom index. `staged` includes staged policies (traceflow).
   */
  decideAt(ep: Endpoint, dir: 'in' | 'out', staged: boolean, src: Addr, dst: Addr, f: { protocol: string; port: number | undefined; icmpType?: number; icmpCode?: number }): CompiledRule | undefined {
    const c = this.rulesAt(ep);
    const peer = dir === 'in' ? src.ep : dst.ep;
    const peerIds = peer === undefined ? undefined : atomIdsOf(peer);
    let ix: IndexedRules;
    if (dir === 'in') {
      if (staged && !c.inAll) return undefined;
      ix = staged ? (c.inAllIdx ??= indexRules(c.inAll!, 'src')) : (c.inIdx ??= indexRules(c.in, 'src'));
    } else {
      if (staged && !c.outAll) return undefined;
      ix = staged ? (c.outAllIdx ??= indexRules(c.outAll!, 'dst')) : (c.outIdx ??= indexRules(c.out, 'dst'));
    }
    const peerIp = dir === 'in' ? src.ip : dst.ip;
    // emergency → application, then the NetworkPolicy layer for a pod a policy isolates, then baseline.
    const r = firstMatchIndexed(ix, peerIds, peerIp, src, dst, f, 'main');
    if (r) return r;
    const nps = this.networkPoliciesAt(ep, dir);
    if (nps) return decideNetworkPolicies(nps, dir, src, dst, f, dir === 'in' && ep.node !== undefined ? this.clusters.get(ep.cluster!)?.nodeIps.get(ep.node) : undefined);
    return c.baseline ? firstMatchIndexed(ix, peerIds, peerIp, src, dst, f, 'baseline') : undefined;
  }

  /** NetworkPolicies isolating `ep` in direction `dir`, ordered by identity; undefined when none does. */
  networkPoliciesAt(ep: Endpoint, dir: 'in' | 'out'): readonly CompiledNetworkPolicy[] | undefined {
    this.compile();
    let c = ep.netpols;
    if (!c || c.epoch !== this.npEpoch) {
      let ins: CompiledNetworkPolicy[] | undefined;
      let outs: CompiledNetworkPolicy[] | undefined;
      if (ep.kind === 'pod' && this.netpols.size) {
        const selecting: CompiledNetworkPolicy[] = [];
        for (const a of ep.atoms) for (const np of this.netpolsBySubject.get(a) ?? []) selecting.push(np);
        selecting.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        for (const np of selecting) {
          if (np.ingress) (ins ??= []).push(np);
          if (np.egress) (outs ??= []).push(np);
        }
      }
      ep.netpols = c = { epoch: this.npEpoch, in: ins, out: outs };
    }
    return dir === 'in' ? c.in : c.out;
  }

  // ---------------------------------------------------------------- lookups used by queries

  endpointByIp(ip: string): Endpoint | undefined {
    return this.byIp.get(ip);
  }

  endpoint(id: number): Endpoint | undefined {
    return this.membership.endpoints.get(id);
  }

  lbByVip(ip: string): LbState | undefined {
    return this.vips.get(ip);
  }

  lbState(name: string): LbState | undefined {
    return this.lbs.get(name);
  }

  clusterState(name: string): ClusterState | undefined {
    return this.clusters.get(name);
  }

  /** Endpoints of a VM or workload. */
  endpointsOf(owner: string): readonly Endpoint[] {
    return this.vmEndpoints.get(owner) ?? this.podEndpoints.get(owner) ?? [];
  }

  isHealthy(ep: Endpoint): boolean {
    return !this.unhealthy.has(ep.name);
  }

  /** The egress IP applying to a pod: the first EgressIp by name of its cluster selecting it. */
  egressFor(ep: Endpoint): { name: string; ip: Ip } | undefined {
    let best: EgressState | undefined;
    for (const e of this.egress.values()) {
      if (e.spec.cluster !== ep.cluster || !e.ip || !e.atom?.members.has(ep.id)) continue;
      if (!best || e.name < best.name) best = e;
    }
    return best && best.ip ? { name: best.name, ip: best.ip } : undefined;
  }

  /** Compiled policies in evaluation order. */
  orderedPolicies(): readonly CompiledPolicy[] {
    this.compile();
    return this.ordered;
  }

  /** Warnings to log (priority ties, appliedTo groups that can select no enforcement point). */
  warnings(): Problem[] {
    this.compile();
    return [...this.tieWarnings, ...this.appliedToWarnings()];
  }

  /**
   * appliedTo selects enforcement points (VM interfaces, pods); IP blocks and egress IPs are not, so a
   * group made only of them applies the policy or rule nowhere (as in NSX). Legal, but almost always a
   * mistake (the group was meant as a source or destination), so it is a warning.
   */
  private appliedToWarnings(): Problem[] {
    const out: Problem[] = [];
    const check = (groups: readonly string[] | undefined, path: string, object: { kind: Kind; name: string }, what: string) =>
      (groups ?? []).forEach((g, i) => {
        const flat = this.group(g);
        if (!flat || flat.atoms.length > 0 || (flat.blocks.length === 0 && flat.ips.size === 0)) return;
        out.push({
          code: 'appliedto-ip-only',
          path: `${path}[${i}]`,
          severity: 'warning',
          message: `appliedTo group "${g}" has only IP blocks or egress IPs, which are not enforcement points, so the ${what} applies to nothing; use it in sources or destinations, or add VM or pod selectors to it`,
          object,
        });
      });
    for (const [n, p] of this.specs.FirewallPolicy) {
      check(p.appliedTo, 'appliedTo', { kind: 'FirewallPolicy', name: n }, 'policy');
      (p.rules ?? []).forEach((r, i) => check(r.appliedTo, `rules[${i}].appliedTo`, { kind: 'FirewallPolicy', name: n }, `rule "${r.name}"`));
    }
    for (const [n, r] of this.specs.FirewallRule) check(r.appliedTo, 'appliedTo', { kind: 'FirewallRule', name: n }, 'rule');
    return out;
  }

  // ---------------------------------------------------------------- group queries

  /** Members of a SecurityGroup: pods, VM interfaces and egress IPs, plus its IP blocks. */
  groupMembers(name: string): { members: { kind: 'pod' | 'vm-interface' | 'ip'; name: string; ip: string }[]; ipBlocks: string[] } {
    const g = this.group(name);
    if (!g) return { members: [], ipBlocks: [] };
    const ids = new Set<number>();
    for (const a of g.atoms) for (const id of a.members) ids.add(id);
    const members: { kind: 'pod' | 'vm-interface' | 'ip'; name: string; ip: string }[] = [...ids]
      .map((id) => this.membership.endpoints.get(id)!)
      .map((ep) => ({ kind: ep.kind, name: ep.name, ip: ep.ip.s }));
    for (const ip of g.ips) members.push({ kind: 'ip', name: ip, ip });
    members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { members, ipBlocks: g.blocks.map((b) => (b.except.length ? `${b.cidr.s} except ${b.except.map((e) => e.s).join(',')}` : b.cidr.s)) };
  }

  /** Groups containing an endpoint (by selectors, static membership, or its IP in an IP block). */
  groupsOfEndpoint(ep: Endpoint): string[] {
    const out: string[] = [];
    for (const name of this.specs.SecurityGroup.keys()) {
      const g = this.group(name);
      if (!g) continue;
      if (g.atoms.some((a) => ep.atoms.has(a)) || g.ips.has(ep.ip.s) || g.blocks.some((b) => cidrContains(b.cidr, ep.ip) && !b.except.some((e) => cidrContains(e, ep.ip)))) out.push(name);
    }
    return out.sort();
  }

  // ---------------------------------------------------------------- validation

  /**
   * World-level problems: unknown references, nested-group cycles, inline and standalone rules mixed,
   * duplicate standalone rule names, address exhaustion and duplicates. Warnings (priority ties) included.
   */
  validate(): Problem[] {
    const out: Problem[] = [];
    // Unknown references, object by object, from the one definition of what refers to what.
    for (const { kind, name, spec } of this.objects()) {
      for (const r of referencesOf(kind, spec)) {
        if (!this.specs[r.kind].has(r.name)) out.push({ code: 'unknown-reference', path: r.path, message: `${r.kind} "${r.name}" does not exist; expected the name of a declared ${r.kind}`, object: { kind, name } });
      }
    }
    out.push(...this.groupCycles());
    const standaloneByPolicy = new Map<string, Map<string, string>>();
    for (const [n, r] of this.specs.FirewallRule) {
      let names = standaloneByPolicy.get(r.policy);
      if (!names) standaloneByPolicy.set(r.policy, (names = new Map()));
      const prev = names.get(r.name!);
      if (prev !== undefined) out.push({ code: 'duplicate-rule-name', path: 'name', message: `rule name "${r.name}" is already used in policy "${r.policy}" by FirewallRule "${prev}"; rule names must be unique in a policy`, object: { kind: 'FirewallRule', name: n } });
      else names.set(r.name!, n);
    }
    for (const [n, p] of this.specs.FirewallPolicy) {
      const standalone = standaloneByPolicy.get(n);
      if (p.rules?.length && standalone?.size) {
        out.push({
          code: 'mixed-rules',
          path: 'rules',
          message: `policy "${n}" has ${p.rules.length} inline rule(s) and ${standalone.size} FirewallRule resource(s) (${[...standalone.values()].join(', ')}); a policy uses inline rules or FirewallRule resources, never both`,
          object: { kind: 'FirewallPolicy', name: n },
        });
        // Also on each standalone rule, so that adding one to a policy with inline rules is refused too
        // (it would otherwise be stored and never enforced).
        for (const r of standalone.values())
          out.push({
            code: 'mixed-rules',
            path: 'policy',
            message: `policy "${n}" has ${p.rules.length} inline rule(s); a standalone FirewallRule on it would never be enforced. Move the rule into the policy's rules, or remove the inline rules (a policy uses inline rules or FirewallRule resources, never both)`,
            object: { kind: 'FirewallRule', name: r },
          });
      }
    }
    for (const [n, a] of this.specs.ConnectivityAssertion) {
      for (const f of ['from', 'to'] as const) {
        const r = this.resolve(a[f]);
        if ('problem' in r) out.push({ ...r.problem, path: f, object: { kind: 'ConnectivityAssertion', name: n } });
      }
    }
    out.push(...this.allocationProblems.values());
    out.push(...this.addressCollisions());
    out.push(...this.portProblems());
    out.push(...this.warnings());
    return out;
  }

  /**
   * Addresses two objects would both claim: duplicate VM interface IPs, VM IPs and egress IPs inside a pod
   * CIDR (the pod allocator would hand them out again), VIPs equal to another object's IP, overlapping pod
   * CIDRs of two clusters, and a service CIDR overlapping a pod CIDR. Each collision is reported on both
   * objects, naming the other, so whichever write introduced it is refused.
   */
  private addressCollisions(): Problem[] {
    const out: Problem[] = [];
    type Obj = { kind: Kind; name: string; path: string };
    const pair = (code: string, a: Obj, b: Obj, message: string) => {
      const other = (o: Obj) => `${o.kind} "${o.name}" (${o.path})`;
      out.push({ code, path: a.path, message: `${message}: ${a.kind} "${a.name}" collides with ${other(b)}; expected distinct addresses`, object: { kind: a.kind, name: a.name } });
      out.push({ code, path: b.path, message: `${message}: ${b.kind} "${b.name}" collides with ${other(a)}; expected distinct addresses`, object: { kind: b.kind, name: b.name } });
    };
    const clusters = [...this.clusters.entries()];
    // Pod CIDRs between clusters (service CIDRs are cluster-local and may repeat), and each cluster's own
    // service CIDR against its pod CIDR.
    for (let i = 0; i < clusters.length; i++) {
      const [an, a] = clusters[i]!;
      if (a.podCidr && a.serviceCidr && overlaps(a.podCidr, a.serviceCidr))
        out.push({ code: 'address-collision', path: 'serviceCidr', message: `service CIDR ${a.serviceCidr.s} overlaps pod CIDR ${a.podCidr.s} of the same cluster; expected disjoint ranges (services would shadow pods)`, object: { kind: 'KubernetesCluster', name: an } });
      for (let j = i + 1; j < clusters.length; j++) {
        const [bn, b] = clusters[j]!;
        const A = (path: string): Obj => ({ kind: 'KubernetesCluster', name: an, path });
        const B = (path: string): Obj => ({ kind: 'KubernetesCluster', name: bn, path });
        if (a.podCidr && b.podCidr && overlaps(a.podCidr, b.podCidr)) pair('address-collision', A('podCidr'), B('podCidr'), `pod CIDRs ${a.podCidr.s} and ${b.podCidr.s} overlap, so pods of both clusters could get the same IP`);
      }
    }
    const inPodCidr = (ip: Ip): [string, ClusterState] | undefined => clusters.find(([, c]) => c.podCidr !== undefined && cidrContains(c.podCidr, ip));
    // VM interfaces: duplicates, and inside a pod CIDR.
    const vmIps = new Map<string, Obj>();
    for (const [vm, eps] of this.vmEndpoints) {
      for (const ep of eps) {
        const me: Obj = { kind: 'VirtualMachine', name: vm, path: `interfaces[${ep.name.slice(ep.name.lastIndexOf('#') + 1)}].ip` };
        const prev = vmIps.get(ep.ip.s);
        if (prev) pair('duplicate-ip', prev, me, `IP ${ep.ip.s} is used twice`);
        else vmIps.set(ep.ip.s, me);
        const c = inPodCidr(ep.ip);
        if (c) pair('address-collision', me, { kind: 'KubernetesCluster', name: c[0], path: 'podCidr' }, `IP ${ep.ip.s} is inside pod CIDR ${c[1].podCidr!.s}, from which pods are allocated`);
      }
    }
    // Egress IPs: inside a pod CIDR, or equal to a VM IP.
    const egressIps = new Map<string, Obj>();
    for (const [n, e] of this.egress) {
      if (!e.ip) continue;
      const me: Obj = { kind: 'EgressIp', name: n, path: e.spec.ip !== undefined ? 'ip' : 'pool' };
      const c = inPodCidr(e.ip);
      if (c) pair('address-collision', me, { kind: 'KubernetesCluster', name: c[0], path: 'podCidr' }, `egress IP ${e.ip.s} is inside pod CIDR ${c[1].podCidr!.s}, so a pod could be allocated the same IP`);
      const vm = vmIps.get(e.ip.s);
      if (vm) pair('address-collision', me, vm, `egress IP ${e.ip.s} is also a VM interface IP`);
      const prev = egressIps.get(e.ip.s);
      if (prev) pair('duplicate-ip', prev, me, `egress IP ${e.ip.s} is used twice`);
      else egressIps.set(e.ip.s, me);
    }
    // VIPs: equal to a VM, pod, node or egress IP, or to another VIP.
    const vipOwners = new Map<string, Obj>();
    for (const [n, lb] of this.lbs) {
      if (!lb.vip) continue;
      const me: Obj = { kind: 'LoadBalancer', name: n, path: lb.spec.vip !== undefined ? 'vip' : 'vipPool' };
      const ep = this.byIp.get(lb.vip.s);
      if (ep) pair('address-collision', me, ep.kind === 'pod' ? { kind: 'Workload', name: ep.owner, path: 'pods' } : vmIps.get(lb.vip.s)!, `VIP ${lb.vip.s} is also the IP of ${ep.kind === 'pod' ? 'pod' : 'VM interface'} ${ep.name}`);
      else {
        const c = inPodCidr(lb.vip);
        if (c) pair('address-collision', me, { kind: 'KubernetesCluster', name: c[0], path: 'podCidr' }, `VIP ${lb.vip.s} is inside pod CIDR ${c[1].podCidr!.s}, so a pod could be allocated the same IP`);
      }
      const eg = egressIps.get(lb.vip.s);
      if (eg) pair('address-collision', me, eg, `VIP ${lb.vip.s} is also an egress IP`);
      for (const [cn, c] of clusters) {
        const node = c.spec.nodes.findIndex((x) => x.ip === lb.vip!.s || parseIp(x.ip)?.s === lb.vip!.s);
        if (node >= 0) pair('address-collision', me, { kind: 'KubernetesCluster', name: cn, path: `nodes[${node}].ip` }, `VIP ${lb.vip.s} is also the IP of node ${c.spec.nodes[node]!.name}`);
      }
      const prev = vipOwners.get(lb.vip.s);
      if (prev) pair('duplicate-ip', prev, me, `VIP ${lb.vip.s} is used twice`);
      else vipOwners.set(lb.vip.s, me);
    }
    return out;
  }

  /**
   * Named ports that can never resolve: a load-balancer targetPort no pool member declares, and a rule
   * whose named port meets a group destination made only of VM interfaces (VMs have no named ports).
   */
  private portProblems(): Problem[] {
    const out: Problem[] = [];
    for (const [n, lb] of this.lbs) {
      const named = lb.spec.listeners.map((l, i) => ({ l, i })).filter((x) => typeof x.l.targetPort === 'string');
      if (named.length === 0) continue;
      const members = this.lbMembers(n);
      for (const { l, i } of named) {
        const port = l.targetPort as string;
        if (members.length === 0) {
          out.push({ code: 'unresolved-port', path: `listeners[${i}].targetPort`, severity: 'warning', message: `target port "${port}" cannot be checked: the pool has no members yet`, object: { kind: 'LoadBalancer', name: n } });
          continue;
        }
        if (!members.some((m) => m.namedPorts?.has(port)))
          out.push({
            code: 'unknown-port',
            path: `listeners[${i}].targetPort`,
            message: `target port "${port}" is not a named port of any pool member (${members.slice(0, 3).map((m) => m.name).join(', ')}${members.length > 3 ? ', ...' : ''}); expected a port name their workloads declare, or a port number`,
            object: { kind: 'LoadBalancer', name: n },
          });
      }
    }
    const check = (kind: 'FirewallPolicy' | 'FirewallRule', name: string, prefix: string, r: SpecOf['FirewallRule'] | NonNullable<SpecOf['FirewallPolicy']['rules']>[number]) => {
      if (r.destinationsExcluded) return;
      const port = (r.services ?? []).flatMap((sv) => sv.ports ?? []).find((x) => typeof x === 'string' && !/^\d+(-\d+)?$/.test(x));
      if (port === undefined) return;
      (r.destinations ?? []).forEach((d, i) => {
        if (d.group === undefined) return;
        const g = this.group(d.group);
        if (!g || g.blocks.length || g.ips.size) return;
        let members = 0;
        for (const a of g.atoms)
          for (const id of a.members) {
            if (this.membership.endpoints.get(id)?.kind === 'pod') return;
            members++;
          }
        if (members === 0) return;
        out.push({ code: 'named-port-on-vm', path: `${prefix}destinations[${i}]`, message: `named port "${String(port)}" is used against group "${d.group}", whose members are all VM interfaces; VMs have no named ports, so use port numbers`, object: { kind, name } });
      });
    };
    for (const [n, p] of this.specs.FirewallPolicy) (p.rules ?? []).forEach((r, i) => check('FirewallPolicy', n, `rules[${i}].`, r));
    for (const [n, r] of this.specs.FirewallRule) check('FirewallRule', n, '', r);
    return out;
  }

  /**
   * Nested-group cycles of any length. Each cycle is reported on every group in it (naming the whole
   * cycle), so whichever group's change closed it is refused, whatever order the groups were written in.
   */
  private groupCycles(): Problem[] {
    const out: Problem[] = [];
    const state = new Map<string, 1 | 2>();
    const stack: string[] = [];
    const reported = new Set<string>();
    const visit = (n: string): void => {
      state.set(n, 1);
      stack.push(n);
      for (const c of this.specs.SecurityGroup.get(n)?.groups ?? []) {
        if (!this.specs.SecurityGroup.has(c)) continue;
        if (state.get(c) === 1) {
          const members = stack.slice(stack.indexOf(c));
          const text = [...members, c].join(' → ');
          members.forEach((g, i) => {
            const next = members[i + 1] ?? c;
            const idx = (this.specs.SecurityGroup.get(g)?.groups ?? []).indexOf(next);
            const key = `${g}/${idx}`;
            if (reported.has(key)) return;
            reported.add(key);
            out.push({ code: 'group-cycle', path: `groups[${idx}]`, message: `nested groups form a cycle: ${text}; expected nesting without cycles`, object: { kind: 'SecurityGroup', name: g } });
          });
        } else if (!state.has(c)) visit(c);
      }
      stack.pop();
      state.set(n, 2);
    };
    for (const n of this.specs.SecurityGroup.keys()) if (!state.has(n)) visit(n);
    return out;
  }

  // ---------------------------------------------------------------- endpoint references

  /**
   * Resolves an endpoint reference, the same forms everywhere (CLI, expectations, ConnectivityAssertion):
   * an IP; `vm:NAME` (its first interface) or `vm:NAME#i` (interface i, as outputs name it);
   * `workload:CLUSTER/NS/NAME` or `NS/NAME` (its first pod; the namespace/name must be unique across
   * clusters); `pod:CLUSTER/NS/POD`; `lb:NAME`; or the same without prefix, tried as a VM, workload, pod,
   * then load balancer.
   */
  resolve(ref: string): ResolvedRef | { problem: Problem } {
    const ip = parseIp(ref);
    if (ip) {
      const lb = this.vips.get(ip.s);
      if (lb) return { ip, lb: lb.name };
      return { ip, ep: this.byIp.get(ip.s) };
    }
    const colon = ref.indexOf(':');
    const prefix = colon > 0 ? ref.slice(0, colon) : '';
    const known = prefix === 'vm' || prefix === 'workload' || prefix === 'lb' || prefix === 'pod';
    const rest = known ? ref.slice(colon + 1) : ref;
    const fail = (message: string) => ({ problem: { code: 'unknown-endpoint', path: '', message } });
    if (prefix === '' || prefix === 'vm') {
      const hash = /^(.*)#(\d+)$/.exec(rest);
      const vm = hash ? hash[1]! : rest;
      const eps = this.vmEndpoints.get(vm);
      if (eps?.length) {
        if (!hash) return { ip: eps[0]!.ip, ep: eps[0] };
        const ep = eps[Number(hash[2])];
        if (ep) return { ip: ep.ip, ep };
        return fail(`VM "${vm}" has ${eps.length} interface(s) (${vm}#0${eps.length > 1 ? `..${vm}#${eps.length - 1}` : ''}); "${ref}" names none of them`);
      }
    }
    if (prefix === '' || prefix === 'workload') {
      const eps = this.podEndpoints.get(rest) ?? this.workloadByNamespaceName(rest, ref);
      if (eps && 'problem' in eps) return eps;
      if (eps?.length) return { ip: eps[0]!.ip, ep: eps[0] };
    }
    if (prefix === '' || prefix === 'pod') {
      for (const ep of this.membership.podsInNamespace(rest.split('/')[1] ?? '')) if (ep.name === rest) return { ip: ep.ip, ep };
    }
    if (prefix === '' || prefix === 'lb') {
      const lb = this.lbs.get(rest);
      if (lb?.vip) return { ip: lb.vip, lb: lb.name };
    }
    return fail(
      `"${ref}" is not an IP, nor a VM, a workload with pods, a pod or a load balancer; expected an IP or vm:NAME, vm:NAME#INTERFACE, workload:CLUSTER/NAMESPACE/NAME, NAMESPACE/NAME, pod:CLUSTER/NAMESPACE/POD or lb:NAME`,
    );
  }

  /** The pods of the workload `NS/NAME` in whichever cluster has it; a problem when several do. */
  private workloadByNamespaceName(rest: string, ref: string): readonly Endpoint[] | { problem: Problem } | undefined {
    const parts = rest.split('/');
    if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
    const suffix = `/${rest}`;
    const matches = [...this.podEndpoints.keys()].filter((k) => k.endsWith(suffix) && k.split('/').length === 3);
    if (matches.length > 1) return { problem: { code: 'ambiguous-endpoint', path: '', message: `"${ref}" names a workload in several clusters (${matches.join(', ')}); expected CLUSTER/NAMESPACE/NAME` } };
    return matches.length === 1 ? this.podEndpoints.get(matches[0]!) : undefined;
  }

  /** Evaluates a flow and explains every step (product.md §6). */
  traceflow(flow: FlowSpec): Trace | { problem: Problem } {
    return traceflow(this, flow);
  }

  /** Fast path: verdict and deciding rule without observations. */
  verdict(flow: FlowSpec): VerdictResult | { problem: Problem } {
    return verdict(this, flow);
  }

  /** Current default-rule verdict. */
  get defaultVerdict(): 'allow' | 'drop' {
    return this.defaultAction;
  }

}

/** Two CIDRs overlap exactly when one contains the other. */
function overlaps(a: Cidr, b: Cidr): boolean {
  return cidrWithin(a, b) || cidrWithin(b, a);
}

/** Sum of the rule versions of an endpoint's appliedTo atoms: versions only grow, so an equal sum means no change. */
function rulesVersionOf(ep: Endpoint): number {
  let v = 0;
  for (const a of ep.atoms) if (a.appliedTo) v += a.rulesVersion;
  return v;
}

/**
 * The identity of an endpoint's rule lists: the sorted ids of its atoms that some rule's appliedTo holds.
 * Which rules apply depends on nothing else, so endpoints differing only in peer atoms or NetworkPolicy
 * subjects (namespace-scoped, one per policy) share one list and one index.
 */
function ruleIdentity(ep: Endpoint): string {
  const ids: number[] = [];
  for (const a of ep.atoms) if (a.appliedTo) ids.push(a.id);
  return ids.sort((x, y) => x - y).join(',');
}

/** A resolved endpoint reference. */
export interface ResolvedRef {
  readonly ip: Ip;
  readonly ep?: Endpoint;
  /** Set when the reference is a load-balancer VIP. */
  readonly lb?: string;
}
