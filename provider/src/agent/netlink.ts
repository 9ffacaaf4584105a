import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { NamedSet, Table, Verdict } from '../realize/nftables';
import { NftError } from './nft';
import type { ElementChange, NftExecutor, NftListing } from './ports';

/**
 * The kernel through microseg-nft (tools/nft-writer): a long-running Go process that turns the compiled
 * table into nf_tables netlink messages itself, as nft would for the same text, and sends each swap or
 * element update as one netlink batch (all or nothing, like `nft -f`). It skips what makes nft slow on a
 * large table: the text parser and evaluator (most of `nft -f`'s CPU time), the read-back of a whole
 * interval set before an element update, and reading the static sets when the agent lists counters.
 *
 * The process runs in the network namespace it is started in (tests prefix `ip netns exec NS`); one
 * request at a time, newline-delimited JSON both ways. If it exits, the pending request fails with what it
 * said on stderr, and the next request starts a new one.
 */

export interface NetlinkNftOptions {
  /** The microseg-nft binary (see {@link findNftWriter}). */
  readonly binary: string;
  /** Leading command, e.g. `['ip', 'netns', 'exec', NS]`. */
  readonly prefix?: readonly string[];
}

interface WriterListing {
  readonly exists: boolean;
  readonly handle?: number;
  readonly rules?: readonly { chain: string; handle: number; comment?: string; counters?: readonly { packets: number; bytes: number }[] }[];
  readonly flowSets?: readonly { name: string; elements: readonly { src: string; dst: string; proto: number; dport: number; packets: number; bytes: number }[] }[];
}

interface WriterResponse {
  readonly id: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly cpuMs: number;
  readonly sysMs: number;
  readonly listing?: WriterListing;
}

const PROTOCOL_NAMES: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

const verdictCode = (v: Verdict) => (v.kind === 'accept' ? 'a' : v.kind === 'drop' ? 'd' : v.kind === 'goto' ? `g:${v.target}` : v.kind);

/**
 * Some elements of a set in the writer's compact form (tools/nft-writer/ir.go NamedSet): elements
 * separated by ",", fields by " ", addresses in hexadecimal. Building and parsing it costs a fraction of
 * JSON objects of bigints on the large sets (60,000 elements).
 */
export function elementsWire(s: NamedSet, which?: readonly number[]): string {
  const out: string[] = [];
  const each = <T,>(xs: readonly T[], f: (x: T) => string) => {
    if (which) for (const i of which) out.push(f(xs[i]!));
    else for (const x of xs) out.push(f(x));
  };
  switch (s.kind) {
    case 'set':
      each(s.elements, (a) => `${a.lo.toString(16)} ${a.hi.toString(16)}`);
      break;
    case 'addr-map':
      each(s.elements, (e) => `${e.addr.lo.toString(16)} ${e.addr.hi.toString(16)} ${e.rule.toString(16)}`);
      break;
    case 'rule-map':
      each(s.elements, (e) => `${e.rule.toString(16)} ${verdictCode(e.verdict)}`);
      break;
    case 'port-map':
      each(s.elements, (e) => `${e.lo} ${e.hi} ${verdictCode(e.verdict)}`);
      break;
    case 'service-set':
      each(s.elements, (e) => `${e.addr.lo.toString(16)} ${e.addr.hi.toString(16)} ${e.service.protocol} ${e.service.lo} ${e.service.hi}`);
      break;
    case 'flow-set':
      break;
  }
  return out.join(',');
}

/** The table as the writer reads it: the model as JSON, each set's elements as one compact string. */
function tableWire(t: Table): string {
  const sets = t.sets.map((s) => {
    const { elements: _, ...head } = s;
    return { ...head, e: elementsWire(s) };
  });
  return JSON.stringify({ family: t.family, name: t.name, sets, chains: t.chains });
}

export class NetlinkNft implements NftExecutor {
  readonly description: string;
  /** CPU time (user + system, ms) the writer spent on the last request, as it measured it. */
  lastCpuMs = 0;
  /** The kernel's share of {@link lastCpuMs} (system time: netlink batches are processed in the sender). */
  lastSysMs = 0;
  /**
   * Two processes: one for the writes, one for the reads (`list`), so reading a large table's counters
   * (tens of milliseconds) never holds up an element update sent meanwhile, nor the other way round.
   */
  private readonly writer: WriterProcess;
  private readonly reader: WriterProcess;

  constructor(options: NetlinkNftOptions) {
    this.description = `netlink (${options.binary})`;
    const account = (r: WriterResponse) => {
      this.lastCpuMs = r.cpuMs;
      this.lastSysMs = r.sysMs;
    };
    this.writer = new WriterProcess(options, account);
    this.reader = new WriterProcess(options, account);
  }

  async replaceTable(table: Table): Promise<void> {
    await this.writer.call(`"op":"replace","table":${tableWire(table)}`);
  }

