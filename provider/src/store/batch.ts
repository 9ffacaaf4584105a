/**
 * The write semantics shared by every adapter: revision checks, revision continuity after delete,
 * the change log and deferred referential-integrity checks. Adapters only supply transactional
 * primitives, so the in-memory store used by unit tests cannot drift from the SQLite store.
 */
import { StoreError, refText } from './errors';
import type { JsonObject, ObjectRef, StoredObject, WriteOp, WriteResult } from './types';

/** What an adapter exposes inside one open transaction of one environment. */
export interface TxPrimitives {
  /** The current revision, creation time and owner of an object, or undefined when absent. */
  current(kind: string, name: string): { revision: number; createdAt: string; owner?: string } | undefined;
  /** The highest revision ever logged for the key (0 if none): revisions continue after a delete. */
  lastLoggedRevision(kind: string, name: string): number;
  /** Inserts or replaces an object and its outgoing references. */
  write(object: StoredObject): void;
  /** Removes an object and its outgoing references. */
  remove(kind: string, name: string): void;
  /** Objects whose references include the target. */
  referrers(kind: string, name: string): ObjectRef[];
  /** Whether the environment holds no objects. */
  isEmpty(): boolean;
  log(entry: { kind: string; name: string; op: 'create' | 'update' | 'delete'; revision: number; time: string }): void;
}

const ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MAX_NAME = 1024;

/** Rejects environment names that could not be a Pulumi stack or a directory-safe label. */
export function checkEnvironment(environment: string): void {
  if (typeof environment !== 'string' || !ENVIRONMENT.test(environment)) {
    throw new StoreError('INVALID_ARGUMENT', `invalid environment name ${JSON.stringify(environment)}: use letters, digits, '.', '_' and '-' (at most 128 characters)`);
  }
}

/** Rejects empty or oversized kinds and names. */
export function checkKey(kind: string, name: string): void {
  for (const [what, value] of [['kind', kind], ['name', name]] as const) {
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME) {
      throw new StoreError('INVALID_ARGUMENT', `invalid object ${what} ${JSON.stringify(value)}: a non-empty string of at most ${MAX_NAME} characters is required`);
    }
  }
}

function checkSpec(what: string, value: unknown, ref: ObjectRef): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new StoreError('INVALID_ARGUMENT', `${refText(ref)}: ${what} must be a JSON object`, { object: ref });
  }
}

/** Sorted, de-duplicated references: stored and compared in one canonical form. */
export function normalizeRefs(refs: readonly ObjectRef[] | undefined): ObjectRef[] {
  const seen = new Map<string, ObjectRef>();
  for (const r of refs ?? []) {
    checkKey(r.kind, r.name);
    seen.set(`${r.kind}\u0000${r.name}`, { kind: r.kind, name: r.name });
  }
  return [...seen.values()].sort(compareRefs);
}

