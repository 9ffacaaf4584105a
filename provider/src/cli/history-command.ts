import { isKind } from '../model';
import type { AuditRecord, ChangeLogEntry } from '../store';
import { parseKind, withStore, type StoreOptions } from './context';
import { json, table } from './format';
import { CliError, EXIT_OK, type CliIo } from './io';

/**
 * `microseg history`: the change log of an environment (what changed, when, to which revision, by whom),
 * newest last. The change log is the store's own record of every committed write, so it is complete
 * whoever wrote (provider, CLI, server). "Who" comes from the audit record written in the same batch when
 * the change went through `microseg serve`; for a change made by the provider or the CLI on the embedded
 * store it is the object's owner (the Pulumi resource URN or `microseg-cli:USER`), known while the
 * object is still at that revision.
 */
export interface HistoryOptions extends StoreOptions {
  kind?: string;
  name?: string;
  /** Only the newest N entries. */
  limit?: string;
  json?: boolean;
}

/** One line of history. */
export interface HistoryEntry {
  seq: number;
  time: string;
  op: ChangeLogEntry['op'];
  kind: string;
  name: string;
  revision: number;
  /** Audit actor (team mode) or owner; absent when no longer known. */
  actor?: string;
  /** What changed, when an audit record says so. */
  summary?: string;
}

export async function runHistory(options: HistoryOptions, io: CliIo): Promise<number> {
  const kind = options.kind === undefined ? undefined : parseKind(options.kind);
  const limit = options.limit === undefined ? undefined : Number(options.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new CliError(`--limit: "${options.limit}" is not a positive whole number`);
  return withStore(options, io, async (ctx) => {
    // Only the model's kinds: settings and realization status are bookkeeping, not changes a user made.
    let changes = (await ctx.store.changes(ctx.environment, { ...(kind ? { kind } : {}), ...(options.name ? { name: options.name } : {}) })).filter((c) => isKind(c.kind));
    if (limit !== undefined) changes = changes.slice(Math.max(0, changes.length - limit));
    const audits = new Map<string, AuditRecord>();
    if (changes.length > 0) {
      for (const r of await ctx.store.audit(ctx.environment, { ...(kind ? { kind } : {}), ...(options.name ? { name: options.name } : {}) })) audits.set(`${r.kind}\u0000${r.name}\u0000${r.revision}`, r);
    }
    const current = new Map((await ctx.store.list(ctx.environment, kind ? { kind } : {})).map((o) => [`${o.kind}\u0000${o.name}`, o]));
    const entries: HistoryEntry[] = changes.map((c) => {
      const audit = audits.get(`${c.kind}\u0000${c.name}\u0000${c.revision}`);
      const object = current.get(`${c.kind}\u0000${c.name}`);
      const owner = c.op !== 'delete' && object?.revision === c.revision ? object.owner : undefined;
      const actor = audit ? `${audit.actor} (${audit.role})` : owner;
      return { seq: c.seq, time: c.time, op: c.op, kind: c.kind, name: c.name, revision: c.revision, ...(actor ? { actor } : {}), ...(audit?.summary ? { summary: audit.summary } : {}) };
    });
    if (options.json) io.stdout(json(entries));
    else if (entries.length === 0) io.stdout(`no changes in environment "${ctx.environment}" (${ctx.dataDir})\n`);
    else io.stdout(table(['SEQ', 'TIME', 'OP', 'OBJECT', 'REVISION', 'BY', 'SUMMARY'], entries.map((e) => [String(e.seq), e.time, e.op, `${e.kind}/${e.name}`, String(e.revision), e.actor ?? '-', e.summary ?? ''])));
    return EXIT_OK;
  });
}
