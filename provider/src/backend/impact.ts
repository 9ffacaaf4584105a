import { evaluateFlow, FlowProtocol, ResolvedRef, verdict, VerdictResult, World } from '../engine';
import type { SpecOf } from '../model';

/**
 * Policy impact: which flows among the managed workloads and VMs a change newly allows or blocks.
 * It is what `pulumi preview` prints for every change, and it is how ConnectivityAssertions are checked
 * against the world as planned.
 *
 * Flows are sampled at workload granularity (the first pod of each workload, every VM), on the services
 * that the policies mention (their protocols and first ports) plus tcp/icmp probes without a port.
 * The number of evaluated flows is capped so that impact stays cheap for large estates; when the cap
 * applies, the message says so.
 */

export interface Service {
  protocol: FlowProtocol;
  port?: number;
}

export interface ImpactFlow {
  source: string;
  destination: string;
  service: Service;
  verdict: VerdictResult;
}

export interface Snapshot {
  targets: string[];
  services: Service[];
  verdicts: Map<string, VerdictResult>;
  truncated: boolean;
  focus?: string;
}

/** Maximum flows evaluated per snapshot. */
export const IMPACT_FLOW_BUDGET = 1_500;

function targetsOf(world: World): string[] {
  return [...world.names('Workload').map((n) => `workload:${n}`), ...world.names('VirtualMachine').map((n) => `vm:${n}`)].sort();
}

/** Named ports as the workloads declare them: name → the (protocol, number) pairs it resolves to. */
function namedPortsOf(world: World): Map<string, Service[]> {
  const out = new Map<string, Service[]>();
  for (const n of world.names('Workload')) {
    for (const p of world.get('Workload', n)?.ports ?? []) {
      let l = out.get(p.name);
      if (!l) out.set(p.name, (l = []));
      if (!l.some((x) => x.protocol === p.protocol && x.port === p.port)) l.push({ protocol: p.protocol, port: p.port });
    }
  }
  return out;
}

function servicesOf(world: World, extra: readonly Record<string, unknown>[] = []): Service[] {
  const seen = new Map<string, Service>();
  const add = (s: Service) => seen.set(`${s.protocol}/${s.port ?? '*'}`, s);
  add({ protocol: 'tcp' });
  let named: Map<string, Service[]> | undefined;
  const visit = (services: SpecOf['FirewallRule']['services'] | undefined) => {
    for (const s of services ?? []) {
      const protocols: FlowProtocol[] = s.protocol === 'any' ? ['tcp'] : [s.protocol];
      for (const protocol of protocols) {
        if (!s.ports?.length || protocol === 'icmp' || protocol === 'icmpv6') add({ protocol });
        for (const p of s.ports ?? []) {
          const first = typeof p === 'number' ? p : /^\d+/.test(p) ? Number(/^\d+/.exec(p)![0]) : undefined;
          if (first !== undefined) add({ protocol, port: first });
          else {
            // A named port: sample the numbers it resolves to on the workloads that declare it (the rule
            // matches a destination only on its own declaration of the name, in its declared protocol).
            named ??= namedPortsOf(world);
            for (const r of named.get(String(p)) ?? []) if (s.protocol === 'any' || r.protocol === protocol) add(r);
          }
        }
      }
    }
  };
  for (const n of world.names('FirewallPolicy')) for (const r of world.get('FirewallPolicy', n)?.rules ?? []) visit(r.services);
  // The incoming spec's services, so that a rule about a port nobody used before is sampled too.
  for (const spec of extra) {
    const rules = Array.isArray(spec.rules) ? (spec.rules as { services?: SpecOf['FirewallRule']['services'] }[]) : [spec as { services?: SpecOf['FirewallRule']['services'] }];
    for (const r of rules) if (Array.isArray(r.services)) visit(r.services.map((x) => ({ ...x, protocol: x.protocol ?? 'any' })));
  }
  for (const n of world.names('FirewallRule')) visit(world.get('FirewallRule', n)?.services);
  for (const n of world.names('ConnectivityAssertion')) {
    const a = world.get('ConnectivityAssertion', n)!;
    add({ protocol: a.protocol, port: a.port });
  }
  return [...seen.values()].sort((a, b) => `${a.protocol}/${a.port ?? -1}`.localeCompare(`${b.protocol}/${b.port ?? -1}`));
}

const key = (s: string, d: string, svc: Service) => `${s}|${d}|${svc.protocol}/${svc.port ?? '*'}`;

/**
 * Verdicts of the sampled flows of a world. `like` reuses another snapshot's targets and services;
 * `focus` (a `workload:` or `vm:` target) limits the flows to those from or to it; `incoming` are specs
 * about to be applied, whose services are sampled as well.
 */
