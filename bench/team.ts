/**
 * Team-mode benchmark: the 1,000-resource `pulumi up` (and a no-op preview) of bench/provider.ts through
 * `microseg serve` on PostgreSQL against the embedded SQLite backend, alternated in one run. The server
 * runs as its own process on loopback (this process runs the Pulumi program), on a throw-away PostgreSQL
 * cluster (test/support/postgres.ts).
 *
 *   bash scripts/setup.sh && source scripts/env.sh && node dist/bench/team.js [--rounds 2] [--resources 1000]
 *
 * Prints a table and writes bench/results/team.json. Target: server / embedded <= 1.3.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inlineStack, testEnv, type TestEnv } from '../test/e2e/harness';
import { spawn } from 'node:child_process';
import axios from 'axios';
import { freePort, startPostgres } from '../test/support/postgres';
import { openPostgresStore } from '../provider/src/store';
import { createToken } from '../provider/src/server/tokens';
import { program } from './provider';

const ROOT = [join(__dirname, '..'), join(__dirname, '..', '..')].find((d) => existsSync(join(d, 'package.json')) && existsSync(join(d, 'provider', 'bin')))!;
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

type Backend = 'embedded' | 'server';
interface Run {
  round: number;
  backend: Backend;
  upSeconds: number;
  previewSeconds: number;
}

async function measure(backend: Backend, total: number, round: number, server: { url: string }, token: string): Promise<Run> {
  const env: TestEnv = testEnv();
  try {
    const config: Record<string, string> = { 'microseg:environment': `bench-${backend}-${round}` };
    const stack = await inlineStack(env, `${backend}-${round}`, program('microseg', total), config);
    if (backend === 'server') {
      await stack.setConfig('microseg:endpoint', { value: server.url });
      await stack.setConfig('microseg:token', { value: token, secret: true });
    }
    const t0 = performance.now();
    const up = await stack.up();
    const t1 = performance.now();
    const preview = await stack.preview();
    const t2 = performance.now();
    if (up.summary.result !== 'succeeded') throw new Error(`${backend} up: ${up.summary.result}`);
    if ((up.summary.resourceChanges as Record<string, number>).create !== total + 1) throw new Error(`${backend} up created ${JSON.stringify(up.summary.resourceChanges)}`);
    if (Object.keys(preview.changeSummary).some((k) => k !== 'same')) throw new Error(`${backend} preview is not a no-op: ${JSON.stringify(preview.changeSummary)}`);
    return { round, backend, upSeconds: (t1 - t0) / 1000, previewSeconds: (t2 - t1) / 1000 };
  } finally {
    env.cleanup();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const rounds = arg('rounds', 2);
  const total = arg('resources', 1000);
  const pg = await startPostgres();
  const storeUrl = await pg.createDatabase('bench');
  const store = await openPostgresStore({ url: storeUrl });
  const token = (await createToken(store, { role: 'security-admin' })).token;
  await store.close();
  const port = await freePort();
  const proc = spawn(process.execPath, [join(ROOT, 'dist', 'provider', 'src', 'cli', 'main.js'), 'serve', '--listen', `127.0.0.1:${port}`, '--store', storeUrl], {
    env: { ...process.env, NODE_NO_WARNINGS: '1', MICROSEG_SECRET_KEY: process.env.MICROSEG_SECRET_KEY ?? require('node:crypto').randomBytes(32).toString('base64') },
    stdio: 'ignore',
  });
  const server = { url: `http://127.0.0.1:${port}` };
  for (let i = 0; i < 600 && (await axios.get(`${server.url}/readyz`, { validateStatus: () => true }).then((r) => r.status, () => 0)) !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  const runs: Run[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const order: Backend[] = round % 2 === 0 ? ['server', 'embedded'] : ['embedded', 'server'];
      for (const backend of order) {
        const run = await measure(backend, total, round, server, token);
        runs.push(run);
        process.stderr.write(`round ${round} ${backend.padEnd(9)} up ${run.upSeconds.toFixed(2)} s, no-op preview ${run.previewSeconds.toFixed(2)} s\n`);
      }
    }
  } finally {
    proc.kill('SIGTERM');
    await new Promise((resolve) => proc.on('exit', resolve));
    pg.destroy();
  }
  const of = (b: Backend, k: 'upSeconds' | 'previewSeconds') => mean(runs.filter((r) => r.backend === b).map((r) => r[k]));
  const seconds = {
    up: { server: round3(of('server', 'upSeconds')), embedded: round3(of('embedded', 'upSeconds')) },
    preview: { server: round3(of('server', 'previewSeconds')), embedded: round3(of('embedded', 'previewSeconds')) },
  };
  const ratio = { up: round3(seconds.up.server / seconds.up.embedded), preview: round3(seconds.preview.server / seconds.preview.embedded) };
  const result = {
    benchmark: 'team',
    date: new Date().toISOString(),
    resources: total,
    rounds,
    cpus: require('node:os').cpus().length,
    node: process.version,
    seconds,
    ratio,
    target: 'server / embedded <= 1.3',
    meetsTarget: { up: ratio.up <= 1.3, preview: ratio.preview <= 1.3 },
    runs,
  };
  process.stdout.write(
    [
      `team-mode benchmark: ${total} resources, ${rounds} rounds alternated (mean seconds)`,
      '| operation     | server, s | embedded, s | ratio |',
      '|---------------|-----------|-------------|-------|',
      `| pulumi up     | ${seconds.up.server.toFixed(2).padStart(9)} | ${seconds.up.embedded.toFixed(2).padStart(11)} | ${ratio.up.toFixed(2).padStart(5)} |`,
      `| no-op preview | ${seconds.preview.server.toFixed(2).padStart(9)} | ${seconds.preview.embedded.toFixed(2).padStart(11)} | ${ratio.preview.toFixed(2).padStart(5)} |`,
      '',
    ].join('\n'),
  );
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'team.json'), `${JSON.stringify(result, null, 2)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`team benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