export function compareRefs(a: ObjectRef, b: ObjectRef): number {
  return a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** JSON round trip: the in-memory store must hand out exactly what SQLite would (no undefined, no sharing). */
export function cloneJson(value: JsonObject): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

const key = (kind: string, name: string): string => `${kind}\u0000${name}`;

function conflict(ref: ObjectRef, expected: number, actual: number): StoreError {
  const why = expected === 0 ? 'it already exists' : actual === 0 ? 'it does not exist' : `it is at revision ${actual}`;
  return new StoreError('CONFLICT', `conflict on ${refText(ref)}: expected revision ${expected} but ${why}; re-read it and retry`, {
    object: ref,
    expectedRevision: expected,
    actualRevision: actual,
  });
}

/**
 * Applies a batch inside an open transaction; throws a StoreError (and the caller rolls back) on any
 * failed precondition. Reference checks are deferred to the end of the batch so a batch may create or
 * delete mutually dependent objects in any order.
 */
export function applyBatch(tx: TxPrimitives, ops: readonly WriteOp[], time: string): WriteResult[] {
  const results: WriteResult[] = [];
  const written = new Map<string, ObjectRef[]>(); // key -> references of the final written version
  const deleted = new Map<string, ObjectRef>();
  for (const op of ops) {
    checkKey(op.kind, op.name);
    const ref = { kind: op.kind, name: op.name };
    const k = key(op.kind, op.name);
    const cur = tx.current(op.kind, op.name);
    const actual = cur?.revision ?? 0;
    if (op.expectedRevision !== undefined) {
      if (!Number.isInteger(op.expectedRevision) || op.expectedRevision < 0) {
        throw new StoreError('INVALID_ARGUMENT', `${refText(ref)}: expectedRevision must be a non-negative integer`, { object: ref });
      }
      if (op.expectedRevision !== actual) throw conflict(ref, op.expectedRevision, actual);
    }
    switch (op.op) {
      case 'check':
        if (op.expectedRevision === undefined) throw new StoreError('INVALID_ARGUMENT', `${refText(ref)}: a check needs expectedRevision`, { object: ref });
        results.push({ ...ref, op: 'check', revision: actual });
        break;
      case 'put': {
        checkSpec('spec', op.spec, ref);
        if (op.status !== undefined) checkSpec('status', op.status, ref);
        const revision = (cur ? cur.revision : tx.lastLoggedRevision(op.kind, op.name)) + 1;
        const references = normalizeRefs(op.references);
        if (op.owner !== undefined && (typeof op.owner !== 'string' || op.owner.length === 0 || op.owner.length > MAX_NAME * 2)) {
          throw new StoreError('INVALID_ARGUMENT', `${refText(ref)}: owner must be a non-empty string of at most ${MAX_NAME * 2} characters`, { object: ref });
        }
        // A put without an owner keeps the current one: status writes and CLI-less tools must not orphan objects.
        const owner = op.owner ?? cur?.owner;
        // Cloned once here so the caller's later mutations cannot reach the stored or returned object.
        const object: StoredObject = {
          kind: op.kind,
          name: op.name,
          spec: cloneJson(op.spec),
          ...(op.status !== undefined ? { status: cloneJson(op.status) } : {}),
          references,
          revision,
          createdAt: cur ? cur.createdAt : time,
          updatedAt: time,
          ...(owner !== undefined ? { owner } : {}),
        };
        tx.write(object);
        const kind = cur ? 'update' : 'create';
        tx.log({ kind: op.kind, name: op.name, op: kind, revision, time });
        results.push({ ...ref, op: kind, revision, object });
        written.set(k, references);
        deleted.delete(k);
        break;
      }
      case 'delete': {
        if (!cur) throw new StoreError('NOT_FOUND', `cannot delete ${refText(ref)}: it does not exist`, { object: ref });
        const revision = cur.revision + 1;
        tx.remove(op.kind, op.name);
        tx.log({ kind: op.kind, name: op.name, op: 'delete', revision, time });
        results.push({ ...ref, op: 'delete', revision });
        written.delete(k);
        deleted.set(k, ref);
        break;
      }
      default:
        throw new StoreError('INVALID_ARGUMENT', `unknown write op ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }
  checkReferences(tx, written, deleted);
  return results;
}

/** Writes objects verbatim into an empty environment (import-state); references are checked at the end. */
export function restoreBatch(tx: TxPrimitives, environment: string, objects: readonly StoredObject[]): void {
  if (!tx.isEmpty()) {
    throw new StoreError('NOT_EMPTY', `environment ${JSON.stringify(environment)} already holds objects; import state only into an empty environment (or another data directory)`);
  }
  const written = new Map<string, ObjectRef[]>();
  for (const o of objects) {
    checkKey(o.kind, o.name);
    const ref = { kind: o.kind, name: o.name };
    checkSpec('spec', o.spec, ref);
    if (o.status !== undefined) checkSpec('status', o.status, ref);
    if (written.has(key(o.kind, o.name))) throw new StoreError('INVALID_ARGUMENT', `${refText(ref)} appears twice`, { object: ref });
    if (!Number.isInteger(o.revision) || o.revision < 1) throw new StoreError('INVALID_ARGUMENT', `${refText(ref)}: revision must be a positive integer`, { object: ref });
    const references = normalizeRefs(o.references);
    tx.write({ ...o, references });
    tx.log({ kind: o.kind, name: o.name, op: 'create', revision: o.revision, time: o.updatedAt });
    written.set(key(o.kind, o.name), references);
  }
  checkReferences(tx, written, new Map());
}

function checkReferences(tx: TxPrimitives, written: Map<string, ObjectRef[]>, deleted: Map<string, ObjectRef>): void {
  const missing: ObjectRef[] = [];
  for (const refs of written.values()) {
    for (const r of refs) if (!tx.current(r.kind, r.name) && !missing.some((m) => compareRefs(m, r) === 0)) missing.push(r);
  }
  if (missing.length > 0) {
    missing.sort(compareRefs);
    throw new StoreError('MISSING_REFERENCE', `referenced object${missing.length > 1 ? 's' : ''} ${missing.map(refText).join(', ')} do${missing.length > 1 ? '' : 'es'} not exist; create ${missing.length > 1 ? 'them' : 'it'} first`, {
      refs: missing,
    });
  }
  for (const target of deleted.values()) {
    const users = tx.referrers(target.kind, target.name).sort(compareRefs);
    if (users.length > 0) {
      throw new StoreError('IN_USE', `cannot delete ${refText(target)}: still used by ${users.map(refText).join(', ')}; remove those references first`, {
        object: target,
        refs: users,
      });
    }
  }
}
