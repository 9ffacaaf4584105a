import { execFileSync } from 'node:child_process';
import { enforcementPointModel, type Trace, type World } from '../../provider/src/engine';
import { realizePoints } from '../../provider/src/realize/nftables';
import { kernelNft } from './kernel-nft';
import { Lab, nsExec, type ProbeOp, type ProbeResult } from './lab';

/** Fails with a clear message unless this process can build namespaces and load nftables rulesets. */
export function requireRootAndNft(): void {
  if (process.getuid?.() !== 0) throw new Error('the kernel tests need root (network namespaces and nftables); run them as root, as CI does');
  try {
    execFileSync('nft', ['--version'], { stdio: 'pipe' });
    execFileSync('ip', ['-V'], { stdio: 'pipe' });
    execFileSync('ping', ['-V'], { stdio: 'pipe' });
  } catch {
    throw new Error('the kernel tests need nft, ip and ping on PATH: run scripts/setup.sh (it installs nftables, iproute2 and iputils-ping)');
  }
}

export interface Flow {
  readonly src: string;
  readonly dst: string;
  readonly op: ProbeOp;
  readonly port?: number;
}

export interface FlowOutcome extends Flow {
  readonly expected: 'open' | 'reject' | 'timeout';
  readonly observed: ProbeResult;
  readonly decidedBy: string;
  readonly detail?: string;
}

/** Ports worth probing: every bound of every rule's ports, named ports, listener and target ports, and one no rule names. */
export function probePorts(world: World): { tcp: number[]; udp: number[] } {
  const tcp = new Set<number>([7777]);
  const udp = new Set<number>([7777]);
  for (const ep of world.membership.endpoints.values()) {
    const m = enforcementPointModel(world, ep);
    for (const r of [...m.in, ...m.out])
      for (const p of r.ports) {
        if (p.lo === 0 && p.hi === 65535) continue;
        const s = p.protocol === 'udp' ? udp : p.protocol === 'tcp' ? tcp : undefined;
        s?.add(p.lo);
        s?.add(p.hi);
      }
    for (const np of ep.namedPorts?.values() ?? []) (np.protocol === 'udp' ? udp : tcp).add(np.port);
  }
  for (const n of world.names('LoadBalancer'))
    for (const l of world.lbState(n)?.spec.listeners ?? []) {
      const s = l.protocol === 'udp' ? udp : tcp;
      s.add(l.port);
      if (typeof l.targetPort === 'number') s.add(l.targetPort);
    }
  const sorted = (s: Set<number>) => [...s].filter((p) => p > 0 && p < 20000).sort((a, b) => a - b);
  return { tcp: sorted(tcp), udp: sorted(udp) };
}

/** Unmanaged hosts worth having: single addresses named by IP blocks that no endpoint, VIP, node or egress IP owns. */
export function externalHosts(world: World): string[] {
  const taken = new Set<string>([...world.membership.endpoints.values()].map((e) => e.ip.s));
  for (const n of world.names('LoadBalancer')) {
    const v = world.lbState(n)?.vip?.s;
    if (v) taken.add(v);
  }
  for (const n of world.names('KubernetesCluster')) for (const node of world.get('KubernetesCluster', n)?.nodes ?? []) taken.add(node.ip);
  for (const n of world.names('EgressIp')) {
    const ip = world.outputsOf('EgressIp', n).allocatedIp as string;
    if (ip) taken.add(ip);
  }
  const out = new Set<string>();
  const consider = (cidr: string) => {
    const ip = cidr.replace(/\/32$/, '');
    if (!ip.includes('/') && !ip.includes(':') && !taken.has(ip)) out.add(ip);
  };
  for (const n of world.names('SecurityGroup')) for (const b of world.get('SecurityGroup', n)?.ipBlocks ?? []) consider(b.cidr);
  for (const n of world.names('FirewallPolicy'))
    for (const r of world.get('FirewallPolicy', n)?.rules ?? []) for (const peer of [...(r.sources ?? []), ...(r.destinations ?? [])]) if (peer.cidr) consider(peer.cidr);
  return [...out].sort();
}

/** Loads every endpoint's compiled ruleset into its namespace (one atomic transaction each). */
export async function applyAll(world: World, lab: Lab): Promise<void> {
  await Promise.all(
    [...lab.hosts.values()]
      .filter((h) => h.ep)
      .map(async (h) => {
        const name = h.ep!.kind === 'pod' ? `pod:${h.ep!.name}` : `vm:${h.ep!.name}`;
        const [pt] = realizePoints(world, name)!;
        // Through the agent's executor (microseg-nft over netlink unless MICROSEG_TEST_NFT=nft): the
        // packets then check the tables it writes.
        const nft = kernelNft(h.ns);
        try {
          await nft.replaceTable(pt!.table);
        } finally {
          nft.close?.();
        }
      }),
  );
}

/** Every flow between the lab's hosts (and to every VIP) for the probe ports, TCP, UDP and ICMP echo. */
export function allFlows(world: World, lab: Lab, ports: { tcp: number[]; udp: number[] }): Flow[] {
  const hosts = [...lab.hosts.values()];
  const vips = world.names('LoadBalancer').map((n) => world.lbState(n)?.vip?.s).filter((x): x is string => x !== undefined);
  const flows: Flow[] = [];
  for (const s of hosts) {
    const dsts = [...hosts.filter((d) => d !== s && (s.ep || d.ep)).map((d) => d.ip), ...vips];
    for (const d of dsts) {
      for (const port of ports.tcp) flows.push({ src: s.ip, dst: d, op: 'tcp', port });
      for (const port of ports.udp) flows.push({ src: s.ip, dst: d, op: 'udp', port });
      flows.push({ src: s.ip, dst: d, op: 'icmp' });
    }
  }
  return flows;
}

