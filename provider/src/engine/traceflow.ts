import type { Ip } from './ip';
import type { Problem } from './problems';
import type { Addr, ClusterState, CompiledRule, Endpoint, FlowService, LbState, ResolvedRef } from './types';

export type FlowProtocol = 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6';
export type Verdict = 'allow' | 'drop' | 'reject';

/** A flow by endpoint references (IPs, VM/workload/pod/LB names; see World.resolve). */
export interface FlowSpec {
  readonly source: string;
  readonly destination: string;
  readonly protocol: FlowProtocol;
  readonly port?: number;
  readonly sourcePort?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

/** Which rule decided. `default` is the default rule; `unmanaged` means no side was enforced. */
export type Decision =
  | { readonly kind: 'rule'; readonly category: string; readonly policy: string; readonly rule: string; readonly action: 'allow' | 'drop' | 'reject' }
  | { readonly kind: 'default'; readonly action: 'allow' | 'drop' }
  | { readonly kind: 'load-balancer'; readonly lb: string; readonly reason: string }
  | { readonly kind: 'unmanaged' };

export interface VerdictResult {
  readonly verdict: Verdict;
  readonly decision: Decision;
}

export interface StagedHit {
  readonly category: string;
  readonly policy: string;
  readonly rule: string;
  readonly action: 'allow' | 'drop' | 'reject' | 'pass';
}

export interface Observation {
  readonly component: 'source-firewall' | 'load-balancer' | 'snat' | 'destination-firewall' | 'delivery';
  readonly action: string;
  readonly category?: string;
  readonly policy?: string;
  readonly rule?: string;
  readonly sourceIp?: string;
  readonly destinationIp?: string;
  readonly translatedSourceIp?: string;
  readonly translatedDestinationIp?: string;
  readonly translatedPort?: number;
  /** What staged policies would have decided at this firewall, when a staged rule would decide. */
  readonly staged?: readonly StagedHit[];
  readonly note?: string;
}

export interface Trace extends VerdictResult {
  readonly observations: readonly Observation[];
  /** `policy` and `rule` of the decision, `default` for the default rule, `none` when unmanaged. */
  readonly decidingPolicy: string;
  readonly decidingRule: string;
  /** Every staged hit, in observation order. */
  readonly staged: readonly StagedHit[];
}

/**
 * What evaluating a flow reads of the world (World implements it): resolving references, the deciding rule
 * at each firewall, load-balancer members and health, and the SNAT inputs. Traceflow depends on this view
 * rather than on World, so the world can use traceflow (ConnectivityAssertion outputs) without a cycle.
 */
export interface FlowView {
  readonly defaultAction: 'allow' | 'drop';
  resolve(ref: string): ResolvedRef | { problem: Problem };
  decideAt(ep: Endpoint, dir: 'in' | 'out', staged: boolean, src: Addr, dst: Addr, f: FlowService): CompiledRule | undefined;
  lbState(name: string): LbState | undefined;
  lbMembers(name: string): Endpoint[];
  isHealthy(ep: Endpoint): boolean;
  clusterState(name: string): ClusterState | undefined;
  egressFor(ep: Endpoint): { name: string; ip: Ip } | undefined;
}

/** A flow with endpoints resolved; resolve once and evaluate many times in benchmarks. */
export interface ResolvedFlow {
  readonly src: ResolvedRef;
  readonly dst: ResolvedRef;
  readonly protocol: FlowProtocol;
  readonly port: number | undefined;
  readonly sourcePort?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

export function resolveFlow(world: FlowView, flow: FlowSpec): ResolvedFlow | { problem: Problem } {
  const src = world.resolve(flow.source);
  if ('problem' in src) return { problem: { ...src.problem, path: 'source' } };
  const dst = world.resolve(flow.destination);
  if ('problem' in dst) return { problem: { ...dst.problem, path: 'destination' } };
  return { src, dst, protocol: flow.protocol, port: flow.port, sourcePort: flow.sourcePort, icmpType: flow.icmpType, icmpCode: flow.icmpCode };
}

export function traceflow(world: FlowView, flow: FlowSpec): Trace | { problem: Problem } {
  const rf = resolveFlow(world, flow);
  if ('problem' in rf) return rf;
  return evaluateFlow(world, rf, []) as Trace;
}

export function verdict(world: FlowView, flow: FlowSpec): VerdictResult | { problem: Problem } {
  const rf = resolveFlow(world, flow);
  if ('problem' in rf) return rf;
  return evaluateFlow(world, rf, undefined);
}

/** FNV-1a: a stable hash so the load-balancer member choice is deterministic per flow. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The decision object of a rule, made once per compiled rule: the fast path allocates no decision. */
function ruleDecision(r: CompiledRule): Decision {
  return (r.decision ??= { kind: 'rule', category: r.policy.category, policy: r.policy.name, rule: r.name, action: r.action as 'allow' | 'drop' | 'reject' });
}

const UNMANAGED: Decision = { kind: 'unmanaged' };
const DEFAULT_DECISIONS: Readonly<Record<'allow' | 'drop', Decision>> = { allow: { kind: 'default', action: 'allow' }, drop: { kind: 'default', action: 'drop' } };

/** The result of a flow; with observations (traceflow) the delivery step and the deciding names are added. */
function finish(v: Verdict, d: Decision, obs: Observation[] | undefined, src: Addr, dst: Addr, port: number | undefined, stagedAll: StagedHit[] | undefined): VerdictResult | Trace {
  if (!obs) return { verdict: v, decision: d };
  if (v === 'allow') obs.push({ component: 'delivery', action: 'delivered', sourceIp: src.ip.s, destinationIp: dst.ip.s, ...(port !== undefined ? { translatedPort: port } : {}) });
  const [decidingPolicy, decidingRule] =
    d.kind === 'rule' ? [d.policy, d.rule] : d.kind === 'default' ? ['default', 'default'] : d.kind === 'load-balancer' ? [`lb:${d.lb}`, d.reason] : ['none', 'none'];
  return { verdict: v, decision: d, observations: obs, decidingPolicy, decidingRule, staged: stagedAll ?? [] };
}

function stagedHit(r: CompiledRule | undefined): StagedHit[] | undefined {
  return r && r.policy.staged ? [{ category: r.policy.category, policy: r.policy.name, rule: r.name, action: r.action }] : undefined;
}

function firewallObservation(component: Observation['component'], d: Decision, src: Ip, dst: Ip, staged: StagedHit[] | undefined): Observation {
  const action = d.kind === 'rule' || d.kind === 'default' ? d.action : 'allow';
  const base = { component, action, sourceIp: src.s, destinationIp: dst.s, ...(staged ? { staged } : {}) };
  if (d.kind === 'rule') return { ...base, category: d.category, policy: d.policy, rule: d.rule };
  return { ...base, category: 'default', policy: 'default', rule: 'default' };
}

/**
 * Evaluates a resolved flow per product.md §1–5. `obs` collects observations when given (traceflow);
 * undefined is the fast path.
 */
export function evaluateFlow(world: FlowView, f: ResolvedFlow, obs: Observation[] | undefined): VerdictResult | Trace {
  // The fast path allocates only its result: the resolved refs serve as addresses and the flow as the
  // service tuple unless a load balancer or SNAT rewrites them.
  const stagedAll: StagedHit[] | undefined = obs ? [] : undefined;
  const def = DEFAULT_DECISIONS[world.defaultAction];
  let src: Addr = f.src.lb ? { ip: f.src.ip, ep: undefined } : f.src;
  let dst: Addr = f.dst.lb ? { ip: f.dst.ip, ep: undefined } : f.dst;
  let port = f.port;
  let svc: FlowService = f;
  let last: Decision = UNMANAGED;

  // 1. Source side: out rules, destination as the source sees it (the VIP before DNAT).
  if (src.ep) {
    const r = world.decideAt(src.ep, 'out', false, src, dst, svc);
    const d = r ? ruleDecision(r) : def;
    let staged: StagedHit[] | undefined;
    if (obs) {
      staged = stagedHit(world.decideAt(src.ep, 'out', true, src, dst, svc));
      if (staged) stagedAll!.push(...staged);
    }
    obs?.push(firewallObservation('source-firewall', d, src.ip, dst.ip, staged));
    const action = d.kind === 'rule' || d.kind === 'default' ? d.action : 'allow';
    if (action !== 'allow') return finish(action, d, obs, src, dst, port, stagedAll);
    last = d;
  } else obs?.push({ component: 'source-firewall', action: 'skipped', sourceIp: src.ip.s, destinationIp: dst.ip.s, note: 'source is not a managed workload' });

  // 2a. Load-balancer DNAT to one healthy member, chosen by a hash of the flow.
  if (f.dst.lb) {
    const lb = world.lbState(f.dst.lb)!;
    const listener = lb.spec.listeners.find((l) => l.port === port && l.protocol === f.protocol);
    if (!listener) {
      const d: Decision = { kind: 'load-balancer', lb: lb.name, reason: 'no-listener' };
      obs?.push({ component: 'load-balancer', action: 'drop', destinationIp: dst.ip.s, note: `no listener for ${f.protocol}/${port ?? '-'} on ${lb.name}` });
      return finish('drop', d, obs, src, dst, port, stagedAll);
    }
    const candidates: { ep: Endpoint; port: number }[] = [];
    for (const m of world.lbMembers(lb.name)) {
      if (!world.isHealthy(m)) continue;
      const tp = listener.targetPort;
      if (tp === undefined) candidates.push({ ep: m, port: listener.port });
      else if (typeof tp === 'number') candidates.push({ ep: m, port: tp });
      else {
        const np = m.namedPorts?.get(tp);
        if (np) candidates.push({ ep: m, port: np.port });
      }
    }
    if (candidates.length === 0) {
      obs?.push({ component: 'load-balancer', action: 'drop', destinationIp: dst.ip.s, note: `no healthy member in ${lb.name}` });
      return finish('drop', { kind: 'load-balancer', lb: lb.name, reason: 'no-healthy-member' }, obs, src, dst, port, stagedAll);
    }
    const pick = candidates[hash(`${src.ip.s}|${f.sourcePort ?? 0}|${dst.ip.s}|${f.protocol}|${port ?? 0}`) % candidates.length]!;
    obs?.push({ component: 'load-balancer', action: 'dnat', destinationIp: dst.ip.s, translatedDestinationIp: pick.ep.ip.s, translatedPort: pick.port, note: `member ${pick.ep.name} of ${candidates.length}` });
    dst = { ip: pick.ep.ip, ep: pick.ep };
    port = pick.port;
    svc = { protocol: f.protocol, port, icmpType: f.icmpType, icmpCode: f.icmpCode };
  }

  // 2b. SNAT of pod traffic leaving its cluster.
  const sep = src.ep;
  if (sep && sep.kind === 'pod') {
    const cluster = world.clusterState(sep.cluster!);
    const inside = (dst.ep?.kind === 'pod' && dst.ep.cluster === sep.cluster) || (cluster?.podCidr && containsIp(cluster.podCidr, dst.ip)) || (cluster?.serviceCidr && containsIp(cluster.serviceCidr, dst.ip));
    if (!inside && cluster) {
      const egress = world.egressFor(sep);
      if (egress) {
        obs?.push({ component: 'snat', action: 'snat', sourceIp: src.ip.s, translatedSourceIp: egress.ip.s, note: `egress IP ${egress.name}` });
        src = { ip: egress.ip, ep: undefined };
      } else if (cluster.spec.networkMode === 'overlay') {
        const nodeIp = cluster.nodeIps.get(sep.node!);
        if (nodeIp) {
          obs?.push({ component: 'snat', action: 'snat', sourceIp: src.ip.s, translatedSourceIp: nodeIp.s, note: `node IP of ${sep.node} (overlay)` });
          src = { ip: nodeIp, ep: undefined };
        }
      }
    }
  }

  // 3. Destination side: in rules, source as it arrives (after SNAT).
  if (dst.ep) {
    const r = world.decideAt(dst.ep, 'in', false, src, dst, svc);
    const d = r ? ruleDecision(r) : def;
    let staged: StagedHit[] | undefined;
    if (obs) {
      staged = stagedHit(world.decideAt(dst.ep, 'in', true, src, dst, svc));
      if (staged) stagedAll!.push(...staged);
    }
    obs?.push(firewallObservation('destination-firewall', d, src.ip, dst.ip, staged));
    const action = d.kind === 'rule' || d.kind === 'default' ? d.action : 'allow';
    if (action !== 'allow') return finish(action, d, obs, src, dst, port, stagedAll);
    last = d;
  } else obs?.push({ component: 'destination-firewall', action: 'skipped', sourceIp: src.ip.s, destinationIp: dst.ip.s, note: 'destination is not a managed workload' });
  return finish('allow', last, obs, src, dst, port, stagedAll);
}

function containsIp(c: { v: 4 | 6; lo: number | bigint; hi: number | bigint }, ip: Ip): boolean {
  return c.v === ip.v && ip.n >= c.lo && ip.n <= c.hi;
}
