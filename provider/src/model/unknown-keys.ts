/**
 * Unknown-property detection for hand-written specs. The model's schemas strip unknown keys (as Pulumi
 * does with extra inputs), but in a topology file or a `microseg put` spec a misspelt property
 * (`rule:` for `rules:`) would silently change policy, so callers report these paths as errors.
 */

/**
 * Paths of keys present in `input` but dropped by the schema in `output` (the same value parsed, with
 * defaults). Both are walked together; records (labels) keep every key, so only real unknown
 * properties show. Keys whose value is null or undefined are ignored (they carry nothing).
 */
export function unknownKeys(input: unknown, output: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(input) && Array.isArray(output)) return input.flatMap((v, i) => unknownKeys(v, output[i], [...path, i]));
  if (!isPlainObject(input) || !isPlainObject(output)) return [];
  const out: (string | number)[][] = [];
  for (const [k, v] of Object.entries(input)) {
    if (!(k in output)) {
      if (v !== undefined && v !== null) out.push([...path, k]);
    } else out.push(...unknownKeys(v, output[k], [...path, k]));
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
