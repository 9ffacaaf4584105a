/**
 * The backend an end-to-end suite deploys into, so one suite specifies provider behaviour for both:
 *
 * - `embedded` (the default): the provider's in-process store, a SQLite data directory (MICROSEG_DATA_DIR).
 * - `server`: team mode. `microseg serve` on a throw-away PostgreSQL, started once per test file; every
 *   stack gets `microseg:endpoint` and a security-admin `microseg:token` (as a secret), as a user's would.
 *
 * The jest project `e2e-server` (jest.config.js) sets MICROSEG_E2E_BACKEND=server for the e2e files that
 * exercise provider behaviour. Tests look at the store and write to it "out of band" (what the microseg CLI,
 * another tool or another team does outside Pulumi) only through this fixture, and so through the same
 * backend their stacks use: the store of the data directory, or the server's HTTP API.
 *
 * One file against the server: `node node_modules/jest/bin/jest.js --selectProjects e2e-server -- test/e2e/resources.test.ts`
 * (`--selectProjects` takes several names, hence the `--`).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { openSqliteStore } from '../../provider/src/store';
import { startTeam } from './team';

export type BackendName = 'embedded' | 'server';

/** The backend of this run: MICROSEG_E2E_BACKEND (set per jest project), else embedded. */
export function e2eBackendName(): BackendName {
  const name = process.env.MICROSEG_E2E_BACKEND ?? 'embedded';
  if (name !== 'embedded' && name !== 'server') throw new Error(`MICROSEG_E2E_BACKEND: "${name}" is not a backend; expected embedded or server`);
  return name;
}

export interface StackConfigValue {
  readonly value: string;
  readonly secret?: boolean;
}

/** An object as the backend holds it. */
export interface LiveObject {
  readonly spec: Record<string, unknown>;
  readonly revision: number;
  readonly owner?: string;
}

export interface E2eBackend {
  readonly name: BackendName;
  /** Provider configuration every stack needs to reach this backend (none for the embedded one). */
  readonly stackConfig: Readonly<Record<string, StackConfigValue>>;
  /** The objects of an environment, sorted, as `Kind/name` (or `Kind/name@revision`); the environment's settings are left out. */
  objects(environment: string, withRevision?: boolean): Promise<string[]>;
  /** The owners of an environment's objects, `Kind/name` → owner (undefined when none is recorded). */
  owners(environment: string): Promise<Record<string, string | undefined>>;
  /** Out of band: one object, or undefined when it does not exist. */
  get(environment: string, kind: string, name: string): Promise<LiveObject | undefined>;
  /** Out of band: creates an object (validated as the provider's writes are). */
  create(environment: string, kind: string, name: string, spec: Record<string, unknown>): Promise<void>;
  /** Out of band: replaces an object's spec. */
  update(environment: string, kind: string, name: string, spec: Record<string, unknown>): Promise<void>;
  /** Out of band: deletes an object (refused while others reference it). */
  delete(environment: string, kind: string, name: string): Promise<void>;
  close(): Promise<void>;
}

const ROOT = join(__dirname, '..', '..');
const SETTINGS = 'EnvironmentSettings';
const sortKey = (kind: string, name: string, revision: number, withRevision: boolean) => `${kind}/${name}${withRevision ? `@${revision}` : ''}`;

/** Starts the backend of this run (`name` overrides MICROSEG_E2E_BACKEND); `dataDir` is the embedded store's. */
export async function startE2eBackend(dataDir: string, name: BackendName = e2eBackendName()): Promise<E2eBackend> {
  return name === 'server' ? serverBackend() : embeddedBackend(dataDir);
}

/**
 * Runs `body` in a separate Node process with `service` (a BackendService of `environment` on the data
 * directory's store, validated by the engine as the provider's writes are) in scope: another process
 * writing the same SQLite store, as the microseg CLI does.
 */
