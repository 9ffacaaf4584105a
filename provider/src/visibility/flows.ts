import { endpointsFor, parseIp, type World } from '../engine';
import type { FlowRecord, RuleStatsRow } from '../store';

/**
 * The behaviour view over flow records (pure): who talks to whom, on which services, allowed or blocked,
 * by endpoint, workload/VM or security group; and rule hit statistics over a time window. Works on what
 * the store returns, attributing IPs with the current world (as Hubble and Antrea's flow visibility do).
 */

export type FlowGrouping = 'endpoint' | 'workload' | 'group';

/** How an IP is named by a grouping: pod/VM interface, workload/VM, security groups (or the IP). */
export function labelsOf(world: World, ip: string, by: FlowGrouping): string[] {
  const ep = world.endpointByIp(ip);
  if (!ep) return [ip];
  if (by === 'endpoint') return [ep.kind === 'pod' ? `pod:${ep.name}` : `vm:${ep.name}`];
  if (by === 'workload') return [ep.kind === 'pod' ? `workload:${ep.owner}` : `vm:${ep.owner}`];
  const groups = world.groupsOfEndpoint(ep);
  return groups.length ? [...groups].sort().map((g) => `group:${g}`) : [ep.kind === 'pod' ? `workload:${ep.owner}` : `vm:${ep.owner}`];
}

export interface FlowAggregate {
  readonly source: string;
  readonly destination: string;
  readonly protocol: string;
  readonly port?: number;
  readonly verdict: FlowRecord['verdict'];
  readonly rules: readonly string[];
  readonly flows: number;
  readonly packets: number;
  readonly bytes: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
}

/**
 * Records grouped by (source, destination, protocol, port, verdict). A flow seen at both ends (the
 * source's out rule and the destination's in rule) counts at each end: a drop at either end is a
 * separate row by verdict. Sorted by flows, most first.
 */
export function aggregateFlows(world: World, records: readonly FlowRecord[], by: FlowGrouping): FlowAggregate[] {
  const rows = new Map<string, { a: Omit<FlowAggregate, 'rules'>; rules: Set<string> }>();
  const cache = new Map<string, string[]>();
  const label = (ip: string) => {
    let l = cache.get(ip);
    if (!l) cache.set(ip, (l = labelsOf(world, ip, by)));
    return l;
  };
  for (const r of records)
    for (const source of label(r.sourceIp))
      for (const destination of label(r.destinationIp)) {
        const key = `${source}\u0000${destination}\u0000${r.protocol}\u0000${r.destinationPort ?? ''}\u0000${r.verdict}`;
        const row = rows.get(key);
        if (!row) {
          rows.set(key, {
            a: { source, destination, protocol: r.protocol, ...(r.destinationPort !== undefined ? { port: r.destinationPort } : {}), verdict: r.verdict, flows: 1, packets: r.packets, bytes: r.bytes, firstSeen: r.firstSeen, lastSeen: r.lastSeen },
            rules: new Set([r.rule]),
          });
          continue;
        }
        row.rules.add(r.rule);
        row.a = {
          ...row.a,
          flows: row.a.flows + 1,
          packets: row.a.packets + r.packets,
          bytes: row.a.bytes + r.bytes,
          firstSeen: r.firstSeen < row.a.firstSeen ? r.firstSeen : row.a.firstSeen,
          lastSeen: r.lastSeen > row.a.lastSeen ? r.lastSeen : row.a.lastSeen,
        };
      }
  return [...rows.values()]
    .map(({ a, rules }) => ({ ...a, rules: [...rules].sort() }))
    .sort((x, y) => y.flows - x.flows || (x.source + x.destination < y.source + y.destination ? -1 : 1));
}

/** The IPs an endpoint reference names: every endpoint of a workload or VM, or the one IP. */
export function ipsOf(world: World, ref: string): string[] | { problem: string } {
  const ip = parseIp(ref);
  if (ip) return [ip.s];
  const eps = endpointsFor(world, ref);
  if ('problem' in eps) {
    const r = world.resolve(ref);
    if ('problem' in r) return { problem: r.problem.message };
    return [r.ip.s];
  }
  return eps.map((e) => e.ip.s);
}

