import { spawn, execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { Endpoint, World } from '../../provider/src/engine';

const run = promisify(execFile);

/**
 * A world built in network namespaces on this machine (root only). Layout:
 *
 *   hub            router for everything, the load balancer (DNAT VIP → member, per flow as traceflow
 *                  chose it) and the egress gateway (SNAT of pods selected by an EgressIp)
 *   one netns per VM interface    its IP/32, default route to the hub
 *   one netns per cluster node    the node IP; pods hang off it; masquerades pods leaving an overlay cluster
 *   one netns per pod             its IP/32, default route to its node
 *   one netns per external IP     addresses named by IP blocks, unmanaged (no ruleset)
 *
 * Every namespace name starts with a unique prefix so a crashed run never collides with the next, and
 * {@link Lab.destroy} removes every namespace with that prefix.
 */

export async function sh(cmd: string, args: readonly string[], input?: string): Promise<string> {
  if (input === undefined) return (await run(cmd, args, { maxBuffer: 64 << 20 })).stdout;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
    p.stdin.end(input);
  });
}

/** Runs `ip` commands in a namespace (or the current one) as one batch. */
async function ipBatch(ns: string | undefined, lines: readonly string[]): Promise<void> {
  if (!lines.length) return;
  await sh('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], lines.join('\n') + '\n');
}

export async function nsExec(ns: string, cmd: string, args: readonly string[], input?: string): Promise<string> {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

let fileCounter = 0;

/** `nft -f FILE` (or `-j -f`) in a namespace: nft cannot read a socket as /dev/stdin, so through a file. */
export async function nftFile(ns: string, content: string, json = false, extra: readonly string[] = []): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'microseg-lab-'));
  const file = path.join(dir, `r${fileCounter++}.nft`);
  try {
    await fs.writeFile(file, content);
    return await sh('ip', ['netns', 'exec', ns, 'nft', ...extra, ...(json ? ['-j'] : []), '-f', file]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export type ProbeOp = 'tcp' | 'udp' | 'icmp';
export type ProbeResult = 'open' | 'reject' | 'timeout' | 'error';

/** The probe agent of one namespace: servers on the probe ports, and a client on request. */
class Agent {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: { result: ProbeResult; detail?: string }) => void>();
  private constructor(private readonly proc: ChildProcessWithoutNullStreams) {}

  static start(ns: string, tcp: readonly number[], udp: readonly number[]): Promise<Agent> {
    const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(__dirname, 'probe-agent.js'), JSON.stringify({ tcp, udp })], { stdio: ['pipe', 'pipe', 'pipe'] });
    const agent = new Agent(proc);
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d));
    return new Promise((resolve, reject) => {
      const rl = createInterface({ input: proc.stdout });
      rl.on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; id?: number; result?: ProbeResult; detail?: string };
        if (msg.ready) resolve(agent);
        else if (msg.id !== undefined) {
          agent.waiting.get(msg.id)?.({ result: msg.result!, detail: msg.detail });
          agent.waiting.delete(msg.id);
        }
      });
      proc.on('exit', (code) => {
        reject(new Error(`probe agent in ${ns} exited (${code}): ${stderr}`));
        for (const w of agent.waiting.values()) w({ result: 'error', detail: `agent exited: ${stderr}` });
        agent.waiting.clear();
      });
    });
  }

  probe(op: ProbeOp, dst: string, port: number | undefined, sport: number | undefined, timeoutMs: number): Promise<{ result: ProbeResult; detail?: string }> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.stdin.write(JSON.stringify({ id, op, dst, port, sport, timeoutMs }) + '\n');
    });
  }

  stop(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}

export interface LabHost {
  /** Namespace name. */
  readonly ns: string;
  readonly ip: string;
  /** The endpoint, for managed hosts. */
  readonly ep?: Endpoint;
}

export interface LabOptions {
  /** Extra unmanaged hosts (IPs named by IP blocks). */
  readonly externals?: readonly string[];
  readonly tcpPorts: readonly number[];
  readonly udpPorts: readonly number[];
}

let labCounter = 0;

export class Lab {
  readonly hosts = new Map<string, LabHost>();
  private readonly agents = new Map<string, Agent>();
  private readonly namespaces: string[] = [];
  readonly hub: string;

  private constructor(readonly prefix: string) {
    this.hub = `${prefix}hub`;
  }

