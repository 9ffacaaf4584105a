/**
 * N processes × M rounds against one data directory, with deliberate conflicts: every accepted write
 * must be present exactly once, every rejected one reported as a conflict, and nobody may see
 * "database is locked". The workers' SQLite busy timeout is a millisecond, so contention is not absorbed
 * inside SQLite and the store's own retry loop is exercised (the test checks that it ran).
 */
import { openSqliteStore } from '../../provider/src/store';
import { collect, spawnTs } from './fixtures/spawn';
import { cleanupTempDirs, tempDir } from './helpers';

const WORKERS = Number(process.env.MICROSEG_STORE_WORKERS ?? 6);
const ROUNDS = Number(process.env.MICROSEG_STORE_ROUNDS ?? 40);
const BUSY_TIMEOUT_MS = Number(process.env.MICROSEG_STORE_BUSY_TIMEOUT_MS ?? 1);

interface Report {
  id: number;
  own: number;
  sharedAccepted: number[];
  sharedRejected: number;
  raceWon: number[];
  raceLost: number[];
  errors: string[];
  busyRetries: number;
}

afterAll(cleanupTempDirs);

test(`${WORKERS} processes × ${ROUNDS} rounds of parallel and conflicting writes`, async () => {
  const dataDir = tempDir();
  const setup = await openSqliteStore({ dataDir });
  await setup.apply('dev', [{ op: 'put', kind: 'Shared', name: 'shared', spec: { id: -1 } }]);
  await setup.close();

  const children = Array.from({ length: WORKERS }, (_, id) => spawnTs('concurrency-worker.ts', [dataDir, String(id), String(ROUNDS), String(BUSY_TIMEOUT_MS)]));
  const outputs = children.map(collect);
  // Start everybody at once so the writes really overlap.
  await Promise.all(children.map((c) => new Promise<void>((resolve) => c.stdout?.once('data', () => resolve()))));
  for (const c of children) c.stdin?.end('go\n');
  const results = await Promise.all(outputs);
  const reports = results.map((r, i) => {
    expect({ worker: i, code: r.code, stderr: r.stderr }).toEqual({ worker: i, code: 0, stderr: '' });
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Report;
  });

  expect(reports.flatMap((r) => r.errors)).toEqual([]);
  // The writes really contended: operations found the store busy and were retried, and still succeeded.
  const busyRetries = reports.reduce((n, r) => n + r.busyRetries, 0);
  expect(busyRetries).toBeGreaterThan(0);
  process.stdout.write(`concurrency: ${WORKERS} workers, busy timeout ${BUSY_TIMEOUT_MS} ms, ${busyRetries} busy retries\n`);
  const store = await openSqliteStore({ dataDir });
  try {
    // Own objects: all accepted, each present exactly once at revision 1.
    const own = await store.list('dev', { kind: 'Own' });
    expect(reports.reduce((n, r) => n + r.own, 0)).toBe(WORKERS * ROUNDS);
    expect(own).toHaveLength(WORKERS * ROUNDS);
    expect(own.every((o) => o.revision === 1)).toBe(true);

    // Shared object: accepted writes got distinct, gap-free revisions 2..1+A; rejected ones were reported.
    const accepted = reports.flatMap((r) => r.sharedAccepted).sort((a, b) => a - b);
    const rejected = reports.reduce((n, r) => n + r.sharedRejected, 0);
    expect(accepted.length + rejected).toBe(WORKERS * ROUNDS);
    expect(accepted).toEqual(Array.from({ length: accepted.length }, (_, i) => i + 2));
    const shared = await store.get('dev', 'Shared', 'shared');
    expect(shared?.revision).toBe(accepted.length + 1);
    const sharedLog = await store.changes('dev', { kind: 'Shared', name: 'shared' });
    expect(sharedLog.map((c) => c.revision)).toEqual([1, ...accepted]);
    const winner = reports.find((r) => r.sharedAccepted.includes(accepted.length + 1));
    expect(shared?.spec.id).toBe(winner?.id);

    // Create races: exactly one winner per round, the others told so.
    for (let i = 0; i < ROUNDS; i++) {
      const winners = reports.filter((r) => r.raceWon.includes(i));
      expect(winners).toHaveLength(1);
      expect(reports.filter((r) => r.raceLost.includes(i))).toHaveLength(WORKERS - 1);
      expect((await store.get('dev', 'Race', `race-${i}`))?.spec).toEqual({ id: winners[0].id });
    }
    expect(await store.changes('dev')).toHaveLength(1 + WORKERS * ROUNDS + accepted.length + ROUNDS);
    expect(await store.integrityCheck()).toEqual({ ok: true, problems: [] });
  } finally {
    await store.close();
  }
}, 60_000);
