import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import axios from 'axios';
import { CliError, EXIT_FAILED, type CliIo } from './io';

/**
 * Read-only calls of CLI commands that work against a team-mode server (`--endpoint URL`, else
 * $MICROSEG_ENDPOINT; the token from $MICROSEG_TOKEN, never from argv, so it stays out of shell history
 * and `ps`): `microseg audit`, `flows`, `rule-stats`.
 */
export interface RemoteOptions {
  endpoint?: string;
  caCert?: string;
}

/** The server URL the command should use, or undefined for the local store. */
export function remoteEndpoint(o: RemoteOptions, io: CliIo): string | undefined {
  const e = (o.endpoint ?? io.env.MICROSEG_ENDPOINT ?? '').split(',')[0]!.trim().replace(/\/+$/, '');
  return e || undefined;
}

/** GET `path` (under /v1/environments/ENV) from the server; the parsed body of a 200, else a CliError with the server's message. */
export async function remoteGet<T>(o: RemoteOptions, io: CliIo, environment: string, route: string, query: Record<string, string | undefined>, needs: string): Promise<T> {
  const endpoint = remoteEndpoint(o, io);
  if (!endpoint) throw new CliError('--endpoint (or MICROSEG_ENDPOINT): the URL of `microseg serve` is required');
  if (!/^https?:\/\/[^/]+/.test(endpoint)) throw new CliError(`--endpoint: "${endpoint}" is not an http(s) URL`);
  const token = io.env.MICROSEG_TOKEN;
  if (!token) throw new CliError(`MICROSEG_TOKEN: set it to ${needs} token`);
  const caFile = o.caCert ?? io.env.MICROSEG_CA_CERT;
  const ca = caFile ? fs.readFileSync(path.resolve(io.cwd, caFile), 'utf8') : undefined;
  const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
  const url = `${endpoint}/v1/environments/${encodeURIComponent(environment)}/${route}${params.size ? `?${params}` : ''}`;
  let r;
  try {
    r = await axios.get(url, { headers: { authorization: `Bearer ${token}` }, timeout: 60_000, validateStatus: () => true, ...(ca ? { httpsAgent: new https.Agent({ ca }) } : {}) });
  } catch (err) {
    throw new CliError(`cannot reach ${endpoint}: ${(err as Error).message}`, EXIT_FAILED);
  }
  const data = r.data as { error?: { message?: string } } | undefined;
  // A refused filter is the user's input (exit 2, like a local one); anything else is the server's failure.
  if (r.status === 400) throw new CliError(`${endpoint}: ${data?.error?.message ?? 'bad request'}`);
  if (r.status !== 200 || typeof data !== 'object' || data === null) throw new CliError(`${endpoint}: HTTP ${r.status}: ${data?.error?.message ?? 'unexpected response'}`, EXIT_FAILED);
  return data as T;
}
