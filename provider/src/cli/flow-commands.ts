import type { FlowQuery, FlowRecord } from '../store';
import { aggregateFlows, ipsOf, parseSince, ruleHitStats, rulesNeverHit, type FlowGrouping } from '../visibility/flows';
import { complianceReport, type ReportRow } from '../visibility/report';
import { json, table } from './format';
import { withStore, type StoreOptions } from './context';
import { CliError, EXIT_OK, type CliIo } from './io';

/** Visibility: `flows` (records and the behaviour view) and `rule-stats` (hits over a window, unused rules). */

export interface FlowsOptions extends StoreOptions {
  from?: string;
  to?: string;
  verdict?: string;
  rule?: string;
  point?: string;
  since?: string;
  until?: string;
  limit?: string;
  by?: string;
  json?: boolean;
}

const port = (p: number | undefined) => (p === undefined ? '' : String(p));

/** Turns the options into a store query, resolving endpoint references with the current world. */
export async function flowQuery(options: FlowsOptions, world: Parameters<typeof ipsOf>[0], now = new Date()): Promise<FlowQuery> {
  const q: { -readonly [K in keyof FlowQuery]: FlowQuery[K] } = {};
  if (options.verdict !== undefined) {
    if (!['allow', 'drop', 'reject'].includes(options.verdict)) throw new CliError(`--verdict: "${options.verdict}" is not a verdict; expected allow, drop or reject`);
    q.verdict = options.verdict as FlowRecord['verdict'];
  }
  if (options.rule !== undefined) q.rule = options.rule;
  if (options.point !== undefined) q.point = options.point;
  for (const [opt, key] of [
    ['since', 'since'],
    ['until', 'until'],
  ] as const) {
    const v = options[opt];
    if (v === undefined) continue;
    const t = parseSince(v, now);
    if (!t) throw new CliError(`--${opt}: "${v}" is neither a duration (90s, 15m, 24h, 7d) nor an ISO-8601 time`);
    q[key] = t;
  }
  for (const [opt, key] of [
    ['from', 'sourceIps'],
    ['to', 'destinationIps'],
  ] as const) {
    const v = options[opt];
    if (v === undefined) continue;
    const ips = ipsOf(world, v);
    if ('problem' in ips) throw new CliError(`--${opt}: ${ips.problem}`);
    q[key] = ips;
  }
  if (options.limit !== undefined) {
    const n = Number(options.limit);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`--limit: "${options.limit}" is not a positive integer`);
    q.limit = n;
  }
  return q;
}

/** `microseg flows [--from --to --verdict --rule --since --until --enforcement-point --limit] [--by endpoint|workload|group]`. */
export async function runFlows(options: FlowsOptions, io: CliIo): Promise<number> {
  if (options.by !== undefined && !['endpoint', 'workload', 'group'].includes(options.by)) throw new CliError(`--by: "${options.by}" is not a grouping; expected endpoint, workload or group`);
  return withStore(options, io, async (ctx) => {
    const world = await ctx.world();
    const records = await ctx.store.flows(ctx.environment, await flowQuery(options, world));
    if (options.by !== undefined) {
      const rows = aggregateFlows(world, records, options.by as FlowGrouping);
      if (options.json) io.stdout(json(rows));
      else
        io.stdout(
          table(
            ['SOURCE', 'DESTINATION', 'SERVICE', 'VERDICT', 'FLOWS', 'PACKETS', 'BYTES', 'RULES', 'LAST SEEN'],
            rows.map((r) => [r.source, r.destination, `${r.protocol}/${port(r.port)}`, r.verdict, String(r.flows), String(r.packets), String(r.bytes), r.rules.join(','), r.lastSeen]),
          ),
        );
      return EXIT_OK;
    }
    if (options.json) io.stdout(json(records));
    else
      io.stdout(
        table(
          ['LAST SEEN', 'POINT', 'DIR', 'PROTO', 'SOURCE', 'DESTINATION', 'VERDICT', 'RULE', 'STAGED', 'PACKETS', 'BYTES'],
          records.map((r) => [
            r.lastSeen,
            r.point,
            r.direction,
            r.protocol,
            `${r.sourceIp}${r.sourcePort !== undefined ? `:${r.sourcePort}` : ''}`,
            `${r.destinationIp}:${port(r.destinationPort)}`,
            r.verdict,
            r.rule,
            r.stagedVerdict ? `${r.stagedVerdict} (${r.stagedRule})` : '',
            String(r.packets),
            String(r.bytes),
          ]),
        ),
      );
    return EXIT_OK;
  });
}

