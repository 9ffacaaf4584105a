/**
 * Durability under power loss. A SIGKILL keeps the page cache, so the crash test cannot see a missing
 * fsync; here the writer runs with a preloaded library (fixtures/powerloss.c) that journals what every
 * write to the data directory overwrote and every fsync. After the kill the test undoes every write made
 * since each file's last sync: the disk as a power failure at that instant may leave it. Every batch the
 * writer acknowledged (printed after its commit returned) must still be there, whole.
 *
 * Needs a C compiler (cc) to build the library; scripts/setup.sh installs gcc when it is missing.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSqliteStore } from '../../provider/src/store';
import { collect, spawnTs } from './fixtures/spawn';
import { cleanupTempDirs, tempDir } from './helpers';

const ITERATIONS = Number(process.env.MICROSEG_POWERLOSS_ITERATIONS ?? 12);
const ITEMS_PER_BATCH = 5; // keep in sync with fixtures/crash-worker.ts

let library: string;
beforeAll(() => {
  library = path.join(tempDir('microseg-powerloss-lib-'), 'powerloss.so');
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', library, path.join(__dirname, 'fixtures', 'powerloss.c'), '-ldl', '-lpthread'], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`cannot build the power-loss library with cc (scripts/setup.sh installs gcc): ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
  }
});
// A test that fails or times out must not leave a writer running.
const running = new Set<ChildProcess>();
afterEach(() => {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
});
afterAll(cleanupTempDirs);

interface Undo {
  type: 'W' | 'T' | 'S';
  file: string;
  offset: number;
  oldSize: number;
  data: Buffer;
}

function readJournal(file: string): Undo[] {
  const buf = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
  const out: Undo[] = [];
  for (let p = 0; p < buf.length; ) {
    const type = String.fromCharCode(buf[p]) as Undo['type'];
    const pathLen = buf.readUInt32LE(p + 1);
    const f = buf.toString('utf8', p + 5, p + 5 + pathLen);
    p += 5 + pathLen;
    const offset = Number(buf.readBigUInt64LE(p));
    const oldSize = Number(buf.readBigUInt64LE(p + 8));
    const dataLen = buf.readUInt32LE(p + 16);
    out.push({ type, file: f, offset, oldSize, data: buf.subarray(p + 20, p + 20 + dataLen) });
    p += 20 + dataLen;
  }
  return out;
}

/** Undoes, newest first, every journaled write and truncation made after its file's last sync. Returns how many. */
function losePower(journal: string): number {
  const records = readJournal(journal);
  const lastSync = new Map<string, number>();
  records.forEach((r, i) => r.type === 'S' && lastSync.set(r.file, i));
  let undone = 0;
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i];
    if (r.type === 'S' || i < (lastSync.get(r.file) ?? -1)) continue;
    const fd = fs.openSync(r.file, 'r+');
    try {
      if (r.data.length > 0) fs.writeSync(fd, r.data, 0, r.data.length, r.offset);
      fs.ftruncateSync(fd, r.oldSize);
    } finally {
      fs.closeSync(fd);
    }
    undone++;
  }
  fs.rmSync(journal, { force: true });
  return undone;
}

/** Runs the crash worker under the library until it acknowledged `acks` batches, kills it, and cuts the power. */
async function writeThenLosePower(dataDir: string, id: string, acks: number, synchronous?: 'normal'): Promise<{ acknowledged: string[]; undone: number }> {
  const tag = `it${id}`; // the worker names its batches it<id>-b<n>
  const journal = path.join(path.dirname(library), `${tag}.journal`);
  const child = spawnTs('crash-worker.ts', [dataDir, id, ...(synchronous ? [synchronous] : [])], {
    env: { LD_PRELOAD: library, POWERLOSS_DIR: dataDir, POWERLOSS_LOG: journal },
  });
  running.add(child);
  const done = collect(child);
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.split('\n').filter((l) => l.startsWith(`${tag}-`)).length >= acks) resolve();
    });
    child.on('exit', () => reject(new Error(`the writer exited before acknowledging ${acks} batches`)));
  });
  child.kill('SIGKILL');
  const { stdout, stderr, signal } = await done;
  running.delete(child);
  expect({ stderr, signal }).toEqual({ stderr: '', signal: 'SIGKILL' });
  return { acknowledged: stdout.split('\n').filter((l) => l.startsWith(`${tag}-`)), undone: losePower(journal) };
}

async function batchesOf(dataDir: string): Promise<{ batches: string[]; store: Awaited<ReturnType<typeof openSqliteStore>> }> {
  const store = await openSqliteStore({ dataDir });
  return { store, batches: (await store.list('crash', { kind: 'Batch' })).map((o) => o.name) };
}

test(`power lost right after acknowledged commits, ${ITERATIONS} times: every acknowledged batch survives, whole`, async () => {
  const dataDir = tempDir();
  let undoneTotal = 0;
  for (let it = 0; it < ITERATIONS; it++) {
    const tag = `it${it}`;
    // 1 to 4 acknowledged batches, then the kill lands wherever the writer is.
    const { acknowledged, undone } = await writeThenLosePower(dataDir, String(it), 1 + (it % 4));
    undoneTotal += undone;
    const { store, batches } = await batchesOf(dataDir);
    try {
      expect(await store.integrityCheck()).toEqual({ ok: true, problems: [] });
      const present = batches.filter((b) => b.startsWith(`${tag}-`));
      for (const b of acknowledged) expect(present).toContain(b);
      const unacknowledged = present.filter((b) => !acknowledged.includes(b));
      expect(unacknowledged.every((b) => b === `${tag}-b${acknowledged.length}`)).toBe(true);
      const perBatch = new Map<string, number>();
      for (const item of await store.list('crash', { kind: 'Item' })) perBatch.set(String(item.spec.batch), (perBatch.get(String(item.spec.batch)) ?? 0) + 1);
      expect([...perBatch.keys()].sort()).toEqual([...batches].sort());
      for (const n of perBatch.values()) expect(n).toBe(ITEMS_PER_BATCH);
      expect((await store.get('crash', 'Counter', 'c'))?.revision ?? 0).toBe(batches.length);
    } finally {
      await store.close();
    }
  }
  // The simulation did cut something: unsynced writes (of the batch in flight) were undone.
  expect(undoneTotal).toBeGreaterThan(0);
}, 120_000);

test('the simulation bites: with synchronous=normal, power loss takes acknowledged batches with it', async () => {
  // Guards the test above against a library that journals nothing: NORMAL does not sync the WAL on commit.
  const dataDir = tempDir();
  await (await openSqliteStore({ dataDir })).close();
  const { acknowledged, undone } = await writeThenLosePower(dataDir, 'normal', 3, 'normal');
  expect(undone).toBeGreaterThan(0);
  const { store, batches } = await batchesOf(dataDir);
  try {
    expect(acknowledged.filter((b) => !batches.includes(b)).length).toBeGreaterThan(0);
  } finally {
    await store.close();
  }
}, 60_000);
