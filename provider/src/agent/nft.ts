import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { elementKeyTexts, elementTexts, replaceTableText, type Table } from '../realize/nftables';
import type { ElementChange, NftExecutor, NftListing } from './ports';

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
 * as JSON (bench/README.md, Realization). The fallback when microseg-nft (netlink.ts) is not installed:
 * nft's parser and evaluator cost most of a large table's apply, and an element update reads the whole
 * interval set back first.
 */
export class NftCli implements NftExecutor {
  readonly description = 'nft (text transactions)';
  private readonly command: readonly string[];

  constructor(options: NftCliOptions = {}) {
    this.command = options.command ?? ['nft'];
  }

  replaceTable(table: Table): Promise<void> {
    return this.apply(replaceTableText(table));
  }

  async updateElements(table: Table, changes: readonly ElementChange[]): Promise<void> {
    const text = elementChangesText(table, changes);
    if (text) await this.apply(text);
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

/** One `nft -f` text transaction deleting and adding the changed elements (deletions first: a map key may move to another rule, and interval keys must not overlap meanwhile). */
export function elementChangesText(table: Table, changes: readonly ElementChange[]): string {
  const dels: string[] = [];
  const adds: string[] = [];
  for (const { old, now, removed, added } of changes) {
    if (removed.length) dels.push(`delete element ${table.family} ${table.name} ${now.name} { ${elementKeyTexts(old, removed).join(', ')} }`);
    if (added.length) adds.push(`add element ${table.family} ${table.name} ${now.name} { ${elementTexts(now, added).join(', ')} }`);
  }
  return [...dels, ...adds].map((l) => `${l}\n`).join('');
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