/** `microseg rule-stats [--since 24h] [--unused-days N]`: per-rule flows in a window; rules never hit. */
export async function runRuleStats(options: StoreOptions & { since?: string; unusedDays?: string; json?: boolean }, io: CliIo): Promise<number> {
  return withStore(options, io, async (ctx) => {
    const world = await ctx.world();
    if (options.unusedDays !== undefined) {
      const days = Number(options.unusedDays);
      if (!(days > 0)) throw new CliError(`--unused-days: "${options.unusedDays}" is not a positive number of days`);
      const records = await ctx.store.flows(ctx.environment, { since: new Date(Date.now() - days * 8.64e7).toISOString() });
      const rows = rulesNeverHit(world, records);
      if (options.json) io.stdout(json(rows));
      else io.stdout(table(['CATEGORY', 'POLICY', 'RULE', 'ACTION'], rows.map((r) => [r.category, r.policy, r.rule, r.action])));
      return EXIT_OK;
    }
    const query = await flowQuery({ since: options.since ?? '24h' }, world);
    const rows = ruleHitStats(await ctx.store.flows(ctx.environment, query));
    if (options.json) io.stdout(json(rows));
    else
      io.stdout(
        table(
          ['RULE', 'FLOWS', 'PACKETS', 'BYTES', 'PER POINT', 'LAST SEEN'],
          rows.map((r) => [r.rule, String(r.flows), String(r.packets), String(r.bytes), Object.entries(r.points).map(([p, n]) => `${p}=${n}`).join(' '), r.lastSeen]),
        ),
      );
    return EXIT_OK;
  });
}

/** `microseg report [--since 24h] [--json]`: observed flows against the current policy and the staged policies. */
export async function runReport(options: StoreOptions & { since?: string; json?: boolean }, io: CliIo): Promise<number> {
  return withStore(options, io, async (ctx) => {
    const world = await ctx.world();
    const since = parseSince(options.since ?? '24h', new Date());
    if (!since) throw new CliError(`--since: "${options.since}" is neither a duration (90s, 15m, 24h, 7d) nor an ISO-8601 time`);
    const r = complianceReport(world, await ctx.store.flows(ctx.environment, { since }), since);
    if (options.json) {
      io.stdout(json(r));
      return EXIT_OK;
    }
    io.stdout(`flows observed since ${r.since}: ${r.flows} records, ${r.distinct} distinct (source, destination, service)\n`);
    io.stdout(`  as the current policy decides: ${r.compliant}\n  allowed then, denied by the current policy: ${r.allowedNowDenied.length}\n`);
    io.stdout(`  blocked then, allowed by the current policy: ${r.blockedNowAllowed.length}\n  allowed, a staged policy would block: ${r.stagedWouldBlock.length}\n`);
    if (r.unevaluated) io.stdout(`  not evaluated (no ports, unknown addresses): ${r.unevaluated}\n`);
    const rows = (title: string, list: readonly ReportRow[]) => {
      if (!list.length) return;
      io.stdout(`\n${title}\n`);
      io.stdout(
        table(
          ['SOURCE', 'DESTINATION', 'SERVICE', 'OBSERVED', 'BY', 'NOW', 'BY', 'STAGED', 'FLOWS', 'LAST SEEN'],
          list.map((x) => [x.sourceIp, x.destinationIp, `${x.protocol}/${port(x.port)}`, x.observed, x.observedRule, x.current, x.currentRule, x.staged ? `${x.staged.action} (${x.staged.rule})` : '', String(x.flows), x.lastSeen]),
        ),
      );
    };
    rows('Allowed then, denied by the current policy', r.allowedNowDenied);
    rows('Blocked then, allowed by the current policy', r.blockedNowAllowed);
    rows('Allowed, a staged policy would block', r.stagedWouldBlock);
    return EXIT_OK;
  });
}
