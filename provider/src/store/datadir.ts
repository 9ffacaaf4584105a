import * as os from 'node:os';
import * as path from 'node:path';

/** Name of the database file inside a data directory. */
export const DATABASE_FILE = 'microseg.db';

/** Where a store lives. Precedence: explicit option (provider config) > MICROSEG_DATA_DIR > ~/.microseg. */
export interface DataDirOptions {
  /** Explicit data directory, e.g. from the provider config `dataDir`. */
  readonly dataDir?: string;
  /** Environment variables to consult (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Home directory (default: os.homedir()). */
  readonly homeDir?: string;
}

/** Resolves the absolute data directory. */
export function resolveDataDir(options: DataDirOptions = {}): string {
  const env = options.env ?? process.env;
  const chosen = nonEmpty(options.dataDir) ?? nonEmpty(env.MICROSEG_DATA_DIR) ?? path.join(options.homeDir ?? os.homedir(), '.microseg');
  return path.resolve(expandHome(chosen, options.homeDir));
}

/** Resolves the database file of a data directory. */
export function resolveDatabaseFile(options: DataDirOptions = {}): string {
  return path.join(resolveDataDir(options), DATABASE_FILE);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== '' ? v : undefined;
}

// Provider config values are not shell-expanded, so `~/x` must be handled here.
function expandHome(p: string, homeDir: string | undefined): string {
  if (p === '~') return homeDir ?? os.homedir();
  if (p.startsWith('~/')) return path.join(homeDir ?? os.homedir(), p.slice(2));
  return p;
}
