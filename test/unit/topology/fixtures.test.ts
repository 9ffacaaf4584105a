/**
 * The seed scenarios as topology files (examples/topologies): every expectation passes with
 * `microseg test`; a deliberately wrong expectation exits 1; a broken file exits 2 naming the path.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { memoryIo } from '../../../provider/src/cli/io';
import { runTest } from '../../../provider/src/cli/test-command';

const DIR = path.join(__dirname, '..', '..', '..', 'examples', 'topologies');
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
const tmp = mkdtempSync(path.join(tmpdir(), 'microseg-topology-'));

/** Writes a variant of a fixture with one textual replacement (which must apply). */
function variant(file: string, from: string | RegExp, to: string | ((m: string, ...groups: string[]) => string)): string {
  const text = readFileSync(path.join(DIR, file), 'utf8');
  const changed = typeof to === 'string' ? text.replace(from, to) : text.replace(from, to);
  expect(changed).not.toBe(text);
  const out = path.join(tmp, `variant-${file}`);
  writeFileSync(out, changed);
  return out;
}

test('the seed scenarios are all there', () => {
  expect(files).toEqual(['east-west-to-pod.yaml', 'east-west-to-vm.yaml', 'egress-ip-database.yaml', 'kubernetes-networkpolicies.yaml', 'north-south-coredns.yaml', 'quarantine-forensics.yaml']);
});

describe.each(files)('%s', (file) => {
  test('every expectation passes, each with its deciding rule', async () => {
    const io = memoryIo();
    const code = await runTest([path.join(DIR, file)], { json: true }, io);
    const report = JSON.parse(io.out()) as { files: { status: string; problems: unknown[]; results: { passed: boolean; decidedBy: string }[] }[] };
    expect(report.files[0]!.problems).toEqual([]);
    expect(report.files[0]!.results.filter((r) => !r.passed)).toEqual([]);
    expect(report.files[0]!.results.length).toBeGreaterThanOrEqual(5);
    expect(report.files[0]!.results.every((r) => r.decidedBy !== '')).toBe(true);
    expect(code).toBe(0);
  });

  test('a deliberately wrong expectation fails with exit 1', async () => {
    // Flip the first expected verdict of the file.
    const f = variant(file, /, expect: (allow|drop|reject)/, (_m, v) => `, expect: ${v === 'allow' ? 'drop' : 'allow'}`);
    const io = memoryIo();
    expect(await runTest([f], {}, io)).toBe(1);
    expect(io.out()).toMatch(/^ {2}FAIL {2}.*expected (allow|drop)/m);
    expect(io.out()).toMatch(/\d+ passed, 1 failed/);
  });
});

test('a wrong deciding rule fails even when the verdict is right', async () => {
  const f = variant('east-west-to-pod.yaml', 'rule: backend-access/deny-other-clients }', 'rule: egress-baseline/allow-out }');
  const io = memoryIo();
  expect(await runTest([f], {}, io)).toBe(1);
  expect(io.out()).toContain('drop by backend-access/deny-other-clients; expected drop by egress-baseline/allow-out (expectations[2])');
});

test('an invalid rule action exits 2 naming the property path', async () => {
  const f = variant('east-west-to-pod.yaml', 'action: drop\n', 'action: dorp\n');
  const io = memoryIo();
  expect(await runTest([f], {}, io)).toBe(2);
  expect(io.err()).toContain('error: resources.backend-access.properties.rules[1].action:');
  expect(io.out()).toContain('INVALID');
});

test('an unknown group reference exits 2 naming where it is used', async () => {
  const f = variant('east-west-to-vm.yaml', 'sources: [{ group: "${apigateway-pods}" }]', 'sources: [{ group: "apigateway-podz" }]');
  const io = memoryIo();
  expect(await runTest([f], {}, io)).toBe(2);
  expect(io.err()).toContain('resources.rating-access.properties.rules[0].sources[0].group: SecurityGroup "apigateway-podz" does not exist');
});

test('several files: the worst outcome decides the exit code, and every file is reported', async () => {
  const bad = variant('quarantine-forensics.yaml', 'operator: Exists', 'operator: Exist');
  const io = memoryIo();
  expect(await runTest([path.join(DIR, 'east-west-to-vm.yaml'), bad], {}, io)).toBe(2);
  expect(io.out()).toContain('2 files: 1 passed, 0 failed, 1 invalid');
  expect(io.err()).toContain('resources.quarantine.properties.selector.matchExpressions[0].operator');
});

test('a missing file is reported as invalid input', async () => {
  const io = memoryIo();
  expect(await runTest([path.join(tmp, 'nope.yaml')], {}, io)).toBe(2);
  expect(io.err()).toContain('no such file');
});
