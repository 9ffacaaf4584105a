import { execFile } from 'node:child_process';
import { traceflow, type FlowProtocol, type World } from '../engine';
import type { FlowRule } from '../realize/nftables';
import type { FlowRecord } from '../store';
import type { NftListing } from './ports';

/**
 * Flow records from the kernel, at the agent's enforcement points.
 *
 * Mechanism (why: both are plain kernel state the agent can read with the tools it already needs, so
 * no extra daemon, no NFQUEUE, nothing lost when the agent restarts):
 *
 * - Allowed connections: the accepting rule's chain sets the conntrack mark to the rule's flow mark
 *   (compile.ts `flowMark`). Conntrack then holds one entry per connection with the 5-tuple, the mark and
 *   (with `nf_conntrack_acct`, which the agent turns on) packets and bytes of both directions, for the
 *   connection's life and its TIME_WAIT/UDP timeout afterwards. The agent dumps it (`conntrack -L`).
 * - Dropped and rejected packets never get a conntrack entry (the connection is never confirmed), so the
 *   dropping rule's chain adds `saddr . daddr . l4proto . dport` to its own dynamic set, whose elements
 *   carry a counter and expire after 10 idle minutes. The agent reads those sets with the table listing
 *   it already does for the hit counters: one record per rule and source → destination:port, counting
 *   the packets (a dropped TCP connection attempt is one SYN per retry).
 *
 * Each pass reports what is new or has grown since the previous pass, with the kernel's counters (the
 * store keeps the larger, so a restarted agent reporting everything again counts nothing twice) and the
 * staged policies' verdict for the same flow from the engine. A dropped-flow record's id includes the
 * table's kernel handle: a table swap empties the sets, and the counters start a new record.
 * ICMP and other port-less protocols are counted by the rule counters but give no flow records.
 */

/** One conntrack entry (the original direction's tuple; counters of both directions summed). */
export interface ConntrackEntry {
  readonly id: string;
  readonly protocol: string;
  readonly src: string;
  readonly dst: string;
  readonly sport?: number;
  readonly dport?: number;
  readonly mark: number;
  readonly packets: number;
  readonly bytes: number;
}

/** Reads the connection tracking table of the agent's network namespace. */
export interface ConntrackReader {
  list(family: 4 | 6): Promise<ConntrackEntry[]>;
}

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'udplite', 'dccp', 'icmp', 'icmpv6', 'gre', 'unknown']);

/** Parses `conntrack -L -o extended,id` output (one entry per line). */
export function parseConntrack(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    const protocol = tokens.find((t) => PROTOCOLS.has(t));
    if (!protocol) continue;
    const first = new Map<string, string>();
    let packets = 0;
    let bytes = 0;
    for (const t of tokens) {
      const eq = t.indexOf('=');
      if (eq <= 0) continue;
      const k = t.slice(0, eq);
      const v = t.slice(eq + 1);
      if (k === 'packets') packets += Number(v) || 0;
      else if (k === 'bytes') bytes += Number(v) || 0;
      else if (!first.has(k)) first.set(k, v);
    }
    const src = first.get('src');
    const dst = first.get('dst');
    if (!src || !dst) continue;
    const num = (k: string) => (first.has(k) ? Number(first.get(k)) : undefined);
    out.push({ id: first.get('id') ?? '', protocol, src, dst, ...(num('sport') !== undefined ? { sport: num('sport') } : {}), ...(num('dport') !== undefined ? { dport: num('dport') } : {}), mark: num('mark') ?? 0, packets, bytes });
  }
  return out;
}

function run(cmd: readonly string[], args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd[0]!, [...cmd.slice(1), ...args], { maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error(`${cmd[0]} is not installed (or not on PATH); install conntrack (Debian: apt-get install conntrack)`));
      reject(new Error(stderr.trim().replace(/\s+/g, ' ') || err.message));
    });
  });
}

/** `conntrack -L` through its command line; `prefix` runs it elsewhere (tests: `ip netns exec NS`). */
export class ConntrackCli implements ConntrackReader {
  private accounting = false;

  constructor(private readonly prefix: readonly string[] = []) {}

  async list(family: 4 | 6): Promise<ConntrackEntry[]> {
    if (!this.accounting) {
      // Packet and byte counters per connection are off by default; new connections get them from now on.
      await run([...this.prefix, 'sysctl'], ['-q', '-w', 'net.netfilter.nf_conntrack_acct=1']).catch(() => undefined);
      this.accounting = true;
    }
    const cmd = this.prefix.length ? [...this.prefix, 'conntrack'] : ['conntrack'];
    return parseConntrack(await run(cmd, ['-L', '-f', family === 4 ? 'ipv4' : 'ipv6', '-o', 'extended,id']));
  }
}

/** One element of a dropped-flow set, as the table listing shows it. */
export interface DroppedFlow {
  readonly set: string;
  readonly src: string;
  readonly dst: string;
  readonly protocol: string;
  readonly dport: number;
  readonly packets: number;
  readonly bytes: number;
}

