import type { Kind } from '../model';

/** One stored object: kind, backend identity and parsed spec, plus allocations to keep stable. */
export interface StoredObject {
  readonly kind: Kind;
  readonly name: string;
  readonly spec: unknown;
  /** Previously computed outputs (e.g. Workload `pods`, EgressIp `allocatedIp`) reused when still valid. */
  readonly outputs?: Readonly<Record<string, unknown>>;
}

/** What the store implements so the engine can be rebuilt from persisted state. */
export interface StateSource {
  load(): Iterable<StoredObject>;
}
