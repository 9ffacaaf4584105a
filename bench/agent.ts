/**
 * Agent benchmark: a pod add from the store write to the kernel, through the real agent
 * (`node dist/bench/agent.js [--runs 100] [--warmup 20] [--point pod:c5/ns-53/w1-0] [--flows]`, as root).
 *
 * The bench estate (bench/engine.ts, same generator and seed: 95,000 objects) is written into a SQLite
 * store; `microseg agent --enforcement-point POINT` (default: the ordinary point with the most in-rules at
 * scale 1) runs in its own process, started through provider/bin/microseg as users start it, in a network
 * namespace, writing through microseg-nft, its status going back to the store; `--flows` also has it
 * read flow records (off by default: counters are read either way). Then, again and again, this process
 * adds a pod to that point's own workload (its pods are in the groups the point's rules name) with one
 * store write, and the time from the write's commit to the agent's log line "updated set elements" (the
 * netlink batch acknowledged by the kernel) is taken. Writes come at random gaps (20–120 ms), as churn
 * does, so a write may land while the agent is still busy with the previous one. The first `--warmup`
 * pod adds are reported apart (see WARMUP).
 *
 * Results go to bench/results/agent.json. Figures, not assertions.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { findNftWriter } from '../provider/src/agent';
import { validateSpec } from '../provider/src/engine';
import { openSqliteStore, type JsonObject, type WriteOp } from '../provider/src/store';
import { generate } from './engine';
import { figures, log, median, now, p99 } from './figures';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1]! : fallback);
const RUNS = Number(arg('--runs', '100')) || 100;
/**
 * Pod adds right after the agent started, reported apart: until V8 has optimized the incremental paths
 * (they differ from the first, cold compile) a pass costs two to five times a steady one.
 */
const WARMUP = Math.max(0, Number(arg('--warmup', '20')) || 0);
const POINT = arg('--point', 'pod:c5/ns-53/w1-0');
/** `--flows`: the agent also reads flow records (conntrack, dropped-flow sets) at its observations. */
const FLOWS = argv.includes('--flows');
/** The launcher users run (provider/bin/microseg: the project's node with the agent's V8 flags). */
const LAUNCHER = path.join(__dirname, '..', '..', 'provider', 'bin', 'microseg');
const ENV = 'bench';
const OUT = path.join(__dirname, '..', '..', 'bench', 'results', 'agent.json');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const { results, record } = figures();

