import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { NftExecutor, NftListing } from './ports';

/** A refusal by nft (or its absence), with nft's own message. */
export class NftError extends Error {}

export interface NftCliOptions {
  /** Command and leading arguments; default `['nft']`. Tests prefix `ip netns exec NS`. */
  readonly command?: readonly string[];
}

function run(cmd: readonly string[], args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd[0]!, [...cmd.slice(1), ...args], { maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return reject(new NftError(`${cmd[0]} is not installed (or not on PATH); install nftables (Debian: apt-get install nftables)`));
      reject(new NftError(stderr.trim().replace(/\s+/g, ' ') || err.message));
    });
  });
}

/**
 * nft through its command line, one transaction per apply: `nft -f` for text, `nft -j -f` for a JSON
 * document. The agent sends text: nft parses it in about two thirds of the CPU time of the same ruleset
 * as JSON (bench/README.md, Realization).
 */
export class NftCli implements NftExecutor {
  private readonly command: readonly string[];

  constructor(options: NftCliOptions = {}) {
    this.command = options.command ?? ['nft'];
  }

  async apply(doc: unknown): Promise<void> {
    // Through a private file: nft reads /dev/stdin, which a socket (how Node pipes stdio) cannot be.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'microseg-nft-'));
    const text = typeof doc === 'string';
    const file = path.join(dir, text ? 'ruleset.nft' : 'ruleset.json');
    try {
      await writeFile(file, text ? doc : JSON.stringify(doc), { mode: 0o600 });
      await run(this.command, [...(text ? [] : ['-j']), '-f', file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async listTable(name: string): Promise<NftListing | undefined> {
    try {
      return JSON.parse(await run(this.command, ['-j', 'list', 'table', 'inet', name])) as NftListing;
    } catch (err) {
      if (err instanceof NftError && /No such file or directory/.test(err.message)) return undefined;
      throw err;
    }
  }
}

/**
 * Fails with a clear message unless this process can program nftables: nft installed, and root
 * (CAP_NET_ADMIN). Called before the agent touches anything.
 */
export async function preflight(command: readonly string[] = ['nft']): Promise<void> {
  await run(command, ['--version']);
  if (process.getuid?.() !== 0) throw new NftError('microseg agent programs nftables and must run as root (CAP_NET_ADMIN); run it with sudo or as a root service');
  try {
    await run(command, ['list', 'tables']);
  } catch (err) {
    if (/Operation not permitted/.test((err as Error).message)) throw new NftError('nft refuses: Operation not permitted; microseg agent needs CAP_NET_ADMIN');
    throw err;
  }
}
