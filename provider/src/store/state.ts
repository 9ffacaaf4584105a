/**
 * export-state / import-state: a versioned JSON document holding every object of every environment,
 * with revisions and timestamps, so importing into an empty store reproduces the same objects.
 */
import { z } from 'zod';
import { StoreError } from './errors';
import type { JsonObject, Store, StoredObject } from './types';

export const STATE_FORMAT = 'microseg-state';
export const STATE_VERSION = 1;

/** One object in a state document. */
export interface StateObject {
  readonly kind: string;
  readonly name: string;
  readonly spec: JsonObject;
  readonly status?: JsonObject;
  readonly references: ReadonlyArray<{ readonly kind: string; readonly name: string }>;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Who manages the object (optional: documents written before owners existed have none). */
  readonly owner?: string;
}

/** The export-state document. */
export interface StateDocument {
  readonly format: typeof STATE_FORMAT;
  readonly version: typeof STATE_VERSION;
  readonly exportedAt: string;
  readonly environments: Readonly<Record<string, { readonly objects: readonly StateObject[] }>>;
}

const jsonObject = z.record(z.string(), z.unknown());
const stateObject = z.strictObject({
  kind: z.string().min(1),
  name: z.string().min(1),
  spec: jsonObject,
  status: jsonObject.optional(),
  references: z.array(z.strictObject({ kind: z.string().min(1), name: z.string().min(1) })),
  revision: z.number().int().min(1),
  createdAt: z.string(),
  updatedAt: z.string(),
  owner: z.string().min(1).optional(),
});
const stateDocument = z.strictObject({
  format: z.literal(STATE_FORMAT),
  version: z.literal(STATE_VERSION),
  exportedAt: z.string(),
  environments: z.record(z.string(), z.strictObject({ objects: z.array(stateObject) })),
});

export interface ExportOptions {
  /** Only these environments (default: all). */
  readonly environments?: readonly string[];
  readonly clock?: () => Date;
}

/** Reads the whole store (or some environments) into a state document; deterministic order. */
export async function exportState(store: Store, options: ExportOptions = {}): Promise<StateDocument> {
  const envs = options.environments ? [...options.environments].sort() : await store.environments();
  const environments: Record<string, { objects: StateObject[] }> = {};
  for (const env of envs) environments[env] = { objects: (await store.list(env)).map(toStateObject) };
  return { format: STATE_FORMAT, version: STATE_VERSION, exportedAt: (options.clock ?? (() => new Date()))().toISOString(), environments };
}

function toStateObject(o: StoredObject): StateObject {
  return {
    kind: o.kind,
    name: o.name,
    spec: o.spec,
    ...(o.status !== undefined ? { status: o.status } : {}),
    references: o.references,
    revision: o.revision,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    ...(o.owner !== undefined ? { owner: o.owner } : {}),
  };
}

/**
 * Validates an untrusted value (e.g. a parsed file) as a state document; a document of another format
 * or a newer version is refused with a message saying so rather than half-imported.
 */
export function parseStateDocument(value: unknown, source = 'the state document'): StateDocument {
  if (value !== null && typeof value === 'object') {
    const v = value as { format?: unknown; version?: unknown };
    if (v.format !== STATE_FORMAT) throw new StoreError('INVALID_STATE_DOCUMENT', `${source} is not a microseg state export (format is ${JSON.stringify(v.format)}, expected "${STATE_FORMAT}")`);
    if (typeof v.version === 'number' && v.version > STATE_VERSION) {
      throw new StoreError('INVALID_STATE_DOCUMENT', `${source} has state format version ${v.version}, newer than this microseg understands (${STATE_VERSION}); upgrade microseg to import it`);
    }
  }
  const parsed = stateDocument.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new StoreError('INVALID_STATE_DOCUMENT', `${source} is not a valid microseg state document: ${issues.join('; ')}`);
  }
  return parsed.data as StateDocument;
}

/**
 * Imports a state document. Every target environment must be empty; each environment is restored in
 * one transaction (references checked), so a failed import leaves no partial environment.
 */
export async function importState(store: Store, document: unknown, source?: string): Promise<{ environments: number; objects: number }> {
  const doc = parseStateDocument(document, source);
  const envs = Object.keys(doc.environments).sort();
  // Check emptiness up front so a multi-environment import fails before writing anything in the common case.
  for (const env of envs) {
    if ((await store.list(env)).length > 0) {
      throw new StoreError('NOT_EMPTY', `environment ${JSON.stringify(env)} in ${store.location} already holds objects; import state only into an empty store or environment`);
    }
  }
  let objects = 0;
  for (const env of envs) {
    await store.restore(env, doc.environments[env].objects);
    objects += doc.environments[env].objects.length;
  }
  return { environments: envs.length, objects };
}
