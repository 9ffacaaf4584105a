import { z } from 'zod';
import { StoreError } from './errors';
import type { FlowQuery, FlowRecord, FlowRetention } from './types';

/**
 * The reference semantics of flow records shared by the adapters: validation, merging a report into a
 * stored record, query matching and ordering. The SQLite adapter does the same in SQL.
 */

const text = (what: string, max = 1024) => z.string({ error: 'must be a non-empty string' }).min(1, 'must be a non-empty string').max(max, `must be at most ${max} characters`).describe(what);
const time = (what: string) =>
  z
    .string({ error: 'must be an ISO-8601 time' })
    .refine((v) => !Number.isNaN(Date.parse(v)), 'must be an ISO-8601 time')
    .describe(what);
const counter = (what: string) => z.number({ error: 'must be a non-negative integer' }).int('must be a non-negative integer').min(0, 'must be a non-negative integer').describe(what);
const port = z.number().int().min(0).max(65535);

/**
 * One flow record: the single definition the stores validate with (checkFlow) and the server's flow
 * ingest route validates and documents (OpenAPI) with. See FlowRecord in types.ts for the semantics.
 */
export const flowRecordSchema = z
  .object({
    id: text('Unique in the environment; a known id merges into the stored record (the larger counters are kept).'),
    point: text('The enforcement point that saw the flow (vm:NAME#i, pod:CLUSTER/NS/POD).'),
    direction: z.enum(['in', 'out'], { error: 'must be in or out' }),
    protocol: text('tcp, udp, sctp...', 32),
    sourceIp: text('Source address.', 64),
    sourcePort: port.optional(),
    destinationIp: text('Destination address.', 64),
    destinationPort: port.optional(),
    verdict: z.enum(['allow', 'drop', 'reject'], { error: 'must be allow, drop or reject' }),
    rule: text('The deciding rule: policy/rule, or default.'),
    stagedVerdict: z.string().max(32).optional(),
    stagedRule: z.string().max(1024).optional(),
    firstSeen: time('ISO-8601.'),
    lastSeen: time('ISO-8601.'),
    packets: counter("The kernel's packet counter of the record (only grows for one id)."),
    bytes: counter("The kernel's byte counter of the record."),
  })
  .strict()
  .meta({ id: 'FlowRecord' });

// The schema and the store's interface describe the same record: a change to one fails the build here.
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
const _sameShape: [Mutable<FlowRecord>, z.infer<typeof flowRecordSchema>] extends [z.infer<typeof flowRecordSchema>, Mutable<FlowRecord>] ? true : never = true;
void _sameShape;

/** Refuses a malformed record, naming the field, before anything is written. */
export function checkFlow(r: FlowRecord, i: number): void {
  const parsed = flowRecordSchema.safeParse(r);
  if (parsed.success) return;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.map(String).join('.');
  throw new StoreError('INVALID_ARGUMENT', `flow record [${i}]${field ? `.${field}` : ''}: ${issue.message}`);
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
