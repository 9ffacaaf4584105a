import type { SpecOf } from '../model';
import type { Endpoint } from './membership';
import { peerSetMatches } from './rules';
import type { Problem } from './problems';
import { evaluateFlow, type Decision, type FlowProtocol, type ResolvedFlow, type Verdict } from './traceflow';
import type { World } from './world';

export interface EffectiveRule {
  readonly enforcementPoint: string;
  /** The direction(s) in which the rule can match at this endpoint (`in`: as destination, `out`: as source). */
  readonly direction: 'in' | 'out' | 'inout';
  readonly category: string;
  readonly policy: string;
  readonly policyPriority: number;
  readonly rule: string;
  readonly action: 'allow' | 'drop' | 'reject' | 'pass';
  readonly staged: boolean;
  readonly disabled: boolean;
  /** Sources as declared (`group:web`, `cidr:10.0.0.0/8`, `not group:x`...); empty means any. */
  readonly sources: readonly string[];
  /** Destinations as declared; empty means any. */
  readonly destinations: readonly string[];
  /** Services (`tcp/80,443`, `udp/53`, `icmp type 8`); empty means any. */
  readonly services: readonly string[];
}

type RuleSpec = SpecOf['FirewallRule'] | NonNullable<SpecOf['FirewallPolicy']['rules']>[number];
type PeerSpec = NonNullable<RuleSpec['sources']>[number];
type ServiceSpec = NonNullable<RuleSpec['services']>[number];

/**
 * Rules enforced on every endpoint of a workload or VM (or one pod / IP), in evaluation order, with their
 * sources, destinations and services. A rule applied at an endpoint that can never match there is left
 * out: an `in` rule whose destinations exclude the endpoint, an `out` rule whose sources exclude it (for
 * an `inout` rule, the direction that can match is shown).
 */
export function effectiveRules(world: World, target: string): EffectiveRule[] | { problem: Problem } {
  const eps = endpointsFor(world, target);
  if ('problem' in eps) return eps;
  const out: EffectiveRule[] = [];
  for (const ep of eps) {
    const r = world.rulesAt(ep);
    const self = { ip: ep.ip, ep };
    for (const x of r.all) {
      // all is already in evaluation order.
      const asSource = x.dirOut && (x.src ? peerSetMatches(x.src, self) !== x.srcNegated : !x.srcNegated);
      const asDestination = x.dirIn && (x.dst ? peerSetMatches(x.dst, self) !== x.dstNegated : !x.dstNegated);
      if (!asSource && !asDestination) continue;
      const spec = ruleSpecOf(world, x.policy.name, x.policy.quarantine, x.name, x.index);
      out.push({
        enforcementPoint: ep.name,
        direction: asSource && asDestination ? 'inout' : asDestination ? 'in' : 'out',
        category: x.policy.category,
        policy: x.policy.name,
        policyPriority: x.policy.quarantine ? -Infinity : x.policy.priority,
        rule: x.name,
        action: x.action,
        staged: x.policy.staged,
        disabled: x.disabled,
        sources: describePeers(spec?.sources, spec?.sourcesExcluded),
        destinations: describePeers(spec?.destinations, spec?.destinationsExcluded),
        services: (spec?.services ?? []).map(describeService),
      });
    }
  }
  return out;
}

/** The declared rule behind a compiled one (inline by index, standalone by name, quarantine by expansion). */
function ruleSpecOf(world: World, policy: string, quarantine: boolean, rule: string, index: number): Partial<RuleSpec> | undefined {
  if (quarantine) {
    const q = world.get('QuarantinePolicy', policy);
    if (!q) return undefined;
    return rule === 'forensic-in' ? { sources: q.forensicGroup !== undefined ? [{ group: q.forensicGroup }] : [], services: q.forensicServices } : {};
  }
  const inline = world.get('FirewallPolicy', policy)?.rules;
  if (inline?.length) return inline[index];
  for (const n of world.names('FirewallRule')) {
    const r = world.get('FirewallRule', n);
    if (r && r.policy === policy && r.name === rule) return r;
  }
  return undefined;
}

function describeSelector(sel: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined): string {
  const parts = [
    ...Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(sel?.matchExpressions ?? []).map((e) => (e.operator === 'Exists' ? e.key : e.operator === 'DoesNotExist' ? `!${e.key}` : `${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${(e.values ?? []).join(',')})`)),
  ];
  return parts.join(',');
}

function describePeer(p: PeerSpec): string {
  if (p.group !== undefined) return `group:${p.group}`;
  if (p.vm !== undefined) return `vm:${p.vm}`;
  if (p.workload !== undefined) return `workload:${p.workload}`;
  if (p.podSelectorRef !== undefined) return `podSelector:${p.podSelectorRef}`;
  if (p.cidr !== undefined) return `cidr:${p.cidr}${p.except?.length ? ` except ${p.except.join(',')}` : ''}`;
  if (p.vmSelector !== undefined) return `vms{${describeSelector(p.vmSelector)}}`;
  if (p.podSelector !== undefined) {
    const s = p.podSelector;
    const scope = [s.cluster !== undefined ? `cluster=${s.cluster}` : '', s.namespaces?.length ? `ns in (${s.namespaces.join(',')})` : '', s.namespaceSelector ? `ns{${describeSelector(s.namespaceSelector)}}` : '']
      .filter(Boolean)
      .join(' ');
    return `pods{${describeSelector(s.podSelector)}}${scope ? ` ${scope}` : ''}`;
  }
  return '?';
}

