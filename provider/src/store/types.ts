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
 * One flow record (schema v4): a connection an agent read from conntrack (allowed) or the dropped packets
 * of one `source → destination:port` it read from a drop rule's flow set; see docs/visibility.md.
 * Observations, not desired state: export-state and the change log leave them out.
 */
export interface FlowRecord {
  /** Unique in the environment; recording a known id merges into the stored record. */
  readonly id: string;
  /** The enforcement point that saw it (`vm:NAME#i`, `pod:CLUSTER/NS/POD`). */
  readonly point: string;
  readonly direction: 'in' | 'out';
  readonly protocol: string;
  readonly sourceIp: string;
  readonly sourcePort?: number;
  readonly destinationIp: string;
  readonly destinationPort?: number;
  readonly verdict: 'allow' | 'drop' | 'reject';
  /** The deciding rule: `policy/rule`, or `default`. */
  readonly rule: string;
  /** What the staged policies would have decided, and by which rule (absent: no staged rule matches). */
  readonly stagedVerdict?: string;
  readonly stagedRule?: string;
  /** ISO-8601. */
  readonly firstSeen: string;
  readonly lastSeen: string;
  /**
   * The kernel's packet and byte counters for this record, which only grow for one id (a conntrack entry,
   * an element of a dropped-flow set in one table generation): recording keeps the larger value, so
   * reporting the same reading twice (an agent restart) counts nothing twice.
   */
  readonly packets: number;
  readonly bytes: number;
}

/** Which flow records to read; every field narrows. Newest `lastSeen` first. */
export interface FlowQuery {
  /** Only records last seen at or after this ISO-8601 time. */
  readonly since?: string;
  readonly until?: string;
  readonly verdict?: FlowRecord['verdict'];
  readonly rule?: string;
  readonly point?: string;
  /** Only records whose source (destination) IP is one of these. */
  readonly sourceIps?: readonly string[];
  readonly destinationIps?: readonly string[];
  readonly limit?: number;
}

/** Flow records of one rule at one enforcement point, summed in the store (rule statistics). */
export interface RuleStatsRow {
  readonly rule: string;
  readonly point: string;
  /** Flow records (connections, or dropped source → destination:port). */
  readonly flows: number;
  readonly packets: number;
  readonly bytes: number;
  readonly lastSeen: string;
}

/** How long and how many flow records an environment keeps (the oldest `lastSeen` go first). */
export interface FlowRetention {
  readonly maxAgeMs?: number;
  readonly maxCount?: number;
}

/** Defaults: a week, and 200 000 records per environment. */
export const DEFAULT_FLOW_RETENTION: Required<FlowRetention> = { maxAgeMs: 7 * 24 * 3600_000, maxCount: 200_000 };

/**
 * One audit record (schema v5 on SQLite, 3 on PostgreSQL): who changed which object, when, to which
 * revision, and what changed. Written by `microseg serve` in the same transaction as the change.
 */
export interface AuditRecord {
  readonly time: string;
  /** `token:<id>` of the caller (never the secret). */
  readonly actor: string;
  readonly role: string;
  readonly environment: string;
  readonly kind: string;
  readonly name: string;
  readonly op: 'create' | 'update' | 'delete';
  /** The revision the change produced. */
  readonly revision: number;
  /** `created`, `deleted`, `changed rules, priority`... */
  readonly summary: string;
}

/** Which audit records to read; oldest first. */
export interface AuditQuery {
  /** Only records after this ISO-8601 time (exclusive). */
  readonly since?: string;
  readonly kind?: string;
  readonly name?: string;
  /** Only the newest N of the matching records (still oldest first). */
  readonly limit?: number;
}

/** How long and how many audit records an environment keeps (the oldest go first). */
export interface AuditRetention {
  readonly maxAgeMs?: number;
  readonly maxCount?: number;
}

/**
 * Defaults: 400 days and 1 000 000 records per environment. A year of change history is what audits
 * (PCI DSS 10.5.1: a year, three months at hand) and operators of NSX and Calico Enterprise expect to find;
 * 400 days covers a yearly review with a margin. The count bounds a runaway writer.
 */
export const DEFAULT_AUDIT_RETENTION: Required<AuditRetention> = { maxAgeMs: 400 * 24 * 3600_000, maxCount: 1_000_000 };

/** Extras of one `apply`, written in the same transaction as its ops. */
export interface ApplyOptions {
  /** Audit records of the batch's changes: stored only if the batch commits. */
  readonly audit?: readonly AuditRecord[];
  /** Prune the environment's audit records to this retention in the same transaction. */
  readonly auditRetention?: AuditRetention;
}

/**
 * A storage adapter. All methods reject with a `StoreError`.
 *
 * Adapter checklist for flow records (schema v4): implement recordFlows/flows with the merge and
 * retention rules above (the contract suite checks them); `flowMatches`/`mergeFlow` in flows.ts are the
 * reference semantics.
 *
 * Adapter checklist for owners (schema v3; the contract suite in test/store/contract.test.ts checks it):
 * persist `StoredObject.owner` (NULL when absent), return it from get/list/apply, keep it when a put
 * carries none, and keep it through export/restore. The shared `applyBatch` does the keeping, given that
 * `TxPrimitives.current` returns the current owner.
 */
export interface Store {
  /** Human-readable location (file path or `memory`), used in messages. */
  readonly location: string;
  /**
   * Optional push for readers of the change log: calls `onChange` soon after a commit, by any process,
   * may have added to it (spurious calls are allowed); returns a function that stops it. Stores without
   * it are polled.
   */
  watch?(onChange: () => void): () => void;
  get(environment: string, kind: string, name: string): Promise<StoredObject | undefined>;
  /** Objects of one environment, sorted by kind then name. */
  list(environment: string, options?: ListOptions): Promise<StoredObject[]>;
  /**
   * Applies all ops atomically: either every op is applied and logged, or none is; with
   * `options.audit`, the audit records are stored in the same transaction.
   */
  apply(environment: string, ops: readonly WriteOp[], options?: ApplyOptions): Promise<WriteResult[]>;
  /** Audit records of one environment, oldest first. */
  audit(environment: string, query?: AuditQuery): Promise<AuditRecord[]>;
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
  /**
   * Flow records (schema v4), atomically: a new id is inserted; a known id keeps its first `firstSeen`,
   * takes the later `lastSeen` and the new verdict, rule and staged verdict, and keeps the larger packets
   * and bytes.
   * Then drops what the retention (default {@link DEFAULT_FLOW_RETENTION}) no longer keeps.
   */
  recordFlows(environment: string, records: readonly FlowRecord[], retention?: FlowRetention): Promise<void>;
  /** Flow records matching the query, newest `lastSeen` first (ties by id). */
  flows(environment: string, query?: FlowQuery): Promise<FlowRecord[]>;
  /**
   * Flow records last seen in the window (`since`/`until` of the query), summed per rule and enforcement
   * point, sorted by rule then point: the rule statistics, aggregated where the records are.
   */
  ruleStats(environment: string, window?: Pick<FlowQuery, 'since' | 'until'>): Promise<RuleStatsRow[]>;
  /** Checks the physical file and the store's own invariants. */
  integrityCheck(): Promise<IntegrityReport>;
  close(): Promise<void>;
}
