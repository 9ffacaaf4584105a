import { enforcementPoints } from '../engine';
import {
  AgentServerClient,
  ConntrackCli,
  HttpDesiredState,
  HttpFlowSink,
  HttpStatusSink,
  findNftWriter,
  NetlinkNft,
  NftCli,
  preflight,
  RealizationAgent,
  readStatuses,
  StoreDesiredState,
  StoreFlowSink,
  StoreStatusSink,
  type AgentOptions,
  type ConntrackReader,
  type NftExecutor,
  type RealizationStatus,
} from '../agent';
import { realizePoints, replaceTable, replaceTableText } from '../realize/nftables';
import { json, table } from './format';
import { resolveCliEnvironment, withStore, type StoreOptions } from './context';
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
export async function runAgent(
  options: StoreOptions & {
    points: readonly string[];
    once?: boolean;
    intervalMs?: number;
    flows?: boolean;
    flowRetentionDays?: string;
    flowMaxRecords?: string;
    /** Team mode: URL of `microseg serve` (else $MICROSEG_ENDPOINT; absent: the local store). */
    endpoint?: string;
    caCert?: string;
    /** The kernel; microseg-nft (netlink) or else `nft` on this host unless a caller (a test without a kernel) passes its own. */
    nft?: NftExecutor;
    /** Connection tracking; `conntrack` on this host unless a caller (a test in a netns) passes its own. */
    conntrack?: ConntrackReader;
  },
  io: CliIo,
  signal?: AbortSignal,
): Promise<number> {
  if (!options.points.length) throw new CliError('--enforcement-point: at least one is required');
  const days = Number(options.flowRetentionDays ?? 7);
  if (!(days > 0)) throw new CliError(`--flow-retention-days: "${options.flowRetentionDays}" is not a positive number of days`);
  const maxCount = Number(options.flowMaxRecords ?? 200_000);
  if (!Number.isInteger(maxCount) || maxCount < 1) throw new CliError(`--flow-max-records: "${options.flowMaxRecords}" is not a positive integer`);
  // The kernel: microseg-nft (netlink, see agent/netlink.ts) when installed, else the nft command line.
  const writer = options.nft ? undefined : findNftWriter(io.env);
  if (!options.nft) {
    try {
      if (writer === undefined) await preflight();
      else if (process.getuid?.() !== 0) throw new Error('microseg agent programs nftables and must run as root (CAP_NET_ADMIN); run it with sudo or as a root service');
    } catch (err) {
      throw new CliError((err as Error).message, EXIT_FAILED);
    }
  }
  const nft: NftExecutor = options.nft ?? (writer !== undefined ? new NetlinkNft({ binary: writer }) : new NftCli());
  try {
    return await runAgentWith({ ...options, nft }, io, signal);
  } finally {
    if (!options.nft) nft.close?.();
  }
}

async function runAgentWith(options: Parameters<typeof runAgent>[0] & { nft: NftExecutor }, io: CliIo, signal?: AbortSignal): Promise<number> {
  const days = Number(options.flowRetentionDays ?? 7);
  const maxCount = Number(options.flowMaxRecords ?? 200_000);
  const endpoint = options.endpoint ?? io.env.MICROSEG_ENDPOINT;
  if (endpoint) {
    // Team mode: desired state, status and flow records through the server. The server's retention
    // applies to what agents post (--flow-retention-days/--flow-max-records are the local store's).
    const token = io.env.MICROSEG_TOKEN;
    if (!token) throw new CliError('MICROSEG_TOKEN: set it to an agent token (`microseg token create --role agent`)');
    const environment = resolveCliEnvironment(options, io.env);
    let client: AgentServerClient;
    try {
      client = new AgentServerClient({
        endpoint: endpoint.split(',')[0]!,
        environment,
        token,
        ...((options.caCert ?? io.env.MICROSEG_CA_CERT) ? { caCert: options.caCert ?? io.env.MICROSEG_CA_CERT } : {}),
        ...(options.defaultAction ? { defaultAction: options.defaultAction as 'allow' | 'drop' } : {}),
      });
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    try {
      return await agentLoop(
        options,
        io,
        environment,
        {
          source: new HttpDesiredState(client),
          status: new HttpStatusSink(client),
          ...(options.flows !== false ? { flows: { conntrack: options.conntrack ?? new ConntrackCli(), sink: new HttpFlowSink(client) } } : {}),
        },
        signal,
      );
    } catch (err) {
      throw new CliError((err as Error).message, EXIT_FAILED);
    } finally {
      client.close();
    }
  }
  // The agent writes only realization status and flow records: observed state it reports again at its
  // next pass. Its connection commits without waiting for the disk (WAL with synchronous=NORMAL: the
  // database stays consistent; a power cut may lose the last statuses), which took a millisecond or more
  // from every pass, in the path from a pod's store write to the kernel. The provider's writes of
  // declared state keep full durability on their own connections.
  return withStore({ ...options, synchronous: 'normal' }, io, async (ctx) =>
    agentLoop(
      options,
      io,
      ctx.environment,
      {
        source: new StoreDesiredState(ctx.store, ctx.environment, options.defaultAction as 'allow' | 'drop' | undefined),
        status: new StoreStatusSink(ctx.store, ctx.environment),
        ...(options.flows !== false ? { flows: { conntrack: options.conntrack ?? new ConntrackCli(), sink: new StoreFlowSink(ctx.store, ctx.environment, { maxAgeMs: days * 8.64e7, maxCount }) } } : {}),
      },
      signal,
    ),
  );
}

/** Runs the agent on its ports: once (print the statuses) or until SIGINT/SIGTERM or `signal`. */
async function agentLoop(
  options: { points: readonly string[]; once?: boolean; intervalMs?: number; nft: NftExecutor },
  io: CliIo,
  environment: string,
  ports: Pick<AgentOptions, 'source' | 'status' | 'flows'>,
  signal?: AbortSignal,
): Promise<number> {
  const agent = new RealizationAgent({
    points: options.points,
    nft: options.nft,
    ...ports,
    log: (line) => io.stderr(`${new Date().toISOString()} ${line}\n`),
  });
  if (options.once) {
    const r = await agent.reconcile();
    for (const u of r.unknown) io.stderr(`microseg: ${u}: not an enforcement point of environment "${environment}"; expected ${POINT_FORMS}\n`);
    io.stdout(statusTable(r.statuses));
    return r.unknown.length === 0 && r.statuses.every((s) => s.state === 'realized') ? EXIT_OK : EXIT_FAILED;
  }
  io.stderr(`${new Date().toISOString()} agent for ${options.points.join(', ')} in environment "${environment}": writing to the kernel through ${options.nft.description ?? 'a custom executor'}\n`);
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
