/**
 * The agent's routes of `microseg serve`: the desired ruleset of an enforcement point (the same
 * compilation `microseg realize` and the agent run, realize/nftables) with the change-log position to
 * watch from (`GET /changes?since=SEQ&wait=S`), and the realization status subresource an agent writes.
 * Statuses are stored as the same `RealizationStatus` objects the local agent writes (name = point), so
 * `microseg realization`, resource outputs and waitForRealization read them unchanged.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { RealizationStatus } from '../agent/ports';
import { readStatuses, REALIZATION_KIND } from '../agent/store-adapters';
import type { World } from '../engine';
import type { Kind } from '../model';
import { BackendError } from '../provider/backend';
import { realizePoints, replaceTable } from '../realize/nftables';
import type { JsonObject, Store } from '../store';
import type { Operation } from './roles';

export interface AgentRouteDeps {
  /** The store without auditing: a status report is not a policy change (it would flood the audit log). */
  readonly store: Store;
  readonly check: (request: FastifyRequest, op: Operation) => Promise<unknown>;
  readonly world: (environment: string, defaultAction?: 'allow' | 'drop') => Promise<World>;
  readonly envParam: z.ZodType<string>;
}

const POINT = z.string().min(1).max(2048).describe('Enforcement-point reference: vm:NAME#i, vm:NAME (every interface), pod:CLUSTER/NAMESPACE/POD.');

const hits = z.object({ rule: z.string(), direction: z.enum(['in', 'out']), packets: z.number().min(0), bytes: z.number().min(0) });
const statusBody = z
  .object({
    point: z.string(),
    table: z.string(),
    desiredRevision: z.number().int().min(0),
    realizedRevision: z.number().int().min(0),
    observedRevision: z.number().int().min(0).optional(),
    state: z.enum(['pending', 'realized', 'error']),
    error: z.string().max(65_536).optional(),
    lastApply: z.enum(['table', 'elements', 'unchanged']).optional(),
    rules: z.number().int().min(0),
    elements: z.number().int().min(0),
    hits: z.array(hits).max(100_000),
    agent: z.object({ host: z.string().max(255), pid: z.number().int() }),
    updatedAt: z.string(),
  })
  .strict()
  .meta({ id: 'RealizationStatus' });

const desiredPoint = z.object({
  point: z.string(),
  table: z.string().describe('The nftables table (inet family).'),
  rules: z.number().int(),
  elements: z.number().int(),
  nft: z.record(z.string(), z.unknown()).describe('The `nft -j` document that swaps the table in atomically.'),
  text: z.string().describe('The same ruleset as `nft -f` text.'),
});

/** Kinds whose outputs are allocations (pod, egress and VIP addresses) that a restored world must keep. */
const ALLOCATING: ReadonlySet<Kind> = new Set<Kind>(['Workload', 'EgressIp', 'LoadBalancer']);

const stateObject = z.object({ kind: z.string(), name: z.string(), spec: z.record(z.string(), z.unknown()), outputs: z.record(z.string(), z.unknown()) });

export function registerAgentRoutes(fastify: FastifyInstance, deps: AgentRouteDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const envParams = z.object({ env: deps.envParam });
  const defaultActionHeader = z.object({ 'x-microseg-default-action': z.enum(['allow', 'drop']).optional() });

  app.get(
    '/v1/environments/:env/realization/desired',
    {
      schema: {
        description:
          'The desired ruleset of an enforcement point, as the agent applies it, and the change-log seq it reflects: watch `/changes?since=SEQ&wait=30` and fetch again when a change other than a RealizationStatus arrives.',
        params: envParams,
        querystring: z.object({ point: POINT }),
        headers: defaultActionHeader,
        response: { 200: z.object({ seq: z.number().int(), points: z.array(desiredPoint) }) },
      },
    },
    async (request) => {
      await deps.check(request, { action: 'function', fn: 'getEffectiveRules' });
      const { env } = request.params;
      // The seq first: a write landing meanwhile is in the world or moves the log past it.
      const seq = await deps.store.lastSeq(env);
      const world = await deps.world(env, request.headers['x-microseg-default-action']);
      const points = realizePoints(world, request.query.point);
      if (!points) throw new BackendError(`point: "${request.query.point}" is not an enforcement point of environment "${env}"`, [], 'not-found');
      return { seq, points: points.map((p) => ({ point: p.point, table: p.table.name, rules: p.stats.rules, elements: p.stats.elements, nft: replaceTable(p.table) as unknown as Record<string, unknown>, text: p.text })) };
    },
  );

  app.get(
    '/v1/environments/:env/realization/state',
    {
      schema: {
        description:
          'The desired state an agent compiles its enforcement points from (`microseg agent --endpoint`): every object of the server\'s world with its allocated addresses, in restore order, the environment\'s default action, and the change-log seq it reflects.',
        params: envParams,
        headers: defaultActionHeader,
        response: { 200: z.object({ seq: z.number().int(), defaultAction: z.enum(['allow', 'drop']), objects: z.array(stateObject) }) },
      },
    },
    async (request) => {
      await deps.check(request, { action: 'read' });
      const { env } = request.params;
      const seq = await deps.store.lastSeq(env);
      const world = await deps.world(env, request.headers['x-microseg-default-action']);
      // The server's own world, as World.clone copies one: specs (secrets decrypted, defaults applied) and
      // the allocations restore needs, so the agent compiles exactly what this server compiles.
      const objects = [...world.objects()].map(({ kind, name, spec }) => ({ kind, name, spec: spec as unknown as Record<string, unknown>, outputs: ALLOCATING.has(kind) ? world.outputsOf(kind, name) : {} }));
      return { seq, defaultAction: world.defaultVerdict, objects };
    },
  );

  app.get(
    '/v1/environments/:env/realization',
    { schema: { description: 'The reported realization status of every enforcement point, sorted by point.', params: envParams, response: { 200: z.object({ statuses: z.array(z.record(z.string(), z.unknown())) }) } } },
    async (request) => {
      await deps.check(request, { action: 'read' });
      return { statuses: (await readStatuses(deps.store, request.params.env)) as unknown as Record<string, unknown>[] };
    },
  );

  app.put(
    '/v1/environments/:env/realization/status',
    {
      schema: {
        description: 'An agent reports the realization status of one enforcement point (replaces the previous report).',
        params: envParams,
        body: statusBody,
        response: { 200: z.object({ point: z.string(), revision: z.number().int() }) },
      },
    },
    async (request) => {
      await deps.check(request, { action: 'report' });
      const { env } = request.params;
      const status = request.body as RealizationStatus;
      const [r] = await deps.store.apply(env, [{ op: 'put', kind: REALIZATION_KIND, name: status.point, spec: status as unknown as JsonObject }]);
      return { point: status.point, revision: r!.revision };
    },
  );
}
