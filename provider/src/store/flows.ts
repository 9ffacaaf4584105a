import { StoreError } from './errors';
import type { FlowQuery, FlowRecord, FlowRetention } from './types';

/**
 * The reference semantics of flow records shared by the adapters: validation, merging a report into a
 * stored record, query matching and ordering. The SQLite adapter does the same in SQL.
 */

const VERDICTS = new Set(['allow', 'drop', 'reject']);

/** Refuses a malformed record, naming the field, before anything is written. */
export function checkFlow(r: FlowRecord, i: number): void {
  const bad = (field: string, why: string) => {
    throw new StoreError('INVALID_ARGUMENT', `flow record [${i}].${field}: ${why}`);
  };
  if (typeof r.id !== 'string' || !r.id) bad('id', 'must be a non-empty string');
  if (r.direction !== 'in' && r.direction !== 'out') bad('direction', 'must be in or out');
  if (!VERDICTS.has(r.verdict)) bad('verdict', 'must be allow, drop or reject');
  for (const f of ['point', 'protocol', 'sourceIp', 'destinationIp', 'rule'] as const) if (typeof r[f] !== 'string' || !r[f]) bad(f, 'must be a non-empty string');
  for (const f of ['firstSeen', 'lastSeen'] as const) if (Number.isNaN(Date.parse(r[f]))) bad(f, 'must be an ISO-8601 time');
  for (const f of ['packets', 'bytes'] as const) if (!Number.isInteger(r[f]) || r[f] < 0) bad(f, 'must be a non-negative integer');
}

export function mergeFlow(old: FlowRecord | undefined, r: FlowRecord): FlowRecord {
  if (!old) return { ...r };
  return {
    ...r,
    firstSeen: old.firstSeen < r.firstSeen ? old.firstSeen : r.firstSeen,
    lastSeen: old.lastSeen > r.lastSeen ? old.lastSeen : r.lastSeen,
    packets: Math.max(old.packets, r.packets),
    bytes: Math.max(old.bytes, r.bytes),
  };
}

export function flowMatches(r: FlowRecord, q: FlowQuery): boolean {
  return (
    (q.since === undefined || r.lastSeen >= q.since) &&
    (q.until === undefined || r.lastSeen <= q.until) &&
    (q.verdict === undefined || r.verdict === q.verdict) &&
    (q.rule === undefined || r.rule === q.rule) &&
    (q.point === undefined || r.point === q.point) &&
    (q.sourceIps === undefined || q.sourceIps.includes(r.sourceIp)) &&
    (q.destinationIps === undefined || q.destinationIps.includes(r.destinationIp))
  );
}

/** Newest last seen first, ties by id. */
export function compareFlows(a: FlowRecord, b: FlowRecord): number {
  if (a.lastSeen !== b.lastSeen) return a.lastSeen > b.lastSeen ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The oldest `lastSeen` still kept at `now`. */
export function retentionCutoff(now: Date, retention: Required<FlowRetention>): string {
  return new Date(now.getTime() - retention.maxAgeMs).toISOString();
}
