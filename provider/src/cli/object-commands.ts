import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { validateSpec } from '../engine';
import { identityOf, type Kind } from '../model';
import { renderPath } from '../topology';
import { unknownKeys } from '../model/unknown-keys';
import { isSettingsObject, BackendService, SETTINGS_KIND } from '../service';
import { engineValidator } from '../backend';
import { asCliError, parseKind, withStore, type StoreOptions } from './context';
import { json, table } from './format';
import { CliError, EXIT_FAILED, EXIT_OK, type CliIo } from './io';

/** Object commands on the embedded store: get, list, put (a change made outside Pulumi), delete. */

/** `microseg get KIND NAME`: the stored spec and computed outputs of one object (YAML, or JSON with --json). */
export async function runGet(kindArg: string, name: string, options: StoreOptions & { json?: boolean }, io: CliIo): Promise<number> {
  const kind = parseKind(kindArg);
  return withStore(options, io, async (ctx) => {
    const o = await ctx.store.get(ctx.environment, kind, name);
    if (!o) throw new CliError(`${kind} "${name}" does not exist in environment "${ctx.environment}" (${ctx.dataDir})`);
    const doc = { kind: o.kind, name: o.name, revision: o.revision, updatedAt: o.updatedAt, ...(o.owner !== undefined ? { owner: o.owner } : {}), spec: o.spec, outputs: o.status ?? {} };
    io.stdout(options.json ? json(doc) : stringify(doc));
    return EXIT_OK;
  });
}

/** `microseg list [KIND]`: the objects of the environment. */
export async function runList(kindArg: string | undefined, options: StoreOptions & { json?: boolean }, io: CliIo): Promise<number> {
  const kind = kindArg === undefined ? undefined : parseKind(kindArg);
  return withStore(options, io, async (ctx) => {
    const objects = (await ctx.store.list(ctx.environment, kind ? { kind } : {})).filter((o) => !isSettingsObject(o));
    const rows = objects.map((o) => ({ kind: o.kind, name: o.name, revision: o.revision, updatedAt: o.updatedAt, ...(o.owner !== undefined ? { owner: o.owner } : {}) }));
    if (options.json) io.stdout(json(rows));
    else if (rows.length === 0) io.stdout(`no ${kind ?? 'object'}s in environment "${ctx.environment}" (${ctx.dataDir})\n`);
    else io.stdout(table(['KIND', 'NAME', 'REVISION', 'UPDATED'], rows.map((r) => [r.kind, r.name, String(r.revision), r.updatedAt])));
    return EXIT_OK;
  });
}

/**
 * Reads a spec (`-` for stdin): JSON or YAML, either the properties themselves or a topology-file resource
 * `{type, properties}`.
 */
