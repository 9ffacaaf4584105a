/**
 * What every command needs from its surroundings, injected so that tests run commands in-process and
 * capture their output instead of spawning a process.
 */
export interface CliIo {
  /** Writes text to standard output as is (callers add newlines). */
  stdout(text: string): void;
  /** Writes text to standard error as is. */
  stderr(text: string): void;
  /** Environment variables (MICROSEG_DATA_DIR...). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths are resolved against. */
  readonly cwd: string;
  /** Reads all of standard input (for `--spec -`). */
  readStdin(): Promise<string>;
}

/** Exit codes: 0 success, 1 the command ran and found a failure, 2 bad input (nothing was evaluated or written). */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/**
 * A user error: printed as one line on stderr (`microseg: <message>`), never with a stack trace.
 * `exitCode` is 2 (bad input) unless the command ran and the outcome is a failure.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The real process streams. */
export function processIo(): CliIo {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/** An in-memory CliIo for tests and embedding: `out()` / `err()` return what was written. */
export function memoryIo(options: { env?: Record<string, string | undefined>; cwd?: string; stdin?: string } = {}): CliIo & { out(): string; err(): string } {
  let out = '';
  let err = '';
  return {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    readStdin: async () => options.stdin ?? '',
    out: () => out,
    err: () => err,
  };
}
