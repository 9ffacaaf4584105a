/**
 * The service's typed errors. The provider maps them to gRPC statuses and the CLI to messages;
 * both branch on `code`. Storage failures (busy, corrupt, permission) stay StoreErrors.
 */
import type { ObjectRef } from '../store/types';
import type { Problem } from './validator';

export type ServiceErrorCode = 'NotFound' | 'Conflict' | 'Invalid' | 'InUse';

/** Base class of the service's errors. */
export abstract class ServiceError extends Error {
  abstract readonly code: ServiceErrorCode;
}

/** The object does not exist. */
export class NotFoundError extends ServiceError {
  override readonly name = 'NotFoundError';
  readonly code = 'NotFound';
  constructor(readonly object: ObjectRef, message = `${object.kind} ${JSON.stringify(object.name)} does not exist`) {
    super(message);
  }
}

/** The write carried a stale revision (or created an existing object); nothing was applied. */
export class ConflictError extends ServiceError {
  override readonly name = 'ConflictError';
  readonly code = 'Conflict';
  constructor(
    readonly object: ObjectRef,
    /** The revision the caller expected (0: that it does not exist). */
    readonly expectedRevision: number,
    /** The revision found (0: it does not exist). */
    readonly actualRevision: number,
    message?: string,
  ) {
    super(
      message ??
        (expectedRevision === 0
          ? `${object.kind} ${JSON.stringify(object.name)} already exists`
          : `${object.kind} ${JSON.stringify(object.name)} was changed by someone else (expected revision ${expectedRevision}, found ${actualRevision}); refresh and retry`),
    );
  }
}

/** The spec is invalid or references missing objects. */
export class InvalidError extends ServiceError {
  override readonly name = 'InvalidError';
  readonly code = 'Invalid';
  constructor(
    readonly object: ObjectRef,
    readonly problems: readonly Problem[],
  ) {
    super(`${object.kind} ${JSON.stringify(object.name)} is invalid: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`);
  }
}

/** The object cannot be deleted while others reference it. */
export class InUseError extends ServiceError {
  override readonly name = 'InUseError';
  readonly code = 'InUse';
  constructor(
    readonly object: ObjectRef,
    /** The objects that still reference it. */
    readonly users: readonly ObjectRef[],
  ) {
    super(`${object.kind} ${JSON.stringify(object.name)} is still used by ${users.map((u) => `${u.kind} ${JSON.stringify(u.name)}`).join(', ')}; remove those references first`);
  }
}