let nextSport = 30000;

/** Probes every flow in the kernel (bounded parallelism) and compares with traceflow. */
export async function probeAll(world: World, lab: Lab, flows: readonly Flow[], options: { timeoutMs?: number; parallel?: number; retry?: boolean } = {}): Promise<{ outcomes: FlowOutcome[]; mismatches: FlowOutcome[]; skipped: number }> {
  const timeoutMs = options.timeoutMs ?? 1500;
  const outcomes: FlowOutcome[] = [];
  let skipped = 0;
  let i = 0;
  const worker = async () => {
    while (i < flows.length) {
      const f = flows[i++]!;
      const protocol = f.op === 'icmp' ? 'icmp' : f.op;
      const vip = world.resolve(f.dst);
      const viaLb = !('problem' in vip) && vip.lb !== undefined;
      const sport = viaLb && f.op !== 'icmp' ? nextSport++ : undefined;
      const t = world.traceflow({ source: f.src, destination: f.dst, protocol, port: f.port, sourcePort: sport, ...(f.op === 'icmp' ? { icmpType: 8, icmpCode: 0 } : {}) }) as Trace;
      if ('problem' in t) throw new Error(`traceflow ${f.src} → ${f.dst}: ${(t as { problem: { message: string } }).problem.message}`);
      const dnat = t.observations.find((o) => o.component === 'load-balancer' && o.action === 'dnat');
      if (dnat) {
        // A member reaching itself through the VIP arrives with its own address as source (a martian): not a flow a kernel delivers.
        if (dnat.translatedDestinationIp === f.src) {
          skipped++;
          continue;
        }
        await lab.addLbFlow(f.src, f.op as 'tcp' | 'udp', sport!, f.dst, f.port!, dnat.translatedDestinationIp!, dnat.translatedPort!);
      }
      const expected = t.verdict === 'allow' ? 'open' : t.verdict === 'reject' ? 'reject' : 'timeout';
      const r = await lab.probe(f.src, f.op, f.dst, f.port, sport, timeoutMs);
      outcomes.push({ ...f, expected, observed: r.result, detail: r.detail, decidedBy: `${t.decidingPolicy}/${t.decidingRule} (${t.observations.map((o) => `${o.component}:${o.action}`).join(' → ')})` });
    }
  };
  await Promise.all(Array.from({ length: options.parallel ?? 96 }, worker));
  const first = outcomes.filter((o) => o.expected !== o.observed);
  if (!first.length || options.retry === false) return { outcomes, mismatches: first, skipped };
  // A disagreement must reproduce: probe it again, few at a time and with a long timeout, so a starved
  // probe agent on a busy machine (a late SYN-ACK) is not taken for a drop.
  const again = await probeAll(world, lab, first, { timeoutMs: Math.max(4000, timeoutMs * 3), parallel: 8, retry: false });
  const keys = new Set(again.mismatches.map((m) => `${m.src}|${m.dst}|${m.op}|${m.port}`));
  return { outcomes, mismatches: first.filter((m) => keys.has(`${m.src}|${m.dst}|${m.op}|${m.port}`)), skipped };
}

/** Non-zero rule counters of a host's table, for failure messages. */
export async function hits(lab: Lab, ip: string): Promise<string> {
  const h = lab.hosts.get(ip);
  if (!h?.ep) return '(unmanaged)';
  const out = await nsExec(h.ns, 'nft', ['-j', 'list', 'ruleset']).catch((e: Error) => e.message);
  try {
    const doc = JSON.parse(out) as { nftables: { rule?: { chain: string; comment?: string; expr: { counter?: { packets: number } }[] } }[] };
    return doc.nftables
      .flatMap((x) => (x.rule ? [x.rule] : []))
      .flatMap((r) => r.expr.filter((e) => e.counter && e.counter.packets > 0).map((e) => `${r.chain}${r.comment ? ` "${r.comment}"` : ''}: ${e.counter!.packets}`))
      .join('; ');
  } catch {
    return out;
  }
}

export async function describeMismatches(lab: Lab, mismatches: readonly FlowOutcome[], limit = 15): Promise<string> {
  const lines: string[] = [];
  const kinds = new Map<string, number>();
  for (const m of mismatches) kinds.set(`${m.op}: expected ${m.expected}, got ${m.observed}`, (kinds.get(`${m.op}: expected ${m.expected}, got ${m.observed}`) ?? 0) + 1);
  lines.push(`by kind: ${[...kinds].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
  for (const m of mismatches.slice(0, limit)) {
    lines.push(`${m.src} → ${m.dst} ${m.op}${m.port !== undefined ? `/${m.port}` : ''}: traceflow expects ${m.expected}, kernel ${m.observed}${m.detail ? ` (${m.detail})` : ''}; decided by ${m.decidedBy}`);
    lines.push(`   source counters: ${await hits(lab, m.src)}`);
    lines.push(`   destination counters: ${await hits(lab, m.dst)}`);
  }
  if (mismatches.length > limit) lines.push(`... and ${mismatches.length - limit} more`);
  return lines.join('\n');
}
