import type { Kind, SpecOf } from '../../model';
import type { Ip } from '../ip';
import { Membership } from '../membership';
import type { CompiledNetworkPolicy } from '../netpol';
import type { Problem } from '../problems';
import type { StateSource } from '../state';
import { traceflow, verdict, type FlowSpec, type Trace, type VerdictResult } from '../traceflow';
import type { Addr, ClusterState, CompiledPolicy, CompiledRule, Endpoint, EndpointRules, FlowService, LbState, PeerSet, ResolvedRef } from '../types';
import { validateSpec } from '../validate';
import { Addressing } from './addressing';
import { EndpointRuleLists } from './endpoint-rules';
import { Groups, type GroupMember } from './groups';
import { Inventory, type PodOutput } from './inventory';
import { outputsOf } from './outputs';
import type { WorldParts } from './parts';
import { Policies } from './policies';
import { resolveRef } from './resolve';
import { emptySpecs, objectsOf, type AllocationProblems, type Specs } from './specs';
import { appliedToWarnings, validateWorld } from './validate-world';

export type { PodOutput } from './inventory';
export type { ResolvedRef } from '../types';

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

/** What a write of one kind updates beyond the spec layer (one entry per kind, checked by the compiler). */
type KindHandler = (w: WorldParts, name: string, spec: SpecOf[Kind] | undefined, old: SpecOf[Kind] | undefined, outputs: Readonly<Record<string, unknown>> | undefined) => void;

const handlers: { readonly [K in Kind]: KindHandler } = {
  VirtualMachine: (w, name) => w.inventory.syncVm(name),
  KubernetesCluster: (w, name) => w.inventory.syncCluster(name),
  Namespace: (w, name, spec, old) => w.inventory.syncNamespace(name, (spec ?? old) as SpecOf['Namespace']),
  Workload: (w, name, _spec, _old, outputs) => w.inventory.syncWorkload(name, outputs?.pods as PodOutput[] | undefined),
  FirewallPolicy: (w, name) => w.policies.markDirty(name),
  FirewallRule: (w, _name, spec, old) => {
    if (old) w.policies.markDirty((old as SpecOf['FirewallRule']).policy);
    if (spec) w.policies.markDirty((spec as SpecOf['FirewallRule']).policy);
  },
  QuarantinePolicy: (w, name) => w.policies.markDirty(`quarantine:${name}`),
  KubernetesNetworkPolicy: (w, name) => w.policies.markNetworkPolicyDirty(name),
  SecurityGroup: (w, name) => w.policies.invalidate(`group:${name}`),
  PodSelector: (w, name) => w.policies.invalidate(`psel:${name}`),
  EgressIp: (w, name, _spec, _old, outputs) => {
    w.addressing.syncEgress(name, outputs?.allocatedIp as string | undefined);
    w.policies.invalidate(`egress:${name}`);
  },
  LoadBalancer: (w, name, _spec, _old, outputs) => w.addressing.syncLb(name, outputs?.allocatedVip as string | undefined),
  ConnectivityAssertion: () => {},
};

/**
 * The policy world: every declared object (spec layer), its normalised form (atoms, compiled policies)
 * and what is computed from it (members, pod IPs, egress IPs, VIPs, effective rules per endpoint).
 *
 * Updates are incremental: inventory changes touch only the atoms that could select the changed endpoints;
 * segmentation changes recompile only the policies that depend on the changed objects. Queries compile
 * lazily. User errors never throw: `upsert` returns the object's problems, `validate()` the world's.
 *
 * This class is the facade: the work is done by its parts (world/inventory.ts, addressing.ts, groups.ts,
 * policies.ts, endpoint-rules.ts, resolve.ts, outputs.ts, validate-world.ts).
 */
export class World {
  readonly defaultAction: DefaultAction;
  readonly membership: Membership;
  private readonly parts: WorldParts;
  private readonly specs: Specs;
  private readonly rules: EndpointRuleLists;