  async updateElements(table: Table, changes: readonly ElementChange[]): Promise<void> {
    if (!changes.length) return;
    const header = (s: ElementChange['now']) => ({ kind: s.kind, name: s.name, ...('v' in s ? { v: s.v } : {}) });
    const sets = changes.map((c) => ({ set: header(c.now), delete: elementsWire(c.old, c.removed), add: elementsWire(c.now, c.added) }));
    await this.writer.call(`"op":"elements","name":${JSON.stringify(table.name)},"changes":${JSON.stringify(sets)}`);
  }

  async listTable(name: string): Promise<NftListing | undefined> {
    const r = await this.reader.call(`"op":"list","name":${JSON.stringify(name)}`);
    const l = r.listing;
    if (!l?.exists) return undefined;
    // The shape of `nft -j list table` that hitsOf and droppedFlowsOf read.
    const family = 'inet';
    return {
      nftables: [
        { table: { family, name, handle: l.handle ?? 0 } },
        ...(l.rules ?? []).map((x) => ({
          rule: { family, table: name, chain: x.chain, handle: x.handle, ...(x.comment !== undefined ? { comment: x.comment } : {}), expr: (x.counters ?? []).map((c) => ({ counter: c })) },
        })),
        ...(l.flowSets ?? []).map((s) => ({
          set: {
            family,
            name: s.name,
            table: name,
            elem: s.elements.map((e) => ({ elem: { val: { concat: [e.src, e.dst, PROTOCOL_NAMES[e.proto] ?? String(e.proto), e.dport] }, counter: { packets: e.packets, bytes: e.bytes } } })),
          },
        })),
      ],
    };
  }

  close(): void {
    this.writer.close();
    this.reader.close();
  }
}

/** One microseg-nft process, started on first use (and again after it exited), answering one request at a time. */
class WriterProcess {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private stderr = '';
  private nextId = 1;
  private waiting: { id: number; proc: ChildProcessWithoutNullStreams; resolve: (r: WriterResponse) => void; reject: (e: Error) => void } | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: NetlinkNftOptions,
    private readonly account: (r: WriterResponse) => void,
  ) {}

  /** One request; requests queue behind each other (the writer answers one at a time). */
  call(body: string): Promise<WriterResponse> {
    const next = this.queue.then(() => this.send(body));
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.proc?.stdin.end();
    this.proc = undefined;
  }

  private send(body: string): Promise<WriterResponse> {
    const proc = this.proc ?? this.start();
    const id = this.nextId++;
    return new Promise<WriterResponse>((resolve, reject) => {
      this.waiting = { id, proc, resolve, reject };
      proc.ref();
      proc.stdin.write(`{"id":${id},${body}}\n`);
    }).then((r) => {
      this.account(r);
      if (!r.ok) throw new NftError(r.error ?? 'microseg-nft refused the request');
      return r;
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    const [cmd, ...args] = [...(this.options.prefix ?? []), this.options.binary];
    const proc = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    this.stderr = '';
    const fail = (err: Error) => {
      if (this.proc === proc) this.proc = undefined;
      // Only the request this process was answering (a closed process's exit concerns no one).
      const w = this.waiting;
      if (w?.proc !== proc) return;
      this.waiting = undefined;
      w.reject(err);
    };
    proc.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    proc.on('error', (err) => fail(new NftError(`microseg-nft (${this.options.binary}) could not start: ${err.message}`)));
    proc.on('exit', (code, signal) => fail(new NftError(`microseg-nft (${this.options.binary}) exited (${signal ?? `code ${code}`}): ${this.stderr.trim() || 'no message'}`)));
    proc.stdin.on('error', () => undefined); // the exit handler reports it
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const w = this.waiting;
      let r: WriterResponse;
      try {
        r = JSON.parse(line) as WriterResponse;
      } catch {
        return fail(new NftError(`microseg-nft answered something that is not JSON: ${line.slice(0, 200)}`));
      }
      if (!w || w.proc !== proc || r.id !== w.id) return;
      this.waiting = undefined;
      // Idle: the writer does not keep this process alive (a CLI that forgets close() still exits).
      proc.unref();
      w.resolve(r);
    });
    // Stdio pipes are sockets that hold the event loop; the process handle's ref/unref decides instead.
    for (const s of [proc.stdin, proc.stdout, proc.stderr] as unknown as { unref?: () => void }[]) s.unref?.();
    return proc;
  }
}

/**
 * The microseg-nft binary to use: `MICROSEG_NFT_WRITER` (a path; `nft` or an empty value: none, use
 * nft), else `microseg-nft` beside the bundled CLI (the plugin archive), else `.tools/bin/microseg-nft` of
 * this checkout (what scripts/setup.sh builds), else none.
 */
export function findNftWriter(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const configured = env.MICROSEG_NFT_WRITER;
  if (configured !== undefined) return configured === '' || configured === 'nft' ? undefined : configured;
  // Beside the bundled CLI in the installed plugin (scripts/package.ts puts it there).
  const bundled = path.join(__dirname, 'microseg-nft');
  if (fs.existsSync(bundled)) return bundled;
  for (let dir = __dirname, i = 0; i < 6; i++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, '.tools', 'bin', 'microseg-nft');
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}
