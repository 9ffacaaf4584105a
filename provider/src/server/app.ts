/**
 * The HTTP API of `microseg serve`: thin fastify routes over the same embedded backend (service +
 * engine) the provider and the CLI use in-process, one per environment, all on one shared store.
 * Request bodies are the model's zod schemas (fastify-type-provider-zod), so validation and the OpenAPI
 * 3.1 document at /openapi.json come from the single definition in provider/src/model.
 *
 * Every /v1 route needs a bearer token; the role is checked on every route (functions included)
 * before anything runs. Writes carry their audit record in the same store batch (audit.ts).
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { EmbeddedBackend } from '../backend';
import { functions, identityOf, isKind, resources, type Kind } from '../model';
import { unknownKeys } from '../model/unknown-keys';
import { BackendError, type BackendErrorReason } from '../provider/backend';
import type { PropertyMap } from '../provider/values';
import { StoreError, type AuditRetention, type FlowRetention, type Store, type StoredObject, type WriteResult } from '../store';
import { version } from '../version';
import { handleVisibility } from '../ui/handlers';
import { AuditingStore, readAudit, requestContext } from './audit';
import { registerAgentRoutes } from './agent-routes';
import { registerFlowRoutes } from './flow-routes';
import { authorize, permissionOf, type Operation, type Principal } from './roles';
import { SYSTEM_ENVIRONMENT, TokenVerifier } from './tokens';
import { registerUiPage } from './ui-page';

export interface AppOptions {
  readonly store: Store;
  /** Readiness of the store (PostgreSQL ping); defaults to a cheap read. */
  readonly ready?: () => Promise<boolean>;
  /** Fastify logger options; the Authorization header is always redacted. */
  readonly logger?: FastifyServerOptions['logger'];
  /** Largest accepted request body (bytes, default 4 MiB). */
  readonly bodyLimit?: number;
  /** Longest long-poll wait a client may ask for (s, default 30). */
  readonly maxWaitSeconds?: number;
  /** Poll interval of waiting watchers when no notification arrives (ms, default 1000). */
  readonly watchPollMs?: number;
  /** TLS options passed to fastify (`https`). */
  readonly https?: { key: Buffer; cert: Buffer };
  /** Retention of the flow records agents post (default: the store's, a week and 200 000 per environment). */
  readonly flowRetention?: FlowRetention;
  /** Retention of the audit records (default: 400 days and 1 000 000 per environment). */
  readonly auditRetention?: AuditRetention;
}

/** The server: fastify plus the hooks `serve` needs. */
export interface MicrosegApp {
  readonly app: FastifyInstance;
  /** Wakes watchers of an environment (called for writes of other replicas, from LISTEN/NOTIFY). */
  notify(environment: string): void;
  /** Marks the server as shutting down: readyz fails, watchers return at once. */
  draining(): void;
}

const ENVIRONMENT = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "an environment is letters, digits, '.', '_' and '-' (at most 128)")
  .refine((e) => e !== SYSTEM_ENVIRONMENT, 'this environment is reserved')
  .describe('Environment (stack) name.');
const KIND = z.enum(resources.map((r) => r.name) as [Kind, ...Kind[]]).describe('Resource kind.');
const envParams = z.object({ env: ENVIRONMENT });
const objectParams = z.object({ env: ENVIRONMENT, kind: KIND, '*': z.string().describe('Object name (its backend identity; may contain "/").') });
const errorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      problems: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
      role: z.string().optional(),
      permission: z.string().optional(),
    }),
  })
  .meta({ id: 'Error' });
const jsonMap = z.record(z.string(), z.unknown());
const objectView = z
  .object({
    kind: z.string(),
    name: z.string(),
    spec: jsonMap,
    outputs: jsonMap,
    revision: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
    owner: z.string().optional().describe('Who manages it: a Pulumi resource URN, or the CLI.'),
    secretPaths: z.array(z.string()).optional().describe('Spec paths stored as secrets (one object read only; lists show them encrypted).'),
  })
  .meta({ id: 'StoredObject' });
