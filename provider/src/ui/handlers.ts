import { readStatuses, type RealizationStatus } from '../agent';
import { connectivityMatrix, effectiveRules, groupsOf, traceflow, type FlowProtocol, type World } from '../engine';
import { realizePoints } from '../realize/nftables';
import type { FlowRecord, Store } from '../store';
import { FlowFilterError, flowQueryOf } from '../visibility/flow-filter';
import { aggregateFlows, parseSince, policyRules, ruleHitStatsOf } from '../visibility/flows';

/**
 * The visibility API behind the web page, as plain functions of (path, query) → JSON, with no HTTP
 * framework: `microseg ui` serves them with node:http, and the team-mode server can mount the same
 * routes. Every route reads; none writes.
 *
 *   GET /api/topology?protocol=tcp&port=8080&since=24h   nodes, observed-flow edges, connectivity-matrix edges
 *   GET /api/endpoint?target=workload:c/ns/name          effective rules, groups, realization status
 *   GET /api/policies?since=24h                          rules by category with flow hits and kernel counters
 *   GET /api/traceflow?from=&to=&protocol=&port=         the traceflow of one flow
 *   GET /api/flows?from=&to=&verdict=&rule=&since=&limit= flow records
 */

export interface VisibilitySource {
  readonly store: Store;
  readonly environment: string;
  /** The applied world of the environment, current at each call. */
  world(): Promise<World>;
  now?(): Date;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

type Query = Readonly<Record<string, string | undefined>>;

class BadRequest extends Error {}

const PROTOCOLS = ['tcp', 'udp', 'sctp', 'icmp', 'icmpv6'];

function service(q: Query, defaults: { protocol: string; port?: number }): { protocol: FlowProtocol; port: number | undefined } {
  const protocol = q.protocol || defaults.protocol;
  if (!PROTOCOLS.includes(protocol)) throw new BadRequest(`protocol: "${protocol}" is not a protocol; expected ${PROTOCOLS.join(', ')}`);
  const raw = q.port || (defaults.port !== undefined ? String(defaults.port) : undefined);
  const port = raw === undefined ? undefined : Number(raw);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new BadRequest(`port: "${raw}" is not a port (0-65535)`);
  if (port === undefined && (protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp')) throw new BadRequest(`port: required for ${protocol}`);
  return { protocol: protocol as FlowProtocol, port };
}

export interface TopologyNode {
  readonly id: string;
  readonly kind: 'vm' | 'workload' | 'cluster' | 'namespace' | 'group';
  readonly label: string;
  readonly cluster?: string;
  readonly namespace?: string;
  readonly groups?: readonly string[];
  readonly ips?: readonly string[];
}

export interface TopologyEdge {
  readonly id: string;
  readonly source: string;
  readonly target: string;
  /** `flow`: observed; `matrix`: what the policy allows between two groups for the chosen service. */
  readonly origin: 'flow' | 'matrix';
  readonly verdict: 'allow' | 'drop' | 'reject' | 'partial';
  readonly label: string;
}

/** The topology the page draws (and `microseg graph` exports): nodes, observed-flow and matrix edges. */
export function topology(world: World, flows: readonly FlowRecord[], svc: { protocol: FlowProtocol; port: number | undefined }): { nodes: TopologyNode[]; edges: TopologyEdge[]; service: string } {
  const nodes: TopologyNode[] = [];
  const groupNames = world.names('SecurityGroup').sort();
  for (const g of groupNames) nodes.push({ id: `group:${g}`, kind: 'group', label: g });
  for (const c of world.names('KubernetesCluster').sort()) nodes.push({ id: `cluster:${c}`, kind: 'cluster', label: c });
  for (const n of world.names('Namespace').sort()) {
    const [cluster, ns] = n.includes('/') ? n.split('/', 2) : ['', n];
    nodes.push({ id: `namespace:${n}`, kind: 'namespace', label: ns!, cluster });
  }
  for (const w of world.names('Workload').sort()) {
    const eps = world.endpointsOf(w);
    const g = groupsOf(world, `workload:${w}`);
    const [cluster, namespace] = w.split('/');
    nodes.push({ id: `workload:${w}`, kind: 'workload', label: w.split('/').pop()!, cluster, namespace: `${cluster}/${namespace}`, groups: 'problem' in g ? [] : g, ips: eps.map((e) => e.ip.s) });
  }
  for (const v of world.names('VirtualMachine').sort()) {
    const eps = world.endpointsOf(v);
    const g = groupsOf(world, `vm:${v}`);
    nodes.push({ id: `vm:${v}`, kind: 'vm', label: v, groups: 'problem' in g ? [] : g, ips: eps.map((e) => e.ip.s) });
  }
  const known = new Set(nodes.map((n) => n.id));
  const edges: TopologyEdge[] = [];
  for (const a of aggregateFlows(world, flows, 'workload')) {
    if (!known.has(a.source)) (known.add(a.source), nodes.push({ id: a.source, kind: 'vm', label: a.source, groups: [], ips: [a.source] }));
    if (!known.has(a.destination)) (known.add(a.destination), nodes.push({ id: a.destination, kind: 'vm', label: a.destination, groups: [], ips: [a.destination] }));
    edges.push({ id: `flow:${a.source}>${a.destination}:${a.protocol}/${a.port ?? ''}:${a.verdict}`, source: a.source, target: a.destination, origin: 'flow', verdict: a.verdict, label: `${a.protocol}/${a.port ?? ''} ×${a.flows}` });
  }
  const withMembers = groupNames.filter((g) => nodes.some((n) => n.groups?.includes(g)));
  for (const c of connectivityMatrix(world, withMembers, svc.protocol, svc.port)) {
    if (c.from === c.to || c.verdict === 'empty' || c.verdict === 'deny') continue;
    edges.push({ id: `matrix:${c.from}>${c.to}`, source: `group:${c.from}`, target: `group:${c.to}`, origin: 'matrix', verdict: c.verdict === 'allow' ? 'allow' : 'partial', label: `${svc.protocol}/${svc.port ?? ''} ${c.allowed}/${c.total}` });
  }
  return { nodes, edges, service: `${svc.protocol}/${svc.port ?? ''}` };
}

async function endpoint(source: VisibilitySource, world: World, target: string): Promise<unknown> {
  const rules = effectiveRules(world, target);
  if ('problem' in rules) throw new BadRequest(`target: ${rules.problem.message}`);
  const groups = groupsOf(world, target);
  const points = realizePoints(world, target.startsWith('vm:') || target.startsWith('workload:') ? target : `vm:${target}`) ?? [];
  const statuses = new Map((await readStatuses(source.store, source.environment)).map((s) => [s.point, s] as const));
  const realization = points.map((p) => {
    const s: RealizationStatus | undefined = statuses.get(p.point);
    return s ? { point: p.point, state: s.state, desiredRevision: s.desiredRevision, realizedRevision: s.realizedRevision, error: s.error, updatedAt: s.updatedAt } : { point: p.point, state: 'unreported' };
  });
  return { target, groups: 'problem' in groups ? [] : groups, rules, realization };
}

async function policies(source: VisibilitySource, world: World, q: Query, now: Date): Promise<unknown> {
  const since = parseSince(q.since || '24h', now);
  if (!since) throw new BadRequest(`since: "${q.since}" is neither a duration nor an ISO-8601 time`);
  const stats = new Map(ruleHitStatsOf(await source.store.ruleStats(source.environment, { since })).map((s) => [s.rule, s] as const));
  const counters = new Map<string, number>();
  for (const s of await readStatuses(source.store, source.environment)) for (const h of s.hits) counters.set(h.rule, (counters.get(h.rule) ?? 0) + h.packets);
  const rules = policyRules(world).map((r) => ({ ...r, flows: stats.get(r.id)?.flows ?? 0, lastSeen: stats.get(r.id)?.lastSeen, kernelHits: counters.get(r.id) ?? 0 }));
  const categories = ['emergency', 'infrastructure', 'environment', 'application'].map((c) => ({ category: c, rules: rules.filter((r) => r.category === c) }));
  return { since, categories, default: { flows: stats.get('default')?.flows ?? 0, kernelHits: counters.get('default') ?? 0 } };
}

/** Handles one GET of the visibility API. */
export async function handleVisibility(source: VisibilitySource, path: string, query: Query): Promise<ApiResponse> {
  const now = source.now?.() ?? new Date();
  try {
    const world = await source.world();
    switch (path) {
      case '/api/topology': {
        const since = parseSince(query.since || '24h', now);
        if (!since) throw new BadRequest(`since: "${query.since}" is neither a duration nor an ISO-8601 time`);
        const flows = await source.store.flows(source.environment, { since, limit: 20_000 });
        return { status: 200, body: topology(world, flows, service(query, { protocol: 'tcp', port: 8080 })) };
      }
      case '/api/endpoint':
        if (!query.target) throw new BadRequest('target: required (vm:NAME or workload:CLUSTER/NAMESPACE/NAME)');
        return { status: 200, body: await endpoint(source, world, query.target) };
      case '/api/policies':
        return { status: 200, body: await policies(source, world, query, now) };
      case '/api/traceflow': {
        if (!query.from || !query.to) throw new BadRequest('from and to: both required');
        const svc = service(query, { protocol: 'tcp' });
        const t = traceflow(world, { source: query.from, destination: query.to, protocol: svc.protocol, port: svc.port });
        if ('problem' in t) throw new BadRequest(`${t.problem.path === 'destination' ? 'to' : 'from'}: ${t.problem.message}`);
        return { status: 200, body: { verdict: t.verdict, decidingPolicy: t.decidingPolicy, decidingRule: t.decidingRule, observations: t.observations } };
      }
      case '/api/flows':
        return { status: 200, body: await source.store.flows(source.environment, flowQueryOf(world, query, now, { limit: 500 })) };
      default:
        return { status: 404, body: { error: `no such API route: ${path}` } };
    }
  } catch (err) {
    if (err instanceof BadRequest || err instanceof FlowFilterError) return { status: 400, body: { error: err.message } };
    throw err;
  }
}
