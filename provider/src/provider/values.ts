/**
 * Pulumi's special property values as they travel in `google.protobuf.Struct`: secrets are objects
 * tagged with a signature key, unknowns (in preview) are sentinel strings, one per type.
 */

export const SIG_KEY = '4dabf18193072939515e22adb298388d';
export const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';
export const RESOURCE_REF_SIG = '5cf8f73096256a8f31e491e813e4eb8e';
export const OUTPUT_VALUE_SIG = 'd0e6a833031e9bbcd3f4e8bde6ca49a4';

/** The seven unknown sentinels (string, bool, number, array, asset, archive, object). */
export const UNKNOWN_SENTINELS: ReadonlySet<string> = new Set([
  '04da6b54-80e4-46f7-96ec-b56ff0331ba9',
  '1c4a061d-8072-4f0a-a4cb-0ff528b18fe7',
  '3eeb2bf0-c639-47a8-9e75-3b44932eb421',
  '6a19a0b0-7e62-4c92-b797-7f8e31da9cc2',
  '030794c1-ac77-496b-92df-f27374a8bd58',
  'e48ece36-62e2-4504-bad9-02848725956a',
  'dd056dcd-154b-4c76-9bd3-c8f88648b5ff',
]);

/** The sentinel the provider emits for a computed value it cannot know in preview. */
export const UNKNOWN = '04da6b54-80e4-46f7-96ec-b56ff0331ba9';

/** A JSON value as carried by a Struct. */
export type PropertyValue = null | boolean | number | string | PropertyValue[] | { [key: string]: PropertyValue };
export type PropertyMap = { [key: string]: PropertyValue };

export function isObject(v: unknown): v is { [key: string]: PropertyValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isUnknown(v: unknown): boolean {
  if (typeof v === 'string') return UNKNOWN_SENTINELS.has(v);
  // An output value without a known value is unknown too.
  return isObject(v) && v[SIG_KEY] === OUTPUT_VALUE_SIG && !('value' in v);
}

export function isSecret(v: unknown): v is { [key: string]: PropertyValue; value: PropertyValue } {
  return isObject(v) && v[SIG_KEY] === SECRET_SIG;
}

export function makeSecret(value: PropertyValue): PropertyValue {
  return { [SIG_KEY]: SECRET_SIG, value };
}

/** True when any value inside `v` is unknown. */
export function containsUnknowns(v: unknown): boolean {
  if (isUnknown(v)) return true;
  if (Array.isArray(v)) return v.some(containsUnknowns);
  if (isObject(v)) return Object.values(v).some(containsUnknowns);
  return false;
}

/**
 * Removes secret wrappers and resource references (replaced by their id), returning the plain value
 * and the property paths that were secret, so they can be wrapped again on the way out.
 */
export function unwrap(v: PropertyValue, path = '', secrets: string[] = []): { value: PropertyValue; secrets: string[] } {
  const walk = (x: PropertyValue, p: string): PropertyValue => {
    if (isSecret(x)) {
      secrets.push(p);
      return walk(x.value, p);
    }
    if (isObject(x) && x[SIG_KEY] === RESOURCE_REF_SIG) {
      return (x.id as PropertyValue) ?? (x.urn as PropertyValue) ?? null;
    }
    if (isObject(x) && x[SIG_KEY] === OUTPUT_VALUE_SIG) {
      if (x.secret === true) secrets.push(p);
      return 'value' in x ? walk(x.value, p) : UNKNOWN;
    }
    if (Array.isArray(x)) return x.map((e, i) => walk(e, `${p}[${i}]`));
    if (isObject(x)) {
      const out: PropertyMap = {};
      for (const [k, e] of Object.entries(x)) out[k] = walk(e, joinPath(p, k));
      return out;
    }
    return x;
  };
  const value = walk(v, path);
  return { value, secrets };
}

/** Wraps the values at the given top-level or nested paths as secrets. */
export function rewrapSecrets(props: PropertyMap, paths: readonly string[]): PropertyMap {
  const out: PropertyMap = structuredClone(props);
  for (const path of paths) {
    const segments = parsePath(path);
    if (segments.length === 0) continue;
    let parent: PropertyValue = out;
    for (const seg of segments.slice(0, -1)) {
      const next: PropertyValue | undefined = Array.isArray(parent) ? parent[seg as number] : isObject(parent) ? parent[seg as string] : undefined;
      if (next === undefined) { parent = null; break; }
      parent = next;
    }
    const last = segments[segments.length - 1];
    if (Array.isArray(parent) && typeof last === 'number' && last < parent.length && !isSecret(parent[last])) {
      parent[last] = makeSecret(parent[last]);
    } else if (isObject(parent) && typeof last === 'string' && last in parent && !isSecret(parent[last])) {
      parent[last] = makeSecret(parent[last]);
    }
  }
  return out;
}

const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Appends a key to a Pulumi property path (`a.b`, `a["key with ."]`, `a[0]`). */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (SIMPLE_KEY.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

/** Renders a path given as segments (as zod issue paths are). */
export function formatPath(segments: readonly PropertyKey[]): string {
  return segments.reduce<string>((p, s) => joinPath(p, typeof s === 'number' ? s : String(s)), '');
}

/** Parses a Pulumi property path into segments. */
export function parsePath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.|\[\*\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(path)) !== null) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(JSON.parse(m[3]) as string);
    else if (m[0] === '[*]') out.push('*');
  }
  return out;
}

/** The plain values at the given secret paths (every string and number inside them). */
export function valuesAt(value: PropertyValue, paths: readonly string[]): string[] {
  const out = new Set<string>();
  const collect = (v: PropertyValue | undefined): void => {
    if (typeof v === 'string' || typeof v === 'number') out.add(String(v));
    else if (Array.isArray(v)) v.forEach(collect);
    else if (isObject(v)) Object.values(v).forEach(collect);
  };
  for (const path of paths) {
    let cur: PropertyValue | undefined = value;
    for (const seg of parsePath(path)) cur = Array.isArray(cur) && typeof seg === 'number' ? cur[seg] : isObject(cur) && typeof seg === 'string' ? cur[seg] : undefined;
    collect(cur);
  }
  return [...out].filter((s) => s !== '');
}

/**
 * A function that replaces every secret value in a message with `[secret]`: validation and backend
 * messages quote the offending value ("x" is not an IP address), which must not leak a secret into the
 * engine's output or logs. Whole tokens only, so that a secret `10.0.0.1` does not mangle `10.0.0.10`.
 */
export function secretRedactor(value: PropertyValue, secretPaths: readonly string[]): (text: string) => string {
  const secrets = valuesAt(value, secretPaths).sort((a, b) => b.length - a.length);
  if (secrets.length === 0) return (t) => t;
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(?<![A-Za-z0-9_.:-])(?:${secrets.map(escape).join('|')})(?![A-Za-z0-9_:-]|\\.[A-Za-z0-9])`, 'g');
  return (t) => t.replace(re, '[secret]');
}
