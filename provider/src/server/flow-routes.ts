/**
 * The flow routes of `microseg serve`: agents post the flow records of their enforcement points
 * (`microseg agent --endpoint`), people read them with the filters of `microseg flows` and the rule
 * statistics of `microseg rule-stats` (which call these routes with --endpoint).
 *
 * Ingest is idempotent: a record carries the kernel's counters, which only grow for one record id, and
 * the store keeps the larger value on a known id (store/flows.ts mergeFlow). A batch retried after a lost
 * response, or re-sent in full by a restarted agent, counts nothing twice. Rule hit counters travel with
 * the realization status (agent-routes.ts), as a local agent stores them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { World } from '../engine';
import { flowRecordSchema, type FlowRecord, type FlowRetention, type Store } from '../store';
import { FlowFilterError } from '../visibility/flow-filter';
import { readFlows, readRuleStats, readUnusedRules } from '../visibility/flow-queries';
import { aggregateFlows } from '../visibility/flows';
import type { Operation } from './roles';

/** Records per ingest request: an agent sends larger passes in several batches. */
export const MAX_FLOW_BATCH = 5000;
/** Records a flow read returns when it names no limit. */
const DEFAULT_FLOW_LIMIT = 10_000;
/** Bytes per ingest request: a batch of MAX_FLOW_BATCH records of long pod names fits. */
const FLOW_BODY_LIMIT = 8 * 1024 * 1024;

export interface FlowRouteDeps {
  /** The store without auditing: flow records are observations, not policy changes. */
  readonly store: Store;
  readonly check: (request: FastifyRequest, op: Operation) => Promise<unknown>;
  readonly world: (environment: string) => Promise<World>;
  readonly envParam: z.ZodType<string>;
  /** Retention applied on every ingest (default: the store's, a week and 200 000 records per environment). */
  readonly retention?: FlowRetention;
  /** Turns a filter problem into the server's 400. */
  readonly badRequest: (message: string) => Error;
}

const filterQuery = z.object({
  from: z.string().max(2048).optional().describe('Source: an IP, vm:NAME, workload:CLUSTER/NS/NAME or pod reference (every endpoint of a workload or VM).'),
  to: z.string().max(2048).optional().describe('Destination: the same forms.'),
  verdict: z.enum(['allow', 'drop', 'reject']).optional(),
  rule: z.string().max(2048).optional().describe('The deciding rule: policy/rule, or default.'),
  point: z.string().max(2048).optional().describe('Enforcement point: vm:NAME#i, pod:CLUSTER/NS/POD.'),
  since: z.string().max(64).optional().describe('Last seen since: a duration back from now (90s, 15m, 24h, 7d) or an ISO time.'),
  until: z.string().max(64).optional().describe('Last seen until: the same forms.'),
  limit: z.string().regex(/^\d+$/, 'a positive integer').optional().describe('At most this many records (newest first).'),
});

const aggregate = z
  .object({
    source: z.string(),
    destination: z.string(),
    protocol: z.string(),
    port: z.number().int().optional(),
    verdict: z.enum(['allow', 'drop', 'reject']),
    rules: z.array(z.string()),
    flows: z.number().int(),
    packets: z.number(),
    bytes: z.number(),
    firstSeen: z.string(),
    lastSeen: z.string(),
  })
  .meta({ id: 'FlowAggregate' });

const ruleStats = z
  .object({
    rule: z.string(),
    flows: z.number().int(),
    packets: z.number(),
    bytes: z.number(),
    points: z.record(z.string(), z.number().int()).describe('Flow records per enforcement point.'),
    lastSeen: z.string(),
  })
  .meta({ id: 'RuleHitStats' });

const policyRule = z.object({ id: z.string(), category: z.string(), policy: z.string(), rule: z.string(), action: z.string(), staged: z.boolean() }).meta({ id: 'PolicyRuleRef' });

