/**
 * The backend service: CRUD per kind over a Store for one environment, with validation by the engine,
 * referential integrity and revision checks. Used in-process by the provider and the CLI, later served
 * over HTTP. Reference checks run inside the store's transaction, so two processes cannot race a
 * delete of a group against the creation of a rule that uses it.
 */
import { randomBytes } from 'node:crypto';
import { StoreError } from '../store/errors';
import type { ChangeLogEntry, ChangesOptions, JsonObject, ObjectRef, PutOp, Store, StoredObject, WriteOp, WriteResult } from '../store/types';
import { ConflictError, InUseError, InvalidError, NotFoundError } from './errors';
import type { Problem, SpecReference, Validator } from './validator';
import { openSealed, sealPaths, SecretBox, SecretUnavailableError } from './secrets';

export interface BackendServiceOptions {
  readonly store: Store;
  /** The environment (e.g. the stack's) this service reads and writes. */
  readonly environment: string;
  readonly validator: Validator;
  /** Encrypts secret-marked values at rest; absent, a key that lives as long as the process. */
  readonly secrets?: SecretBox;
  /** Owner recorded on writes that name none (e.g. `microseg-cli:<user>` for the CLI); see StoredObject.owner. */
  readonly owner?: string;
}

/**
 * Environment-wide settings that change verdicts, stored with the environment so that the CLI, the agent
 * and the server see the verdicts the provider sees without repeating flags.
 */
export interface EnvironmentSettings {
  readonly defaultAction?: 'allow' | 'drop';
}

/**
 * Settings live in the environment as one reserved object (not a resource kind: the engine and the
 * listings skip it). Keeping them in the objects table means every adapter stores, logs (so other
 * processes see changes through the change log), exports and restores them with no extra contract.
 */
export const SETTINGS_KIND = 'EnvironmentSettings';
export const SETTINGS_NAME = 'settings';

/** Whether a stored object is the environment's settings rather than a user object. */
export function isSettingsObject(o: { kind: string }): boolean {
  return o.kind === SETTINGS_KIND;
}

/** A stored object as the service serves it: secret values decrypted, and where they were. */
export type ServedObject = StoredObject & {
  /** Property paths of the spec that are stored encrypted (secret-marked when written). */
  readonly secretPaths?: readonly string[];
};

export interface UpdateOptions {
  /** Reject with Conflict unless the object is at this revision. Absent: last writer wins. */
  readonly expectedRevision?: number;
  /** New computed status; absent keeps the current one. */
  readonly status?: JsonObject;
  /** Spec paths to store encrypted; absent keeps the object's current ones. */
  readonly secretPaths?: readonly string[];
  /** New owner; absent keeps the current one (or the service's default owner). */
  readonly owner?: string;
}

/** One write of an atomic `batch`. */
export type BatchWrite =
  | { readonly action: 'create'; readonly kind: string; readonly name: string; readonly spec: JsonObject; readonly status?: JsonObject; readonly owner?: string }
  | { readonly action: 'upsert'; readonly kind: string; readonly name: string; readonly spec: JsonObject; readonly status?: JsonObject; readonly expectedRevision?: number; readonly owner?: string }
  | { readonly action: 'delete'; readonly kind: string; readonly name: string; readonly expectedRevision?: number };

/** How often an update without expectedRevision re-reads and retries when raced by another writer. */
const LAST_WRITER_WINS_ATTEMPTS = 10;

export class BackendService {
  readonly environment: string;
  private readonly store: Store;
  private readonly validator: Validator;
  private readonly owner: string | undefined;

  private readonly secrets: SecretBox;

  constructor(options: BackendServiceOptions) {
    this.store = options.store;
    this.environment = options.environment;
    this.validator = options.validator;
    this.owner = options.owner;
    let key: Buffer | undefined;
    this.secrets = options.secrets ?? new SecretBox({ key: (create) => (key ??= create ? randomBytes(32) : undefined) });
  }

  /** Creates an object; Conflict if it exists, Invalid if the spec is invalid or references missing objects. */
  async create(kind: string, name: string, spec: JsonObject, options: { status?: JsonObject; owner?: string; secretPaths?: readonly string[] } = {}): Promise<ServedObject> {
    const [r] = await this.write({ kind, name }, [this.putOp(kind, name, spec, options.status, 0, false, options.owner ?? this.owner, options.secretPaths)]);
    return this.served(written(r));
  }

  /** The environment's stored settings (empty when none were ever stored). */
  async settings(): Promise<EnvironmentSettings> {
    const o = await this.store.get(this.environment, SETTINGS_KIND, SETTINGS_NAME);
    const action = o?.spec.defaultAction;
    return action === 'allow' || action === 'drop' ? { defaultAction: action } : {};
  }