export function snapshot(world: World, like?: Snapshot, focus?: string, incoming: readonly Record<string, unknown>[] = []): Snapshot {
  const targets = like?.targets ?? targetsOf(world);
  const services = like?.services ?? servicesOf(world, incoming);
  focus ??= like?.focus;
  const verdicts = new Map<string, VerdictResult>();
  // Endpoints are resolved once per snapshot, not once per flow.
  const resolved = new Map<string, ResolvedRef>();
  for (const t of targets) {
    const r = world.resolve(t);
    if (!('problem' in r)) resolved.set(t, r);
  }
  let budget = IMPACT_FLOW_BUDGET;
  let truncated = false;
  outer: for (const s of targets)
    for (const d of targets) {
      if (s === d || (focus !== undefined && s !== focus && d !== focus)) continue;
      const src = resolved.get(s);
      const dst = resolved.get(d);
      if (!src || !dst) continue;
      for (const svc of services) {
        if (budget-- <= 0) {
          truncated = true;
          break outer;
        }
        verdicts.set(key(s, d, svc), evaluateFlow(world, { src, dst, protocol: svc.protocol, port: svc.port }, undefined));
      }
    }
  return { targets, services, verdicts, truncated, focus };
}

/** Flows whose allow/deny verdict differs between two snapshots taken on the same targets and services. */
export function compare(before: Snapshot, after: Snapshot): { newlyAllowed: ImpactFlow[]; newlyBlocked: ImpactFlow[] } {
  const newlyAllowed: ImpactFlow[] = [];
  const newlyBlocked: ImpactFlow[] = [];
  for (const [k, a] of after.verdicts) {
    const b = before.verdicts.get(k);
    if (!b || (a.verdict === 'allow') === (b.verdict === 'allow')) continue;
    const [source, destination, svc] = k.split('|');
    const [protocol, port] = svc.split('/');
    const flow = { source, destination, service: { protocol: protocol as FlowProtocol, ...(port === '*' ? {} : { port: Number(port) }) }, verdict: a };
    (a.verdict === 'allow' ? newlyAllowed : newlyBlocked).push(flow);
  }
  return { newlyAllowed, newlyBlocked };
}

/** `policy/rule`, `default`, or the load balancer's reason. */
export function decidedBy(v: VerdictResult): string {
  const d = v.decision;
  if (d.kind === 'rule') return `${d.policy}/${d.rule}`;
  if (d.kind === 'default') return 'default';
  if (d.kind === 'load-balancer') return `lb:${d.lb}/${d.reason}`;
  return 'unmanaged';
}

const svcText = (s: Service) => `${s.protocol}${s.port !== undefined ? `/${s.port}` : ''}`;

/** One human line per change, e.g. `policy impact: 2 flows newly allowed, 0 newly blocked: ...`. */
export function describeImpact(subject: string, impact: { newlyAllowed: ImpactFlow[]; newlyBlocked: ImpactFlow[] }, truncated: boolean, shown = 3): string | undefined {
  const { newlyAllowed, newlyBlocked } = impact;
  if (newlyAllowed.length === 0 && newlyBlocked.length === 0) return undefined;
  const line = (f: ImpactFlow) => `${f.source} -> ${f.destination} ${svcText(f.service)} (${f.verdict.verdict} by ${decidedBy(f.verdict)})`;
  const parts = [`policy impact of ${subject}: ${newlyAllowed.length} flow(s) newly allowed, ${newlyBlocked.length} newly blocked`];
  if (newlyAllowed.length) parts.push(`newly allowed: ${newlyAllowed.slice(0, shown).map(line).join('; ')}${newlyAllowed.length > shown ? `; +${newlyAllowed.length - shown} more` : ''}`);
  if (newlyBlocked.length) parts.push(`newly blocked: ${newlyBlocked.slice(0, shown).map(line).join('; ')}${newlyBlocked.length > shown ? `; +${newlyBlocked.length - shown} more` : ''}`);
  if (truncated) parts.push(`(sampled: more than ${IMPACT_FLOW_BUDGET} flows)`);
  return parts.join('. ');
}

export interface AssertionResult {
  name: string;
  passed: boolean;
  /** `connectivity assertion "n" holds|is broken: <detail>`, for the assertion's own result. */
  message: string;
  /** The flow, expectation and planned verdict, for messages that name the assertion themselves. */
  detail: string;
}

/** `connectivity assertion "a": <detail>; connectivity assertion "b": <detail>`, after "breaks". */
export function describeBroken(broken: readonly AssertionResult[]): string {
  return broken.map((a) => `connectivity assertion "${a.name}": ${a.detail}`).join('; ');
}

/** Evaluates every ConnectivityAssertion of a world. */
export function checkAssertions(world: World, only?: readonly string[]): AssertionResult[] {
  const out: AssertionResult[] = [];
  for (const name of only ?? world.names('ConnectivityAssertion')) {
    const a = world.get('ConnectivityAssertion', name);
    if (!a) continue;
    const flow = `${a.from} -> ${a.to} ${a.protocol}${a.port !== undefined ? `/${a.port}` : ''}`;
    const v = verdict(world, { source: a.from, destination: a.to, protocol: a.protocol, port: a.port });
    if ('problem' in v) {
      const detail = `${flow} cannot be evaluated: ${v.problem.message}`;
      out.push({ name, passed: false, detail, message: `connectivity assertion "${name}" (${flow}) cannot be evaluated: ${v.problem.message}` });
      continue;
    }
    const passed = (v.verdict === 'allow') === (a.expect === 'allow');
    const detail = `${flow} expected ${a.expect}, planned ${v.verdict} (decided by ${decidedBy(v)})`;
    out.push({ name, passed, detail, message: `connectivity assertion "${name}" ${passed ? 'holds' : 'is broken'}: ${detail}` });
  }
  return out;
}
