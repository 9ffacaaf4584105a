import { enforcementPoints } from '../engine';
import { NftCli, preflight, RealizationAgent, readStatuses, StoreDesiredState, StoreStatusSink, type RealizationStatus } from '../agent';
import { realizePoints, replaceTable, replaceTableText } from '../realize/nftables';
import { json, table } from './format';
import { withStore, type StoreOptions } from './context';
import { CliError, EXIT_FAILED, EXIT_OK, type CliIo } from './io';

/** Realization on Linux: `realize` (dry run), `agent`, `realization` (status), `hits`. */

const POINT_FORMS = 'vm:NAME#i, vm:NAME (every interface), pod:CLUSTER/NAMESPACE/POD or workload:CLUSTER/NAMESPACE/NAME';

/** `microseg realize --enforcement-point X [--format nft|json]`: the ruleset the agent would apply. */
export async function runRealize(options: StoreOptions & { point: string; format?: string }, io: CliIo): Promise<number> {
  const format = options.format ?? 'nft';
  if (format !== 'nft' && format !== 'json') throw new CliError(`--format: "${format}" is not a format; expected nft or json`);
  return withStore(options, io, async (ctx) => {
    const world = await ctx.world();
    const points = realizePoints(world, options.point);
    if (!points) throw new CliError(`--enforcement-point: "${options.point}" is not an enforcement point of environment "${ctx.environment}"; expected ${POINT_FORMS}`);
    if (format === 'json') io.stdout(json(points.length === 1 ? replaceTable(points[0]!.table) : points.map((p) => replaceTable(p.table))));
    else
      for (const p of points) {
        io.stdout(`# ${p.point}: table inet ${p.table.name}, ${p.stats.rules} rules, ${p.stats.elements} set elements (nft -f applies it atomically)\n`);
        io.stdout(replaceTableText(p.table));
      }
    return EXIT_OK;
  });
}

/** `microseg agent --enforcement-point X [--once]`: applies and keeps applying the point's ruleset. */
export async function runAgent(options: StoreOptions & { points: readonly string[]; once?: boolean; intervalMs?: number }, io: CliIo, signal?: AbortSignal): Promise<number> {
  if (!options.points.length) throw new CliError('--enforcement-point: at least one is required');
  try {
    await preflight();
  } catch (err) {
    throw new CliError((err as Error).message, EXIT_FAILED);
  }
  return withStore(options, io, async (ctx) => {
    const agent = new RealizationAgent({
      points: options.points,
      source: new StoreDesiredState(ctx.store, ctx.environment, options.defaultAction as 'allow' | 'drop' | undefined),
      nft: new NftCli(),
      status: new StoreStatusSink(ctx.store, ctx.environment),
      log: (line) => io.stderr(`${new Date().toISOString()} ${line}\n`),
    });
    if (options.once) {
      const r = await agent.reconcile();
      for (const u of r.unknown) io.stderr(`microseg: ${u}: not an enforcement point of environment "${ctx.environment}"; expected ${POINT_FORMS}\n`);
      io.stdout(statusTable(r.statuses));
      return r.unknown.length === 0 && r.statuses.every((s) => s.state === 'realized') ? EXIT_OK : EXIT_FAILED;
    }
    const ac = new AbortController();
    const stop = () => ac.abort();
    signal?.addEventListener('abort', stop);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await agent.run(ac.signal, options.intervalMs ?? 10_000);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return EXIT_OK;
  });
}

function statusTable(statuses: readonly RealizationStatus[]): string {
  return table(
    ['POINT', 'STATE', 'DESIRED', 'REALIZED', 'LAST APPLY', 'RULES', 'ELEMENTS', 'UPDATED', 'ERROR'],
    statuses.map((s) => [s.point, s.state, String(s.desiredRevision), String(s.realizedRevision), s.lastApply ?? '', String(s.rules), String(s.elements), s.updatedAt, s.error ?? '']),
  );
}

/** `microseg realization`: the reported status of every enforcement point of the environment. */
export async function runRealization(options: StoreOptions & { json?: boolean }, io: CliIo): Promise<number> {
  return withStore(options, io, async (ctx) => {
    const world = await ctx.world();
    const reported = new Map((await readStatuses(ctx.store, ctx.environment)).map((s) => [s.point, s] as const));
    const rows = enforcementPoints(world).map((p) => ({ point: p.name, ip: p.ip, status: reported.get(p.name) }));
    if (options.json) {
      io.stdout(json(rows.map((r) => ({ ip: r.ip, ...(r.status ? { ...r.status, hits: undefined } : { point: r.point, state: 'unreported' }) }))));
      return EXIT_OK;
    }
    io.stdout(
      table(
        ['POINT', 'IP', 'STATE', 'DESIRED', 'REALIZED', 'RULES', 'ELEMENTS', 'AGENT', 'UPDATED', 'ERROR'],
        rows.map(({ point, ip, status: s }) =>
          s ? [point, ip, s.state, String(s.desiredRevision), String(s.realizedRevision), String(s.rules), String(s.elements), `${s.agent.host}:${s.agent.pid}`, s.updatedAt, s.error ?? ''] : [point, ip, 'unreported', '', '', '', '', '', '', 'no agent has reported'],
        ),
      ),
    );
    return EXIT_OK;
  });
}

/** `microseg hits [--enforcement-point X] [--all]`: rule hit counters the agents read from the kernel. */
export async function runHits(options: StoreOptions & { point?: string; all?: boolean; json?: boolean }, io: CliIo): Promise<number> {
  return withStore(options, io, async (ctx) => {
    let statuses = await readStatuses(ctx.store, ctx.environment);
    if (options.point !== undefined) {
      const world = await ctx.world();
      const points = realizePoints(world, options.point);
      if (!points) throw new CliError(`--enforcement-point: "${options.point}" is not an enforcement point of environment "${ctx.environment}"; expected ${POINT_FORMS}`);
      const names = new Set(points.map((p) => p.point));
      statuses = statuses.filter((s) => names.has(s.point));
    }
    const rows = statuses.flatMap((s) => s.hits.filter((h) => options.all || h.packets > 0).map((h) => ({ point: s.point, ...h, at: s.updatedAt })));
    if (options.json) io.stdout(json(rows));
    else io.stdout(table(['POINT', 'DIR', 'RULE', 'PACKETS', 'BYTES', 'READ AT'], rows.map((r) => [r.point, r.direction, r.rule, String(r.packets), String(r.bytes), r.at])));
    return EXIT_OK;
  });
}