async function readSpec(kind: Kind, file: string, io: CliIo): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? await io.readStdin() : await readFile(path.resolve(io.cwd, file), 'utf8');
  } catch (err) {
    throw new CliError(`--spec: cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) throw new CliError(`--spec: ${file} is neither JSON nor YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  let spec = doc.toJS() as unknown;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new CliError(`--spec: ${file} must hold an object of ${kind} properties`);
  const wrapped = spec as { type?: unknown; properties?: unknown };
  if (typeof wrapped.type === 'string' && wrapped.properties !== undefined) {
    if (wrapped.type.replace(/^microseg:(index:)?/, '') !== kind) throw new CliError(`--spec: ${file} declares type ${wrapped.type}, not ${kind}`);
    spec = wrapped.properties;
  }
  return { ...(spec as Record<string, unknown>) };
}

/**
 * Fills the naming properties from NAME when the spec omits them (`cluster/namespace/name` for a
 * Workload or KubernetesNetworkPolicy, `cluster/name` for a Namespace, `policy/name` for a FirewallRule),
 * and refuses a spec whose identity differs from NAME.
 */
function completeIdentity(kind: Kind, name: string, spec: Record<string, unknown>): void {
  const parts = name.split('/');
  if (kind === 'Workload' || kind === 'Namespace' || kind === 'FirewallRule' || kind === 'KubernetesNetworkPolicy') {
    const fields = kind === 'Workload' || kind === 'KubernetesNetworkPolicy' ? ['cluster', 'namespace', 'name'] : kind === 'Namespace' ? ['cluster', 'name'] : ['policy', 'name'];
    if (parts.length !== fields.length || parts.some((p) => p === '')) throw new CliError(`a ${kind} is named ${fields.map((f) => f.toUpperCase()).join('/')}; got "${name}"`);
    fields.forEach((f, i) => (spec[f] ??= parts[i]));
  } else spec.name ??= name;
  const id = identityOf(kind, spec as { name?: string; cluster?: string; namespace?: string; policy?: string });
  if (id !== name) throw new CliError(`${kind} "${name}": the spec names the object "${id}"; expected its name (and cluster/namespace, or policy) to match NAME`);
}

/**
 * `microseg put KIND NAME --spec FILE|-`: creates or replaces one object in the store, validated as the
 * provider validates (schema, per-object checks, references). This is how a change made outside Pulumi
 * is made; the next `pulumi refresh` or `preview` sees it as drift.
 */
export async function runPut(kindArg: string, name: string, options: StoreOptions & { spec?: string; json?: boolean }, io: CliIo): Promise<number> {
  const kind = parseKind(kindArg);
  if (options.spec === undefined) throw new CliError('put: --spec FILE is required (use - to read the spec from stdin)');
  const spec = await readSpec(kind, options.spec, io);
  completeIdentity(kind, name, spec);
  const checked = validateSpec(kind, spec);
  const problems = checked.problems.filter((p) => p.severity !== 'warning').map((p) => `${p.path || '(spec)'}: ${p.message}`);
  if (checked.ok) for (const u of unknownKeys(spec, checked.value)) problems.push(`${renderPath(u)}: unknown property of ${kind}`);
  if (!checked.ok || problems.length > 0) throw new CliError(`${kind} "${name}" is invalid:${problems.length === 1 ? ` ${problems[0]}` : `\n  ${problems.join('\n  ')}`}`);
  return withStore(options, io, async (ctx) => {
    const existed = (await ctx.store.get(ctx.environment, kind, name)) !== undefined;
    // Store the checked spec (defaults applied), as the provider's Check does, so a later diff only
    // shows what really differs.
    const result = await ctx.backend.put(kind, name, checked.ok ? (checked.value as Record<string, never>) : {}, existed ? 'update' : 'create');
    const stored = await ctx.store.get(ctx.environment, kind, name);
    // The backend returns the object's own warnings; the engine reports a priority tie on both policies.
    for (const w of result.warnings) io.stderr(`microseg: warning: ${w}\n`);
    if (options.json) io.stdout(json({ kind, name, action: existed ? 'updated' : 'created', revision: stored?.revision, outputs: result.outputs }));
    else io.stdout(`${existed ? 'updated' : 'created'} ${kind} "${name}" in environment "${ctx.environment}" (revision ${stored?.revision ?? '?'})\n`);
    return EXIT_OK;
  });
}

/** `microseg delete KIND NAME`: removes one object; refused while other objects still reference it. */
export async function runDelete(kindArg: string, name: string, options: StoreOptions, io: CliIo): Promise<number> {
  const kind = parseKind(kindArg);
  return withStore(options, io, async (ctx) => {
    if (!(await ctx.store.get(ctx.environment, kind, name))) throw new CliError(`${kind} "${name}" does not exist in environment "${ctx.environment}" (${ctx.dataDir})`);
    try {
      await ctx.backend.delete(kind, name);
    } catch (err) {
      // The request was well formed; the state refused it (still referenced): a failure, not bad input.
      throw asCliError(err, EXIT_FAILED);
    }
    io.stdout(`deleted ${kind} "${name}" from environment "${ctx.environment}"\n`);
    return EXIT_OK;
  });
}

/** Who manages objects, summarised: `stack dev` for Pulumi URNs, the owner string otherwise. */
function ownerLabel(owner: string | undefined): string {
  if (owner === undefined) return '(none)';
  const m = /^urn:pulumi:([^:]+)::([^:]+)::/.exec(owner);
  return m ? `stack ${m[2]}/${m[1]}` : owner;
}

/**
 * `microseg environments`: every environment of the store with its object count, the default action
 * stored with it (what queries use without --default-action) and who manages its objects.
 */
export async function runEnvironments(options: { dataDir?: string; json?: boolean }, io: CliIo): Promise<number> {
  return withStore({ ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}) }, io, async (ctx) => {
    const rows: Array<{ environment: string; objects: number; defaultAction: string; defaultActionStored: boolean; owners: Record<string, number> }> = [];
    for (const environment of await ctx.store.environments()) {
      const all = await ctx.store.list(environment);
      const objects = all.filter((o) => !isSettingsObject(o));
      const service = new BackendService({ store: ctx.store, environment, validator: engineValidator });
      const stored = (await service.settings()).defaultAction;
      const owners: Record<string, number> = {};
      for (const o of objects) owners[ownerLabel(o.owner)] = (owners[ownerLabel(o.owner)] ?? 0) + 1;
      rows.push({ environment, objects: objects.length, defaultAction: stored ?? 'drop', defaultActionStored: stored !== undefined || all.some((o) => o.kind === SETTINGS_KIND), owners });
    }
    if (options.json) io.stdout(json(rows));
    else if (rows.length === 0) io.stdout(`no environments in ${ctx.dataDir}\n`);
    else
      io.stdout(
        table(
          ['ENVIRONMENT', 'OBJECTS', 'DEFAULT ACTION', 'OWNERS'],
          rows.map((r) => [r.environment, String(r.objects), r.defaultActionStored ? r.defaultAction : `${r.defaultAction} (not set)`, Object.entries(r.owners).map(([o, n]) => `${o} (${n})`).join(', ')]),
        ),
      );
    return EXIT_OK;
  });
}
