/**
 * Replicas, load and faults on loopback: two `microseg serve` processes on one PostgreSQL stay coherent
 * (a write acknowledged by one is what the other's next traceflow sees), 8 clients × 200 writes across
 * both survive a `kill -9` of one replica (0 acknowledged writes lost, 0 applied twice, clients move to
 * the survivor), and a PostgreSQL restart under load is reported by /readyz and recovered from without
 * restarting the server. Figures (writes/s, p50/p99 latency, visibility) are printed, not asserted.
 *
 * MICROSEG_LOAD_CLIENTS / MICROSEG_LOAD_WRITES scale the load (defaults 8 and 200).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import axios from 'axios';
import { RemoteBackend } from '../../provider/src/backend/remote';
import { openPostgresStore, type PostgresStore } from '../../provider/src/store';
import { createToken } from '../../provider/src/server/tokens';
import { freePort, startPostgres, type PostgresCluster } from '../support/postgres';
import { ROOT } from './harness';

jest.setTimeout(900_000);

const CLIENTS = Number(process.env.MICROSEG_LOAD_CLIENTS ?? 8);
const WRITES = Number(process.env.MICROSEG_LOAD_WRITES ?? 200);

interface Replica {
  url: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  log: () => string;
}

let pg: PostgresCluster;
let storeUrl: string;
let store: PostgresStore;
let token: string;
const replicas: Replica[] = [];

async function startReplica(): Promise<Replica> {
  const port = await freePort();
  const proc = spawn(process.execPath, [join(ROOT, 'dist', 'provider', 'src', 'cli', 'main.js'), 'serve', '--listen', `127.0.0.1:${port}`, '--store', storeUrl], {
    env: { ...process.env, NODE_NO_WARNINGS: '1', MICROSEG_SECRET_KEY: process.env.MICROSEG_SECRET_KEY ?? Buffer.alloc(32, 7).toString('base64') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => (out += String(d)));
  proc.stderr?.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await axios.get(`${url}/readyz`, { validateStatus: () => true, timeout: 1000 }).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`replica on ${port} did not become ready:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const r = { url, proc, exited, log: () => out };
  replicas.push(r);
  return r;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

const vm = (name: string, i: number) => ({ name, interfaces: [{ ip: `10.${100 + ((i >> 16) & 0x3f)}.${(i >> 8) & 0xff}.${i & 0xff}` }], labels: { load: 'yes' } });

beforeAll(async () => {
  pg = await startPostgres();
  storeUrl = await pg.createDatabase('replicas');
  store = await openPostgresStore({ url: storeUrl });
  token = (await createToken(store, { role: 'security-admin' })).token;
}, 120_000);

afterAll(async () => {
  for (const r of replicas) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
  await store?.close();
  pg?.destroy();
});

test('two replicas are coherent: what one acknowledges, the other\'s next traceflow sees', async () => {
  const [a, b] = [await startReplica(), await startReplica()];
  const client = (url: string) => new RemoteBackend({ endpoint: url, token, environment: 'coherent', defaultAction: 'drop' });
  const [ca, cb] = [client(a.url), client(b.url)];
  const lags: number[] = [];
  try {
    for (let i = 1; i <= 20; i++) {
      const writer = i % 2 ? ca : cb;
      const reader = i % 2 ? cb : ca;
      await writer.put('VirtualMachine', `vm-${i}`, vm(`vm-${i}`, i), 'create');
      const acked = Date.now();
      // No waiting: the very next call on the other replica must already see the object.
      const trace = await reader.invoke('traceflow', { source: `vm-${i}`, destination: '10.0.0.1', protocol: 'tcp', port: 80 });
      lags.push(Date.now() - acked);
      expect(trace.verdict).toBe('drop');
    }
  } finally {
    ca.close();
    cb.close();
  }
  process.stdout.write(`replica visibility: acknowledged on one replica, traceflow on the other: p50 ${percentile(lags, 50)} ms, max ${Math.max(...lags)} ms (20 writes)\n`);
});

test(`load: ${CLIENTS} clients × ${WRITES} writes across 2 replicas, one killed with SIGKILL mid-way: no acknowledged write lost, none applied twice`, async () => {
  const [a, b] = replicas;
  const total = CLIENTS * WRITES;
  const acknowledged: string[] = [];
  const latencies: number[] = [];
  let killedAt = -1;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      // Each client prefers a different replica first, and moves on when its replica dies.
      const endpoint = c % 2 ? `${b.url},${a.url}` : `${a.url},${b.url}`;
      const client = new RemoteBackend({ endpoint, token, environment: 'load', defaultAction: 'drop', retryBudgetMs: 60_000, timeoutMs: 30_000 });
      try {
        for (let w = 0; w < WRITES; w++) {
          const name = `c${c}-w${w}`;
          const t0 = Date.now();
          await client.put('VirtualMachine', name, vm(name, c * WRITES + w + 1), 'create');
          latencies.push(Date.now() - t0);
          acknowledged.push(name);
          if (killedAt < 0 && acknowledged.length >= total / 2) {
            killedAt = acknowledged.length;
            a.proc.kill('SIGKILL');
          }
        }
      } finally {
        client.close();
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  expect(await a.exited).toBeNull();
  expect(acknowledged).toHaveLength(total);
  const stored = new Set((await store.list('load', { kind: 'VirtualMachine' })).map((o) => o.name));
  expect(acknowledged.filter((n) => !stored.has(n))).toEqual([]);
  // Applied once: every object was created exactly once and never rewritten by a retry.
  const log = (await store.changes('load', { kind: 'VirtualMachine' })).map((c) => `${c.op} ${c.name}`);
  expect(log.filter((l) => !l.startsWith('create '))).toEqual([]);
  expect(log).toHaveLength(total);
  expect((await store.integrityCheck()).ok).toBe(true);
  process.stdout.write(
    `load: ${total} writes by ${CLIENTS} clients over 2 replicas (one SIGKILLed after ${killedAt}) in ${seconds.toFixed(1)} s: ${(total / seconds).toFixed(1)} writes/s, latency p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${Math.max(...latencies)} ms\n`,
  );
});

test('PostgreSQL restarted under load: the replica reports unavailable on /readyz, then recovers without a restart', async () => {
  const b = replicas.find((r) => r.proc.exitCode === null && r.proc.signalCode === null) ?? (await startReplica());
  const client = new RemoteBackend({ endpoint: b.url, token, environment: 'restart', defaultAction: 'drop', retryBudgetMs: 120_000 });
  const acknowledged: string[] = [];
  let writing = true;
  const writer = (async () => {
    for (let w = 0; writing || w < 20; w++) {
      const name = `r-${w}`;
      await client.put('VirtualMachine', name, vm(name, w + 1), 'create');
      acknowledged.push(name);
      if (w >= 200) break;
    }
  })();
  while (acknowledged.length < 10) await new Promise((r) => setTimeout(r, 20));
  pg.stop('fast');
  let sawUnavailable = false;
  const deadline = Date.now() + 30_000;
  while (!sawUnavailable && Date.now() < deadline) {
    sawUnavailable = (await axios.get(`${b.url}/readyz`, { validateStatus: () => true })).status === 503;
    if (!sawUnavailable) await new Promise((r) => setTimeout(r, 50));
  }
  const downAt = acknowledged.length;
  await new Promise((r) => setTimeout(r, 1000));
  pg.start();
  let ready = false;
  while (!ready && Date.now() < deadline + 30_000) {
    ready = (await axios.get(`${b.url}/readyz`, { validateStatus: () => true })).status === 200;
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  writing = false;
  await writer;
  client.close();
  expect(sawUnavailable).toBe(true);
  expect(ready).toBe(true);
  expect(b.proc.exitCode).toBeNull();
  expect(acknowledged.length).toBeGreaterThan(downAt);
  const stored = new Set((await store.list('restart')).map((o) => o.name));
  expect(acknowledged.filter((n) => !stored.has(n))).toEqual([]);
  expect((await store.changes('restart', { kind: 'VirtualMachine' })).filter((c) => c.op !== 'create')).toEqual([]);
  process.stdout.write(`restart: ${acknowledged.length} writes acknowledged, ${downAt} before the outage; readyz 503 during it, 200 after\n`);
});
