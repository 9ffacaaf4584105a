/**
 * Store benchmark. Run: node -r ./test/store/fixtures/register.js bench/store.ts [--objects 100000]
 * Prints JSON: single-process and multi-process writes per second (one object per transaction, the
 * worst case, with synchronous=FULL), batched writes per second, and start-up time at N objects
 * (open + read every object, in a fresh process, which is what the provider does to rebuild the engine).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSqliteStore } from '../provider/src/store/sqlite';
import type { WriteOp } from '../provider/src/store/types';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

function spec(i: number): Record<string, unknown> {
  return {
    category: 'application',
    priority: i % 100,
    appliedTo: [`group-${i % 50}`],
    rules: [{ name: `r${i}`, action: 'allow', direction: 'in', sources: [`group-${(i + 1) % 50}`], services: [{ protocol: 'tcp', ports: [443, '8000-8100'] }] }],
    labels: { app: `app-${i % 200}`, tier: 'web' },
  };
}

async function writeLoop(dataDir: string, prefix: string, n: number): Promise<number> {
  const store = await openSqliteStore({ dataDir });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await store.apply('bench', [{ op: 'put', kind: 'Policy', name: `${prefix}-${i}`, spec: spec(i) }]);
  const ms = performance.now() - t0;
  await store.close();
  return ms;
}

function runChild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, __filename, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${code}`))));
  });
}

async function child(): Promise<void> {
  const [, mode, dataDir, a, b] = process.argv.slice(process.argv.indexOf('--child'));
  if (mode === 'write') {
    process.stdout.write(String(await writeLoop(dataDir, a, Number(b))));
  } else if (mode === 'startup') {
    const t0 = performance.now();
    const store = await openSqliteStore({ dataDir });
    const tOpen = performance.now();
    const objects = await store.list('bench');
    const tRead = performance.now();
    await store.close();
    process.stdout.write(JSON.stringify({ openMs: tOpen - t0, readAllMs: tRead - tOpen, objects: objects.length }));
  }
}

async function main(): Promise<void> {
  const objects = arg('objects', 100_000);
  const writes = arg('writes', 2000);
  const procs = arg('procs', 4);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-bench-'));
  try {
    const singleMs = await writeLoop(path.join(root, 'single'), 's', writes);

    const multiDir = path.join(root, 'multi');
    await (await openSqliteStore({ dataDir: multiDir })).close();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: procs }, (_, p) => runChild(['--child', 'write', multiDir, `p${p}`, String(writes / procs)])));
    const multiMs = performance.now() - t0;

    const bigDir = path.join(root, 'big');
    const big = await openSqliteStore({ dataDir: bigDir });
    const tb = performance.now();
    for (let i = 0; i < objects; i += 1000) {
      const ops: WriteOp[] = [];
      for (let j = i; j < Math.min(objects, i + 1000); j++) ops.push({ op: 'put', kind: 'Policy', name: `p-${j}`, spec: spec(j) });
      await big.apply('bench', ops);
    }
    const batchedMs = performance.now() - tb;
    await big.close();
    const startup = JSON.parse(await runChild(['--child', 'startup', bigDir])) as { openMs: number; readAllMs: number; objects: number };
    const fileBytes = fs.statSync(path.join(bigDir, 'microseg.db')).size;

    const round = (x: number): number => Math.round(x);
    process.stdout.write(
      `${JSON.stringify(
        {
          node: process.version,
          cpus: os.cpus().length,
          synchronous: 'full',
          singleProcess: { writes, writesPerSec: round((writes / singleMs) * 1000) },
          multiProcess: { processes: procs, writes, writesPerSec: round((writes / multiMs) * 1000) },
          batched: { objects, batchSize: 1000, writesPerSec: round((objects / batchedMs) * 1000) },
          startup: { objects: startup.objects, openMs: round(startup.openMs), readAllMs: round(startup.readAllMs), totalMs: round(startup.openMs + startup.readAllMs), fileMB: round(fileBytes / 1e6) },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

(process.argv.includes('--child') ? child() : main()).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
