import { traceflow, World, type Problem, type Trace } from '../engine';
import { kinds, type Kind } from '../model';
import type { Expectation, Topology, TopologyProblem } from './load';

/** A topology turned into an engine world, with world-level problems mapped back to file paths. */
export interface TopologyWorld {
  world: World;
  /** Blocking problems (unknown references, group cycles, mixed rules, IP exhaustion...). */
  problems: TopologyProblem[];
  /** Non-blocking remarks (priority ties, duplicate IPs). */
  warnings: TopologyProblem[];
}

/** The outcome of one expectation. */
export interface ExpectationResult {
  expectation: Expectation;
  passed: boolean;
  verdict: 'allow' | 'drop' | 'reject';
  /** `policy/rule` that decided, `default`, `none` (neither side managed), or `lb:NAME/reason` when the load balancer dropped the flow. */
  decidedBy: string;
  /** The rule that decided at the source firewall: `policy/rule`, `default`, or `none` (not managed, or not reached). */
  sourceRule: string;
  /** The same at the destination firewall. */
  destinationRule: string;
  /** Why it failed, in words (wrong verdict, wrong deciding rule). */
  reason?: string;
  trace: Trace;
}

/**
 * Builds a fresh in-memory world from a loaded topology (default action from its config) and validates
 * it as a whole. Objects are added kind by kind (clusters before namespaces before workloads...) so the
 * result does not depend on the order of the file.
 */
export function buildWorld(topology: Topology): TopologyWorld {
  const world = new World({ defaultAction: topology.defaultAction });
  const keyOf = new Map<string, string>(topology.objects.map((o) => [`${o.kind}/${o.identity}`, o.key]));
  const where = (p: Problem): string => {
    const key = p.object ? keyOf.get(`${p.object.kind}/${p.object.name}`) : undefined;
    const base = key !== undefined ? `resources.${key}.properties` : p.object ? `${p.object.kind} "${p.object.name}"` : '(topology)';
    return p.path === '' ? base : p.path.startsWith('[') ? base + p.path : `${base}.${p.path}`;
  };
  const problems: TopologyProblem[] = [];
  const warnings: TopologyProblem[] = [];
  const sort = (p: Problem) => (p.severity === 'warning' ? warnings : problems).push({ path: where(p), message: p.message });
  const order = new Map(kinds.map((k, i) => [k, i] as const));
  const objects = [...topology.objects].sort((a, b) => order.get(a.kind)! - order.get(b.kind)!);
  for (const o of objects) for (const p of world.upsert(o.kind as Kind, o.identity, o.spec)) sort({ ...p, object: p.object ?? { kind: o.kind, name: o.identity } });
  const seen = new Set(problems.map((p) => `${p.path}|${p.message}`));
  for (const p of world.validate()) {
    // ConnectivityAssertions are evaluated as expectations, where an unresolvable endpoint is reported once.
    if (p.object?.kind === 'ConnectivityAssertion') continue;
    const path = where(p);
    if (seen.has(`${path}|${p.message}`)) continue;
    seen.add(`${path}|${p.message}`);
    (p.severity === 'warning' ? warnings : problems).push({ path, message: p.message });
  }
  return { world, problems, warnings };
}

/**
 * Evaluates every expectation with traceflow. An endpoint the engine cannot resolve is a problem of the
 * file (returned in `problems`), not a failed expectation.
 */
export function runExpectations(world: World, expectations: readonly Expectation[]): { results: ExpectationResult[]; problems: TopologyProblem[] } {
  const results: ExpectationResult[] = [];
  const problems: TopologyProblem[] = [];
  for (const e of expectations) {
    const t = traceflow(world, { source: e.from, destination: e.to, protocol: e.protocol, port: e.port });
    if ('problem' in t) {
      const side = t.problem.path === 'destination' ? 'to' : 'from';
      problems.push({ path: e.path.startsWith('resources.') ? `${e.path}.properties.${side}` : `${e.path}.${side}`, message: t.problem.message });
      continue;
    }
    const decidedBy = t.decidingPolicy === 'default' || t.decidingPolicy === 'none' ? t.decidingPolicy : `${t.decidingPolicy}/${t.decidingRule}`;
    const verdictOk = e.expect === 'deny' ? t.verdict !== 'allow' : t.verdict === e.expect;
    const ruleOk = e.rule === undefined || e.rule === decidedBy;
    const reasons: string[] = [];
    if (!verdictOk) reasons.push(`expected ${e.expect}, got ${t.verdict}`);
    if (!ruleOk) reasons.push(`expected decision by ${e.rule}, decided by ${decidedBy}`);
    const sides = { sourceRule: sideRule(t, 'source-firewall'), destinationRule: sideRule(t, 'destination-firewall') };
    if (e.sourceRule !== undefined && e.sourceRule !== sides.sourceRule) reasons.push(`expected ${e.sourceRule} at the source firewall, got ${sides.sourceRule}`);
    if (e.destinationRule !== undefined && e.destinationRule !== sides.destinationRule) reasons.push(`expected ${e.destinationRule} at the destination firewall, got ${sides.destinationRule}`);
    results.push({ expectation: e, passed: reasons.length === 0, verdict: t.verdict, decidedBy, ...sides, ...(reasons.length ? { reason: reasons.join('; ') } : {}), trace: t });
  }
  return { results, problems };
}

/** The rule one firewall side applied in a trace: `policy/rule`, `default`, or `none`. */
function sideRule(t: Trace, component: 'source-firewall' | 'destination-firewall'): string {
  const o = t.observations.find((x) => x.component === component);
  if (!o || o.action === 'skipped' || o.policy === undefined) return 'none';
  return o.policy === 'default' ? 'default' : `${o.policy}/${o.rule}`;
}
