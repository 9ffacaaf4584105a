/**
 * Start-up benchmark of the bundled backend: a store holding N objects (default 100,000: namespaces,
 * workloads, VMs, groups and policies of one environment) is opened by a fresh process, which rebuilds
 * the engine's world from it and answers one traceflow — what every `pulumi up` and CLI call does first.
 *
 * Run: npm run build && node dist/bench/startup.js [--objects 100000]
 * Prints a table and writes bench/results/startup.json. Target (issue 4): ready in ≤ 3 s at 100k objects.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedBackend } from '../provider/src/backend';
import { openSqliteStore, WriteOp } from '../provider/src/store';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

/** A deterministic estate of `total` objects. */
function* estate(total: number): Generator<WriteOp> {
  const put = (kind: string, name: string, spec: Record<string, unknown>): WriteOp => ({ op: 'put', kind, name, spec });
  const namespaces = Math.max(1, Math.floor(total / 100));
  const groups = Math.max(1, Math.floor(total / 20));
  const policies = Math.max(1, Math.floor(total / 8));
  const rest = total - 1 - namespaces - groups - policies;
  const workloads = Math.floor(rest / 2);
  const vms = rest - workloads;
  yield put('KubernetesCluster', 'c1', { name: 'c1', podCidr: '10.0.0.0/8', serviceCidr: '172.30.0.0/16', networkMode: 'flat', nodes: [{ name: 'n1', ip: '192.168.0.1' }] });
  for (let i = 0; i < namespaces; i++) yield put('Namespace', `c1/ns${i}`, { name: `ns${i}`, cluster: 'c1', labels: { team: `t${i % 50}` } });
  for (let i = 0; i < workloads; i++)
    yield put('Workload', `c1/ns${i % namespaces}/w${i}`, { name: `w${i}`, cluster: 'c1', namespace: `ns${i % namespaces}`, replicas: 1, labels: { app: `app${i % 1000}`, tier: ['web', 'api', 'db'][i % 3] } });
  for (let i = 0; i < vms; i++) {
    const ip = 0xac100000 + i + 1; // 172.16.0.0/12
    yield put('VirtualMachine', `vm${i}`, { name: `vm${i}`, interfaces: [{ ip: [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.') }], labels: { app: `app${i % 1000}`, env: i % 2 ? 'prod' : 'dev' } });
  }
  for (let i = 0; i < groups; i++)
    yield put('SecurityGroup', `g${i}`, { name: `g${i}`, podSelectors: [{ podSelector: { matchLabels: { app: `app${i % 1000}` } } }], vmSelectors: [{ matchLabels: { app: `app${i % 1000}` } }] });
  const categories = ['emergency', 'infrastructure', 'environment', 'application'];
  for (let i = 0; i < policies; i++)
    yield put('FirewallPolicy', `p${i}`, {
      name: `p${i}`,
      category: categories[i % 4],
      priority: i,
      rules: [
        { name: 'allow', action: 'allow', sources: [{ group: `g${i % groups}` }], destinations: [{ group: `g${(i + 1) % groups}` }], services: [{ protocol: 'tcp', ports: [443] }] },
        { name: 'deny', action: 'drop', direction: 'in', destinations: [{ group: `g${(i + 1) % groups}` }] },
      ],
    });
}

async function populate(dataDir: string, total: number): Promise<number> {
  const started = process.hrtime.bigint();
  const store = await openSqliteStore({ dataDir });
  let batch: WriteOp[] = [];
  for (const op of estate(total)) {
    batch.push(op);
    if (batch.length === 2000) {
      await store.apply('bench', batch);
      batch = [];
    }
  }
  if (batch.length) await store.apply('bench', batch);
  await store.close();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** The child: open, rebuild, answer one traceflow; prints seconds per phase as JSON. */
async function child(dataDir: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  const backend = new EmbeddedBackend({ dataDir, environment: 'bench', defaultAction: 'drop' });
  const world = await backend.currentWorld();
  const t1 = process.hrtime.bigint();
  const trace = await backend.invoke('traceflow', { source: 'c1/ns1/w1', destination: 'vm2', protocol: 'tcp', port: 443 });
  const t2 = process.hrtime.bigint();
  process.stdout.write(
    JSON.stringify({
      loadSeconds: Number(t1 - t0) / 1e9,
      firstTraceflowSeconds: Number(t2 - t1) / 1e9,
      objects: [...world.objects()].length,
      verdict: trace.verdict,
      heapMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    }),
  );
  backend.close();
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]);
  const total = arg('objects', 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'microseg-startup-'));
  try {
    const populateSeconds = await populate(dir, total);
    const runs = [0, 1, 2].map(() => JSON.parse(execFileSync(process.execPath, [__filename, '--child', dir], { encoding: 'utf8', maxBuffer: 1 << 20 })) as { loadSeconds: number; firstTraceflowSeconds: number; objects: number; verdict: string; heapMiB: number });
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ready = median(runs.map((r) => r.loadSeconds + r.firstTraceflowSeconds));
    const result = {
      objects: total,
      loadedObjects: runs[0].objects,
      populateSeconds,
      loadSecondsMedian: median(runs.map((r) => r.loadSeconds)),
      firstTraceflowSecondsMedian: median(runs.map((r) => r.firstTraceflowSeconds)),
      readySecondsMedian: ready,
      heapMiB: runs[0].heapMiB,
      target: { readySeconds: 3, met: ready <= 3 },
      runs,
    };
    mkdirSync(join(__dirname, '..', '..', 'bench', 'results'), { recursive: true });
    writeFileSync(join(__dirname, '..', '..', 'bench', 'results', 'startup.json'), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      [
        `store start-up at ${total} objects (median of ${runs.length} fresh processes)`,
        `  load store + rebuild world : ${result.loadSecondsMedian.toFixed(2)} s`,
        `  first traceflow            : ${result.firstTraceflowSecondsMedian.toFixed(2)} s`,
        `  ready                      : ${ready.toFixed(2)} s (target ≤ 3 s: ${ready <= 3 ? 'met' : `missed by ${(ready - 3).toFixed(2)} s`})`,
        `  heap                       : ${result.heapMiB} MiB`,
        '',
      ].join('\n'),
    );
  } finally {
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true }); else process.stdout.write(`kept ${dir}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
