import type { ObjectRef } from './types';

/** Why a store operation failed; callers branch on this, never on message text. */
export type StoreErrorCode =
  | 'CONFLICT' // a write carried a stale expected revision; nothing was applied
  | 'NOT_FOUND' // a delete named an object that does not exist
  | 'IN_USE' // a delete would leave other objects referencing the deleted one
  | 'MISSING_REFERENCE' // a write references an object that does not exist
  | 'INVALID_ARGUMENT' // malformed environment, kind, name or op
  | 'NOT_EMPTY' // restore into an environment that already holds objects
  | 'INVALID_STATE_DOCUMENT' // import-state input is not a valid microseg-state document
  | 'CORRUPT' // the database file is damaged or not a microseg store
  | 'NEWER_SCHEMA' // the file was written by a newer microseg
  | 'PERMISSION' // the data directory or file cannot be read or written
  | 'BUSY' // other processes held the store locked for longer than the retry budget
  | 'CLOSED' // the store was closed
  | 'UNAVAILABLE' // a networked store (PostgreSQL) cannot be reached; retry later
  | 'IO'; // any other failure of the underlying storage

/** Extra, machine-readable facts about a failure. */
export interface StoreErrorDetails {
  /** The file or directory concerned. */
  readonly path?: string;
  /** The object concerned. */
  readonly object?: ObjectRef;
  readonly expectedRevision?: number;
  /** 0 when the object does not exist. */
  readonly actualRevision?: number;
  /** IN_USE: the objects that still reference the object. MISSING_REFERENCE: the missing targets. */
  readonly refs?: readonly ObjectRef[];
}

/** The only error type a store rejects with. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly details: StoreErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `kind/name`, the form objects are named in messages. */
export function refText(ref: ObjectRef): string {
  return `${ref.kind}/${ref.name}`;
}