/** A duration (`90s`, `15m`, `24h`, `7d`) or an ISO time, as the ISO time it reaches back to from `now`. */
export function parseSince(value: string, now: Date): string | undefined {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(value.trim());
  if (m) return new Date(now.getTime() - Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 's' | 'm' | 'h' | 'd']).toISOString();
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

export interface RuleHitStats {
  readonly rule: string;
  /** Flow records (connections, or dropped source → destination:port) in the window. */
  readonly flows: number;
  readonly packets: number;
  readonly bytes: number;
  /** Per enforcement point: flows in the window. */
  readonly points: Readonly<Record<string, number>>;
  readonly lastSeen: string;
}

/** Per-rule statistics of the records (already narrowed to a window by the query). */
export function ruleHitStats(records: readonly FlowRecord[]): RuleHitStats[] {
  const by = new Map<string, { flows: number; packets: number; bytes: number; points: Record<string, number>; lastSeen: string }>();
  for (const r of records) {
    let s = by.get(r.rule);
    if (!s) by.set(r.rule, (s = { flows: 0, packets: 0, bytes: 0, points: {}, lastSeen: r.lastSeen }));
    s.flows++;
    s.packets += r.packets;
    s.bytes += r.bytes;
    s.points[r.point] = (s.points[r.point] ?? 0) + 1;
    if (r.lastSeen > s.lastSeen) s.lastSeen = r.lastSeen;
  }
  return [...by.entries()].map(([rule, s]) => ({ rule, ...s })).sort((a, b) => b.flows - a.flows || (a.rule < b.rule ? -1 : 1));
}

/** The same statistics from the store's per-rule, per-point sums (Store.ruleStats: aggregated in SQL). */
export function ruleHitStatsOf(rows: readonly RuleStatsRow[]): RuleHitStats[] {
  const by = new Map<string, { flows: number; packets: number; bytes: number; points: Record<string, number>; lastSeen: string }>();
  for (const r of rows) {
    let s = by.get(r.rule);
    if (!s) by.set(r.rule, (s = { flows: 0, packets: 0, bytes: 0, points: {}, lastSeen: r.lastSeen }));
    s.flows += r.flows;
    s.packets += r.packets;
    s.bytes += r.bytes;
    s.points[r.point] = (s.points[r.point] ?? 0) + r.flows;
    if (r.lastSeen > s.lastSeen) s.lastSeen = r.lastSeen;
  }
  return [...by.entries()].map(([rule, s]) => ({ rule, ...s })).sort((a, b) => b.flows - a.flows || (a.rule < b.rule ? -1 : 1));
}

export interface PolicyRuleRef {
  readonly id: string;
  readonly category: string;
  readonly policy: string;
  readonly rule: string;
  readonly action: string;
  readonly staged: boolean;
}

/** Every rule of every firewall policy of the world, in category then policy order. */
export function policyRules(world: World): PolicyRuleRef[] {
  const out: PolicyRuleRef[] = [];
  for (const name of world.names('FirewallPolicy').sort()) {
    const p = world.get('FirewallPolicy', name) as { category?: string; enforcement?: string; rules?: readonly { name: string; action: string }[] } | undefined;
    for (const r of p?.rules ?? []) out.push({ id: `${name}/${r.name}`, category: p?.category ?? 'application', policy: name, rule: r.name, action: r.action, staged: p?.enforcement === 'staged' });
  }
  const order = ['emergency', 'infrastructure', 'environment', 'application'];
  return out.sort((a, b) => order.indexOf(a.category) - order.indexOf(b.category));
}

/**
 * Enforced rules with no flow record in the window (the records, or the store's per-rule sums, given): the clean-up candidates
 * firewall users ask for. Staged rules are left out: they never decide, so they never hit.
 */
export function rulesNeverHit(world: World, records: readonly Pick<FlowRecord, 'rule'>[]): PolicyRuleRef[] {
  const hit = new Set(records.map((r) => r.rule));
  return policyRules(world).filter((r) => !r.staged && !hit.has(r.id));
}
