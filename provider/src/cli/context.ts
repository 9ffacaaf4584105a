import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedBackend } from '../backend';
import type { World } from '../engine';
import { isKind, kinds, type Kind } from '../model';
import { AssertionBrokenError, BackendError } from '../provider/backend';
import { openSqliteStore, resolveDataDir, StoreError, type Store } from '../store';
import { CliError, EXIT_FAILED, EXIT_USAGE, type CliIo } from './io';

/** Options every store-backed command takes (`--data-dir`, `--environment`, `--default-action`). */
export interface StoreOptions {
  /** Data directory of the embedded store; MICROSEG_DATA_DIR, then ~/.microseg when absent. */
  dataDir?: string;
  /** Environment (stack) inside the store; MICROSEG_ENVIRONMENT, then `default` when absent. */
  environment?: string;
  /**
   * Action of the default rule for queries, overriding the one stored with the environment (which the
   * provider stores from `microseg:defaultAction`); `drop` when neither exists.
   */
  defaultAction?: string;
  /**
   * How this process's commits reach the disk (see SqliteStoreOptions.synchronous): `full` (default) for
   * commands that write declared state; `microseg agent` writes only what it observes and reports again.
   */
  synchronous?: 'full' | 'normal';
}

/** The environment a command works on: `--environment`, else MICROSEG_ENVIRONMENT, else `default`. */
export function resolveCliEnvironment(options: { environment?: string }, env: Readonly<Record<string, string | undefined>>): string {
  const fromEnv = env.MICROSEG_ENVIRONMENT?.trim();
  return options.environment ?? (fromEnv ? fromEnv : 'default');
}

/** The owner recorded on objects the CLI creates: names the CLI and the user, never a stack. */
export function cliOwner(env: Readonly<Record<string, string | undefined>>): string {
  let user = env.USER ?? env.LOGNAME;
  if (!user) {
    try {
      user = os.userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return `microseg-cli:${user}`;
}

/** An opened store with the engine's view of one environment. */
export interface StoreContext {
  readonly store: Store;
  readonly backend: EmbeddedBackend;
  readonly environment: string;
  readonly dataDir: string;
  /** The applied world of the environment, synced from the store. */
  world(): Promise<World>;
}

/**
 * Opens the store of the options, runs `fn`, and closes the store whatever happens. Store and backend
 * errors become CliErrors, so commands print one line instead of a stack trace.
 */
export async function withStore<T>(options: StoreOptions, io: CliIo, fn: (ctx: StoreContext) => Promise<T>): Promise<T> {
  const defaultAction = options.defaultAction;
  if (defaultAction !== undefined && defaultAction !== 'drop' && defaultAction !== 'allow') throw new CliError(`--default-action: "${defaultAction}" is not a default action; expected drop or allow`);
  const environment = resolveCliEnvironment(options, io.env);
  // Relative paths are relative to where the user runs the command, not to this process' cwd.
  const explicit = options.dataDir ?? io.env.MICROSEG_DATA_DIR;
  const dataDir = resolveDataDir({ dataDir: explicit !== undefined && explicit.trim() !== '' ? path.resolve(io.cwd, explicit) : undefined, env: io.env });
  let store: Store;
  try {
    store = await openSqliteStore({ dataDir, ...(options.synchronous ? { synchronous: options.synchronous } : {}) });
  } catch (err) {
    throw asCliError(err);
  }
  // Queries follow the environment's stored default action unless the flag overrides it; the CLI never
  // stores a flag's action (only the provider's configuration sets it).
  const backend = new EmbeddedBackend({ store, environment, owner: cliOwner(io.env), ...(defaultAction !== undefined ? { defaultAction, storeDefaultAction: false } : {}) });
  try {
    return await fn({ store, backend, environment, dataDir, world: () => backend.currentWorld() });
  } catch (err) {
    throw asCliError(err);
  } finally {
    await store.close().catch(() => undefined);
  }
}

/** Maps the layers' user errors to CliErrors; anything else (a bug) is rethrown as is. */
export function asCliError(err: unknown, backendExit = EXIT_USAGE): unknown {
  if (err instanceof CliError) return err;
  // A change refused by a connectivity assertion was evaluated: a failure, not bad input.
  if (err instanceof AssertionBrokenError) return new CliError(err.message, EXIT_FAILED);
  if (err instanceof BackendError) return new CliError(err.message, backendExit);
  if (err instanceof StoreError) {
    const input = err.code === 'NOT_EMPTY' || err.code === 'INVALID_STATE_DOCUMENT' || err.code === 'INVALID_ARGUMENT' || err.code === 'NOT_FOUND' || err.code === 'MISSING_REFERENCE' || err.code === 'IN_USE';
    return new CliError(err.message, input ? EXIT_USAGE : EXIT_FAILED);
  }
  return err;
}

/** Validates a KIND argument (case-insensitive, `microseg:index:` prefix allowed). */
export function parseKind(value: string): Kind {
  const bare = value.replace(/^microseg:(index:)?/, '');
  const kind = kinds.find((k) => k.toLowerCase() === bare.toLowerCase());
  if (!kind || !isKind(kind)) throw new CliError(`unknown kind "${value}"; expected one of ${kinds.join(', ')}`);
  return kind;
}

/** Validates a `--port` value. */
export function parsePort(value: string | undefined, option = '--port'): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new CliError(`${option}: "${value}" is not a port; expected an integer from 0 to 65535`);
  return Number(value);
}

const PROTOCOLS = ['tcp', 'udp', 'sctp', 'icmp', 'icmpv6'] as const;
export type CliProtocol = (typeof PROTOCOLS)[number];

/** Validates a `--protocol` value (default tcp). */
export function parseProtocol(value: string | undefined): CliProtocol {
  const v = (value ?? 'tcp').toLowerCase();
  if (!(PROTOCOLS as readonly string[]).includes(v)) throw new CliError(`--protocol: "${value}" is not a protocol; expected one of ${PROTOCOLS.join(', ')}`);
  return v as CliProtocol;
}

/**
 * tcp, udp and sctp flows need a destination port: it decides which rules match, and assuming one (or
 * "no port", which only port-less rules match) would answer a question the user did not ask.
 */
export function requirePort(protocol: CliProtocol, port: number | undefined): void {
  if (port === undefined && (protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp')) {
    throw new CliError(`--port is required for ${protocol}: the destination port decides which rules match (e.g. --port 443); only icmp and icmpv6 flows have no port`);
  }
}
