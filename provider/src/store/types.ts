/**
 * The storage contract shared by every adapter (in-memory, SQLite, later PostgreSQL).
 *
 * The interface is asynchronous even though SQLite is synchronous: a networked adapter must fit behind
 * the same contract, and the SQLite adapter uses the gaps between retries to back off without blocking.
 */

/** A JSON-serialisable object: what a resource's spec and status are stored as. */
export type JsonObject = Record<string, unknown>;

/** Identifies an object inside one environment. */
export interface ObjectRef {
  readonly kind: string;
  readonly name: string;
}

/** One stored object, as read back from a store. */
export interface StoredObject {
  readonly kind: string;
  readonly name: string;
  /** What the user declared. */
  readonly spec: JsonObject;
  /** What the backend computed (resolved members, allocated IPs...); absent when never written. */
  readonly status?: JsonObject;
  /** Objects this one references; the store refuses dangling references and deleting referenced objects. */
  readonly references: readonly ObjectRef[];
  /** Incremented by every write; continues after a delete and re-create so stale revisions never match again. */
  readonly revision: number;
  /** ISO-8601 timestamps. */
  readonly createdAt: string;
  readonly updatedAt: string;
  /**
   * Who manages the object (schema v3): a Pulumi resource URN (`urn:pulumi:<stack>::<project>::<type>::<name>`,
   * which names the stack) for objects a stack created or imported, `microseg-cli:<user>` for objects the CLI
   * wrote. Absent for objects written before owners existed, or by a caller that named none.
   */
  readonly owner?: string;
}

/**
 * Create or replace an object.
 * `expectedRevision`: absent = unconditional upsert; `0` = the object must not exist;
 * `n > 0` = the object must exist at revision `n`. A mismatch rejects the whole batch with a CONFLICT.
 */
export interface PutOp {
  readonly op: 'put';
  readonly kind: string;
  readonly name: string;
  readonly spec: JsonObject;
  readonly status?: JsonObject;
  readonly references?: readonly ObjectRef[];
  readonly expectedRevision?: number;
  /** The new owner (see StoredObject.owner); absent keeps the current owner (none for a new object). */
  readonly owner?: string;
}

/**
 * Delete an object. `expectedRevision` absent: the object must exist (NOT_FOUND otherwise);
 * present: it must exist at exactly that revision (CONFLICT otherwise).
 */
export interface DeleteOp {
  readonly op: 'delete';
  readonly kind: string;
  readonly name: string;
  readonly expectedRevision?: number;
}

/**
 * Assert, inside the batch, that an object exists at a revision (or, with `0`, that it does not exist),
 * without writing it. The service uses it to make read-check-write sequences atomic.
 */
export interface CheckOp {
  readonly op: 'check';
  readonly kind: string;
  readonly name: string;
  readonly expectedRevision: number;
}

export type WriteOp = PutOp | DeleteOp | CheckOp;

/** The outcome of one write op of an applied batch (check ops report the revision they saw). */
export interface WriteResult {
  readonly kind: string;
  readonly name: string;
  readonly op: 'create' | 'update' | 'delete' | 'check';
  /** Revision after the write (for a delete: the revision logged for the delete). */
  readonly revision: number;
  /** For a put: the object as written (as a following `get` would return it). */
  readonly object?: StoredObject;
}

/** One change-log entry: every committed write is logged, in commit order. */
export interface ChangeLogEntry {
  /** Strictly increasing across the whole store (all environments). */
  readonly seq: number;
  readonly environment: string;
  readonly kind: string;
  readonly name: string;
  readonly op: 'create' | 'update' | 'delete';
  readonly revision: number;
  readonly time: string;
}

export interface ListOptions {
  /** Only objects of this kind. */
  readonly kind?: string;
}

export interface ChangesOptions {
  /** Only entries with a larger seq (exclusive). */
  readonly afterSeq?: number;
  /** At most this many entries (default: all). */
  readonly limit?: number;
  readonly kind?: string;
  readonly name?: string;
}

/** The result of an integrity check; `problems` is empty when `ok`. */
export interface IntegrityReport {
  readonly ok: boolean;
  readonly problems: readonly string[];
}

/**
 * A storage adapter. All methods reject with a `StoreError`.
 *
 * Adapter checklist for owners (schema v3; the contract suite in test/store/contract.test.ts checks it):
 * persist `StoredObject.owner` (NULL when absent), return it from get/list/apply, keep it when a put
 * carries none, and keep it through export/restore. The shared `applyBatch` does the keeping, given that
 * `TxPrimitives.current` returns the current owner.
 */
export interface Store {
  /** Human-readable location (file path or `memory`), used in messages. */
  readonly location: string;
  get(environment: string, kind: string, name: string): Promise<StoredObject | undefined>;
  /** Objects of one environment, sorted by kind then name. */
  list(environment: string, options?: ListOptions): Promise<StoredObject[]>;
  /** Applies all ops atomically: either every op is applied and logged, or none is. */
  apply(environment: string, ops: readonly WriteOp[]): Promise<WriteResult[]>;
  /** Reads the change log of one environment in commit order. */
  changes(environment: string, options?: ChangesOptions): Promise<ChangeLogEntry[]>;
  /** The seq of the environment's newest change-log entry (0 when none): where a reader resumes. */
  lastSeq(environment: string): Promise<number>;
  /** Environments holding at least one object, sorted. */
  environments(): Promise<string[]>;
  /**
   * Writes objects verbatim (revisions and timestamps kept) into an environment that must be empty;
   * used by import-state. Atomic, references are checked.
   */
  restore(environment: string, objects: readonly StoredObject[]): Promise<void>;
  /** Checks the physical file and the store's own invariants. */
  integrityCheck(): Promise<IntegrityReport>;
  close(): Promise<void>;
}
