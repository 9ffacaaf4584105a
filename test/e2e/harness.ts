/**
 * Drives the real Pulumi CLI (built from Go modules into .tools/bin) through the Automation API, on a
 * throwaway local file backend and data directory, with microseg's provider installed into the test's own
 * PULUMI_HOME from its release archive (`pulumi plugin install ... --file`, as users install it; scripts/setup.sh
 * builds the archive from dist/). Nothing is found on PATH, so Pulumi prints no "from $PATH" warning.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { EngineEvent, LocalWorkspace, PulumiFn, Stack } from '@pulumi/pulumi/automation';
import { openSqliteStore } from '../../provider/src/store';
import { startE2eBackend, type E2eBackend } from '../support/e2e-backend';

/** A microseg resource registered by token, so tests need no generated SDK. */
export class MicrosegResource extends pulumi.CustomResource {
  constructor(kind: string, name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(`microseg:index:${kind}`, name, props, opts);
  }
}

export const ROOT = join(__dirname, '..', '..');

/** The version of package.json: the plugin's, the schema's and the SDKs'. */
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** This machine's plugin archive in .release/ (built by scripts/setup.sh, or `npm run package`). */
export function hostPluginArchive(dir = join(ROOT, '.release')): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return join(dir, `pulumi-resource-microseg-v${VERSION}-${os}-${arch}.tar.gz`);
}

/** `pulumi plugin install resource microseg <version> --file <archive>` into `pulumiHome`. */
export function installPlugin(pulumiHome: string, archive = hostPluginArchive()): void {
  execFileSync(join(ROOT, '.tools', 'bin', 'pulumi'), ['plugin', 'install', 'resource', 'microseg', VERSION, '--file', archive], {
    env: { ...process.env, PULUMI_HOME: pulumiHome, PULUMI_SKIP_UPDATE_CHECK: 'true' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

export interface TestEnv {
  dir: string;
  dataDir: string;
  envVars: Record<string, string>;
  /** The backend the stacks deploy into (backendTestEnv); absent: the embedded store of `dataDir`. */
  backend?: E2eBackend;
  cleanup(): void | Promise<void>;
}

export interface BackendTestEnv extends TestEnv {
  backend: E2eBackend;
  cleanup(): Promise<void>;
}

export function testEnv(): TestEnv {
  const dir = mkdtempSync(join(tmpdir(), 'microseg-e2e-'));
  const dataDir = join(dir, 'data');
  const envVars: Record<string, string> = {
    PULUMI_BACKEND_URL: `file://${join(dir, 'backend')}`,
    PULUMI_HOME: join(dir, 'pulumi-home'),
    PULUMI_CONFIG_PASSPHRASE: 'e2e',
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: 'true',
    MICROSEG_DATA_DIR: dataDir,
    PATH: `${join(ROOT, '.tools', 'bin')}:${process.env.PATH ?? ''}`,
  };
  mkdirSync(join(dir, 'backend'), { recursive: true });
  installPlugin(envVars.PULUMI_HOME);
  return { dir, dataDir, envVars, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A test environment whose stacks deploy into the backend of this run (test/support/e2e-backend.ts: the
 * embedded store, or `microseg serve` on PostgreSQL under the jest project e2e-server), started once for
 * the test file. Stacks made with inlineStack or configured with configureBackend get its configuration.
 */
export async function backendTestEnv(): Promise<BackendTestEnv> {
  const env = testEnv();
  let backend: E2eBackend;
  try {
    backend = await startE2eBackend(env.dataDir);
  } catch (err) {
    await env.cleanup();
    throw err;
  }
  return {
    ...env,
    backend,
    cleanup: async () => {
      try {
        await backend.close();
      } finally {
        await env.cleanup();
      }
    },
  };
}

/** Sets the provider configuration that points a stack at the test environment's backend (none for the embedded store). */
export async function configureBackend(stack: Stack, env: TestEnv): Promise<void> {
  for (const [key, { value, secret }] of Object.entries(env.backend?.stackConfig ?? {})) await stack.setConfig(key, { value, ...(secret ? { secret: true } : {}) });
}

/** A stack of an inline program; `config` is stack config (`microseg:environment` etc.). */
export async function inlineStack(env: TestEnv, stackName: string, program: PulumiFn, config: Record<string, string> = {}): Promise<Stack> {
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName, projectName: 'microseg-e2e', program },
    {
      envVars: env.envVars,
      pulumiHome: env.envVars.PULUMI_HOME,
      projectSettings: {
        name: 'microseg-e2e',
        runtime: 'nodejs',
        backend: { url: env.envVars.PULUMI_BACKEND_URL },
      },
    },
  );
  await configureBackend(stack, env);
  for (const [k, v] of Object.entries(config)) await stack.setConfig(k, { value: v });
  return stack;
}

/** Collects engine events of one operation, for asserting on diffs and diagnostics. */
export function eventLog(): { events: EngineEvent[]; onEvent: (e: EngineEvent) => void; diagnostics: () => string[]; stepsOf: (op: string) => string[] } {
  const events: EngineEvent[] = [];
  return {
    events,
    onEvent: (e) => events.push(e),
    diagnostics: () => events.flatMap((e) => (e.diagnosticEvent ? [e.diagnosticEvent.message] : [])),
    stepsOf: (op) => events.flatMap((e) => (e.resourcePreEvent && e.resourcePreEvent.metadata.op === op ? [e.resourcePreEvent.metadata.urn] : [])),
  };
}

/**
 * The objects of one environment of a data directory, sorted, as `Kind/name` (or `Kind/name@revision`
 * with `withRevision`, which is what "the store is untouched" compares). The environment's settings
 * (the stored defaultAction) are not an object of the program and are left out.
 */
export async function storedObjects(dataDir: string, environment = 'default', withRevision = false): Promise<string[]> {
  const store = await openSqliteStore({ dataDir });
  try {
    return (await store.list(environment)).filter((o) => o.kind !== 'EnvironmentSettings').map((o) => `${o.kind}/${o.name}${withRevision ? `@${o.revision}` : ''}`).sort();
  } finally {
    await store.close();
  }
}

/** The owners of one environment's objects, as `Kind/name` → owner (undefined when none is recorded). */
export async function storedOwners(dataDir: string, environment: string): Promise<Record<string, string | undefined>> {
  const store = await openSqliteStore({ dataDir });
  try {
    return Object.fromEntries((await store.list(environment)).filter((o) => o.kind !== 'EnvironmentSettings').map((o) => [`${o.kind}/${o.name}`, o.owner]));
  } finally {
    await store.close();
  }
}
