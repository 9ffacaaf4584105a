import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { MicrosegResource, ROOT, VERSION, eventLog, inlineStack, testEnv, TestEnv } from './harness';

jest.setTimeout(240_000);

let env: TestEnv;
beforeAll(() => {
  env = testEnv();
});
afterAll(() => env.cleanup());

test('the Pulumi CLI built from Go modules reports the pinned version', () => {
  const out = execFileSync(join(ROOT, '.tools', 'bin', 'pulumi'), ['version'], { encoding: 'utf8' }).trim();
  const pinned = /PULUMI_VERSION=(\S+)/.exec(require('node:fs').readFileSync(join(ROOT, 'scripts', 'versions.sh'), 'utf8'))![1];
  expect(out).toBe(`v${pinned}`);
});

test('the installed provider plugin prints only its port on stdout', async () => {
  const plugin = join(env.envVars.PULUMI_HOME, 'plugins', `resource-microseg-v${VERSION}`, 'pulumi-resource-microseg');
  const child = spawn(plugin, ['127.0.0.1:1'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env.envVars } });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // 'close': after the exit and the end of its output.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Readiness is the port line itself (what the engine waits for), not a delay.
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the plugin exited (${code}) before printing its port; stderr: ${err}`)));
  });
  // Then stop it as the engine does and check everything it printed until it was gone.
  child.kill('SIGINT');
  expect({ code: await exited, stdout: out }).toEqual({ code: 0, stdout: expect.stringMatching(/^\d+\n$/) });
});

test('a VirtualMachine goes through up, a no-change preview and destroy with the real CLI', async () => {
  const program = async () => {
    const vm = new MicrosegResource('VirtualMachine', 'rating', {
      name: 'rating',
      interfaces: [{ ip: '192.168.28.213' }],
      labels: { app: 'rating' },
    });
    return { id: vm.id };
  };
  const stack = await inlineStack(env, 'toolchain', program);
  const up = await stack.up();
  expect(up.summary.result).toBe('succeeded');
  expect(up.outputs.id.value).toBe('rating');

  const log = eventLog();
  const preview = await stack.preview({ onEvent: log.onEvent });
  expect(preview.changeSummary).toEqual({ same: 2 });

  const destroy = await stack.destroy();
  expect(destroy.summary.result).toBe('succeeded');
  expect(destroy.summary.resourceChanges).toMatchObject({ delete: 2 });
});