function outOfBand(dataDir: string, environment: string, body: string): string {
  const src = (p: string) => JSON.stringify(join(ROOT, 'provider', 'src', p));
  const script = `
    const { openSqliteStore } = require(${src('store/index.ts')});
    const { BackendService } = require(${src('service/index.ts')});
    const { engineValidator } = require(${src('backend/embedded.ts')});
    (async () => {
      const store = await openSqliteStore({ dataDir: ${JSON.stringify(dataDir)} });
      const service = new BackendService({ store, environment: ${JSON.stringify(environment)}, validator: engineValidator });
      try { ${body} } finally { await store.close(); }
    })().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
  try {
    return execFileSync(process.execPath, ['-r', join(ROOT, 'test', 'store', 'fixtures', 'register.js'), '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`out-of-band write to ${dataDir} failed: ${e.stderr || e.message}`);
  }
}

function embeddedBackend(dataDir: string): E2eBackend {
  const list = async (environment: string) => {
    const store = await openSqliteStore({ dataDir });
    try {
      return (await store.list(environment)).filter((o) => o.kind !== SETTINGS);
    } finally {
      await store.close();
    }
  };
  const arg = (v: unknown) => JSON.stringify(v);
  return {
    name: 'embedded',
    stackConfig: {},
    objects: async (environment, withRevision = false) => (await list(environment)).map((o) => sortKey(o.kind, o.name, o.revision, withRevision)).sort(),
    owners: async (environment) => Object.fromEntries((await list(environment)).map((o) => [`${o.kind}/${o.name}`, o.owner])),
    get: async (environment, kind, name) => {
      const out = outOfBand(dataDir, environment, `const o = await service.find(${arg(kind)}, ${arg(name)}); process.stdout.write(JSON.stringify(o ?? null));`);
      const o = JSON.parse(out) as (LiveObject & { spec: Record<string, unknown> }) | null;
      return o ? { spec: o.spec, revision: o.revision, ...(o.owner !== undefined ? { owner: o.owner } : {}) } : undefined;
    },
    create: async (environment, kind, name, spec) => void outOfBand(dataDir, environment, `await service.create(${arg(kind)}, ${arg(name)}, ${arg(spec)});`),
    update: async (environment, kind, name, spec) => void outOfBand(dataDir, environment, `await service.update(${arg(kind)}, ${arg(name)}, ${arg(spec)});`),
    delete: async (environment, kind, name) => void outOfBand(dataDir, environment, `await service.delete(${arg(kind)}, ${arg(name)});`),
    close: async () => undefined,
  };
}

async function serverBackend(): Promise<E2eBackend> {
  const team = await startTeam();
  const path = (environment: string, kind: string, name: string) => `/v1/environments/${encodeURIComponent(environment)}/objects/${kind}/${name.split('/').map(encodeURIComponent).join('/')}`;
  const expectStatus = (what: string, r: { status: number; data: unknown }, ...ok: number[]) => {
    if (!ok.includes(r.status)) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.data)}`);
  };
  const list = async (environment: string) => {
    const r = await team.call('GET', `/v1/environments/${encodeURIComponent(environment)}/objects`);
    expectStatus(`listing ${environment}`, r, 200);
    return (r.data as { items: { kind: string; name: string; revision: number; owner?: string }[] }).items.filter((o) => o.kind !== SETTINGS);
  };
  return {
    name: 'server',
    stackConfig: { 'microseg:endpoint': { value: team.server.url }, 'microseg:token': { value: team.tokens['security-admin'], secret: true } },
    objects: async (environment, withRevision = false) => (await list(environment)).map((o) => sortKey(o.kind, o.name, o.revision, withRevision)).sort(),
    owners: async (environment) => Object.fromEntries((await list(environment)).map((o) => [`${o.kind}/${o.name}`, o.owner])),
    get: async (environment, kind, name) => {
      const r = await team.call('GET', path(environment, kind, name));
      if (r.status === 404) return undefined;
      expectStatus(`reading ${kind} ${name}`, r, 200);
      const o = r.data as LiveObject;
      return { spec: o.spec, revision: o.revision, ...(o.owner !== undefined ? { owner: o.owner } : {}) };
    },
    create: async (environment, kind, name, spec) => expectStatus(`creating ${kind} ${name}`, await team.call('PUT', path(environment, kind, name), { body: { spec, mode: 'create' } }), 201),
    update: async (environment, kind, name, spec) => expectStatus(`updating ${kind} ${name}`, await team.call('PUT', path(environment, kind, name), { body: { spec, mode: 'update' } }), 200),
    delete: async (environment, kind, name) => expectStatus(`deleting ${kind} ${name}`, await team.call('DELETE', path(environment, kind, name)), 204),
    close: () => team.close(),
  };
}