  /** Every namespace whose name starts with `prefix` (left-overs of a crashed run included). */
  static async cleanup(prefix: string): Promise<void> {
    const list = await sh('ip', ['netns', 'list']).catch(() => '');
    const names = list
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n.startsWith(prefix));
    if (names.length) await ipBatch(undefined, names.map((n) => `netns del ${n}`)).catch(() => undefined);
  }

  /** A unique namespace prefix for this process and lab. */
  static newPrefix(): string {
    return `ms${process.pid % 100000}x${labCounter++}-`;
  }

  static async build(world: World, options: LabOptions, prefix = Lab.newPrefix()): Promise<Lab> {
    const lab = new Lab(prefix);
    try {
      await lab.setup(world, options);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  private async setup(world: World, options: LabOptions): Promise<void> {
    const p = this.prefix;
    const eps = [...world.membership.endpoints.values()].sort((a, b) => a.id - b.id);
    const vms = eps.filter((e) => e.kind === 'vm-interface');
    const pods = eps.filter((e) => e.kind === 'pod');
    const clusters = [...new Set(pods.map((e) => e.cluster!))].sort();
    const nodes: { ns: string; ip: string; cluster: string; name: string; dev: string }[] = [];
    for (const c of clusters) for (const n of world.clusterState(c)?.spec.nodes ?? []) nodes.push({ ns: `${p}n${nodes.length}`, ip: n.ip, cluster: c, name: n.name, dev: `n${nodes.length}` });

    const all = [this.hub, ...vms.map((_, i) => `${p}v${i}`), ...nodes.map((n) => n.ns), ...pods.map((_, i) => `${p}p${i}`), ...(options.externals ?? []).map((_, i) => `${p}x${i}`)];
    await ipBatch(undefined, all.map((n) => `netns add ${n}`));
    this.namespaces.push(...all);

    const hubLines: string[] = ['link set lo up'];
    const leaf = (ns: string, ip: string, gw: string) => ipBatch(ns, ['link set lo up', 'link set eth0 up', `addr add ${ip}/32 dev eth0`, `route add ${gw} dev eth0`, `route add default via ${gw} dev eth0`]);
    const leaves: Promise<void>[] = [];
    const attach = (dev: string, ns: string, ip: string) => {
      hubLines.push(`link add ${dev} type veth peer name eth0 netns ${ns}`, `link set ${dev} up`, `addr add 169.254.0.1/32 dev ${dev}`, `route add ${ip}/32 dev ${dev}`);
    };
    vms.forEach((ep, i) => {
      attach(`v${i}`, `${p}v${i}`, ep.ip.s);
      this.hosts.set(ep.ip.s, { ns: `${p}v${i}`, ip: ep.ip.s, ep });
    });
    (options.externals ?? []).forEach((ip, i) => {
      attach(`x${i}`, `${p}x${i}`, ip);
      this.hosts.set(ip, { ns: `${p}x${i}`, ip });
    });
    for (const n of nodes) {
      hubLines.push(`link add ${n.dev} type veth peer name up0 netns ${n.ns}`, `link set ${n.dev} up`, `addr add 169.254.0.1/32 dev ${n.dev}`, `route add ${n.ip}/32 dev ${n.dev}`);
    }
    // Pod traffic always goes through the hub, even to a pod of the same node: the hub is the load
    // balancer, and a reply that skipped it would never be translated back from the member to the VIP.
    const podLines = new Map<string, string[]>(
      nodes.map((n) => [n.ns, ['link set lo up', 'link set up0 up', `addr add ${n.ip}/32 dev up0`, 'route add 169.254.0.1 dev up0', 'route add default via 169.254.0.1 dev up0', 'route add 169.254.0.1 dev up0 table 100', 'route add default via 169.254.0.1 dev up0 table 100']]),
    );
    pods.forEach((ep, i) => {
      const node = nodes.find((n) => n.cluster === ep.cluster && n.name === ep.node)!;
      podLines.get(node.ns)!.push(`link add p${i} type veth peer name eth0 netns ${p}p${i}`, `link set p${i} up`, `addr add 169.254.1.1/32 dev p${i}`, `route add ${ep.ip.s}/32 dev p${i}`, `rule add iif p${i} lookup 100`);
      hubLines.push(`route add ${ep.ip.s}/32 via ${node.ip} dev ${node.dev} onlink`);
      this.hosts.set(ep.ip.s, { ns: `${p}p${i}`, ip: ep.ip.s, ep });
    });
    await ipBatch(this.hub, hubLines);
    for (const [ns, lines] of podLines) await ipBatch(ns, lines);
    vms.forEach((ep, i) => leaves.push(leaf(`${p}v${i}`, ep.ip.s, '169.254.0.1')));
    (options.externals ?? []).forEach((ip, i) => leaves.push(leaf(`${p}x${i}`, ip, '169.254.0.1')));
    pods.forEach((ep, i) => leaves.push(leaf(`${p}p${i}`, ep.ip.s, '169.254.1.1')));
    await Promise.all(leaves);
    await Promise.all([this.hub, ...nodes.map((n) => n.ns)].map((ns) => nsExec(ns, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv4/conf/all/send_redirects'])));

    // Translations: traceflow's SNAT and DNAT, realized where they happen in a cluster.
    const vips = world.names('LoadBalancer').map((n) => world.lbState(n)?.vip?.s).filter((x): x is string => x !== undefined);
    const hubNat: string[] = [];
    for (const n of nodes) {
      const c = world.clusterState(n.cluster)!;
      const inside = [c.spec.podCidr, ...(c.spec.serviceCidr ? [c.spec.serviceCidr] : [])].join(', ');
      const notVip = vips.length ? ` ip daddr != { ${vips.join(', ')} }` : '';
      const nodeRules: string[] = [];
      for (const ep of pods.filter((e) => e.cluster === n.cluster && e.node === n.name)) {
        const egress = world.egressFor(ep);
        if (egress) hubNat.push(`ip saddr ${ep.ip.s} ip daddr != { ${inside} } snat to ${egress.ip.s}`);
        else if (c.spec.networkMode === 'overlay') {
          nodeRules.push(`ip saddr ${ep.ip.s} ip daddr != { ${inside} }${notVip} masquerade`);
          // Through a VIP, the member is known only after the hub's DNAT: the hub SNATs those flows.
          hubNat.push(`ct status dnat ip saddr ${ep.ip.s} ip daddr != { ${inside} } snat to ${n.ip}`);
        }
      }
      await nftFile(n.ns, `table ip labnat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n${nodeRules.map((r) => `  ${r}\n`).join('')} }\n}\n`);
    }
    const hub = [
      'table ip lab {',
      ' map lbflows { type ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service : ipv4_addr . inet_service; }',
      ` set vips { type ipv4_addr;${vips.length ? ` elements = { ${vips.join(', ')} }` : ''} }`,
      ' chain pre { type nat hook prerouting priority dstnat; policy accept;',
      '  meta l4proto { tcp, udp } dnat ip to ip saddr . meta l4proto . th sport . ip daddr . th dport map @lbflows',
      ' }',
      // A VIP flow traceflow gives no member (no listener, no healthy member) is dropped, as traceflow says.
      ' chain prefilter { type filter hook prerouting priority 0; policy accept;',
      '  ip daddr @vips drop',
      ' }',
      ' chain post { type nat hook postrouting priority srcnat; policy accept;',
      ...hubNat.map((r) => `  ${r}`),
      ' }',
      '}',
    ];
    await nftFile(this.hub, hub.join('\n') + '\n');

    const starts = [...this.hosts.values()].map(async (h) => this.agents.set(h.ns, await Agent.start(h.ns, options.tcpPorts, options.udpPorts)));
    await Promise.all(starts);
  }

  /** Routes one flow through a VIP to the member traceflow chose (the load balancer is deterministic per flow, as traceflow). */
  async addLbFlow(src: string, protocol: 'tcp' | 'udp', sport: number, vip: string, port: number, member: string, targetPort: number): Promise<void> {
    await nsExec(this.hub, 'nft', ['add', 'element', 'ip', 'lab', 'lbflows', `{ ${src} . ${protocol} . ${sport} . ${vip} . ${port} : ${member} . ${targetPort} }`]);
  }

  /** Applies an `nft -j` document in a host's namespace. */
  async applyJson(ip: string, doc: unknown): Promise<void> {
    const h = this.hosts.get(ip)!;
    await nftFile(h.ns, JSON.stringify(doc), true);
  }

  probe(fromIp: string, op: ProbeOp, dst: string, port: number | undefined, sport: number | undefined, timeoutMs: number): Promise<{ result: ProbeResult; detail?: string }> {
    const h = this.hosts.get(fromIp)!;
    return this.agents.get(h.ns)!.probe(op, dst, port, sport, timeoutMs);
  }

  async destroy(): Promise<void> {
    for (const a of this.agents.values()) a.stop();
    this.agents.clear();
    await Lab.cleanup(this.prefix);
  }
}
