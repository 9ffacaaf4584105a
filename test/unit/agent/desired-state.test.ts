import { StoreDesiredState } from '../../../provider/src/agent';
import type { Store } from '../../../provider/src/store';

/**
 * How the agent hears of desired-state writes in the store. SQLite's watch fires when a write's first
 * page reaches the WAL, before the commit is visible to readers: the agent must look again soon, not a
 * poll interval later (in a separate process that race made every pod add wait ~20 ms).
 */

interface Change {
  readonly seq: number;
  readonly kind: string;
}

/**
 * A store whose change log shows `log` from the `visibleAt`-th look on (or what `lookAt` returns for a
 * look), and whose watch can be fired by the test.
 */
function fakeStore(log: Change[], visibleAt: number, lookAt?: (n: number, afterSeq: number) => Change[] | undefined): { store: Store; fire: () => void; looks: () => number } {
  let looks = 0;
  let listener: (() => void) | undefined;
  const store = {
    changes: async (_env: string, o: { afterSeq: number }) => {
      const n = ++looks;
      return lookAt?.(n, o.afterSeq) ?? (n >= visibleAt ? log.filter((c) => c.seq > o.afterSeq) : []);
    },
    watch: (onChange: () => void) => {
      listener = onChange;
      return () => (listener = undefined);
    },
  } as unknown as Store;
  return { store, fire: () => listener?.(), looks: () => looks };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/**
 * An agent's wait for a change on `store`: its first look, then `fire` (a write heard), then `ms` of
 * (fake) time. Whether the wait ended by then; `end` stops it.
 */
async function hearWrite(store: Store, fire: () => void, ms: number): Promise<{ resolved: boolean; end: () => Promise<unknown> }> {
  const source = new StoreDesiredState(store, 'env', 'drop', 60_000);
  const ac = new AbortController();
  let resolved = false;
  const waiting = source.waitForChange(0, 600_000, ac.signal).then(() => (resolved = true));
  await jest.advanceTimersByTimeAsync(0);
  fire();
  await jest.advanceTimersByTimeAsync(ms);
  return { resolved, end: () => (ac.abort(), waiting) };
}

test('a write heard before its commit is visible is found within milliseconds, not a poll interval later', async () => {
  // Look 1: the wait's first look; look 2: the one the watch triggers (nothing visible yet); then visible.
  const { store, fire, looks } = fakeStore([{ seq: 7, kind: 'Workload' }], 3);
  const wait = await hearWrite(store, fire, 20);
  expect(wait.resolved).toBe(true);
  expect(looks()).toBe(3);
  await wait.end();
});

test('a heard write that was only a realization status does not keep looking quickly', async () => {
  const { store, fire, looks } = fakeStore([{ seq: 3, kind: 'RealizationStatus' }], 2);
  const wait = await hearWrite(store, fire, 1000);
  // The first look, the one the watch triggered (the status): then only the poll interval.
  expect(looks()).toBe(2);
  expect(wait.resolved).toBe(false);
  await wait.end();
});

test('a write heard while a look finds only a status is still looked for quickly', async () => {
  // Look 2 (the watch's) returns the agent's own status, and meanwhile the desired write is heard; look 3
  // does not see it yet; from look 4 it is there.
  let fireNow: () => void = () => undefined;
  const { store, fire, looks } = fakeStore([{ seq: 3, kind: 'RealizationStatus' }, { seq: 4, kind: 'Workload' }], 4, (n, afterSeq) => {
    if (n === 2) {
      fireNow();
      return [{ seq: 3, kind: 'RealizationStatus' }].filter((c) => c.seq > afterSeq);
    }
    return n === 3 ? [] : undefined;
  });
  fireNow = fire;
  const wait = await hearWrite(store, fire, 20);
  expect(wait.resolved).toBe(true);
  expect(looks()).toBe(4);
  await wait.end();
});
