/**
 * A Go program on the generated SDK (examples/sdk-go, its go.mod replacing the SDK module with
 * ../../sdk/go) runs `pulumi up`, a no-change preview and `pulumi destroy` with the real CLI.
 * pulumi-language-go cannot be built here (an untagged Go module), so the program runs as a Go
 * Automation API inline program (auto.UpsertStackInlineSource) under `go run .`.
 * Cold, `go run` downloads the Pulumi Go SDK's modules (minutes); afterwards the build cache makes it seconds.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { storedObjects, testEnv, ROOT, TestEnv } from './harness';

jest.setTimeout(900_000);

let env: TestEnv;
beforeAll(() => {
  env = testEnv();
});
afterAll(() => env.cleanup());

function run(...steps: string[]): Record<string, any> {
  try {
    const out = execFileSync('go', ['run', '.', ...steps], {
      cwd: join(ROOT, 'examples', 'sdk-go'),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env.envVars, GOWORK: 'off', GOFLAGS: '-mod=readonly' },
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`go run . ${steps.join(' ')} failed:\n${err.stdout ?? ''}\n${err.stderr ?? err.message}`);
  }
}

test('the Go SDK program goes through up, a no-change preview and destroy', async () => {
  const first = run('up', 'preview');
  expect(first.up).toEqual({
    result: 'succeeded',
    resourceChanges: { create: 4 },
    outputs: { vm: 'go-db', group: 'go-sg-db', policy: 'go-db-access', rules: ['app-to-db'] },
    providerVersion: '0.1.0',
  });
  expect(first.preview.changeSummary).toEqual({ same: 4 });
  expect(await storedObjects(env.dataDir, 'dev')).toEqual(['FirewallPolicy/go-db-access', 'SecurityGroup/go-sg-db', 'VirtualMachine/go-db']);

  const second = run('destroy');
  expect(second.destroy).toEqual({ result: 'succeeded', resourceChanges: { delete: 4 } });
  expect(await storedObjects(env.dataDir, 'dev')).toEqual([]);
});
