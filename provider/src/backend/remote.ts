/**
 * The provider's client of `microseg serve` (team mode): the same Backend port as the embedded backend,
 * over HTTP with axios.
 *
 * Retries: reads, previews and functions are retried on any transient failure (connection refused or
 * reset, timeout, 502/503/504), with jittered exponential backoff inside a time budget, moving to the next
 * endpoint when several replicas are given. A write is retried only when that cannot apply it twice
 * with a different outcome: a full-spec PUT and a DELETE are idempotent, and when a retried create finds
 * the object (409), the client reads it and accepts it only if it holds exactly the spec it sent.
 * Errors name what to do: 401 (token), 403 (the role and the missing permission, from the server),
 * TLS verification (microseg:caCert), an unreachable server (is `microseg serve` running?).
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import axios, { type AxiosInstance, type AxiosResponse, type Method } from 'axios';
import { z } from 'zod';
import { Backend, BackendError, type BackendErrorReason, type BackendResult, type OperationContext } from '../provider/backend';
import type { PropertyMap } from '../provider/values';
import { deleteWaitingForUsers, InUseBackendError } from './in-use';

export interface RemoteBackendOptions {
  /** Server URL, or several replicas' URLs separated by commas (tried in turn on connection failures). */
  readonly endpoint: string;
  readonly token?: string;
  /** PEM text of the CA that signed the server's certificate, or a path to it. */
  readonly caCert?: string;
  readonly environment: string;
  /** The stack's microseg:defaultAction; absent: the environment's stored action on the server. */
  readonly defaultAction?: 'allow' | 'drop';
  /** Per-request timeout (ms, default 30000). */
  readonly timeoutMs?: number;
  /** Total time spent retrying one operation (ms, default 60000). */
  readonly retryBudgetMs?: number;
  /** First backoff step (ms, default 100). */
  readonly backoffMs?: number;
  /** How long a delete refused because other objects still use the object waits for them to go (as the embedded backend's waitForUsersMs; default: no wait). */
  readonly waitForUsersMs?: number;
}

const jsonMap = z.record(z.string(), z.unknown());
const writeResult = z.object({ outputs: jsonMap, warnings: z.array(z.string()), infos: z.array(z.string()).optional(), initErrors: z.array(z.string()).optional() });
const objectView = z.object({ spec: jsonMap, outputs: jsonMap, revision: z.number(), owner: z.string().optional(), secretPaths: z.array(z.string()).optional() });
const errorBody = z.object({ error: z.object({ code: z.string().optional(), message: z.string(), problems: z.array(z.object({ path: z.string(), message: z.string() })).optional() }) });

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
  'EPROTO',
]);
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ECONNABORTED', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ERR_SOCKET_CONNECTION_TIMEOUT']);
const TRANSIENT_STATUS = new Set([502, 503, 504]);

/** Whether a failure proves the request never reached the server (safe to resend anything). */
const neverSent = (code: string | undefined) => code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EAI_AGAIN';

type Attempt = { ok: true; response: AxiosResponse } | { ok: false; code: string; message: string; status?: number; response?: AxiosResponse };

export class RemoteBackend implements Backend {
  private readonly endpoints: string[];
  private current = 0;
  private readonly http: AxiosInstance;
  /** One preview session per provider process, like the embedded backend's planned world. */
  private readonly session = randomUUID();
  private readonly env: string;

