/**
 * Team-mode commands: `microseg serve`, `microseg token create|revoke` (run where the store is reachable,
 * like kubeadm's token commands on a control-plane node) and `microseg audit` (reads a server's audit
 * log over HTTP). Kept apart from the embedded-store commands.
 */
import * as path from 'node:path';
import axios from 'axios';
import * as https from 'node:https';
import * as fs from 'node:fs';
import { openPostgresStore, openSqliteStore, resolveDataDir, type Store } from '../store';
import { isRole, ROLES } from '../server/roles';
import { createToken, revokeToken } from '../server/tokens';
import { startServer } from '../server/serve';
import { asCliError } from './context';
import { CliError, EXIT_FAILED, EXIT_OK, type CliIo } from './io';

export interface TeamStoreOptions {
  /** postgres://… */
  store?: string;
  dataDir?: string;
}

async function openTeamStore(o: TeamStoreOptions, io: CliIo): Promise<Store> {
  const url = o.store ?? io.env.MICROSEG_STORE;
  try {
    if (url) {
      if (!/^postgres(ql)?:\/\//.test(url)) throw new CliError('--store: expected a postgres:// URL');
      return await openPostgresStore({ url });
    }
    const explicit = o.dataDir ?? io.env.MICROSEG_DATA_DIR;
    return await openSqliteStore({ dataDir: resolveDataDir({ dataDir: explicit ? path.resolve(io.cwd, explicit) : undefined, env: io.env }) });
  } catch (err) {
    throw asCliError(err);
  }
}

export interface ServeCommandOptions extends TeamStoreOptions {
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  log?: boolean;
  flowRetentionDays?: string;
  flowMaxRecords?: string;
  auditRetentionDays?: string;
  auditMaxRecords?: string;
}

/** `--flow-retention-days`/`--flow-max-records` (and the audit pair) as a retention; absent values keep the defaults. */
function retention(what: 'flow' | 'audit', days: string | undefined, max: string | undefined): { maxAgeMs?: number; maxCount?: number } {
  const out: { maxAgeMs?: number; maxCount?: number } = {};
  if (days !== undefined) {
    const d = Number(days);
    if (!(d > 0)) throw new CliError(`--${what}-retention-days: "${days}" is not a positive number of days`);
    out.maxAgeMs = d * 8.64e7;
  }
  if (max !== undefined) {
    const n = Number(max);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`--${what}-max-records: "${max}" is not a positive integer`);
    out.maxCount = n;
  }
  return out;
}

