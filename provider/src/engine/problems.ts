/**
 * A user error or warning. Never thrown: validation returns every problem at once so the provider's
 * Check and the CLI can show them all.
 */
export interface Problem {
  /** Stable machine-readable code, e.g. `invalid-cidr`, `unknown-reference`, `group-cycle`. */
  readonly code: string;
  /** Property path inside the object, e.g. `rules[2].services[0].ports[1]`; empty for the whole object. */
  readonly path: string;
  /** What was found and what is expected. */
  readonly message: string;
  /** The object the problem belongs to (world-level validation only). */
  readonly object?: { readonly kind: string; readonly name: string };
  /** `error` (default) blocks apply; `warning` is logged. */
  readonly severity?: 'error' | 'warning';
}

/** Renders a path as `rules[2].services[0].ports[1]`. */
export function renderPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}