const writeResult = z
  .object({
    outputs: jsonMap,
    warnings: z.array(z.string()),
    infos: z.array(z.string()),
    initErrors: z.array(z.string()).optional(),
    revision: z.number().int().optional().describe('Revision after the write (absent for a preview).'),
  })
  .meta({ id: 'WriteResult' });
const changeEntry = z
  .object({ seq: z.number().int(), kind: z.string(), name: z.string(), op: z.enum(['create', 'update', 'delete']), revision: z.number().int(), time: z.string() })
  .meta({ id: 'Change' });
const auditRecord = z
  .object({
    time: z.string(),
    actor: z.string(),
    role: z.string(),
    environment: z.string(),
    kind: z.string(),
    name: z.string(),
    op: z.enum(['create', 'update', 'delete']),
    revision: z.number().int(),
    summary: z.string(),
  })
  .meta({ id: 'AuditRecord' });
const sessionHeader = z.object({
  'x-microseg-session': z.string().max(128).optional().describe('Preview session: planned changes of one `pulumi preview` are seen by its later calls only.'),
  'x-microseg-default-action': z.enum(['allow', 'drop']).optional().describe('The stack\'s microseg:defaultAction (absent: the environment\'s stored action, else drop).'),
  'x-microseg-owner': z.string().max(2048).optional().describe('The writer recorded as the object\'s owner: the Pulumi resource URN.'),
  'if-match': z.string().optional().describe('Write only if the object is at this revision (412 otherwise).'),
});

