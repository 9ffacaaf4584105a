/**
 * `microseg serve`: opens the store (PostgreSQL for shared, replicated state; a SQLite data directory for
 * one machine), serves the API, follows other replicas' commits through LISTEN/NOTIFY, and shuts down
 * gracefully: readiness fails first, the listener closes, in-flight requests (writes included) finish,
 * then the store closes.
 */
import * as fs from 'node:fs';
import { Client } from 'pg';
import { openPostgresStore, openSqliteStore, CHANGES_CHANNEL, type AuditRetention, type FlowRetention, type PostgresStore, type Store } from '../store';
import { buildApp, type MicrosegApp } from './app';

export interface ServeOptions {
  /** `HOST:PORT` (port 0 picks a free one). */
  readonly listen: string;
  /** `postgres://…` */
  readonly storeUrl?: string;
  readonly dataDir?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Log one JSON line per request to stderr (the Authorization header is redacted). */
  readonly log?: boolean;
  readonly watchPollMs?: number;
  /** Retention of the flow records agents post (default: a week and 200 000 per environment). */
  readonly flowRetention?: FlowRetention;
  /** Retention of the audit records (default: 400 days and 1 000 000 per environment). */
  readonly auditRetention?: AuditRetention;
}

export interface RunningServer {
  /** `http(s)://host:port` */
  readonly url: string;
  readonly store: Store;
  readonly server: MicrosegApp;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen.trim());
  if (!m || Number(m[2]) > 65535) throw new Error(`--listen: "${listen}" is not HOST:PORT (for example 127.0.0.1:8443)`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const { host, port } = parseListen(options.listen);
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
  if (options.storeUrl && options.dataDir) throw new Error('--store and --data-dir are alternatives: give one');
  const https = options.tlsCert && options.tlsKey ? { cert: fs.readFileSync(options.tlsCert), key: fs.readFileSync(options.tlsKey) } : undefined;
  let pg: PostgresStore | undefined;
  let store: Store;
  if (options.storeUrl) {
    if (!/^postgres(ql)?:\/\//.test(options.storeUrl)) throw new Error('--store: expected a postgres:// URL');
    // Secret-marked inputs are stored encrypted; every replica needs the same key, and it must not live in the database.
    if (!process.env.MICROSEG_SECRET_KEY?.trim()) {
      throw new Error('MICROSEG_SECRET_KEY is not set: with a PostgreSQL store every replica needs the same 32-byte key (e.g. `openssl rand -base64 32`) to encrypt secret inputs');
    }
    store = pg = await openPostgresStore({ url: options.storeUrl });
  } else {
    store = await openSqliteStore({ dataDir: options.dataDir });
  }
  const server = await buildApp({
    store,
    ...(pg ? { ready: () => (pg as PostgresStore).ping() } : {}),
    ...(https ? { https } : {}),
    ...(options.watchPollMs !== undefined ? { watchPollMs: options.watchPollMs } : {}),
    ...(options.flowRetention ? { flowRetention: options.flowRetention } : {}),
    ...(options.auditRetention ? { auditRetention: options.auditRetention } : {}),
    logger: options.log ? { level: 'info', redact: ['req.headers.authorization'] } : false,
  });
  const listener = pg ? await listenForChanges(pg, server) : undefined;
  await server.app.listen({ host, port });
  const address = server.app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  let closing: Promise<void> | undefined;
  return {
    url: `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    store,
    server,
    close: () =>
      (closing ??= (async () => {
        server.draining();
        // fastify.close stops accepting, closes idle keep-alive connections and waits for in-flight requests.
        await server.app.close();
        await listener?.close();
        await store.close();
      })()),
  };
}

/**
 * One dedicated connection LISTENs for other replicas' commits and wakes this replica's watchers. When
 * PostgreSQL restarts the connection is re-established with backoff; watchers poll meanwhile.
 */
async function listenForChanges(store: PostgresStore, server: MicrosegApp): Promise<{ close(): Promise<void> }> {
  let client: Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const connect = async (attempt: number): Promise<void> => {
    if (closed) return;
    const c = new Client(store.connectionOptions());
    c.on('error', () => undefined);
    c.on('notification', (n) => {
      if (n.payload) server.notify(n.payload);
    });
    c.on('end', () => {
      if (client === c && !closed) {
        client = undefined;
        timer = setTimeout(() => void connect(1), 200);
      }
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANGES_CHANNEL}`);
      client = c;
      // Anything committed while we were disconnected: wake everyone to re-read.
      server.notify('*');
    } catch {
      await c.end().catch(() => undefined);
      timer = setTimeout(() => void connect(attempt + 1), Math.min(5000, 100 * 2 ** attempt));
    }
  };
  await connect(0);
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await client?.end().catch(() => undefined);
    },
  };
}
