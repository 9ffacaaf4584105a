/**
 * Secret-marked input values at rest. The engine must evaluate them (an IP marked secret is still an
 * IP), so they cannot be left out of the store; they are stored encrypted instead, each leaf replaced by
 * `{"$secret": "v1:<base64 iv|tag|ciphertext>"}` (AES-256-GCM). Everything above the service sees the
 * plain values; the raw store, `microseg get`, exports and backups see only ciphertext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { JsonObject } from '../store/types';

type JsonValue = unknown;

/** The marker key of an encrypted leaf. */
export const SECRET_MARKER = '$secret';
const VERSION = 'v1:';

/** Where the 32-byte key comes from: read when a secret is first sealed or opened. */
export interface SecretKeySource {
  /** The key, or undefined when none exists yet (`create` false). */
  key(create: boolean): Buffer | undefined;
}

export class SecretUnavailableError extends Error {
  override readonly name = 'SecretUnavailableError';
}

/** Encrypts and decrypts leaves with a key loaded lazily (most environments hold no secret at all). */
export class SecretBox {
  private cached: Buffer | undefined;

  constructor(private readonly source: SecretKeySource) {}

  private key(create: boolean): Buffer {
    this.cached ??= this.source.key(create);
    if (!this.cached) throw new SecretUnavailableError('a stored secret value cannot be decrypted: no secret key (MICROSEG_SECRET_KEY, or secret.key in the data directory) is available');
    return this.cached;
  }

  seal(value: JsonValue): JsonObject {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key(true), iv);
    const data = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return { [SECRET_MARKER]: VERSION + Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64') };
  }

  open(sealed: string): JsonValue {
    if (!sealed.startsWith(VERSION)) throw new SecretUnavailableError(`a stored secret value has an unknown format (${sealed.slice(0, 3)})`);
    const raw = Buffer.from(sealed.slice(VERSION.length), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key(false), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    try {
      return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as JsonValue;
    } catch {
      throw new SecretUnavailableError('a stored secret value cannot be decrypted with this secret key (was the store copied without its secret.key, or MICROSEG_SECRET_KEY changed?)');
    }
  }
}

/** Property path segments: `a.b[0]["x.y"]` → ['a', 'b', 0, 'x.y']. */
function segments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /([A-Za-z_$][A-Za-z0-9_$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(path)) !== null) out.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (JSON.parse(m[3]!) as string)));
  return out;
}

/** A copy of `spec` with the values at `paths` sealed. Paths that do not exist are ignored. */
export function sealPaths(spec: JsonObject, paths: readonly string[], box: SecretBox): JsonObject {
  if (paths.length === 0) return spec;
  const out = structuredClone(spec) as JsonValue;
  for (const path of paths) {
    const segs = segments(path);
    if (segs.length === 0) continue;
    let parent: JsonValue | undefined = out;
    for (const s of segs.slice(0, -1)) parent = Array.isArray(parent) && typeof s === 'number' ? parent[s] : isObj(parent) && typeof s === 'string' ? parent[s] : undefined;
    const last = segs[segs.length - 1]!;
    if (Array.isArray(parent) && typeof last === 'number' && last < parent.length && !isSealed(parent[last])) parent[last] = box.seal(parent[last]);
    else if (isObj(parent) && typeof last === 'string' && parent[last] !== undefined && !isSealed(parent[last])) parent[last] = box.seal(parent[last]);
  }
  return out as JsonObject;
}

/** The spec with every sealed leaf opened, and the paths that were sealed (to mark them secret again). */
export function openSealed(spec: JsonObject, box: SecretBox): { spec: JsonObject; secretPaths: string[] } {
  const secretPaths: string[] = [];
  const walk = (v: JsonValue, path: string): JsonValue => {
    if (isSealed(v)) {
      secretPaths.push(path);
      return box.open(v[SECRET_MARKER] as string);
    }
    if (Array.isArray(v)) {
      let changed = false;
      const next = v.map((e, i) => {
        const w = walk(e, `${path}[${i}]`);
        changed ||= w !== e;
        return w;
      });
      return changed ? next : v;
    }
    if (isObj(v)) {
      let changed = false;
      const next: JsonObject = {};
      for (const [k, e] of Object.entries(v)) {
        const w = walk(e, /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? (path ? `${path}.${k}` : k) : `${path}[${JSON.stringify(k)}]`);
        changed ||= w !== e;
        next[k] = w;
      }
      return changed ? next : v;
    }
    return v;
  };
  return { spec: walk(spec, '') as JsonObject, secretPaths };
}

function isObj(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSealed(v: JsonValue | undefined): v is JsonObject {
  return isObj(v) && typeof v[SECRET_MARKER] === 'string' && Object.keys(v).length === 1;
}
