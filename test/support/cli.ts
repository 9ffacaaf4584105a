import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CliError, memoryIo } from '../../provider/src/cli/io';
import { runPut } from '../../provider/src/cli/object-commands';

/** The in-memory IO the commands write to. */
export type MemoryIo = ReturnType<typeof memoryIo>;

export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs a command in-process, turning a thrown CliError into its exit code and stderr line (as `run` does). */
export async function runCli(fn: (io: MemoryIo) => Promise<number>, opts: Parameters<typeof memoryIo>[0] = {}): Promise<CliResult> {
  const io = memoryIo(opts);
  let code: number;
  try {
    code = await fn(io);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    io.stderr(`microseg: ${err.message}\n`);
    code = err.exitCode;
  }
  return { code, out: io.out(), err: io.err() };
}

/** A temporary directory with a data directory path inside it; `remove()` deletes both. */
export function tempDataDir(prefix: string): { dir: string; dataDir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, dataDir: path.join(dir, 'data'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `microseg put` of each `[kind, name, YAML or JSON spec]` in order; throws with the CLI's error on the first refusal. */
export async function putSpecs(dataDir: string, specs: readonly (readonly [string, string, string])[]): Promise<void> {
  for (const [kind, name, text] of specs) {
    const io = memoryIo({ stdin: text });
    const code = await runPut(kind, name, { dataDir, spec: '-' }, io);
    if (code !== 0) throw new Error(`put ${kind} ${name}: ${io.err()}`);
  }
}
