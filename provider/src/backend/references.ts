import { referencesOf as engineReferencesOf } from '../engine';
import { isKind } from '../model';
import type { SpecReference } from '../service';

/**
 * The objects a spec references, as the store keeps them for referential integrity: the engine's
 * single definition, one entry per target (the first path is kept for messages).
 */
export function referencesOf(kind: string, spec: Record<string, unknown>): SpecReference[] {
  if (!isKind(kind)) return [];
  const seen = new Set<string>();
  return engineReferencesOf(kind, spec).filter((r) => (seen.has(`${r.kind}/${r.name}`) ? false : (seen.add(`${r.kind}/${r.name}`), true)));
}