  constructor(private readonly options: RemoteBackendOptions) {
    this.endpoints = options.endpoint
      .split(',')
      .map((e) => e.trim().replace(/\/+$/, ''))
      .filter(Boolean);
    if (this.endpoints.length === 0) throw new BackendError('microseg:endpoint is empty; set it to the URL of `microseg serve` (e.g. https://microseg.example:8443)');
    for (const e of this.endpoints) {
      if (!/^https?:\/\/[^/]+/.test(e)) throw new BackendError(`microseg:endpoint "${e}" is not an http(s) URL`);
    }
    const ca = options.caCert ? (options.caCert.includes('-----BEGIN') ? options.caCert : readCa(options.caCert)) : undefined;
    this.env = encodeURIComponent(options.environment);
    this.http = axios.create({
      timeout: options.timeoutMs ?? 30_000,
      // Statuses are interpreted here; axios must not throw on 4xx/5xx.
      validateStatus: () => true,
      maxRedirects: 0,
      // Responses are parsed (and validated) here, so a malformed body is reported, not half-used.
      responseType: 'text',
      transformResponse: [(d: unknown) => d],
      headers: {
        'x-microseg-session': this.session,
        ...(options.defaultAction ? { 'x-microseg-default-action': options.defaultAction } : {}),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
      httpsAgent: new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) }),
      httpAgent: new http.Agent({ keepAlive: true }),
    });
  }

  plan(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update', context?: OperationContext): Promise<BackendResult> {
    return this.call('POST', `/v1/environments/${this.env}/plan/${kind}/${encodeName(name)}`, { spec, mode }, { retry: 'always', what: `preview of ${kind} "${name}"`, context }).then((r) =>
      asResult(this.parse(r, writeResult, `preview of ${kind} "${name}"`)),
    );
  }

  async put(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update', context?: OperationContext): Promise<BackendResult> {
    const what = `${mode} of ${kind} "${name}"`;
    const path = `/v1/environments/${this.env}/objects/${kind}/${encodeName(name)}`;
    let resent = false;
    let adopted: { outputs: PropertyMap } | undefined;
    const response = await this.call('PUT', path, { spec, mode, ...(context?.secretPaths?.length ? { secretPaths: context.secretPaths } : {}) }, { retry: 'write', what, context, onResend: () => (resent = true) }).catch(async (err: unknown) => {
      // A resent create that finds the object: ours if it holds exactly what we sent.
      if (resent && err instanceof BackendError && err.reason === 'conflict') {
        const live = await this.get(kind, name);
        if (live && sameSpec(spec, live.spec)) {
          adopted = { outputs: live.outputs };
          return undefined;
        }
      }
      throw err;
    });
    if (!response) return { outputs: adopted?.outputs ?? {}, warnings: [], infos: [] };
    return asResult(this.parse(response, writeResult, what));
  }

  async get(kind: string, name: string, context?: OperationContext): Promise<{ spec: PropertyMap; outputs: PropertyMap; owner?: string; secretPaths?: readonly string[] } | undefined> {
    const what = `read of ${kind} "${name}"`;
    const r = await this.call('GET', `/v1/environments/${this.env}/objects/${kind}/${encodeName(name)}`, undefined, { retry: 'always', what, accept404: true, context });
    if (r.status === 404) return undefined;
    const o = this.parse(r, objectView, what);
    return { spec: o.spec as PropertyMap, outputs: o.outputs as PropertyMap, ...(o.owner !== undefined ? { owner: o.owner } : {}), ...(o.secretPaths?.length ? { secretPaths: o.secretPaths } : {}) };
  }

  async assertCreatable(kind: string, name: string, context?: OperationContext): Promise<void> {
    await this.call('POST', `/v1/environments/${this.env}/creatable/${kind}/${encodeName(name)}`, {}, { retry: 'always', what: `create check of ${kind} "${name}"`, context });
  }

  async claim(kind: string, name: string, owner: string): Promise<void> {
    // Idempotent: claiming again for the same owner changes nothing.
    await this.call('POST', `/v1/environments/${this.env}/claim/${kind}/${encodeName(name)}`, { owner }, { retry: 'always', what: `import of ${kind} "${name}"` });
  }

  delete(kind: string, name: string, context?: OperationContext): Promise<void> {
    // Deleting is idempotent: a resent delete that finds nothing means the first one worked.
    const once = async () => void (await this.call('DELETE', `/v1/environments/${this.env}/objects/${kind}/${encodeName(name)}`, undefined, { retry: 'always', what: `delete of ${kind} "${name}"`, accept404: true, context }));
    return deleteWaitingForUsers(once, kind, name, this.options.waitForUsersMs ?? 0, context);
  }

  async invoke(fn: string, args: PropertyMap): Promise<PropertyMap> {
    const r = await this.call('POST', `/v1/environments/${this.env}/functions/${encodeURIComponent(fn)}`, args, { retry: 'always', what: fn });
    return this.parse(r, jsonMap, fn) as PropertyMap;
  }

  close(): void {
    (this.http.defaults.httpsAgent as https.Agent).destroy();
    (this.http.defaults.httpAgent as http.Agent).destroy();
  }

  private get endpoint(): string {
    return this.endpoints[this.current % this.endpoints.length];
  }

  /**
   * Sends a request, retrying transient failures within the budget. `write`: resent only when the first
   * attempt provably never arrived or the server said it is unavailable before writing (503), or for
   * ambiguous failures (timeouts, resets) where the caller resolves a resulting 409 itself.
   */
  private async call(
    method: Method,
    path: string,
    body: unknown,
    opts: { retry: 'always' | 'write'; what: string; accept404?: boolean; onResend?: () => void; context?: OperationContext },
  ): Promise<AxiosResponse> {
    const signal = opts.context?.signal;
    // The writer (the resource's URN) is recorded by the server as the object's owner.
    const headers = opts.context?.owner ? { 'x-microseg-owner': opts.context.owner } : undefined;
    const deadline = Date.now() + (this.options.retryBudgetMs ?? 60_000);
    const base = this.options.backoffMs ?? 100;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new BackendError(`${opts.what}: cancelled`);
      const a = await this.once(method, path, body, headers, signal);
      if (a.ok) {
        const r = a.response;
        if (r.status >= 200 && r.status < 300) return r;
        if (r.status === 404 && opts.accept404) return r;
        if (!TRANSIENT_STATUS.has(r.status)) throw this.httpError(r, opts.what);
      }
      const failure = a.ok ? { code: `HTTP ${a.response.status}`, message: this.serverMessage(a.response), status: a.response.status } : a;
      if (!a.ok && TLS_CODES.has(a.code)) {
        throw new BackendError(
          `TLS: the certificate of the microseg server at ${this.endpoint} cannot be verified (${a.code}: ${a.message}); set microseg:caCert to the PEM of the CA that signed it`,
          [],
          'unavailable',
        );
      }
      const transient = a.ok ? true : TRANSIENT_CODES.has(a.code);
      if (!transient) throw new BackendError(`${opts.what}: request to the microseg server at ${this.endpoint} failed: ${failure.message}`, [], 'unavailable');
      if (Date.now() >= deadline) throw this.unavailable(failure, opts.what);
      // Another replica may be up: connection-level failures move to the next endpoint.
      if (!a.ok && this.endpoints.length > 1) this.current++;
      if (opts.retry === 'write' && (a.ok || !neverSent(a.code))) opts.onResend?.();
      const delay = Math.min(2000, base * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(delay, deadline - Date.now()))));
    }
  }

  private async once(method: Method, path: string, body: unknown, headers?: Record<string, string>, signal?: AbortSignal): Promise<Attempt> {
    try {
      // Content-Type only with a body: the server refuses a JSON content type on an empty body (a DELETE).
      const sent = body !== undefined ? { data: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } } : headers ? { headers } : {};
      const response = await this.http.request({ method, url: `${this.endpoint}${path}`, ...sent, ...(signal ? { signal } : {}) });
      return { ok: true, response };
    } catch (err) {
      const e = err as { code?: string; message?: string; cause?: { code?: string } };
      const code = e.cause?.code && TLS_CODES.has(e.cause.code) ? e.cause.code : (e.code ?? 'ERROR');
      return { ok: false, code, message: e.message ?? String(err) };
    }
  }

  private parse<T>(r: AxiosResponse, schema: z.ZodType<T>, what: string): T {
    let data: unknown;
    try {
      data = typeof r.data === 'string' ? JSON.parse(r.data) : r.data;
    } catch {
      throw new BackendError(`${what}: the microseg server at ${this.endpoint} sent a malformed response (not JSON, HTTP ${r.status}); is the endpoint a microseg server of a compatible version?`, [], 'unavailable');
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      throw new BackendError(
        `${what}: the microseg server at ${this.endpoint} sent a malformed response (${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}); is the endpoint a microseg server of a compatible version?`,
        [],
        'unavailable',
      );
    }
    return parsed.data;
  }

  private serverMessage(r: AxiosResponse): string {
    try {
      const body = errorBody.safeParse(typeof r.data === 'string' ? JSON.parse(r.data) : r.data);
      if (body.success) return body.data.error.message;
    } catch {
      // not JSON: fall through
    }
    return `HTTP ${r.status}`;
  }

  private httpError(r: AxiosResponse, what: string): BackendError {
    let body: z.infer<typeof errorBody> | undefined;
    try {
      const parsed = errorBody.safeParse(typeof r.data === 'string' ? JSON.parse(r.data) : r.data);
      if (parsed.success) body = parsed.data;
    } catch {
      body = undefined;
    }
    const message = body?.error.message ?? `HTTP ${r.status}`;
    const problems = body?.error.problems ?? [];
    // A delete refused because others still use the object: the caller may wait for them to go.
    if (r.status === 409 && body?.error.code === 'in-use') return new InUseBackendError(message, problems);
    const reason: BackendErrorReason =
      r.status === 401 ? 'unauthenticated' : r.status === 403 ? 'forbidden' : r.status === 409 || r.status === 412 ? 'conflict' : r.status === 404 ? 'not-found' : 'invalid';
    switch (reason) {
      case 'unauthenticated':
        return new BackendError(
          `the microseg server at ${this.endpoint} refused the ${what}: ${message}${this.options.token ? '' : ' (microseg:token is not set: pulumi config set --secret microseg:token <token>)'}`,
          [],
          reason,
        );
      case 'forbidden':
        return new BackendError(`the microseg server at ${this.endpoint} refused the ${what}: ${message}`, [], reason);
      default:
        // Validation and conflict messages are the backend's own, as with the embedded backend.
        return new BackendError(message, problems, reason);
    }
  }

  private unavailable(failure: { code: string; message: string; status?: number }, what: string): BackendError {
    const budget = Math.round((this.options.retryBudgetMs ?? 60_000) / 1000);
    if (failure.code === 'ECONNREFUSED') {
      return new BackendError(`${what}: cannot connect to the microseg server at ${this.endpoint} (connection refused, retried for ${budget} s); is \`microseg serve\` running there?`, [], 'unavailable');
    }
    if (failure.code === 'ECONNABORTED' || failure.code === 'ETIMEDOUT') {
      return new BackendError(`${what}: the microseg server at ${this.endpoint} did not answer within ${Math.round((this.options.timeoutMs ?? 30_000) / 1000)} s (retried for ${budget} s)`, [], 'unavailable');
    }
    return new BackendError(`${what}: the microseg server at ${this.endpoint} is unavailable (${failure.message}; retried for ${budget} s)`, [], 'unavailable');
  }
}

function asResult(r: z.infer<typeof writeResult>): BackendResult {
  return { outputs: r.outputs as PropertyMap, warnings: r.warnings, infos: r.infos ?? [], ...(r.initErrors ? { initErrors: r.initErrors } : {}) };
}

/** Each `/`-separated part of an identity encoded on its own, so `cluster/ns/pod` stays readable. */
function encodeName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** Whether the stored spec holds everything we sent (the server adds defaults, never removes). */
function sameSpec(sent: unknown, stored: unknown): boolean {
  if (Array.isArray(sent)) return Array.isArray(stored) && sent.length === stored.length && sent.every((v, i) => sameSpec(v, stored[i]));
  if (sent !== null && typeof sent === 'object') {
    if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return false;
    return Object.entries(sent).every(([k, v]) => v === undefined || sameSpec(v, (stored as Record<string, unknown>)[k]));
  }
  return sent === stored;
}

function readCa(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new BackendError(`microseg:caCert: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); give the PEM text or a readable file`);
  }
}
