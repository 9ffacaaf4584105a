import type { World } from '../engine';
import type { NamedSet, Table } from '../realize/nftables';
import type { FlowRecord } from '../store';

/**
 * What the agent needs from the outside world, as narrow ports: the desired state (the embedded store
 * today, the team-mode server later), the kernel (`nft`), and where realization status goes.
 */

/** The desired state of an environment and its change-log position. */
export interface DesiredState {
  /** The world as of now, and the change-log sequence number it reflects. */
  snapshot(): Promise<{ world: World; seq: number }>;
  /**
   * Resolves once the desired state moved past `seq` (a change that can alter rulesets), or after
   * `maxWaitMs`, or when `signal` aborts; never rejects on abort.
   */
  waitForChange(seq: number, maxWaitMs: number, signal: AbortSignal): Promise<void>;
}

/**
 * The set elements that differ between the table in the kernel and the next one of the same shape
 * (what a pod added, removed or relabelled changes): indexes into the set's elements before (`removed`)
 * and now (`added`).
 */
export interface ElementChange {
  readonly old: NamedSet;
  readonly now: NamedSet;
  readonly removed: readonly number[];
  readonly added: readonly number[];
}

/**
 * nftables, one transaction per call, at the level of the compiled table: `nft` text through the nft
 * command line ({@link NftCli}, the fallback) or netlink messages through microseg-nft ({@link NetlinkNft}).
 * A refused transaction rejects with the kernel's (or nft's) message and changes nothing in the kernel.
 */
export interface NftExecutor {
  /** How this executor reaches the kernel, for the agent's log. */
  readonly description?: string;
  /** Replaces the table atomically (add, delete, add the new one: no packet meets a missing or half-built table). */
  replaceTable(table: Table): Promise<void>;
  /** Deletes and adds set elements of the table in the kernel (deletions first), in one transaction. */
  updateElements(table: Table, changes: readonly ElementChange[]): Promise<void>;
  /**
   * The table as far as the agent reads it back, in the shape of `nft -j list table inet NAME` (at least
   * the table's handle, every rule's chain, comment and counters, and the elements of the dropped-flow
   * sets), or undefined when the table does not exist.
   */
  listTable(name: string): Promise<NftListing | undefined>;
  /** Stops what the executor started (a writer process). */
  close?(): void;
}

export interface NftListing {
  readonly nftables: readonly Record<string, unknown>[];
}

export type RealizationState = 'pending' | 'realized' | 'error';

/** Hit counters of one rule (summed over its kernel rules) at one enforcement point. */
export interface RuleHits {
  readonly rule: string;
  readonly direction: 'in' | 'out';
  readonly packets: number;
  readonly bytes: number;
}

/** The realization status of one enforcement point, as the agent reports it. */
export interface RealizationStatus {
  readonly point: string;
  readonly table: string;
  /** Change-log sequence number of the newest desired ruleset the agent computed. */
  readonly desiredRevision: number;
  /** Change-log sequence number of the ruleset in the kernel (0: none applied yet). */
  readonly realizedRevision: number;
  /**
   * Change-log sequence number of the desired state this report was computed from: every write up to it
   * has been seen (a write that leaves the point's ruleset unchanged moves this, not desiredRevision).
   * Absent in reports of agents older than it.
   */
  readonly observedRevision?: number;
  readonly state: RealizationState;
  /** Why the last apply failed (the kernel keeps the last good ruleset). */
  readonly error?: string;
  /** How the last change reached the kernel: a table swap or set-element updates. */
  readonly lastApply?: 'table' | 'elements' | 'unchanged';
  readonly rules: number;
  readonly elements: number;
  readonly hits: readonly RuleHits[];
  readonly agent: { readonly host: string; readonly pid: number };
  readonly updatedAt: string;
}

/** Where statuses go (the store today, the server's status subresource later). */
export interface StatusSink {
  report(status: RealizationStatus): Promise<void>;
}

/** Where flow records go (the local store, or the server's flow route with `--endpoint`). */
export interface FlowSink {
  record(records: readonly FlowRecord[]): Promise<void>;
}