/** Runs until SIGTERM/SIGINT, then drains: readiness fails, in-flight requests finish, the store closes. */
export async function runServe(o: ServeCommandOptions, io: CliIo, signals: NodeJS.EventEmitter = process): Promise<number> {
  const storeUrl = o.store ?? io.env.MICROSEG_STORE;
  const flowRetention = retention('flow', o.flowRetentionDays, o.flowMaxRecords);
  const auditRetention = retention('audit', o.auditRetentionDays, o.auditMaxRecords);
  let running;
  try {
    running = await startServer({
      listen: o.listen,
      ...(storeUrl ? { storeUrl } : { dataDir: resolveDataDir({ dataDir: (o.dataDir ?? io.env.MICROSEG_DATA_DIR) ? path.resolve(io.cwd, (o.dataDir ?? io.env.MICROSEG_DATA_DIR) as string) : undefined, env: io.env }) }),
      ...(o.tlsCert ? { tlsCert: path.resolve(io.cwd, o.tlsCert) } : {}),
      ...(o.tlsKey ? { tlsKey: path.resolve(io.cwd, o.tlsKey) } : {}),
      log: o.log === true,
      flowRetention,
      auditRetention,
    });
  } catch (err) {
    const e = asCliError(err);
    throw e instanceof Error && !(e instanceof CliError) ? new CliError(e.message, EXIT_FAILED) : e;
  }
  io.stderr(`microseg serve: listening on ${running.url} (store ${running.store.location})\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      io.stderr(`microseg serve: ${signal}: finishing in-flight requests\n`);
      void running.close().then(resolve, resolve);
    };
    signals.once('SIGTERM', () => stop('SIGTERM'));
    signals.once('SIGINT', () => stop('SIGINT'));
  });
  io.stderr('microseg serve: stopped\n');
  return EXIT_OK;
}

export async function runTokenCreate(o: TeamStoreOptions & { role: string; namespaces?: string; description?: string; json?: boolean }, io: CliIo): Promise<number> {
  if (!isRole(o.role)) throw new CliError(`--role: "${o.role}" is not a role; expected one of ${ROLES.join(', ')}`);
  const namespaces = (o.namespaces ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (o.role === 'app-owner' && namespaces.length === 0) throw new CliError('--namespaces: an app-owner token needs the namespaces it owns (NAMESPACE or CLUSTER/NAMESPACE, comma-separated)');
  const store = await openTeamStore(o, io);
  try {
    const t = await createToken(store, { role: o.role, namespaces, ...(o.description ? { description: o.description } : {}) });
    if (o.json) io.stdout(`${JSON.stringify({ id: t.id, role: t.role, namespaces: t.namespaces, token: t.token })}\n`);
    else {
      io.stderr(`created token ${t.id} (role ${t.role}${namespaces.length ? `, namespaces ${namespaces.join(', ')}` : ''}); it is shown once, store it as a secret:\n`);
      io.stdout(`${t.token}\n`);
    }
    return EXIT_OK;
  } catch (err) {
    throw asCliError(err);
  } finally {
    await store.close();
  }
}

export async function runTokenRevoke(id: string, o: TeamStoreOptions, io: CliIo): Promise<number> {
  const store = await openTeamStore(o, io);
  try {
    await revokeToken(store, id);
    io.stderr(`revoked token ${id}\n`);
    return EXIT_OK;
  } catch (err) {
    throw asCliError(err);
  } finally {
    await store.close();
  }
}

export interface AuditCommandOptions {
  endpoint?: string;
  caCert?: string;
  environment?: string;
  limit?: string;
  kind?: string;
  name?: string;
  json?: boolean;
}

/** `microseg audit`: the server's audit log of an environment. The token comes from MICROSEG_TOKEN, never from argv. */
export async function runAudit(o: AuditCommandOptions, io: CliIo): Promise<number> {
  const endpoint = (o.endpoint ?? io.env.MICROSEG_ENDPOINT ?? '').split(',')[0].trim().replace(/\/+$/, '');
  if (!endpoint) throw new CliError('--endpoint (or MICROSEG_ENDPOINT): the URL of `microseg serve` is required');
  const token = io.env.MICROSEG_TOKEN;
  if (!token) throw new CliError('MICROSEG_TOKEN: set it to a security-admin or auditor token');
  const caFile = o.caCert ?? io.env.MICROSEG_CA_CERT;
  const ca = caFile ? fs.readFileSync(path.resolve(io.cwd, caFile), 'utf8') : undefined;
  const env = encodeURIComponent(o.environment ?? 'default');
  const params = new URLSearchParams();
  if (o.limit) params.set('limit', o.limit);
  if (o.kind) params.set('kind', o.kind);
  if (o.name) params.set('name', o.name);
  let r;
  try {
    r = await axios.get(`${endpoint}/v1/environments/${env}/audit${params.size ? `?${params}` : ''}`, {
      headers: { authorization: `Bearer ${token}` },
      timeout: 30_000,
      validateStatus: () => true,
      ...(ca ? { httpsAgent: new https.Agent({ ca }) } : {}),
    });
  } catch (err) {
    throw new CliError(`cannot reach ${endpoint}: ${(err as Error).message}`, EXIT_FAILED);
  }
  const data = r.data as { records?: Array<Record<string, unknown>>; error?: { message?: string } };
  if (r.status !== 200 || !Array.isArray(data?.records)) throw new CliError(`${endpoint}: HTTP ${r.status}: ${data?.error?.message ?? 'unexpected response'}`, EXIT_FAILED);
  if (o.json) {
    io.stdout(`${JSON.stringify(data.records, null, 2)}\n`);
    return EXIT_OK;
  }
  const rows = data.records.map((x) => [String(x.time), String(x.actor), String(x.role), String(x.op), `${String(x.kind)}/${String(x.name)}`, `r${String(x.revision)}`, String(x.summary)]);
  const widths = [0, 1, 2, 3, 4, 5].map((i) => Math.max(...rows.map((row) => row[i].length), ['TIME', 'ACTOR', 'ROLE', 'OP', 'OBJECT', 'REV'][i].length));
  const line = (cells: string[]) => `${cells.map((c, i) => (i < 6 ? c.padEnd(widths[i]) : c)).join('  ')}\n`;
  io.stdout(line(['TIME', 'ACTOR', 'ROLE', 'OP', 'OBJECT', 'REV', 'SUMMARY']));
  for (const row of rows) io.stdout(line(row));
  return EXIT_OK;
}
