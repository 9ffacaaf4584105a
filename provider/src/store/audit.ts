import { StoreError } from './errors';
import type { AuditQuery, AuditRecord, AuditRetention } from './types';

/** The reference semantics of audit records shared by the adapters (the SQL adapters do the same in SQL). */

const OPS = new Set(['create', 'update', 'delete']);

/** Refuses a malformed record, naming the field, before anything is written. */
export function checkAudit(r: AuditRecord, i: number): void {
  const bad = (field: string, why: string) => {
    throw new StoreError('INVALID_ARGUMENT', `audit record [${i}].${field}: ${why}`);
  };
  for (const f of ['actor', 'role', 'environment', 'kind', 'name'] as const) if (typeof r[f] !== 'string' || !r[f]) bad(f, 'must be a non-empty string');
  if (typeof r.summary !== 'string') bad('summary', 'must be a string');
  if (typeof r.time !== 'string' || Number.isNaN(Date.parse(r.time))) bad('time', 'must be an ISO-8601 time');
  if (!OPS.has(r.op)) bad('op', 'must be create, update or delete');
  if (!Number.isInteger(r.revision) || r.revision < 1) bad('revision', 'must be a positive integer');
}

export function auditMatches(r: AuditRecord, q: AuditQuery): boolean {
  return (q.since === undefined || r.time > q.since) && (q.kind === undefined || r.kind === q.kind) && (q.name === undefined || r.name === q.name);
}

/** The oldest time still kept at `now`. */
export function auditCutoff(now: Date, retention: Required<AuditRetention>): string {
  return new Date(now.getTime() - retention.maxAgeMs).toISOString();
}
