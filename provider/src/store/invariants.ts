/** The store's own invariants, checked by every adapter's integrityCheck on top of any physical check. */
import { refText } from './errors';
import type { StoredObject } from './types';

/** The latest change-log entry of a key. */
export interface LatestChange {
  readonly kind: string;
  readonly name: string;
  readonly op: 'create' | 'update' | 'delete';
  readonly revision: number;
}

/**
 * Checks one environment: positive revisions, no dangling references, and the change log agrees with the
 * objects (the latest entry of every live object carries its revision; a deleted key has no object).
 */
export function checkEnvironmentInvariants(environment: string, objects: readonly StoredObject[], latest: readonly LatestChange[]): string[] {
  const problems: string[] = [];
  const byKey = new Map(objects.map((o) => [`${o.kind}\u0000${o.name}`, o]));
  for (const o of objects) {
    const where = `${environment}: ${refText(o)}`;
    if (!Number.isInteger(o.revision) || o.revision < 1) problems.push(`${where} has invalid revision ${o.revision}`);
    for (const r of o.references) if (!byKey.has(`${r.kind}\u0000${r.name}`)) problems.push(`${where} references missing ${refText(r)}`);
  }
  const logged = new Set<string>();
  for (const c of latest) {
    const k = `${c.kind}\u0000${c.name}`;
    logged.add(k);
    const o = byKey.get(k);
    if (c.op === 'delete' && o) problems.push(`${environment}: ${refText(c)} exists but its last change is a delete`);
    if (c.op !== 'delete' && !o) problems.push(`${environment}: ${refText(c)} is missing but its last change is a ${c.op}`);
    if (c.op !== 'delete' && o && o.revision !== c.revision) problems.push(`${environment}: ${refText(c)} is at revision ${o.revision} but the change log says ${c.revision}`);
  }
  for (const o of objects) if (!logged.has(`${o.kind}\u0000${o.name}`)) problems.push(`${environment}: ${refText(o)} has no change-log entry`);
  return problems;
}
