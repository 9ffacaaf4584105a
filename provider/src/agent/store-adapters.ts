import { EmbeddedBackend } from '../backend';
import { REALIZATION_KIND } from '../backend/realization';
import type { World } from '../engine';
import type { FlowRecord, FlowRetention, JsonObject, Store } from '../store';
import type { DesiredState, FlowSink, RealizationStatus, StatusSink } from './ports';

/**
 * The agent's ports over the embedded store. Realization status is stored as objects of kind
 * `RealizationStatus` (name = enforcement point): not a resource kind, so the engine, the provider and
 * export-state pass them over, and the change log carries them like any write, which is what the
 * team-mode server's status subresource and watch will serve. No schema change.
 */
export { REALIZATION_KIND };

/** Delays (ms) of the looks after a heard write that was not visible yet: a commit's fsync takes about one. */
const QUICK_LOOKS = [1, 1, 2, 4, 8];

export class StoreDesiredState implements DesiredState {
  private readonly backend: EmbeddedBackend;

  constructor(
    private readonly store: Store,
    private readonly environment: string,
    /** Overrides the environment's stored default action; the stored one (else drop) when undefined. */
    defaultAction?: 'allow' | 'drop',
    /** How often the change log is polled while waiting (the store has no push). */
    private readonly pollMs = 20,
  ) {
    // The agent only reads: an explicit default action is never written back as the environment's.
    this.backend = new EmbeddedBackend({ store, environment, ...(defaultAction !== undefined ? { defaultAction, storeDefaultAction: false } : {}) });
  }

  /** Change-log position read so far, and the newest entry that was not a realization status. */
  private scanned = 0;
  private desired = 0;

  async snapshot(): Promise<{ world: World; seq: number }> {
    // The log first: a write landing meanwhile is in the world or triggers the next pass. Status writes
    // (this agent's own included) are not desired state, so they do not move the revision.
    for (const c of await this.store.changes(this.environment, { afterSeq: this.scanned })) {
      this.scanned = c.seq;
      if (c.kind !== REALIZATION_KIND) this.desired = c.seq;
    }
    return { world: await this.backend.currentWorld(), seq: this.desired };
  }

  waitForChange(seq: number, maxWaitMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let after = Math.max(seq, this.scanned);
      let timer: NodeJS.Timeout | undefined;
      const deadline = Date.now() + maxWaitMs;
      let finished = false;
      const done = () => {
        if (finished) return;
        finished = true;
        if (timer) clearTimeout(timer);
        stopWatch?.();
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done);
      // A store that pushes (SQLite: the WAL file changed) makes the next look immediate; the timer stays
      // as the fallback, and for stores that cannot push. A write is heard when its first page reaches the
      // WAL, before it commits (the commit itself, SQLite's WAL index in shared memory, makes no event):
      // when a look finds nothing, the next ones come soon after (QUICK_LOOKS), not a poll interval later.
      let polling = false;
      let again = false;
      let quick = 0;
      let heard = 0;
      const stopWatch = this.store.watch?.(() => {
        heard++;
        quick = QUICK_LOOKS.length;
        if (polling) again = true;
        else {
          if (timer) clearTimeout(timer);
          void poll();
        }
      });
      const poll = async (): Promise<void> => {
        timer = undefined;
        polling = true;
        if (signal.aborted) return done();
        const heardBefore = heard;
        try {
          const changes = await this.store.changes(this.environment, { afterSeq: after });
          if (changes.some((c) => c.kind !== REALIZATION_KIND)) return done();
          if (changes.length) {
            after = changes[changes.length - 1]!.seq;
            // The write heard was a status (this agent's own, most often): nothing is in flight, unless
            // another write was heard while this look ran.
            if (heard === heardBefore) quick = 0;
          }
        } catch {
          // A busy or briefly unavailable store: try again at the next tick.
        } finally {
          polling = false;
        }
        if (Date.now() >= deadline) return done();
        if (signal.aborted) return;
        if (again) {
          again = false;
          return poll();
        }
        timer = setTimeout(() => void poll(), quick > 0 ? QUICK_LOOKS[QUICK_LOOKS.length - quick--]! : this.pollMs);
      };
      void poll();
    });
  }
}

export class StoreStatusSink implements StatusSink {
  constructor(
    private readonly store: Store,
    private readonly environment: string,
  ) {}

  async report(status: RealizationStatus): Promise<void> {
    await this.store.apply(this.environment, [{ op: 'put', kind: REALIZATION_KIND, name: status.point, spec: status as unknown as JsonObject }]);
  }
}

/** Every stored realization status of an environment, sorted by enforcement point. */
export async function readStatuses(store: Store, environment: string): Promise<RealizationStatus[]> {
  const objects = await store.list(environment, { kind: REALIZATION_KIND });
  return objects.map((o) => o.spec as unknown as RealizationStatus).sort((a, b) => (a.point < b.point ? -1 : 1));
}

/** Flow records into the store, pruned to the retention on every write. */
export class StoreFlowSink implements FlowSink {
  constructor(
    private readonly store: Store,
    private readonly environment: string,
    private readonly retention: FlowRetention = {},
  ) {}

  async record(records: readonly FlowRecord[]): Promise<void> {
    await this.store.recordFlows(this.environment, records, this.retention);
  }
}