  constructor(options: WorldOptions = {}) {
    this.defaultAction = options.defaultAction ?? 'drop';
    const specs = emptySpecs();
    const allocationProblems: AllocationProblems = new Map();
    // The namespace-label callback reaches the inventory made just after: Membership only calls it later.
    const membership: Membership = new Membership((c, n) => inventory.namespaceLabels(c, n));
    const inventory: Inventory = new Inventory(specs, membership, allocationProblems);
    membership.namespaces = () => specs.Namespace.values();
    membership.onChange = (ep) => {
      ep.cache = undefined;
      ep.netpols = undefined;
    };
    // Groups and addressing refer to each other (groups list egress IPs, load-balancer pools name groups).
    const groups: Groups = new Groups(specs, membership, (e) => addressing.egress.get(e)?.ip);
    const addressing: Addressing = new Addressing(specs, membership, allocationProblems, (n) => groups.group(n));
    const policies = new Policies(specs, membership, groups);
    this.rules = new EndpointRuleLists(policies, membership, (c, n) => inventory.clusters.get(c)?.nodeIps.get(n));
    this.specs = specs;
    this.membership = membership;
    this.parts = { specs, membership, allocationProblems, inventory, addressing, groups, policies };
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
  objects(): Iterable<{ kind: Kind; name: string; spec: SpecOf[Kind] }> {
    return objectsOf(this.specs);
  }

  /** An independent copy (same specs and allocations), e.g. to preview a change and diff verdicts. */
  clone(options: WorldOptions = { defaultAction: this.defaultAction }): World {
    const w = new World(options);
    for (const { kind, name, spec } of this.objects()) w.set(kind, name, spec, this.outputsOf(kind, name));
    for (const u of this.parts.addressing.unhealthy) w.parts.addressing.unhealthy.add(u);
    return w;
  }

  /** Computed outputs of an object (the `outputs` of its resource definition). */
  outputsOf(kind: Kind, name: string): Record<string, unknown> {
    return outputsOf(this.parts, this, kind, name);
  }

  /** Marks a load-balancer member (endpoint name) healthy or not; unhealthy members get no flows. */
  setMemberHealth(member: string, healthy: boolean): void {
    this.parts.addressing.setMemberHealth(member, healthy);
  }

  /**
   * Bumped by every write of a kind that changes how addresses travel rather than who is a member
   * (clusters: network mode, CIDRs, nodes; egress IPs; load balancers; namespaces): caches of what peers
   * look like at an enforcement point (enforcement.ts PointModelCache) start over when it moves.
   */
  get topologyVersion(): number {
    return this.topology;
  }
  private topology = 0;

  private set(kind: Kind, name: string, spec: SpecOf[Kind] | undefined, outputs?: Readonly<Record<string, unknown>>): void {
    if (kind === 'KubernetesCluster' || kind === 'EgressIp' || kind === 'LoadBalancer' || kind === 'Namespace') this.topology++;
    const map = this.specs[kind] as Map<string, SpecOf[Kind]>;
    const old = map.get(name);
    if (spec === undefined) map.delete(name);
    else map.set(name, spec);
    handlers[kind](this.parts, name, spec, old, outputs);
  }

  // ---------------------------------------------------------------- groups and load balancers

  /** Pool members of a load balancer, sorted by name so the choice is stable under churn of others. */
  lbMembers(name: string): Endpoint[] {
    return this.parts.addressing.lbMembers(name);
  }

  /** A SecurityGroup flattened over nested groups (cycles are cut; validate() reports them). */
  group(name: string): PeerSet | undefined {
    return this.parts.groups.group(name);
  }

  /** Members of a SecurityGroup: pods, VM interfaces and egress IPs, plus its IP blocks. */
  groupMembers(name: string): { members: GroupMember[]; ipBlocks: string[] } {
    return this.parts.groups.members(name);
  }

  /** Groups containing an endpoint (by selectors, static membership, or its IP in an IP block). */
  groupsOfEndpoint(ep: Endpoint): string[] {
    return this.parts.groups.groupsOf(ep);
  }

  // ---------------------------------------------------------------- compilation and rules

  /** Recompiles dirty policies and re-sorts the policy order; cheap when nothing changed. */
  compile(): void {
    this.parts.policies.compile();
  }

  /** Ordered rules enforced at an endpoint, cached until the endpoint's membership or the policies change. */
  rulesAt(ep: Endpoint): EndpointRules {
    return this.rules.rulesAt(ep);
  }

  /**
   * Deciding rule at the source (out rules) or destination (in rules) firewall: first match over the
   * endpoint's ordered list, through its peer-atom index. `staged` includes staged policies (traceflow).
   */
  decideAt(ep: Endpoint, dir: 'in' | 'out', staged: boolean, src: Addr, dst: Addr, f: FlowService): CompiledRule | undefined {
    return this.rules.decideAt(ep, dir, staged, src, dst, f);
  }

  /** NetworkPolicies isolating `ep` in direction `dir`, ordered by identity; undefined when none does. */
  networkPoliciesAt(ep: Endpoint, dir: 'in' | 'out'): readonly CompiledNetworkPolicy[] | undefined {
    return this.rules.networkPoliciesAt(ep, dir);
  }

  /** Compiled policies in evaluation order. */
  orderedPolicies(): readonly CompiledPolicy[] {
    this.compile();
    return this.parts.policies.orderedPolicies();
  }

  // ---------------------------------------------------------------- lookups used by queries

  /** No two endpoints share an address (then every endpoint owns its address: lookups can skip the check). */
  addressesUnique(): boolean {
    return this.parts.inventory.byIp.size === this.membership.endpoints.size;
  }

  endpointByIp(ip: string): Endpoint | undefined {
    return this.parts.inventory.byIp.get(ip);
  }

  endpoint(id: number): Endpoint | undefined {
    return this.membership.endpoints.get(id);
  }

  lbState(name: string): LbState | undefined {
    return this.parts.addressing.lbs.get(name);
  }

  clusterState(name: string): ClusterState | undefined {
    return this.parts.inventory.clusters.get(name);
  }

  /** Endpoints of a VM or workload. */
  endpointsOf(owner: string): readonly Endpoint[] {
    return this.parts.inventory.endpointsOf(owner);
  }

  isHealthy(ep: Endpoint): boolean {
    return this.parts.addressing.isHealthy(ep);
  }

  /** Moves whenever the set of pods leaving by an egress IP may have changed (see Addressing). */
  egressMembersVersion(): number {
    return this.parts.addressing.egressMembersVersion();
  }

  /** The egress IP applying to a pod: the first EgressIp by name of its cluster selecting it. */
  egressFor(ep: Endpoint): { name: string; ip: Ip } | undefined {
    return this.parts.addressing.egressFor(ep);
  }

  // ---------------------------------------------------------------- validation

  /** Warnings to log (priority ties, appliedTo groups that can select no enforcement point). */
  warnings(): Problem[] {
    this.compile();
    return [...this.parts.policies.priorityTies(), ...appliedToWarnings(this.parts)];
  }

  /**
   * World-level problems: unknown references, nested-group cycles, inline and standalone rules mixed,
   * duplicate standalone rule names, address exhaustion and duplicates. Warnings (priority ties) included.
   */
  validate(): Problem[] {
    return validateWorld(
      this.parts,
      (ref) => this.resolve(ref),
      () => this.warnings(),
    );
  }

  // ---------------------------------------------------------------- endpoint references and flows

  /**
   * Resolves an endpoint reference, the same forms everywhere (CLI, expectations, ConnectivityAssertion):
   * an IP; `vm:NAME` (its first interface) or `vm:NAME#i` (interface i, as outputs name it);
   * `workload:CLUSTER/NS/NAME` or `NS/NAME` (its first pod; the namespace/name must be unique across
   * clusters); `pod:CLUSTER/NS/POD`; `lb:NAME`; or the same without prefix, tried as a VM, workload, pod,
   * then load balancer.
   */
  resolve(ref: string): ResolvedRef | { problem: Problem } {
    return resolveRef(this.parts, ref);
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
