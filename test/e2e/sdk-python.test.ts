/**
 * A Python program on the generated SDK (examples/sdk-python) runs `pulumi up`, a no-change preview and
 * `pulumi destroy` with the real CLI. pulumi-language-python cannot be built here (an untagged Go
 * module), so examples/sdk-python/run.py runs it as a Python Automation API inline program, in the
 * .tools/venv that scripts/check-sdks.sh prepares (pulumi==PULUMI_VERSION and sdk/python installed).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, storedObjects, testEnv, TestEnv } from './harness';

jest.setTimeout(600_000);

let env: TestEnv;
let python: string;
beforeAll(() => {
  env = testEnv();
  // Cold: creates the venv and pip-installs pulumi and the SDK (~30 s); afterwards a hash check.
  python = execFileSync('bash', [join(ROOT, 'scripts', 'check-sdks.sh'), '--venv-only'], { encoding: 'utf8' }).trim();
}, 900_000);
afterAll(() => env.cleanup());

function run(...steps: string[]): Record<string, any> {
  try {
    const out = execFileSync(python, [join(ROOT, 'examples', 'sdk-python', 'run.py'), ...steps], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env.envVars, PYTHONPYCACHEPREFIX: join(ROOT, '.tools', 'pycache') },
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`run.py ${steps.join(' ')} failed:\n${err.stdout ?? ''}\n${err.stderr ?? err.message}`);
  }
}

test('the Python SDK program goes through up, a no-change preview and destroy', async () => {
  const first = run('up', 'preview');
  expect(first.up).toEqual({
    result: 'succeeded',
    resourceChanges: { create: 4 },
    outputs: { vm: 'py-db', group: 'py-sg-db', policy: 'py-db-access', rules: ['app-to-db'] },
    providerVersion: '0.1.0',
  });
  expect(first.preview.changeSummary).toEqual({ same: 4 });
  expect(await storedObjects(env.dataDir, 'dev')).toEqual(['FirewallPolicy/py-db-access', 'SecurityGroup/py-sg-db', 'VirtualMachine/py-db']);

  const second = run('destroy');
  expect(second.destroy).toEqual({ result: 'succeeded', resourceChanges: { delete: 4 } });
  expect(await storedObjects(env.dataDir, 'dev')).toEqual([]);
});