  /** Stores settings (merged over the current ones); a no-op when nothing changes. */
  async putSettings(settings: EnvironmentSettings, options: { owner?: string } = {}): Promise<EnvironmentSettings> {
    const current = await this.store.get(this.environment, SETTINGS_KIND, SETTINGS_NAME);
    const merged = { ...(current?.spec ?? {}), ...settings };
    if (current && JSON.stringify(current.spec) === JSON.stringify(merged)) return merged;
    const owner = options.owner ?? this.owner;
    await this.write({ kind: SETTINGS_KIND, name: SETTINGS_NAME }, [
      { op: 'put', kind: SETTINGS_KIND, name: SETTINGS_NAME, spec: merged, expectedRevision: current?.revision ?? 0, ...(owner !== undefined ? { owner } : {}) },
    ]);
    return merged;
  }

  /** Removes the stored settings (when the environment's last object is gone); a no-op when none. */
  async clearSettings(): Promise<void> {
    const current = await this.store.get(this.environment, SETTINGS_KIND, SETTINGS_NAME);
    if (!current) return;
    await this.write({ kind: SETTINGS_KIND, name: SETTINGS_NAME }, [{ op: 'delete', kind: SETTINGS_KIND, name: SETTINGS_NAME, expectedRevision: current.revision }]);
  }

  /** Records a new owner of an existing object (import); spec and status are kept. */
  async setOwner(kind: string, name: string, owner: string): Promise<StoredObject> {
    // The raw stored spec (secret values still encrypted) is written back as it is.
    const current = await this.store.get(this.environment, kind, name);
    if (!current) throw new NotFoundError({ kind, name });
    if (current.owner === owner) return current;
    const [r] = await this.write({ kind, name }, [
      { op: 'put', kind, name, spec: current.spec, ...(current.status !== undefined ? { status: current.status } : {}), references: current.references, expectedRevision: current.revision, owner },
    ]);
    return written(r);
  }

  /** The object, or NotFound. */
  async get(kind: string, name: string): Promise<ServedObject> {
    const o = await this.find(kind, name);
    if (!o) throw new NotFoundError({ kind, name });
    return o;
  }

  /** The object, or undefined. */
  async find(kind: string, name: string): Promise<ServedObject | undefined> {
    const o = await this.store.get(this.environment, kind, name);
    return o && this.served(o);
  }

  /** All objects, or those of one kind, sorted by kind and name. */
  async list(kind?: string): Promise<ServedObject[]> {
    return (await this.store.list(this.environment, kind === undefined ? {} : { kind })).map((o) => this.served(o));
  }

  /** A stored object with its encrypted values opened (most specs hold none and are returned as they are). */
  private served(o: StoredObject): ServedObject {
    try {
      const { spec, secretPaths } = openSealed(o.spec, this.secrets);
      return secretPaths.length === 0 ? o : { ...o, spec, secretPaths };
    } catch (err) {
      if (err instanceof SecretUnavailableError) throw new StoreError('CORRUPT', `${o.kind} "${o.name}": ${err.message}`, { object: { kind: o.kind, name: o.name } });
      throw err;
    }
  }

  /** Replaces the spec of an existing object (NotFound otherwise); keeps its status unless given. */
  async update(kind: string, name: string, spec: JsonObject, options: UpdateOptions = {}): Promise<StoredObject> {
    this.validate(kind, name, spec); // before any read: an invalid spec is Invalid whatever the store holds
    for (let attempt = 1; ; attempt++) {
      const current = await this.get(kind, name);
      if (options.expectedRevision !== undefined && options.expectedRevision !== current.revision) {
        throw new ConflictError({ kind, name }, options.expectedRevision, current.revision);
      }
      try {
        const [r] = await this.write({ kind, name }, [
          this.putOp(kind, name, spec, options.status ?? current.status, current.revision, true, options.owner ?? current.owner ?? this.owner, options.secretPaths ?? current.secretPaths),
        ]);
        return this.served(written(r));
      } catch (err) {
        // Without an expected revision the caller asked for last-writer-wins: re-read and retry.
        if (!(err instanceof ConflictError) || options.expectedRevision !== undefined || attempt >= LAST_WRITER_WINS_ATTEMPTS) throw err;
      }
    }
  }

  /** Replaces the computed status only (the spec is kept and not re-validated). */
  async setStatus(kind: string, name: string, status: JsonObject, options: { expectedRevision?: number } = {}): Promise<StoredObject> {
    // The raw stored spec (secret values still encrypted) is written back as it is.
    const current = await this.store.get(this.environment, kind, name);
    if (!current) throw new NotFoundError({ kind, name });
    const expected = options.expectedRevision ?? current.revision;
    const [r] = await this.write({ kind, name }, [
      { op: 'put', kind, name, spec: current.spec, status, references: current.references, expectedRevision: expected },
    ]);
    return written(r);
  }

  /** Deletes an object: NotFound if absent, InUse (listing the users) if others reference it. */
  async delete(kind: string, name: string, options: { expectedRevision?: number } = {}): Promise<void> {
    await this.write({ kind, name }, [{ op: 'delete', kind, name, ...(options.expectedRevision !== undefined ? { expectedRevision: options.expectedRevision } : {}) }]);
  }

