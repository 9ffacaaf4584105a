import type { FlowRecord } from '../store';
import { FlowFilterError, type FlowFilter } from '../visibility/flow-filter';
import { readFlows, readRuleStats, readUnusedRules } from '../visibility/flow-queries';
import { aggregateFlows, parseSince, type FlowAggregate, type FlowGrouping, type PolicyRuleRef, type RuleHitStats } from '../visibility/flows';
import { complianceReport, type ReportRow } from '../visibility/report';
import { json, table } from './format';
import { resolveCliEnvironment, withStore, type StoreOptions } from './context';
import { remoteEndpoint, remoteGet, type RemoteOptions } from './remote-read';
import { CliError, EXIT_OK, type CliIo } from './io';

/**
 * Visibility: `flows` (records and the behaviour view) and `rule-stats` (hits over a window, unused rules),
 * on the local store or, with --endpoint, through a team-mode server's flow routes (the same reads).
 */

export interface FlowsOptions extends StoreOptions, RemoteOptions {
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

/** The filter options as the shared filter module (and the server's flow routes) take them. */
function filterOf(options: FlowsOptions): FlowFilter {
  return { from: options.from, to: options.to, verdict: options.verdict, rule: options.rule, point: options.point, since: options.since, until: options.until, limit: options.limit };
}

/** A filter problem in the command line's words (`--since: ...`). */
function asCliError(err: unknown): unknown {
  if (!(err instanceof FlowFilterError)) return err;
  const flag = err.option === 'point' ? 'enforcement-point' : err.option;
  return new CliError(`--${flag}: ${err.problem}`);
}

/** Runs a local read, turning filter problems into CLI errors. */
async function local<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asCliError(err);
  }
}

const READER = 'a security-admin, app-owner or auditor';

/** `microseg flows [--from --to --verdict --rule --since --until --enforcement-point --limit] [--by endpoint|workload|group] [--endpoint URL]`. */
export async function runFlows(options: FlowsOptions, io: CliIo): Promise<number> {
  if (options.by !== undefined && !['endpoint', 'workload', 'group'].includes(options.by)) throw new CliError(`--by: "${options.by}" is not a grouping; expected endpoint, workload or group`);
  if (options.by !== undefined) {
    const rows = remoteEndpoint(options, io)
      ? (await remoteGet<{ rows: FlowAggregate[] }>(options, io, resolveCliEnvironment(options, io.env), 'flows/summary', { ...filterOf(options), by: options.by }, READER)).rows
      : await withStore(options, io, async (ctx) => {
          const world = await ctx.world();
          return aggregateFlows(world, await local(() => readFlows(ctx.store, ctx.environment, world, filterOf(options))), options.by as FlowGrouping);
        });
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
  const records = remoteEndpoint(options, io)
    ? (await remoteGet<{ records: FlowRecord[] }>(options, io, resolveCliEnvironment(options, io.env), 'flows', { ...filterOf(options) }, READER)).records
    : await withStore(options, io, async (ctx) => local(async () => readFlows(ctx.store, ctx.environment, await ctx.world(), filterOf(options))));
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
}

export interface RuleStatsOptions extends StoreOptions, RemoteOptions {
  since?: string;
  unusedDays?: string;
  json?: boolean;
}

/** `microseg rule-stats [--since 24h] [--unused-days N] [--endpoint URL]`: per-rule flows in a window; rules never hit. */
export async function runRuleStats(options: RuleStatsOptions, io: CliIo): Promise<number> {
  const remote = remoteEndpoint(options, io) !== undefined;
  const environment = () => resolveCliEnvironment(options, io.env);
  if (options.unusedDays !== undefined) {
    const days = Number(options.unusedDays);
    if (!(days > 0)) throw new CliError(`--unused-days: "${options.unusedDays}" is not a positive number of days`);
    const rows = remote
      ? (await remoteGet<{ rules: PolicyRuleRef[] }>(options, io, environment(), 'rule-stats/unused', { days: String(days) }, READER)).rules
      : await withStore(options, io, async (ctx) => readUnusedRules(ctx.store, ctx.environment, await ctx.world(), days));
    if (options.json) io.stdout(json(rows));
    else io.stdout(table(['CATEGORY', 'POLICY', 'RULE', 'ACTION'], rows.map((r) => [r.category, r.policy, r.rule, r.action])));
    return EXIT_OK;
  }
  const rows = remote
    ? (await remoteGet<{ rules: RuleHitStats[] }>(options, io, environment(), 'rule-stats', { since: options.since ?? '24h' }, READER)).rules
    : await withStore(options, io, async (ctx) => (await local(() => readRuleStats(ctx.store, ctx.environment, options.since ?? '24h'))).rules);
  if (options.json) io.stdout(json(rows));
  else
    io.stdout(
      table(
        ['RULE', 'FLOWS', 'PACKETS', 'BYTES', 'PER POINT', 'LAST SEEN'],
        rows.map((r) => [r.rule, String(r.flows), String(r.packets), String(r.bytes), Object.entries(r.points).map(([p, n]) => `${p}=${n}`).join(' '), r.lastSeen]),
      ),
    );
  return EXIT_OK;
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