const STATUS: Record<BackendErrorReason, number> = {
  invalid: 422,
  conflict: 409,
  'not-found': 404,
  'in-use': 409,
  unauthenticated: 401,
  forbidden: 403,
  unavailable: 503,
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Refuses names that look like paths (`..`, empty segments) or carry control characters. */
function checkName(name: string): void {
  const bad = name.length === 0 || name.length > 1024 || /[\u0000-\u001f\u007f\\]/.test(name) || name.split('/').some((seg) => seg === '' || seg === '.' || seg === '..');
  if (bad) throw new HttpError(400, 'InvalidName', `invalid object name ${JSON.stringify(name)}: no empty, "." or ".." segments, backslashes or control characters`);
}

function parseIfMatch(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(value.trim());
  if (!m) throw new HttpError(400, 'InvalidIfMatch', `If-Match must be a revision such as "3", got ${JSON.stringify(value)}`);
  return Number(m[1]);
}

function view(o: StoredObject): z.infer<typeof objectView> {
  return { kind: o.kind, name: o.name, spec: o.spec, outputs: o.status ?? {}, revision: o.revision, createdAt: o.createdAt, updatedAt: o.updatedAt, ...(o.owner !== undefined ? { owner: o.owner } : {}) };
}

export async function buildApp(options: AppOptions): Promise<MicrosegApp> {
  const store = new AuditingStore(options.store, options.auditRetention);
  const tokens = new TokenVerifier(options.store);
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let stopping = false;
  const maxWait = options.maxWaitSeconds ?? 30;
  const pollMs = options.watchPollMs ?? 1000;
  const hosts = new Map<string, EmbeddedBackend>();
  // One backend per environment and configured default action (absent: the environment's stored one).
  const host = (environment: string, defaultAction?: 'allow' | 'drop'): EmbeddedBackend => {
    const k = `${environment}\u0000${defaultAction ?? ''}`;
    let h = hosts.get(k);
    if (!h) hosts.set(k, (h = new EmbeddedBackend({ store, environment, ...(defaultAction ? { defaultAction } : {}) })));
    return h;
  };

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 4 * 1024 * 1024,
    ...(options.https ? { https: options.https } : {}),
    // Names are identities such as cluster/namespace/pod: long URLs are legitimate.
    routerOptions: { maxParamLength: 2048 },
  } as FastifyServerOptions).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'microseg', description: 'Team-mode API of microseg: objects per environment, change log, functions, audit.', version },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer', description: 'A token from `microseg token create`.' } } },
      security: [{ token: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.setErrorHandler((err: unknown, request, reply) => {
    const send = (status: number, code: string, message: string, extra: Record<string, unknown> = {}) => {
      if (status === 503) void reply.header('retry-after', '1');
      return reply.code(status).send({ error: { code, message, ...extra } });
    };
    if (hasZodFastifySchemaValidationErrors(err)) {
      const problems = err.validation.map((v) => ({ path: (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.'), message: v.message ?? 'invalid' }));
      return send(400, 'InvalidRequest', `invalid request: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`, { problems });
    }
    if (err instanceof HttpError) return send(err.status, err.code, err.message, err.extra);
    if (err instanceof BackendError) {
      const status = err.reason === 'conflict' && request.headers['if-match'] !== undefined ? 412 : STATUS[err.reason];
      return send(status, status === 412 ? 'PreconditionFailed' : err.reason, err.message, err.problems.length ? { problems: err.problems } : {});
    }
    if (err instanceof StoreError) {
      if (err.code === 'UNAVAILABLE' || err.code === 'BUSY') return send(503, 'Unavailable', err.message);
      if (err.code === 'INVALID_ARGUMENT') return send(400, 'InvalidRequest', err.message);
      if (err.code === 'CONFLICT') return send(request.headers['if-match'] !== undefined ? 412 : 409, 'Conflict', err.message);
      request.log.error({ err }, 'store failure');
      return send(500, 'Internal', err.message);
    }
    const e = err as { statusCode?: number; code?: string; message?: string };
    // fastify's own refusals (413 body too large, 400 malformed JSON, 415 content type) keep their status.
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return send(e.statusCode, e.code ?? 'BadRequest', e.message ?? 'bad request');
    request.log.error({ err }, 'internal error');
    return send(500, 'Internal', `internal error: ${e.message ?? String(err)}`);
  });

  // Authentication on every /v1 route; the principal travels with the request.
  const principals = new WeakMap<FastifyRequest, Principal>();
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/')) return;
    const header = request.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new HttpError(401, 'unauthenticated', 'a bearer token is required (Authorization: Bearer <token from `microseg token create`>)');
    const principal = await tokens.verify(m[1]);
    if (!principal) throw new HttpError(401, 'unauthenticated', 'the token is unknown, revoked or malformed; create one with `microseg token create`');
    principals.set(request, principal);
  });

  const principalOf = (request: FastifyRequest): Principal => {
    const p = principals.get(request);
    if (!p) throw new HttpError(401, 'unauthenticated', 'a bearer token is required');
    return p;
  };
  const check = async (request: FastifyRequest, op: Operation, environment?: string, defaultAction?: 'allow' | 'drop') => {
    const principal = principalOf(request);
    // Only app-owner decisions look at the world (group members); others need no engine state.
    const world = principal.role === 'app-owner' && op.action === 'write' && environment ? await host(environment, defaultAction).currentWorld() : undefined;
    const why = authorize(principal, op, world);
    if (why) throw new HttpError(403, 'forbidden', why, { role: principal.role, permission: permissionOf(op) });
    return principal;
  };
  const withActor = <T>(principal: Principal, fn: () => Promise<T>, ifMatch?: { kind: string; name: string; revision: number }, results?: WriteResult[]): Promise<T> =>
    requestContext.run({ actor: `token:${principal.tokenId}`, role: principal.role, ...(ifMatch ? { ifMatch } : {}), ...(results ? { results } : {}) }, fn);
  /** The stored spec, needed only where an app owner's write is judged on what it replaces. */
  const existingFor = async (request: FastifyRequest, env: string, kind: string, name: string) =>
    principalOf(request).role === 'app-owner' ? (await store.get(env, kind, name))?.spec : undefined;

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const ok = !stopping && (options.ready ? await options.ready() : await store.lastSeq(SYSTEM_ENVIRONMENT).then(() => true, () => false));
    return reply.code(ok ? 200 : 503).send({ ready: ok, ...(stopping ? { reason: 'shutting down' } : ok ? {} : { reason: 'the store is unavailable' }) });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await registerUiPage(app);

  app.get(
    '/v1/environments',
    { schema: { description: 'Environments holding objects.', response: { 200: z.object({ environments: z.array(z.string()) }) } } },
    async (request) => {
      await check(request, { action: 'read' });
      return { environments: (await store.environments()).filter((e) => e !== SYSTEM_ENVIRONMENT) };
    },
  );

  app.get(
    '/v1/environments/:env/objects',
    {
      schema: {
        description: 'Objects of an environment, sorted by kind and name, with the change-log seq to watch from.',
        params: envParams,
        querystring: z.object({ kind: KIND.optional() }),
        response: { 200: z.object({ items: z.array(objectView), seq: z.number().int() }) },
      },
    },
    async (request) => {
      await check(request, { action: 'read' });
      const { env } = request.params;
      // The seq first: a change committed while listing is replayed by a watch from it.
      const seq = await store.lastSeq(env);
      const items = (await store.list(env, request.query.kind ? { kind: request.query.kind } : {})).filter((o) => isKind(o.kind)).map(view);
      return { items, seq };
    },
  );

  app.get(
    '/v1/environments/:env/objects/:kind/*',
    { schema: { description: 'One object; its revision is also the ETag.', params: objectParams, headers: sessionHeader, response: { 200: objectView, 404: errorBody } } },
    async (request, reply) => {
      await check(request, { action: 'read' });
      const { env, kind } = request.params;
      const name = request.params['*'];
      checkName(name);
      const o = await store.get(env, kind, name);
      // The backend decrypts secret-marked values (the store holds them encrypted).
      const live = o ? await host(env, request.headers['x-microseg-default-action']).get(kind, name) : undefined;
      if (!o || !live) throw new HttpError(404, 'not-found', `${kind} ${JSON.stringify(name)} does not exist in environment ${JSON.stringify(env)}`);
      void reply.header('etag', `"${o.revision}"`);
      // The outputs are the backend's too: realization status is observed now, not what was stored with the write.
      return { ...view(o), spec: live.spec, outputs: live.outputs, ...(live.secretPaths?.length ? { secretPaths: [...live.secretPaths] } : {}) };
    },
  );

  for (const def of resources) {
    const kind = def.name as Kind;
    const body = z.object({
      spec: def.inputs.describe(`The ${kind}'s properties, as in the Pulumi resource.`),
      mode: z.enum(['create', 'update']).optional().describe('create: fail with 409 if it exists; update: replace it. Default: update with If-Match, else create.'),
      secretPaths: z.array(z.string()).optional().describe('Spec paths whose values are secrets: stored encrypted, returned with the object.'),
    });
    const params = z.object({ env: ENVIRONMENT, '*': z.string().describe('Object name (identity).') });
    const prepare = (request: { body: { spec: unknown } }, name: string, raw: unknown) => {
      checkName(name);
      const spec = request.body.spec as PropertyMap;
      const unknown = unknownKeys((raw as { spec?: unknown })?.spec, spec);
      if (unknown.length > 0) throw new HttpError(400, 'InvalidRequest', `unknown propert${unknown.length > 1 ? 'ies' : 'y'} ${unknown.map((u) => u.join('.')).join(', ')} of ${kind}`);
      const identity = identityOf(kind, spec as { name?: string });
      if (identity !== name) throw new HttpError(400, 'InvalidName', `the URL names ${kind} ${JSON.stringify(name)} but the spec's identity is ${JSON.stringify(identity)}`);
      return spec;
    };
    const raws = new WeakMap<FastifyRequest, unknown>();
    const keepRaw = async (request: FastifyRequest) => {
      raws.set(request, structuredClone(request.body));
    };

    app.put(
      `/v1/environments/:env/objects/${kind}/*`,
      {
        preValidation: keepRaw,
        schema: {
          description: `Creates or replaces a ${kind}. With If-Match the write applies only at that revision (412 otherwise).`,
          params,
          headers: sessionHeader,
          body,
          response: { 200: writeResult, 201: writeResult, 400: errorBody, 401: errorBody, 403: errorBody, 409: errorBody, 412: errorBody, 422: errorBody, 503: errorBody },
        },
      },
      async (request, reply) => {
        const { env } = request.params;
        const name = request.params['*'];
        const spec = prepare(request, name, raws.get(request));
        const defaultAction = request.headers['x-microseg-default-action'];
        const ifMatch = parseIfMatch(request.headers['if-match']);
        const mode = request.body.mode ?? (ifMatch !== undefined ? 'update' : 'create');
        const existing = await existingFor(request, env, kind, name);
        const principal = await check(request, { action: 'write', kind, name, spec, existing, verb: mode }, env, defaultAction);
        const results: WriteResult[] = [];
        const owner = request.headers['x-microseg-owner'];
        const context = { ...(owner ? { owner } : {}), ...(request.body.secretPaths ? { secretPaths: request.body.secretPaths } : {}) };
        const result = await withActor(principal, () => host(env, defaultAction).put(kind, name, spec, mode, context), ifMatch !== undefined ? { kind, name, revision: ifMatch } : undefined, results);
        const written = results.find((r) => r.kind === kind && r.name === name && r.op !== 'check');
        if (written) void reply.header('etag', `"${written.revision}"`);
        return reply
          .code(written?.op === 'create' ? 201 : 200)
          .send({ outputs: result.outputs, warnings: result.warnings, infos: result.infos ?? [], ...(result.initErrors ? { initErrors: result.initErrors } : {}), ...(written ? { revision: written.revision } : {}) });
      },
    );

    app.post(
      `/v1/environments/:env/plan/${kind}/*`,
      {
        preValidation: keepRaw,
        schema: {
          description: `Previews a ${kind} write: its outputs, warnings and policy impact, in the caller's preview session; nothing is written.`,
          params,
          headers: sessionHeader,
          body,
          response: { 200: writeResult, 400: errorBody, 403: errorBody, 422: errorBody },
        },
      },
      async (request) => {
        const { env } = request.params;
        const name = request.params['*'];
        const spec = prepare(request, name, raws.get(request));
        const defaultAction = request.headers['x-microseg-default-action'];
        const existing = await existingFor(request, env, kind, name);
        await check(request, { action: 'write', kind, name, spec, existing, verb: 'plan' }, env, defaultAction);
        const session = request.headers['x-microseg-session'] ?? '';
        const owner = request.headers['x-microseg-owner'];
        const result = await host(env, defaultAction).plan(kind, name, spec, request.body.mode ?? 'create', { session: `remote:${session}`, ...(owner ? { owner } : {}) });
        return { outputs: result.outputs, warnings: result.warnings, infos: result.infos ?? [] };
      },
    );

    app.post(
      `/v1/environments/:env/impact/${kind}/*`,
      {
        preValidation: keepRaw,
        schema: {
          description: `The policy impact of a planned ${kind} change (flows it would allow or block), computed on the applied state; nothing is written.`,
          params,
          headers: sessionHeader,
          body,
          response: { 200: z.object({ impact: z.array(z.string()), warnings: z.array(z.string()) }), 400: errorBody, 403: errorBody, 422: errorBody },
        },
      },
      async (request) => {
        const { env } = request.params;
        const name = request.params['*'];
        const spec = prepare(request, name, raws.get(request));
        const defaultAction = request.headers['x-microseg-default-action'];
        await check(request, { action: 'function', fn: 'impact' });
        const session = `impact:${randomUUID()}`;
        const h = host(env, defaultAction);
        try {
          const result = await h.plan(kind, name, spec, 'update', { session });
          return { impact: result.infos ?? [], warnings: result.warnings };
        } finally {
          h.dropPlan(session);
        }
      },
    );
  }

  app.delete(
    '/v1/environments/:env/objects/:kind/*',
    { schema: { description: 'Deletes an object (404 when absent; 409 while others reference it; 412 on a stale If-Match).', params: objectParams, headers: sessionHeader, response: { 204: z.null(), 404: errorBody, 409: errorBody, 412: errorBody } } },
    async (request, reply) => {
      const { env, kind } = request.params;
      const name = request.params['*'];
      checkName(name);
      const defaultAction = request.headers['x-microseg-default-action'];
      const ifMatch = parseIfMatch(request.headers['if-match']);
      const existing = await store.get(env, kind, name);
      const principal = await check(request, { action: 'write', kind, name, existing: existing?.spec, verb: 'delete' }, env, defaultAction);
      if (!existing) throw new HttpError(404, 'not-found', `${kind} ${JSON.stringify(name)} does not exist in environment ${JSON.stringify(env)}`);
      if (ifMatch !== undefined && ifMatch !== existing.revision) {
        throw new HttpError(412, 'PreconditionFailed', `${kind} ${JSON.stringify(name)} is at revision ${existing.revision}, not ${ifMatch}; re-read it and retry`);
      }
      const owner = request.headers['x-microseg-owner'];
      await withActor(principal, () => host(env, defaultAction).delete(kind, name, owner ? { owner } : undefined), { kind, name, revision: ifMatch ?? existing.revision });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/environments/:env/creatable/:kind/*',
    {
      schema: {
        description: 'Checks that a create of this object would not take over one owned by someone else (409 if it would), without a spec; nothing is written.',
        params: objectParams,
        headers: sessionHeader,
        response: { 204: z.null(), 403: errorBody, 409: errorBody },
      },
    },
    async (request, reply) => {
      const { env, kind } = request.params;
      const name = request.params['*'];
      checkName(name);
      const defaultAction = request.headers['x-microseg-default-action'];
      const existing = await existingFor(request, env, kind, name);
      await check(request, { action: 'write', kind, name, existing, verb: 'plan' }, env, defaultAction);
      const owner = request.headers['x-microseg-owner'];
      await host(env, defaultAction).assertCreatable(kind, name, owner ? { owner } : undefined);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/environments/:env/claim/:kind/*',
    {
      schema: {
        description: 'Records a new owner of an existing object (`pulumi import`).',
        params: objectParams,
        headers: sessionHeader,
        body: z.object({ owner: z.string().min(1).max(2048).describe('The importing resource\'s URN.') }),
        response: { 204: z.null(), 403: errorBody, 404: errorBody },
      },
    },
    async (request, reply) => {
      const { env, kind } = request.params;
      const name = request.params['*'];
      checkName(name);
      const defaultAction = request.headers['x-microseg-default-action'];
      const stored = await store.get(env, kind, name);
      const principal = await check(request, { action: 'write', kind, name, ...(stored ? { spec: stored.spec, existing: stored.spec } : {}), verb: 'update' }, env, defaultAction);
      await withActor(principal, () => host(env, defaultAction).claim(kind, name, request.body.owner));
      return reply.code(204).send(null);
    },
  );

  for (const fn of functions) {
    app.post(
      `/v1/environments/:env/functions/${fn.name}`,
      { schema: { description: fn.description, params: envParams, headers: sessionHeader, body: fn.inputs, response: { 200: jsonMap, 400: errorBody, 403: errorBody, 422: errorBody } } },
      async (request) => {
        await check(request, { action: 'function', fn: fn.name });
        const defaultAction = request.headers['x-microseg-default-action'];
        const session = request.headers['x-microseg-session'];
        return host(request.params.env, defaultAction).invoke(fn.name, request.body as PropertyMap, session ? `remote:${session}` : '');
      },
    );
  }

  app.get(
    '/v1/environments/:env/changes',
    {
      schema: {
        description:
          'The change log after `since` (a seq from a list or a previous call). With `wait`, blocks up to that many seconds until a change arrives (long poll). 410 when `since` is ahead of the log (the store was restored): relist.',
        params: envParams,
        querystring: z.object({
          since: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000),
          wait: z.coerce.number().min(0).default(0),
        }),
        response: { 200: z.object({ changes: z.array(changeEntry), seq: z.number().int() }), 410: errorBody },
      },
    },
    async (request) => {
      await check(request, { action: 'watch' });
      const { env } = request.params;
      const { since, limit } = request.query;
      const deadline = Date.now() + Math.min(request.query.wait, maxWait) * 1000;
      for (;;) {
        const last = await store.lastSeq(env);
        if (since > last) throw new HttpError(410, 'Expired', `seq ${since} is ahead of the change log (at ${last}); the store was restored or replaced: list the objects again and watch from the list's seq`);
        const entries = await store.changes(env, { afterSeq: since, limit });
        const changes = entries.map(({ environment: _e, ...c }) => c);
        const seq = entries.length ? entries[entries.length - 1].seq : last;
        if (changes.length > 0 || entries.length > 0 || Date.now() >= deadline || stopping) return { changes, seq };
        // Woken by a write here or a NOTIFY from another replica; the poll covers a lost notification.
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            events.off(env, done);
            events.off('*', done);
            resolve();
          };
          const timer = setTimeout(done, Math.max(1, Math.min(pollMs, deadline - Date.now())));
          events.on(env, done);
          events.on('*', done);
        });
      }
    },
  );

  app.get(
    '/v1/environments/:env/audit',
    {
      schema: {
        description: 'The audit log of an environment, oldest first: actor, time, object, revision and a summary of every change.',
        params: envParams,
        querystring: z.object({ since: z.string().optional(), limit: z.coerce.number().int().min(1).max(100_000).optional(), kind: KIND.optional(), name: z.string().optional() }),
        response: { 200: z.object({ records: z.array(auditRecord) }) },
      },
    },
    async (request) => {
      await check(request, { action: 'audit' });
      return { records: await readAudit(store, request.params.env, request.query) };
    },
  );

  // The visibility page's API (provider/src/ui/handlers.ts, the routes `microseg ui` serves under /api/),
  // per environment. Reading views needs `read`; the traceflow view is the traceflow function's permission.
  app.get(
    '/v1/environments/:env/visibility/:view',
    {
      schema: {
        description: 'Visibility views (docs/visibility.md): topology, endpoint (?target=), policies (rules with hits), traceflow (?from=&to=&protocol=&port=), flows (flow records, filtered).',
        params: z.object({ env: ENVIRONMENT, view: z.enum(['topology', 'endpoint', 'policies', 'traceflow', 'flows']) }),
        querystring: z.record(z.string(), z.string()),
      },
    },
    async (request, reply) => {
      const { env, view } = request.params;
      // The flows view shows observed traffic: the flow routes' permission (agents report flows, never read them).
      await check(request, view === 'traceflow' ? { action: 'function', fn: 'traceflow' } : view === 'flows' ? { action: 'read-flows' } : { action: 'read' });
      const r = await handleVisibility({ store, environment: env, world: () => host(env, request.headers['x-microseg-default-action'] as 'allow' | 'drop' | undefined).currentWorld() }, `/api/${view}`, request.query);
      return reply.code(r.status).send(r.body);
    },
  );

  registerFlowRoutes(app, {
    store: options.store,
    check: (request, op) => check(request, op),
    world: (env) => host(env).currentWorld(),
    envParam: ENVIRONMENT,
    ...(options.flowRetention ? { retention: options.flowRetention } : {}),
    badRequest: (message) => new HttpError(400, 'InvalidRequest', message),
  });
  registerAgentRoutes(app, { store: options.store, check: (request, op) => check(request, op), world: (env, defaultAction) => host(env, defaultAction).currentWorld(), envParam: ENVIRONMENT });

  // Writes through this replica wake its watchers at once.
  app.addHook('onResponse', async (request) => {
    if (request.method !== 'GET' && request.method !== 'POST') {
      const env = (request.params as { env?: string } | undefined)?.env;
      if (env) events.emit(env);
    }
  });

  return {
    app,
    notify: (environment) => void events.emit(environment),
    draining: () => {
      stopping = true;
      events.emit('*');
    },
  };
}

/** For tests and the CLI: the reply shape of errors. */
export type ErrorBody = z.infer<typeof errorBody>;
export type { FastifyReply };
