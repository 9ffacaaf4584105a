import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { World } from '../engine';
import type { Kind, SpecOf } from '../model';
import { REALIZATION_KIND } from '../backend/realization';
import type { FlowRecord } from '../store';
import type { DesiredState, FlowSink, RealizationStatus, StatusSink } from './ports';

/**
 * The agent's ports over the team-mode server (`microseg agent --endpoint URL`): the desired state from
 * `GET /realization/state` (objects with their stored outputs, restored into a World exactly as the
 * embedded backend restores them, so the agent compiles the same rulesets as with a local store), changes
 * by long-polling the change log, and statuses through the status subresource, stored as the same
 * `RealizationStatus` objects a local agent writes.
 */
export interface AgentServerOptions {
  /** URL of `microseg serve`. */
  readonly endpoint: string;
  readonly environment: string;
  /** A token of role agent (or security-admin). */
  readonly token?: string;
  /** PEM file (or PEM text) of the CA that signed the server's certificate. */
  readonly caCert?: string;
  /** Overrides the environment's stored default action, as `--default-action` does locally. */
  readonly defaultAction?: 'allow' | 'drop';
  readonly timeoutMs?: number;
}

/** An HTTP client of the agent routes; errors carry the server's message. */
export class AgentServerClient {
  readonly http: AxiosInstance;
  readonly env: string;
  private readonly base: string;

  constructor(options: AgentServerOptions) {
    this.base = options.endpoint.trim().replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]+/.test(this.base)) throw new Error(`--endpoint: "${options.endpoint}" is not an http(s) URL`);
    this.env = encodeURIComponent(options.environment);
    const ca = options.caCert ? (options.caCert.includes('-----BEGIN') ? options.caCert : fs.readFileSync(options.caCert, 'utf8')) : undefined;
    this.http = axios.create({
      baseURL: this.base,
      timeout: options.timeoutMs ?? 60_000,
      validateStatus: () => true,
      maxRedirects: 0,
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.defaultAction ? { 'x-microseg-default-action': options.defaultAction } : {}),
      },
      httpsAgent: new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) }),
      httpAgent: new http.Agent({ keepAlive: true }),
    });
  }

  /** The body of a 2xx answer; otherwise an error naming the request and the server's message. */
  async request<T>(method: 'GET' | 'PUT' | 'POST', path: string, what: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let r: AxiosResponse;
    try {
      r = await this.http.request({ method, url: path, ...(body !== undefined ? { data: body } : {}), ...(signal ? { signal } : {}) });
    } catch (err) {
      const e = err as Error & { code?: string };
      const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(e.code ?? '') ? "; pass the CA of the server's certificate with --ca-cert" : '';
      throw new Error(`${what}: ${this.base} cannot be reached: ${e.message}${tls}`);
    }
    if (r.status >= 200 && r.status < 300) return r.data as T;
    const message = (r.data as { error?: { message?: string } } | undefined)?.error?.message ?? `HTTP ${r.status}`;
    throw new Error(`${what}: ${this.base} answered ${r.status}: ${message}`);
  }

  close(): void {
    (this.http.defaults.httpsAgent as https.Agent).destroy();
    (this.http.defaults.httpAgent as http.Agent).destroy();
  }
}

interface StateBody {
  seq: number;
  defaultAction: 'allow' | 'drop';
  objects: { kind: Kind; name: string; spec: Record<string, unknown>; outputs: Record<string, unknown> }[];
}

export class HttpDesiredState implements DesiredState {
  constructor(private readonly client: AgentServerClient) {}

  async snapshot(): Promise<{ world: World; seq: number }> {
    const state = await this.client.request<StateBody>('GET', `/v1/environments/${this.client.env}/realization/state`, 'reading the desired state');
    const world = new World({ defaultAction: state.defaultAction });
    // The server sends objects in kind order, as the embedded backend restores them on load.
    for (const o of state.objects) world.restore(o.kind, o.name, o.spec as SpecOf[Kind], o.outputs);
    return { world, seq: state.seq };
  }

  async waitForChange(seq: number, maxWaitMs: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    let since = seq;
    while (!signal.aborted) {
      const wait = Math.max(0, Math.min(30, Math.floor((deadline - Date.now()) / 1000)));
      try {
        const r = await this.client.request<{ changes: { kind: string }[]; seq: number }>(
          'GET',
          `/v1/environments/${this.client.env}/changes?since=${since}&wait=${wait}`,
          'watching the change log',
          undefined,
          signal,
        );
        // Status reports (this agent's own included) are not desired state.
        if (r.changes.some((c) => c.kind !== REALIZATION_KIND)) return;
        since = r.seq;
      } catch {
        // Aborted, a restored store (410) or a server away: the caller's next pass re-reads the state,
        // after a pause so an unreachable server is not hammered.
        await pause(Math.min(1000, Math.max(0, deadline - Date.now())), signal);
        return;
      }
      if (Date.now() >= deadline || wait === 0) return;
    }
  }
}

export class HttpStatusSink implements StatusSink {
  constructor(private readonly client: AgentServerClient) {}

  async report(status: RealizationStatus): Promise<void> {
    await this.client.request('PUT', `/v1/environments/${this.client.env}/realization/status`, `reporting the status of ${status.point}`, status);
  }
}

/** Records per request: below the server's limit (MAX_FLOW_BATCH) with room for long pod names. */
export const FLOW_POST_BATCH = 2000;

/**
 * Flow records to the server's flow route, in batches. A batch that fails rejects the whole call; the
 * agent then reports the same records again at its next pass (FlowCollector keeps them pending), and the
 * server keeps the larger counters of a known record, so batches that did land count nothing twice.
 */
export class HttpFlowSink implements FlowSink {
  constructor(
    private readonly client: AgentServerClient,
    private readonly batch = FLOW_POST_BATCH,
  ) {}

  async record(records: readonly FlowRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += this.batch) {
      const chunk = records.slice(i, i + this.batch);
      await this.client.request('POST', `/v1/environments/${this.client.env}/flows`, `reporting ${chunk.length} flow records`, { records: chunk });
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