  /**
   * Applies several writes atomically (e.g. a topology file): all specs are validated first and every
   * problem is reported at once; then either all writes apply or none does.
   */
  async batch(writes: readonly BatchWrite[]): Promise<WriteResult[]> {
    const problems: Array<{ ref: ObjectRef; problems: Problem[] }> = [];
    const ops: WriteOp[] = [];
    for (const w of writes) {
      if (w.action === 'delete') {
        ops.push({ op: 'delete', kind: w.kind, name: w.name, ...(w.expectedRevision !== undefined ? { expectedRevision: w.expectedRevision } : {}) });
        continue;
      }
      const p = this.validator.validate(w.kind, w.spec);
      if (p.length > 0) problems.push({ ref: { kind: w.kind, name: w.name }, problems: p });
      else ops.push(this.putOp(w.kind, w.name, w.spec, w.status, w.action === 'create' ? 0 : w.expectedRevision, true, w.owner ?? (w.action === 'create' ? this.owner : undefined)));
    }
    if (problems.length > 0) {
      const first = problems[0];
      // Report every object's problems; paths are prefixed with the object when several are invalid.
      const all = problems.flatMap((e) => e.problems.map((p) => (problems.length > 1 ? { ...p, path: `${e.ref.kind}/${e.ref.name}${p.path ? `.${p.path}` : ''}` } : p)));
      throw new InvalidError(first.ref, all);
    }
    return this.write(undefined, ops);
  }

  /** The seq of this environment's newest change-log entry (0 when none). */
  async lastSeq(): Promise<number> {
    return this.store.lastSeq(this.environment);
  }

  /** The change log of this environment. */
  async changes(options: ChangesOptions = {}): Promise<ChangeLogEntry[]> {
    return this.store.changes(this.environment, options);
  }

  private validate(kind: string, name: string, spec: JsonObject): SpecReference[] {
    const problems = this.validator.validate(kind, spec);
    if (problems.length > 0) throw new InvalidError({ kind, name }, problems);
    return this.validator.references(kind, spec);
  }

  private putOp(
    kind: string,
    name: string,
    spec: JsonObject,
    status: JsonObject | undefined,
    expectedRevision: number | undefined,
    validated = false,
    owner?: string,
    secretPaths: readonly string[] = [],
  ): PutOp {
    // Validation and references see the plain values; only the stored spec is sealed.
    const references = validated ? this.validator.references(kind, spec) : this.validate(kind, name, spec);
    return {
      ...(owner !== undefined ? { owner } : {}),
      op: 'put',
      kind,
      name,
      spec: sealPaths(spec, secretPaths, this.secrets),
      ...(status !== undefined ? { status } : {}),
      references: references.map((r) => ({ kind: r.kind, name: r.name })),
      ...(expectedRevision !== undefined ? { expectedRevision } : {}),
    };
  }

  /** Applies ops and turns store refusals into the service's typed errors. */
  private async write(subject: ObjectRef | undefined, ops: WriteOp[]): Promise<WriteResult[]> {
    try {
      return await this.store.apply(this.environment, ops);
    } catch (err) {
      throw this.translate(err, subject, ops);
    }
  }

  private translate(err: unknown, subject: ObjectRef | undefined, ops: readonly WriteOp[]): unknown {
    if (!(err instanceof StoreError)) return err;
    const d = err.details;
    const object = d.object ?? subject ?? { kind: '', name: '' };
    switch (err.code) {
      case 'NOT_FOUND':
        return new NotFoundError(object);
      case 'CONFLICT':
        // A revision check against an object that is gone is reported as NotFound, except for creates.
        if (d.actualRevision === 0 && d.expectedRevision !== 0) return new NotFoundError(object);
        return new ConflictError(object, d.expectedRevision ?? 0, d.actualRevision ?? 0);
      case 'IN_USE':
        return new InUseError(object, d.refs ?? []);
      case 'MISSING_REFERENCE': {
        const missing = d.refs ?? [];
        const problems: Problem[] = [];
        for (const m of missing) {
          // Name every object (and, when the validator said so, the property) that uses the missing target.
          for (const op of ops) {
            if (op.op !== 'put' || !op.references?.some((r) => r.kind === m.kind && r.name === m.name)) continue;
            const at = this.validator.references(op.kind, op.spec).find((r) => r.kind === m.kind && r.name === m.name);
            const where = subject ? (at?.path ?? '') : `${op.kind}/${op.name}${at?.path ? `.${at.path}` : ''}`;
            problems.push({ code: 'missing-reference', path: where, message: `${m.kind} ${JSON.stringify(m.name)} does not exist` });
          }
        }
        const first = ops.find((o) => o.op === 'put');
        return new InvalidError(subject ?? (first ? { kind: first.kind, name: first.name } : object), problems);
      }
      default:
        return err;
    }
  }
}

function written(r: WriteResult): StoredObject {
  if (!r.object) throw new Error(`internal: no object returned for ${r.kind}/${r.name}`);
  return r.object;
}
