/**
 * The flagship example in Python (examples/vcci-app-python) through the real CLI: the dev stack comes up
 * with the same traceflow verdicts and deciding rules as the TypeScript example, declares the same store
 * objects (kind, name, spec) as the TypeScript program, a second preview shows no changes and destroy
 * empties the store. pulumi-language-python cannot be built here, so run.py runs program.py as a Python
 * Automation API inline program, in the .tools/venv that scripts/check-sdks.sh prepares.
 */
import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { exampleStack } from '../../scripts/demo';
import { exportState, openSqliteStore } from '../../provider/src/store';
import { ROOT, testEnv, TestEnv } from './harness';

jest.setTimeout(600_000);

let env: TestEnv;
let python: string;
beforeAll(() => {
  env = testEnv();
  // Cold: creates the venv and pip-installs pulumi and the SDK (~30 s); afterwards a hash check.
  python = execFileSync('bash', [join(ROOT, 'scripts', 'check-sdks.sh'), '--venv-only'], { encoding: 'utf8' }).trim();
}, 900_000);
afterAll(() => env.cleanup());

/** run.py <stack> <steps...>: config from examples/vcci-app-python/Pulumi.<stack>.yaml, JSON summary on stdout. */
function run(stack: string, ...steps: string[]): Record<string, any> {
  try {
    const out = execFileSync(python, [join(ROOT, 'examples', 'vcci-app-python', 'run.py'), stack, ...steps], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env.envVars, PYTHONPYCACHEPREFIX: join(ROOT, '.tools', 'pycache') },
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`run.py ${stack} ${steps.join(' ')} failed:\n${err.stdout ?? ''}\n${err.stderr ?? err.message}`);
  }
}

type Objects = { kind: string; name: string; spec: unknown }[];
async function storedObjects(dataDir: string): Promise<Record<string, Objects>> {
  const store = await openSqliteStore({ dataDir });
  try {
    const doc = await exportState(store);
    return Object.fromEntries(
      // The environment's stored settings (defaultAction) are not an object of the program.
      Object.entries(doc.environments).map(([name, { objects }]) => [name, objects.filter((o) => o.kind !== 'EnvironmentSettings').map(({ kind, name, spec }) => ({ kind, name, spec })).sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`))]),
    );
  } finally {
    await store.close();
  }
}

describe('examples/vcci-app-python', () => {
  let outputs: Record<string, any>;

  test('the dev stack comes up, with traceflow outputs naming the same deciding rules as the TypeScript example', () => {
    const first = run('dev', 'up');
    expect(first.up).toMatchObject({ result: 'succeeded', resourceChanges: { create: 43 } });
    outputs = first.up.outputs;
    expect(outputs).toMatchObject({ backendReplicas: 1, backendMembers: 1, loadBalancerMembers: 1 });
    const traces = outputs.traceflows as Record<string, { verdict: string; decidedBy: string; path: string[] }>;
    expect(traces['frontend -> database tcp/5432']).toEqual({ verdict: 'drop', decidedBy: 'shop/frontend-deny-rest', path: ['source-firewall:drop'] });
    expect(traces['backend -> database tcp/5432']).toMatchObject({ verdict: 'allow', decidedBy: 'prod-boundaries/db-from-backend-egress' });
    expect(traces['backend -> database tcp/5432'].path).toContain('snat:snat snat→192.168.28.200');
    expect(traces['apigateway -> rating tcp/8080']).toMatchObject({ verdict: 'allow', decidedBy: 'shop/gateway-to-rating' });
    expect(traces['frontend -> apigateway tcp/8080']).toMatchObject({ verdict: 'allow', decidedBy: 'shop/frontend-to-gateway' });
    expect(traces['apigateway -> backend-lb tcp/80']).toMatchObject({ verdict: 'allow', decidedBy: 'shop/gateway-to-backend' });
    expect(outputs.connectivityMatrixTcp8080).toEqual(expect.arrayContaining(['frontend -> apigateway: allow', 'frontend -> database: deny', 'apigateway -> backend: allow']));
  });

  test('the store holds the same objects as the TypeScript example, and the same outputs up to pod IPs', async () => {
    // The TypeScript dev stack on its own backend and data directory, from a copy of the project (its
    // stack files carry the salt of the local demo passphrase).
    const tsEnv = testEnv();
    try {
      const workDir = join(tsEnv.dir, 'vcci-app');
      cpSync(join(ROOT, 'examples', 'vcci-app'), workDir, { recursive: true });
      const ts = await exampleStack('vcci-app', 'dev', { envVars: { ...tsEnv.envVars, PULUMI_CONFIG_PASSPHRASE: 'microseg-local' }, workDir });
      const up = await ts.up();
      expect(up.summary.resourceChanges).toEqual({ create: 43 });

      const python = await storedObjects(env.dataDir);
      expect(Object.keys(python)).toEqual(['dev']);
      expect(python.dev).toHaveLength(42);
      expect(python).toEqual(await storedObjects(tsEnv.dataDir));

      // Pods get their IPs in creation order, which the engine's parallelism does not fix.
      const podIps = (v: unknown) => JSON.parse(JSON.stringify(v).replace(/10\.244\.\d+\.\d+/g, '10.244.x.x'));
      const tsOutputs = Object.fromEntries(Object.entries(up.outputs).map(([k, v]) => [k, v.value]));
      expect(podIps(outputs)).toEqual(podIps(tsOutputs));
    } finally {
      tsEnv.cleanup();
    }
  });

  test('a second preview shows no changes', () => {
    expect(run('dev', 'preview').preview).toEqual({ changeSummary: { same: 43 } });
  });

  test('destroy empties the store', async () => {
    expect(run('dev', 'destroy').destroy).toEqual({ result: 'succeeded', resourceChanges: { delete: 43 } });
    const left = await storedObjects(env.dataDir);
    expect(Object.values(left).flat()).toEqual([]);
  });
});
