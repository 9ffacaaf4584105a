/**
 * The real `microseg` entry point in a child process (TypeScript sources through the swc require hook,
 * so no build is needed): argument parsing, exit codes, and no stack traces for user errors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');
const MAIN = path.join(ROOT, 'provider', 'src', 'cli', 'main.ts');
const REGISTER = path.join(ROOT, 'test', 'store', 'fixtures', 'register.js');
const dataDir = mkdtempSync(path.join(tmpdir(), 'microseg-spawn-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function microseg(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['-r', REGISTER, MAIN, ...args], { cwd: ROOT, input, encoding: 'utf8', env: { ...process.env, MICROSEG_DATA_DIR: dataDir, NODE_NO_WARNINGS: '1' }, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('microseg test on the seed fixtures exits 0', () => {
  const r = microseg(['test', 'examples/topologies/east-west-to-pod.yaml', 'examples/topologies/egress-ip-database.yaml']);
  expect(r.err).toBe('');
  expect(r.out).toContain('PASS  rating → backend tcp/8080');
  expect(r.out).toContain('2 files: 2 passed, 0 failed, 0 invalid');
  expect(r.code).toBe(0);
});

test('usage errors exit 2 with one message and no stack trace', () => {
  for (const args of [['bogus'], ['traceflow', '--from', 'x'], ['test'], ['traceflow', '--from', 'a', '--to', 'b', '--port', '22', '--default-action', 'maybe']]) {
    const r = microseg(args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^microseg: /);
    expect(r.err).not.toMatch(/\n\s+at /);
  }
  expect(microseg(['--version']).out.trim()).toMatch(/^\d+\.\d+\.\d+/);
});

test('put, traceflow and a user error end to end through the store', () => {
  expect(microseg(['put', 'VirtualMachine', 'a', '--spec', '-'], 'interfaces: [{ ip: 10.0.0.1 }]').code).toBe(0);
  expect(microseg(['put', 'VirtualMachine', 'b', '--spec', '-'], '{"interfaces":[{"ip":"10.0.0.2"}]}').code).toBe(0);
  const t = microseg(['traceflow', '--from', 'a', '--to', 'b', '--port', '22', '--expect', 'drop']);
  expect(t.out).toContain('verdict: drop (decided by default)');
  expect(t.code).toBe(0);
  const bad = microseg(['put', 'VirtualMachine', 'c', '--spec', '-'], 'interfaces: [{ ip: 10.0.0.300 }]');
  expect(bad.code).toBe(2);
  expect(bad.err).toMatch(/^microseg: VirtualMachine "c" is invalid: interfaces\[0\]\.ip: /);
  expect(bad.err.split('\n').filter(Boolean)).toHaveLength(1);
});
