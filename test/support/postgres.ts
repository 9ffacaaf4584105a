/**
 * A throw-away PostgreSQL cluster for tests: `initdb` + `pg_ctl` in a temporary directory, on a free
 * loopback port, with its unix socket in that directory. PostgreSQL refuses to run as root, so as root
 * (CI) the cluster belongs to `nobody`. scripts/setup.sh installs the Debian `postgresql` package; a
 * missing binary fails the suite rather than skipping it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';

export interface PostgresCluster {
  readonly port: number;
  readonly dir: string;
  /** URL of a database on this cluster (TCP on 127.0.0.1). */
  url(database?: string): string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  /** pg_ctl stop (fast) — the data stays, `start` brings it back on the same port. */
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /** Stops the cluster and removes its directory. */
  destroy(): void;
}

/** The directory of initdb/pg_ctl: PG_BINDIR, else the newest /usr/lib/postgresql/N/bin. */
export function postgresBinDir(): string {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  if (versions.length === 0) throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); run scripts/setup.sh, which installs the postgresql package');
  versions.sort((a, b) => Number(b) - Number(a));
  return path.join(root, versions[0], 'bin');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

function run(bin: string, args: string[]): string {
  const cmd = asRoot ? 'runuser' : bin;
  const argv = asRoot ? ['-u', 'nobody', '--', bin, ...args] : args;
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

let counter = 0;

/** Starts a new cluster; call `destroy()` in afterAll. */
export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-pg-'));
  if (asRoot) {
    const { uid, gid } = { uid: 65534, gid: 65534 };
    fs.chownSync(dir, uid, gid);
  }
  fs.chmodSync(dir, 0o700);
  const data = path.join(dir, 'data');
  run(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  // fsync stays on: the crash tests rely on committed writes surviving a kill of the server.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`;
  const start = () => void run(path.join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => void run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  start();
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    dir,
    url,
    async createDatabase(prefix = 'test') {
      const name = `${prefix}_${process.pid}_${++counter}`;
      const c = new Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    stop,
    start,
    destroy() {
      try {
        stop('immediate');
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