async function main(): Promise<void> {
  const binary = findNftWriter();
  if (process.getuid?.() !== 0 || !binary) {
    log('agent bench skipped: needs root and .tools/bin/microseg-nft (scripts/setup.sh builds it)');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-bench-agent-'));
  const ns = `msba${process.pid % 10000}`;
  let agent: ChildProcess | undefined;
  const store = await openSqliteStore({ dataDir: dir });
  try {
    // The estate, as the provider stores it: validated specs, in dependency order, in batches.
    let t = now();
    const workloads = new Map<string, Record<string, unknown>>();
    let batch: WriteOp[] = [];
    let n = 0;
    for (const o of generate()) {
      const named = o.kind !== 'Namespace' && o.kind !== 'Workload' && o.spec.name === undefined ? { ...o.spec, name: o.name } : o.spec;
      const r = validateSpec(o.kind, named);
      if (!r.ok) continue;
      if (o.kind === 'Workload') workloads.set(o.name, r.value as Record<string, unknown>);
      batch.push({ op: 'put', kind: o.kind, name: o.name, spec: r.value as unknown as JsonObject });
      if (batch.length === 5000) {
        await store.apply(ENV, batch);
        n += batch.length;
        batch = [];
      }
    }
    if (batch.length) await store.apply(ENV, batch);
    n += batch.length;
    record('store: estate written', (now() - t) / 1000, `s (${n} objects)`);

    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // `microseg agent` itself, in its own process, through the launcher users run (with its V8 flags);
    // its log lines (stderr) are the clock: a line is read here as soon as the agent writes it.
    const waiters: { test: (line: string) => boolean; resolve: (at: number) => void }[] = [];
    const args = ['netns', 'exec', ns, LAUNCHER, 'agent', '--enforcement-point', POINT, '--data-dir', dir, '-e', ENV, '--default-action', 'drop', ...(FLOWS ? [] : ['--no-flows'])];
    agent = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MICROSEG_NFT_WRITER: binary } });
    const tail: string[] = [];
    const exited = new Promise<never>((_, reject) => agent!.once('exit', (code) => reject(new Error(`microseg agent exited (${code}): ${tail.join('\n')}`))));
    exited.catch(() => undefined);
    readline.createInterface({ input: agent.stderr! }).on('line', (line) => {
      const at = now();
      tail.push(line);
      if (tail.length > 20) tail.shift();
      for (const w of [...waiters]) if (w.test(line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(at));
    });
    const seen = (test: (line: string) => boolean) => Promise.race([new Promise<number>((resolve) => waiters.push({ test, resolve })), exited]);
    t = now();
    await seen((l) => / applied table /.test(l));
    record('agent: first realization (process start, world from the store, cold compile, table swap)', (now() - t) / 1000, 's');

    const workload = POINT.startsWith('pod:') ? POINT.slice(4, POINT.lastIndexOf('-')) : 'c0/ns-0/w0';
    const spec = workloads.get(workload);
    if (!spec) throw new Error(`${workload}: no such workload in the estate`);
    let replicas = spec.replicas as number;
    const latency: number[] = [];
    const writes: number[] = [];
    let swaps = 0;
    const warmup: number[] = [];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      replicas++;
      const from = await store.lastSeq(ENV);
      const w0 = now();
      await store.apply(ENV, [{ op: 'put', kind: 'Workload', name: workload, spec: { ...spec, replicas } as unknown as JsonObject }]);
      const committed = now();
      if (i >= WARMUP) writes.push(committed - w0);
      // The agent's revision is the change-log position of the newest desired-state write it compiled.
      const seq = (await store.changes(ENV, { afterSeq: from })).find((c) => c.kind === 'Workload')!.seq;
      const done = await seen((l) => {
        const m = / (updated set elements of|applied) table .* revision (\d+)$/.exec(l);
        if (!m || Number(m[2]) < seq) return false;
        if (m[1] === 'applied') swaps++;
        return true;
      });
      (i < WARMUP ? warmup : latency).push(done - committed);
      await sleep(20 + Math.random() * 100);
    }
    if (warmup.length) {
      record(`pod add: the first ${warmup.length} after the agent started (warm-up), median`, median(warmup), 'ms');
      record(`pod add: the first ${warmup.length} after the agent started (warm-up), worst`, Math.max(...warmup), 'ms');
    }
    record(`pod add: store commit → kernel elements, median of ${RUNS}`, median(latency), 'ms');
    record(`pod add: store commit → kernel elements, p99 of ${RUNS}`, p99(latency), 'ms', '≤ 10 ms p99');
    record('pod add: store commit → kernel elements, worst', Math.max(...latency), 'ms');
    record('pod add: the store write itself (commit), median', median(writes), 'ms');
    record('pod add: table swaps instead of element updates', swaps, `of ${RUNS}`);
    // `ip netns exec` and the launcher exec the agent's node: the child's pid is the agent's.
    const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${agent.pid}/status`, 'utf8'));
    if (hwm) record('agent: peak resident memory', Number(hwm[1]) / 1024, 'MB');
  } finally {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => agent!.once('exit', r));
    }
    await store.close();
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      // not made
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, `${JSON.stringify({ runs: RUNS, point: POINT, flows: FLOWS, results }, null, 2)}\n`);
  log(`results: ${OUT}`);
}

main().catch((err: unknown) => {
  log((err as Error).stack ?? String(err));
  process.exit(1);
});