/** The elements of every dropped-flow set in a table listing. */
export function droppedFlowsOf(listing: NftListing, sets: ReadonlyMap<string, FlowRule>): DroppedFlow[] {
  const out: DroppedFlow[] = [];
  for (const o of listing.nftables) {
    const s = o.set as { name?: string; elem?: { elem?: { val?: { concat?: unknown[] }; counter?: { packets: number; bytes: number } } }[] } | undefined;
    if (!s?.name || !sets.has(s.name)) continue;
    for (const e of s.elem ?? []) {
      const c = e.elem?.val?.concat;
      if (!c || c.length !== 4) continue;
      out.push({ set: s.name, src: String(c[0]), dst: String(c[1]), protocol: String(c[2]), dport: Number(c[3]), packets: e.elem?.counter?.packets ?? 0, bytes: e.elem?.counter?.bytes ?? 0 });
    }
  }
  return out;
}

/** What one enforcement point contributes to a collection pass. */
export interface PointFlows {
  readonly point: string;
  readonly ip: string;
  readonly marks: ReadonlyMap<number, FlowRule>;
  readonly flowSets: ReadonlyMap<string, FlowRule>;
  /** Listings of the point's table this pass (the one replaced by a swap, then the current one). */
  readonly listings: readonly NftListing[];
}

/**
 * Turns kernel readings into flow records: those new or changed since the last pass whose records were
 * delivered. A pass's readings become the baseline only once its sink accepted them (`delivered`), so
 * records a sink failed to take (a server away) are reported again at the next pass, not lost.
 */
export class FlowCollector {
  private last = new Map<string, { packets: number; bytes: number }>();
  private pending: Map<string, { packets: number; bytes: number }> | undefined;

  constructor(private readonly now: () => Date = () => new Date()) {}

  collect(world: World, points: readonly PointFlows[], conntrack: readonly ConntrackEntry[]): FlowRecord[] {
    const time = this.now().toISOString();
    const seen = new Map<string, { packets: number; bytes: number }>();
    const out: FlowRecord[] = [];
    const emit = (base: Omit<FlowRecord, 'firstSeen' | 'lastSeen' | 'packets' | 'bytes'>, packets: number, bytes: number) => {
      const prev = this.last.get(base.id);
      seen.set(base.id, { packets, bytes });
      if (prev !== undefined && packets === prev.packets && bytes === prev.bytes) return;
      out.push({ ...base, ...stagedOf(world, base), firstSeen: time, lastSeen: time, packets, bytes });
    };
    for (const p of points) {
      for (const e of conntrack) {
        const rule = e.mark ? p.marks.get(e.mark) : undefined;
        if (!rule || (rule.direction === 'in' ? e.dst : e.src) !== p.ip) continue;
        const id = `${p.point}|${rule.direction}|${e.protocol}|${e.src}:${e.sport ?? ''}>${e.dst}:${e.dport ?? ''}|ct${e.id}`;
        emit(
          { id, point: p.point, direction: rule.direction, protocol: e.protocol, sourceIp: e.src, ...(e.sport !== undefined ? { sourcePort: e.sport } : {}), destinationIp: e.dst, ...(e.dport !== undefined ? { destinationPort: e.dport } : {}), verdict: 'allow', rule: rule.rule },
          e.packets,
          e.bytes,
        );
      }
      for (const listing of p.listings) {
      const generation = (listing.nftables.find((o) => o.table) as { table?: { handle?: number } } | undefined)?.table?.handle ?? 0;
      for (const d of droppedFlowsOf(listing, p.flowSets)) {
        const rule = p.flowSets.get(d.set)!;
        const id = `${p.point}|${rule.direction}|${rule.rule}|${d.protocol}|${d.src}>${d.dst}:${d.dport}|t${generation}`;
        emit({ id, point: p.point, direction: rule.direction, protocol: d.protocol, sourceIp: d.src, destinationIp: d.dst, destinationPort: d.dport, verdict: rule.verdict, rule: rule.rule }, d.packets, d.bytes);
      }
      }
    }
    this.pending = seen;
    return out;
  }

  /** The records of the last `collect` reached their sink: later passes report only what changes after them. */
  delivered(): void {
    if (this.pending) this.last = this.pending;
    this.pending = undefined;
  }
}

const TRACEABLE = new Set(['tcp', 'udp', 'sctp']);

/** The staged policies' verdict for a flow at its point, from the engine (the kernel only counts staged hits). */
function stagedOf(world: World, r: Pick<FlowRecord, 'direction' | 'protocol' | 'sourceIp' | 'destinationIp' | 'destinationPort'>): Pick<FlowRecord, 'stagedVerdict' | 'stagedRule'> {
  if (!TRACEABLE.has(r.protocol)) return {};
  const t = traceflow(world, { source: r.sourceIp, destination: r.destinationIp, protocol: r.protocol as FlowProtocol, ...(r.destinationPort !== undefined ? { port: r.destinationPort } : {}) });
  if ('problem' in t) return {};
  const component = r.direction === 'in' ? 'destination-firewall' : 'source-firewall';
  const hit = t.observations.find((o) => o.component === component)?.staged?.[0];
  return hit ? { stagedVerdict: hit.action, stagedRule: `${hit.policy}/${hit.rule}` } : {};
}