export function registerFlowRoutes(fastify: FastifyInstance, deps: FlowRouteDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const envParams = z.object({ env: deps.envParam });
  /** Runs a read, turning a filter the world cannot resolve into a 400 that names the query parameter. */
  const filtered = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof FlowFilterError) throw deps.badRequest(err.message);
      throw err;
    }
  };

  app.post(
    '/v1/environments/:env/flows',
    {
      bodyLimit: FLOW_BODY_LIMIT,
      schema: {
        description: `An agent reports flow records of its enforcement points (at most ${MAX_FLOW_BATCH} per request). Idempotent: a known record id keeps the larger counters, so a retried batch counts nothing twice. The server's flow retention applies.`,
        params: envParams,
        body: z.object({ records: z.array(flowRecordSchema).max(MAX_FLOW_BATCH) }).strict(),
        response: { 200: z.object({ recorded: z.number().int() }) },
      },
    },
    async (request) => {
      await deps.check(request, { action: 'report-flows' });
      const records = request.body.records as FlowRecord[];
      if (records.length > 0) await deps.store.recordFlows(request.params.env, records, deps.retention);
      return { recorded: records.length };
    },
  );

  app.get(
    '/v1/environments/:env/flows',
    {
      schema: {
        description: `Flow records, newest first, with the filters of \`microseg flows\` (endpoint references resolved on the server's world); at most ${DEFAULT_FLOW_LIMIT} without \`limit\`.`,
        params: envParams,
        querystring: filterQuery,
        response: { 200: z.object({ records: z.array(flowRecordSchema) }) },
      },
    },
    async (request) => {
      await deps.check(request, { action: 'read-flows' });
      const { env } = request.params;
      const world = await deps.world(env);
      // A bounded answer by default: a week of records of a busy estate is far more than one response should carry.
      return { records: await filtered(() => readFlows(deps.store, env, world, { ...request.query, limit: request.query.limit ?? String(DEFAULT_FLOW_LIMIT) })) };
    },
  );

  app.get(
    '/v1/environments/:env/flows/summary',
    {
      schema: {
        description: 'Flow records aggregated (who talks to whom, on which services, allowed or blocked): one row per source, destination, service and verdict, as `microseg flows --by`.',
        params: envParams,
        querystring: filterQuery.extend({ by: z.enum(['endpoint', 'workload', 'group']).default('workload') }),
        response: { 200: z.object({ rows: z.array(aggregate) }) },
      },
    },
    async (request) => {
      await deps.check(request, { action: 'read-flows' });
      const { env } = request.params;
      const world = await deps.world(env);
      const { by, ...filter } = request.query;
      const records = await filtered(() => readFlows(deps.store, env, world, filter));
      return { rows: aggregateFlows(world, records, by).map((r) => ({ ...r, rules: [...r.rules] })) };
    },
  );

  app.get(
    '/v1/environments/:env/rule-stats',
    {
      schema: {
        description: 'Per rule: flow records, packets and bytes last seen in the window, per enforcement point (`microseg rule-stats`).',
        params: envParams,
        querystring: z.object({ since: z.string().max(64).optional().describe('Window start: a duration (default 24h) or an ISO time.') }),
        response: { 200: z.object({ since: z.string(), rules: z.array(ruleStats) }) },
      },
    },
    async (request) => {
      await deps.check(request, { action: 'read-flows' });
      return filtered(() => readRuleStats(deps.store, request.params.env, request.query.since));
    },
  );

  app.get(
    '/v1/environments/:env/rule-stats/unused',
    {
      schema: {
        description: 'Enforced rules no flow record names in the last `days` days: clean-up candidates (`microseg rule-stats --unused-days`). Staged rules never decide and are left out.',
        params: envParams,
        querystring: z.object({ days: z.coerce.number().positive().max(36_500) }),
        response: { 200: z.object({ rules: z.array(policyRule) }) },
      },
    },
    async (request) => {
      await deps.check(request, { action: 'read-flows' });
      const { env } = request.params;
      return { rules: await readUnusedRules(deps.store, env, await deps.world(env), request.query.days) };
    },
  );
}