function describePeers(peers: readonly PeerSpec[] | undefined, excluded: boolean | undefined): string[] {
  const list = (peers ?? []).map(describePeer);
  return excluded && list.length ? list.map((x) => `not ${x}`) : list;
}

function describeService(s: ServiceSpec): string {
  if (s.protocol === 'icmp' || s.protocol === 'icmpv6') return `${s.protocol}${s.icmpType !== undefined ? ` type ${s.icmpType}` : ''}${s.icmpCode !== undefined ? ` code ${s.icmpCode}` : ''}`;
  return s.ports?.length ? `${s.protocol}/${s.ports.join(',')}` : s.protocol;
}

/** Endpoints of a reference: every pod of a workload, every interface of a VM, or one endpoint. */
export function endpointsFor(world: World, target: string): readonly Endpoint[] | { problem: Problem } {
  const name = target.replace(/^(vm|workload):/, '');
  const owned = world.endpointsOf(name);
  if (owned.length) return owned;
  const r = world.resolve(target);
  if ('problem' in r) return r;
  if (!r.ep) return { problem: { code: 'not-an-endpoint', path: 'target', message: `"${target}" is not a managed workload or VM; expected a workload, pod, VM or one of their IPs` } };
  return [r.ep];
}

/** Names of the SecurityGroups containing a workload, VM or endpoint (union over its endpoints). */
export function groupsOf(world: World, target: string): string[] | { problem: Problem } {
  const eps = endpointsFor(world, target);
  if ('problem' in eps) return eps;
  return [...new Set(eps.flatMap((ep) => world.groupsOfEndpoint(ep)))].sort();
}

export interface MatrixCell {
  readonly from: string;
  readonly to: string;
  readonly verdict: 'allow' | 'deny' | 'partial' | 'empty';
  readonly allowed: number;
  readonly total: number;
}

/** Verdicts between the endpoint members of every ordered pair of groups. */
export function connectivityMatrix(world: World, groups: readonly string[], protocol: FlowProtocol, port: number | undefined): MatrixCell[] {
  const members = new Map(groups.map((g) => [g, groupEndpoints(world, g)] as const));
  const cells: MatrixCell[] = [];
  for (const from of groups)
    for (const to of groups) {
      let allowed = 0;
      let total = 0;
      for (const s of members.get(from)!)
        for (const d of members.get(to)!) {
          if (s === d) continue;
          total++;
          if (evaluateFlow(world, { src: { ip: s.ip, ep: s }, dst: { ip: d.ip, ep: d }, protocol, port }, undefined).verdict === 'allow') allowed++;
        }
      cells.push({ from, to, allowed, total, verdict: total === 0 ? 'empty' : allowed === total ? 'allow' : allowed === 0 ? 'deny' : 'partial' });
    }
  return cells;
}

function groupEndpoints(world: World, group: string): Endpoint[] {
  const g = world.group(group);
  if (!g) return [];
  const ids = new Set<number>();
  for (const a of g.atoms) for (const id of a.members) ids.add(id);
  return [...ids].map((id) => world.endpoint(id)!).filter((e) => e !== undefined);
}

export interface FlowChange {
  readonly source: string;
  readonly destination: string;
  readonly protocol: FlowProtocol;
  readonly port: number | undefined;
  readonly before: { readonly verdict: Verdict; readonly decision: Decision };
  readonly after: { readonly verdict: Verdict; readonly decision: Decision };
}

/**
 * Flows among the given workloads/VMs (every endpoint pair, both worlds resolving the same names) whose
 * verdict differs between `before` and `after`: newly allowed and newly blocked, with deciding rules.
 * Endpoints that exist in only one world are skipped. Use `world.clone()` to fork a world for `after`.
 */
export function delta(
  before: World,
  after: World,
  targets: readonly string[],
  services: readonly { protocol: FlowProtocol; port?: number }[],
): { newlyAllowed: FlowChange[]; newlyBlocked: FlowChange[] } {
  const eps = (w: World) => new Map(targets.flatMap((t) => {
    const r = endpointsFor(w, t);
    return 'problem' in r ? [] : r.map((e) => [e.name, e] as const);
  }));
  const a = eps(before);
  const b = eps(after);
  const names = [...a.keys()].filter((n) => b.has(n));
  const newlyAllowed: FlowChange[] = [];
  const newlyBlocked: FlowChange[] = [];
  for (const s of names)
    for (const d of names) {
      if (s === d) continue;
      for (const svc of services) {
        const run = (w: World, m: Map<string, Endpoint>) => {
          const se = m.get(s)!;
          const de = m.get(d)!;
          const rf: ResolvedFlow = { src: { ip: se.ip, ep: se }, dst: { ip: de.ip, ep: de }, protocol: svc.protocol, port: svc.port };
          return evaluateFlow(w, rf, undefined);
        };
        const x = run(before, a);
        const y = run(after, b);
        if ((x.verdict === 'allow') === (y.verdict === 'allow')) continue;
        const change: FlowChange = { source: s, destination: d, protocol: svc.protocol, port: svc.port, before: x, after: y };
        (y.verdict === 'allow' ? newlyAllowed : newlyBlocked).push(change);
      }
    }
  return { newlyAllowed, newlyBlocked };
}
