import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { exportState, importState, parseStateDocument, type StateDocument } from '../store';
import { validateSpec } from '../engine';
import { isKind } from '../model';
import { REALIZATION_KIND } from '../agent';
import { withStore, type StoreOptions } from './context';
import { json } from './format';
import { CliError, EXIT_OK, type CliIo } from './io';

/** export-state / import-state: the store's versioned JSON document, for backups and moves. */

/**
 * `microseg export-state [--out FILE] [--all-environments]`: the environment (or every environment) as a
 * state document, on stdout or into FILE.
 */
export async function runExportState(options: StoreOptions & { out?: string; allEnvironments?: boolean }, io: CliIo): Promise<number> {
  return withStore(options, io, async (ctx) => {
    const exported = await exportState(ctx.store, options.allEnvironments ? {} : { environments: [ctx.environment] });
    // Realization status is what agents observed, not declared state: agents report it again after an import.
    const doc = { ...exported, environments: Object.fromEntries(Object.entries(exported.environments).map(([env, e]) => [env, { ...e, objects: e.objects.filter((o) => o.kind !== REALIZATION_KIND) }])) };
    const text = json(doc);
    if (options.out === undefined || options.out === '-') {
      io.stdout(text);
      return EXIT_OK;
    }
    const file = path.resolve(io.cwd, options.out);
    try {
      // The state describes the estate's segmentation: readable by its owner only.
      await writeFile(file, text, { mode: 0o600 });
    } catch (err) {
      throw new CliError(`--out: cannot write ${options.out}: ${(err as Error).message}`);
    }
    const count = Object.values(doc.environments).reduce((n, e) => n + e.objects.length, 0);
    io.stdout(`exported ${count} object${count === 1 ? '' : 's'} of ${Object.keys(doc.environments).length} environment(s) to ${options.out}\n`);
    return EXIT_OK;
  });
}

/**
 * `microseg import-state FILE [--into ENV]`: restores a state document into empty environments. With
 * `--into`, a document holding one environment is restored under another name (e.g. dev → staging).
 */
export async function runImportState(file: string, options: StoreOptions & { into?: string }, io: CliIo): Promise<number> {
  let value: unknown;
  try {
    const text = file === '-' ? await io.readStdin() : await readFile(path.resolve(io.cwd, file), 'utf8');
    value = JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError) throw new CliError(`${file} is not JSON: ${err.message}`);
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  return withStore(options, io, async (ctx) => {
    let doc: StateDocument = parseStateDocument(value, file);
    if (options.into !== undefined) {
      const envs = Object.keys(doc.environments);
      if (envs.length !== 1) throw new CliError(`--into: ${file} holds ${envs.length} environments (${envs.join(', ')}); --into needs a document of exactly one`);
      doc = { ...doc, environments: { [options.into]: doc.environments[envs[0]!]! } };
    }
    doc = normaliseDocument(doc, file);
    const r = await importState(ctx.store, doc, file);
    io.stdout(`imported ${r.objects} object${r.objects === 1 ? '' : 's'} into ${Object.keys(doc.environments).map((e) => `"${e}"`).join(', ')} (${ctx.dataDir})\n`);
    return EXIT_OK;
  });
}

/**
 * Validates every object of a state document with the engine and applies its defaults, because the
 * backend trusts stored specs when it rebuilds its world (a hand-edited document must not slip past).
 */
function normaliseDocument(doc: StateDocument, file: string): StateDocument {
  const problems: string[] = [];
  const environments = Object.fromEntries(
    Object.entries(doc.environments).map(([env, { objects }]) => [
      env,
      {
        objects: objects.map((o) => {
          if (!isKind(o.kind)) {
            problems.push(`${env}/${o.kind}/${o.name}: unknown kind "${o.kind}"`);
            return o;
          }
          const r = validateSpec(o.kind, o.spec);
          if (!r.ok) {
            for (const p of r.problems) if (p.severity !== 'warning') problems.push(`${env}/${o.kind}/${o.name}${p.path ? `.${p.path}` : ''}: ${p.message}`);
            return o;
          }
          return { ...o, spec: r.value as Record<string, unknown> };
        }),
      },
    ]),
  );
  if (problems.length > 0) throw new CliError(`${file} holds invalid objects; nothing was imported:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return { ...doc, environments };
}
