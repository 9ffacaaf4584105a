import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..', '..');

/** Lints a snippet as if it were the given file, with the project's eslint config (in a child process: ESLint is ESM). */
function lint(code: string, file: string): string {
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'), '--stdin', '--stdin-filename', file, '--format', 'stylish'], {
    cwd: root,
    input: code,
    encoding: 'utf8',
  });
  return r.stdout;
}

describe('the engine is pure (lint rule)', () => {
  jest.setTimeout(60_000);

  test.each([
    ["import { readFileSync } from 'node:fs';", 'disk'],
    ["import * as http from 'http';", 'network'],
    ["import * as pulumi from '@pulumi/pulumi';", 'Pulumi'],
    ["import * as grpc from '@grpc/grpc-js';", 'gRPC'],
    ["import { openSqliteStore } from '../store';", 'the store'],
  ])('an engine module may not import %s (%s)', (line) => {
    expect(lint(`${line}\nexport const x = 1;\n`, 'provider/src/engine/probe.ts')).toContain('no-restricted-imports');
  });

  test('an adapter module may import the disk', () => {
    expect(lint("import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", 'provider/src/store/probe.ts')).not.toContain('no-restricted-imports');
  });
});

describe('the nftables compiler is pure too (lint rule)', () => {
  jest.setTimeout(60_000);

  test('a realize module may not run processes', () => {
    expect(lint("import { execFileSync } from 'node:child_process';\nexport const x = execFileSync;\n", 'provider/src/realize/nftables/probe.ts')).toContain('no-restricted-imports');
  });
});
