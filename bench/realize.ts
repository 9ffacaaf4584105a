/**
 * Realization benchmark (`node --max-old-space-size=8192 dist/bench/realize.js [--scale 1] [--runs 5] [--skip-kernel]`,
 * as root for the kernel parts). On the engine bench's estate (bench/engine.ts, same generator and seed):
 *
 * - compile: two points, the bench target pod (10,000 policies applied to it: a synthetic worst case) and
 *   the ordinary point with the most in-rules (what issue 10's ~1,700 refers to), wall and CPU time; every
 *   VM interface of the estate; ruleset size in rules and set elements;
 * - apply, per point: the table swap in a fresh namespace as `nft -f` text and as `nft -j -f` JSON, and an
 *   element update (one pod added to a group the point's rules name) from world change to kernel;
 * - per-packet cost, per point: iperf3 throughput and new TCP connections per second between two
 *   namespaces, in alternating rounds of no ruleset / a conntrack-only table / the point's ruleset on the
 *   receiver, medians as ratios.
 *
 * Results go to bench/results/realize.json. Figures, not assertions: nothing fails on a slow machine.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { changedElements, elementDeltaText, findNftWriter, NetlinkNft } from '../provider/src/agent';
import { enforcementPointModel, PointModelCache, validateSpec, World, type Endpoint } from '../provider/src/engine';
import { CompileCache, compilePoint, renderText, replaceTable, replaceTableText, sameShape, type Table } from '../provider/src/realize/nftables';
import { generate } from './engine';
import { figures, log, median, now, p99 } from './figures';

const argv = process.argv.slice(2);
const RUNS = Number(argv[argv.indexOf('--runs') + 1] ?? 5) || 5;
const SKIP_KERNEL = argv.includes('--skip-kernel');
const OUT = path.join(__dirname, '..', '..', 'bench', 'results', 'realize.json');
const { results, record } = figures();

function buildWorld(): World {
  const t = now();
  const world = new World({ defaultAction: 'drop' });
  for (const o of generate()) {
    const named = o.kind !== 'Namespace' && o.kind !== 'Workload' && o.spec.name === undefined ? { ...o.spec, name: o.name } : o.spec;
    const r = validateSpec(o.kind, named);
    if (r.ok) world.restore(o.kind, o.name, r.value);
  }
  log(`estate built in ${(now() - t).toFixed(0)} ms (${world.membership.endpoints.size} endpoints)`);
  return world;
}

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 512 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
}
const nsx = (ns: string, ...args: string[]) => sh('ip', ['netns', 'exec', ns, ...args]);

/**
 * Applies a document (`nft -j -f`) or text (`nft -f`) in a namespace: wall time of the nft call and its
 * CPU time (user + system, from bash's `times`: the kernel's share of a transaction runs in nft's
 * system time), in ms. CPU time is the figure to compare on a loaded machine.
 */
function nftApply(ns: string, doc: unknown): { wall: number; cpu: number } {
  const text = typeof doc === 'string';
  const file = path.join(os.tmpdir(), `microseg-bench-${process.pid}.${text ? 'nft' : 'json'}`);
  fs.writeFileSync(file, text ? doc : JSON.stringify(doc));
  const t = now();
  const out = nsx(ns, 'bash', '-c', `nft ${text ? '' : '-j '}-f "$1" && times`, '_', file);
  const wall = now() - t;
  fs.rmSync(file, { force: true });
  // `times`: the shell's user and system time, then its children's.
  const [, children] = out.trim().split('\n').slice(-2);
  const secs = [...(children ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { wall, cpu: 1000 * (secs[0]! + secs[1]!) };
}

/** Wall and CPU (user + system of this process) time of `f`, in ms. */
function timed<T>(f: () => T): { wall: number; cpu: number; value: T } {
  const c = process.cpuUsage();
  const t = now();
  const value = f();
  const wall = now() - t;
  const d = process.cpuUsage(c);
  return { wall, cpu: (d.user + d.system) / 1000, value };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const world = buildWorld();
  world.compile();

  // Two points: the bench target's pod (10,000 policies applied to it, a synthetic worst case), and the
  // ordinary point with the most in-rules (every other endpoint: what issue 10's ~1,700 refers to).
  const target = world.endpointsOf('c0/ns-0/bench-target')[0]!;
  const inRules = (ep: Endpoint) => world.rulesAt(ep).in.length;
  let ordinary: Endpoint | undefined;
  for (const ep of world.membership.endpoints.values())
    if (ep.owner !== 'c0/ns-0/bench-target' && (!ordinary || inRules(ep) > inRules(ordinary))) ordinary = ep;
  // `--points ordinary` leaves the bench target out (its churn and kernel parts take minutes at scale 1).
  const points: [string, Endpoint][] = [
    ...(argv.includes('--points') && argv[argv.indexOf('--points') + 1] === 'ordinary' ? [] : [['bench target', target] as [string, Endpoint]]),
    [`largest ordinary point (${ordinary!.kind === 'pod' ? 'pod' : 'vm'}:${ordinary!.name})`, ordinary!],
  ];
  const compiledOf = new Map<Endpoint, Table>();
  // The world's caches (address regions of peer sets, atoms' addresses, point rules: what an agent keeps
  // between passes) warmed once; the compile figures below make new ones or keep these as they say.
  const worldCaches = new PointModelCache(world);
  for (const [label, ep] of points) {
    record(`${label}: in-rules (engine)`, inRules(ep), 'rules');
    const runs: Record<'cold' | 'warm' | 'text', { wall: number; cpu: number }[]> = { cold: [], warm: [], text: [] };
    let compiled = compilePoint(enforcementPointModel(world, ep, worldCaches));
    for (let i = 0; i < RUNS; i++) {
      // Cold: every cache new, as a freshly started agent compiles its first point.
      runs.cold.push(timed(() => compilePoint(enforcementPointModel(world, ep))));
      // The point alone: the world's caches kept, the point's rules, plans and tables made anew.
      worldCaches.points.clear();
      const t = timed(() => compilePoint(enforcementPointModel(world, ep, worldCaches), { cache: new CompileCache() }));
      runs.warm.push(t);
      compiled = t.value;
      runs.text.push(timed(() => renderText(compiled.table)));
    }
    const wallOf = (xs: { wall: number }[]) => median(xs.map((x) => x.wall));
    const cpuOf = (xs: { cpu: number }[]) => median(xs.map((x) => x.cpu));
    record(`${label}: compile, world caches kept (model + plans + table)`, wallOf(runs.warm), 'ms', '≤ 50 ms');
    record(`${label}: compile, world caches kept: CPU`, cpuOf(runs.warm), 'ms');
    record(`${label}: compile, cold (every cache new)`, wallOf(runs.cold), 'ms');
    record(`${label}: compile, cold: CPU`, cpuOf(runs.cold), 'ms');
    record(`${label}: nft text of the table (for nft -f)`, wallOf(runs.text), 'ms');
    record(`${label}: kernel rules`, compiled.stats.rules, 'rules');
    record(`${label}: set/map elements`, compiled.stats.elements, 'elements');
    compiledOf.set(ep, compiled.table);

    // A pod joins a group the point's rules name, as the agent sees it: the world change, the point's
    // model and tables recompiled with the caches it keeps, the element delta (what goes to the kernel).
    const shared = new PointModelCache(world);
    const cache = new CompileCache();
    let before = compilePoint(enforcementPointModel(world, ep, shared), { cache }).table;
    const churn: { wall: number; cpu: number; value: { delta: string } }[] = [];
    const workload = churnWorkload(world, ep);
    for (let i = 0; i < Math.max(RUNS * 10, 50); i++) {
      const t = timed(() => {
        const spec = world.get('Workload', workload)!;
        world.restore('Workload', workload, { ...spec, replicas: spec.replicas + 1 });
        const after = compilePoint(enforcementPointModel(world, current(world, ep), shared), { cache }).table;
        return { after, delta: elementDeltaText(before, after) };
      });
      churn.push(t);
      before = t.value.after;
    }
    record(`${label}: pod add → element delta (world change + compile + delta), median`, wallOf(churn), `ms (a pod more of ${workload} each time; ${churn.filter((x) => x.value.delta).length} of ${churn.length} changed elements)`);
    record(`${label}: pod add → element delta, p99 of ${churn.length}`, p99(churn.map((x) => x.wall)), 'ms', '≤ 10 ms p99 from the store write (with the kernel write)');
    record(`${label}: pod add → element delta: CPU, median`, cpuOf(churn), 'ms');
  }

  const vms = [...world.membership.endpoints.values()].filter((e) => e.kind === 'vm-interface').slice(0, Number(process.env.BENCH_VMS ?? 1e9));
  let elements = 0;
  // One shared model cache for the loop (the world does not change), as the agent has per pass.
  const all = timed(() => {
    const shared = new PointModelCache(world);
    const cache = new CompileCache();
    for (const ep of vms) elements += compilePoint(enforcementPointModel(world, ep, shared), { cache }).stats.elements;
  });
  record(`compile every VM interface (${vms.length})`, all.wall / 1000, 's', '≤ 30 s');
  record(`compile every VM interface (${vms.length}): CPU`, all.cpu / 1000, 's');
  record('VM interfaces: mean set/map elements', elements / vms.length, 'elements');

  if (SKIP_KERNEL || process.getuid?.() !== 0) {
    log('kernel parts skipped (need root, nft and iperf3)');
    return write();
  }
  // At scale 1 the bench target's table takes over a minute per swap in the kernel (533k elements):
  // `--kernel-points ordinary` measures the kernel parts of the ordinary point only.
  const kernelPoints = argv.includes('--kernel-points') ? argv[argv.indexOf('--kernel-points') + 1] : 'all';
  for (const [label, ep] of points) if (kernelPoints === 'all' || (kernelPoints === 'ordinary' && ep !== target)) await kernelParts(world, label, ep, compiledOf.get(ep)!);
  write();
}

/** Apply, element update and per-packet cost of one point's ruleset, in two fresh namespaces. */
async function kernelParts(world: World, label: string, target: Endpoint, table: Table): Promise<void> {
  const p = `msb${process.pid % 10000}-`;
  const [a, b] = [`${p}a`, `${p}b`];
  const cleanup = () => {
    for (const n of [a, b]) {
      try {
        sh('ip', ['netns', 'del', n]);
      } catch {
        // already gone
      }
    }
  };
  const servers: ChildProcess[] = [];
  try {
    // Two namespaces on a veth: b carries the target's address and, in turns, its ruleset.
    sh('ip', ['netns', 'add', a]);
    sh('ip', ['netns', 'add', b]);
    sh('ip', ['-n', a, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b]);
    // A client address the ruleset allows to the target: the source of the first allowing rule's first element.
    const allowChains = new Set(table.chains.filter((c) => c.rules.some((r) => r.verdict?.kind === 'accept')).map((c) => c.name));
    const el = allowedTcp(table, allowChains);
    const clientIp = el ? formatV4(el.addr) : '10.255.0.1';
    const port = el ? el.port : 8080;
    log(`${label}: client ${clientIp} → target ${target.ip.s} tcp/${port} (allowed by ${el ? el.rule : 'nothing: default drop'})`);
    nsx(a, 'ip', 'addr', 'add', `${clientIp}/32`, 'dev', 'eth0');
    nsx(b, 'ip', 'addr', 'add', `${target.ip.s}/32`, 'dev', 'eth0');
    for (const n of [a, b]) {
      nsx(n, 'ip', 'link', 'set', 'lo', 'up');
      nsx(n, 'ip', 'link', 'set', 'eth0', 'up');
    }
    nsx(a, 'ip', 'route', 'add', `${target.ip.s}/32`, 'dev', 'eth0');
    nsx(b, 'ip', 'route', 'add', `${clientIp}/32`, 'dev', 'eth0');

    // Apply: the whole table, median of runs (each run swaps the table atomically), as JSON and as text.
    const json: { wall: number; cpu: number }[] = [];
    const text: { wall: number; cpu: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      json.push(nftApply(b, replaceTable(table)));
      text.push(nftApply(b, replaceTableText(table)));
    }
    const wallOf = (xs: { wall: number }[]) => median(xs.map((x) => x.wall));
    const cpuOf = (xs: { cpu: number }[]) => median(xs.map((x) => x.cpu));
    record(`${label}: nft apply, table swap (nft -f text)`, wallOf(text), 'ms', '≤ 200 ms');
    record(`${label}: nft apply, table swap (nft -f text): nft CPU`, cpuOf(text), 'ms');
    record(`${label}: nft apply, table swap (nft -j JSON)`, wallOf(json), 'ms');
    record(`${label}: nft apply, table swap (nft -j JSON): nft CPU`, cpuOf(json), 'ms');

    // A pod joins a group the point's rules name: world change → recompile → element delta → kernel, as
    // the agent does it (text delta).
    const upd: { wall: number; cpu: number }[] = [];
    let before = table;
    for (let i = 0; i < RUNS; i++) {
      const spec = world.get('Workload', 'c0/ns-0/w0')!;
      const t = now();
      const c = timed(() => {
        world.restore('Workload', 'c0/ns-0/w0', { ...spec, replicas: spec.replicas + 1 });
        const after = compilePoint(enforcementPointModel(world, current(world, target))).table;
        return { after, delta: elementDeltaText(before, after) };
      });
      const n = c.value.delta ? nftApply(b, c.value.delta) : { wall: 0, cpu: 0 };
      upd.push({ wall: now() - t, cpu: c.cpu + n.cpu });
      before = c.value.after;
    }
    nftApply(b, replaceTableText(before));
    record(`${label}: pod add → kernel elements (compile + delta + nft)`, wallOf(upd), 'ms', '≤ 10 ms p99 from the store write');
    record(`${label}: pod add → kernel elements: CPU (node + nft)`, cpuOf(upd), 'ms');
    await writerParts(world, label, target, before, b);

    // Per-packet cost, same run, in alternating rounds (the machine's load drifts): no ruleset, a
    // conntrack-only table (ct state established accept, then accept: what any stateful ruleset costs),
    // and the point's ruleset. Both servers listen on the port the ruleset allows (iperf3's control and
    // data connections included), one at a time.
    const serve = async (args: string[]) => {
      const proc = spawn('ip', ['netns', 'exec', b, ...args], { stdio: 'ignore' });
      servers.push(proc);
      await sleep(700);
      return proc;
    };
    const measure = async (what: string) => {
      const iperfServer = await serve(['iperf3', '-s', '-p', String(port)]);
      const out = JSON.parse(nsx(a, 'iperf3', '-c', target.ip.s, '-p', String(port), '-t', '3', '-J')) as { end: { sum_received: { bits_per_second: number } } };
      iperfServer.kill();
      const g = out.end.sum_received.bits_per_second / 1e9;
      const connServer = await serve([process.execPath, '-e', `require('net').createServer((c) => { c.on('error', () => {}); c.destroy(); }).listen(${port}, '0.0.0.0')`]);
      const c = Number(nsx(a, process.execPath, '-e', connectLoop(target.ip.s, port)).trim());
      connServer.kill();
      await sleep(300);
      log(`${label}, ${what}: ${g.toFixed(2)} Gbit/s, ${c} connections/s`);
      return { g, c };
    };
    const ctOnly = `add table inet ${table.name}\ndelete table inet ${table.name}\ntable inet ${table.name} {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tct state established,related accept\n\t\taccept\n\t}\n}\n`;
    const runs: Record<'none' | 'ct' | 'full', { g: number; c: number }[]> = { none: [], ct: [], full: [] };
    for (let i = 0; i < RUNS; i++) {
      nsx(b, 'nft', 'delete', 'table', 'inet', table.name);
      runs.none.push(await measure('no ruleset'));
      nftApply(b, ctOnly);
      runs.ct.push(await measure('conntrack-only table'));
      nftApply(b, replaceTableText(table));
      runs.full.push(await measure('its ruleset'));
    }
    const med = (xs: { g: number; c: number }[], k: 'g' | 'c') => median(xs.map((x) => x[k]));
    record(`${label}: iperf3 with / without ruleset`, (100 * med(runs.full, 'g')) / med(runs.none, 'g'), '%', '≥ 90 %');
    record(`${label}: new connections/s with / without ruleset`, (100 * med(runs.full, 'c')) / med(runs.none, 'c'), '%', '≥ 90 %');
    record(`${label}: new connections/s with / conntrack-only table`, (100 * med(runs.full, 'c')) / med(runs.ct, 'c'), '%');
    record(`${label}: new connections/s without / conntrack-only / ruleset`, med(runs.none, 'c'), `conn/s (${Math.round(med(runs.ct, 'c'))} / ${Math.round(med(runs.full, 'c'))})`);
    record(`${label}: iperf3 without ruleset`, med(runs.none, 'g'), 'Gbit/s');
  } finally {
    for (const s of servers) s.kill();
    cleanup();
  }
}

/**
 * The same apply, element update and listing through microseg-nft (tools/nft-writer), the agent's netlink
 * writer: wall time as the agent sees it (JSON to the writer's pipe and back included) and the writer's CPU
 * time for the request (getrusage, reported by the writer), beside the nft figures above.
 */
async function writerParts(world: World, label: string, target: Endpoint, table: Table, ns: string): Promise<void> {
  const binary = findNftWriter();
  if (!binary) {
    log('microseg-nft figures skipped: .tools/bin/microseg-nft is missing (scripts/setup.sh builds it)');
    return;
  }
  const writer = new NetlinkNft({ binary, prefix: ['ip', 'netns', 'exec', ns] });
  try {
    await writer.listTable(table.name); // started
    const swap: { wall: number; cpu: number; sys: number; node: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const c = process.cpuUsage();
      const t = now();
      await writer.replaceTable(table);
      const d = process.cpuUsage(c);
      swap.push({ wall: now() - t, cpu: writer.lastCpuMs, sys: writer.lastSysMs, node: (d.user + d.system) / 1000 });
    }
    const wallOf = (xs: { wall: number }[]) => median(xs.map((x) => x.wall));
    record(`${label}: microseg-nft table swap (netlink)`, wallOf(swap), 'ms', '≤ 200 ms');
    record(`${label}: microseg-nft table swap: writer CPU`, median(swap.map((x) => x.cpu)), 'ms');
    record(`${label}: microseg-nft table swap: of which the kernel (writer system time)`, median(swap.map((x) => x.sys)), 'ms');
    record(`${label}: microseg-nft table swap: node CPU (JSON to the writer)`, median(swap.map((x) => x.node)), 'ms');

    // A pod joins a group the point's rules name, as the agent does it with the writer: world change →
    // recompile → changed elements → one netlink batch (no read-back of the sets). The workload: the
    // point's own (its pods are in the groups its rules name) when a pod more changes its elements, else w0.
    const workload = churnWorkload(world, target);
    log(`${label}: microseg-nft pod add: a pod more of ${workload}`);
    const upd: { wall: number; cpu: number; kernel: number; sys: number; n: number }[] = [];
    // The caches the agent keeps between passes, warmed by the table the kernel holds.
    const shared = new PointModelCache(world);
    const cache = new CompileCache();
    let before = compilePoint(enforcementPointModel(world, target, shared), { cache }).table;
    await writer.replaceTable(before);
    let swaps = 0;
    for (let i = 0; i < Math.max(RUNS * 10, 50); i++) {
      const spec = world.get('Workload', workload)!;
      const c = process.cpuUsage();
      const t = now();
      world.restore('Workload', workload, { ...spec, replicas: spec.replicas + 1 });
      const after = compilePoint(enforcementPointModel(world, current(world, target), shared), { cache }).table;
      // As the agent does: element updates when only elements changed, else a table swap.
      const shapeKept = sameShape(before, after);
      const changes = shapeKept ? changedElements(before, after) : [];
      const k = now();
      if (shapeKept) await writer.updateElements(after, changes);
      else {
        await writer.replaceTable(after);
        swaps++;
      }
      const kernel = now() - k;
      const d = process.cpuUsage(c);
      const n = changes.reduce((k, x) => k + x.added.length + x.removed.length, 0);
      upd.push({ wall: now() - t, cpu: (d.user + d.system) / 1000 + (n ? writer.lastCpuMs : 0), kernel, sys: n ? writer.lastSysMs : 0, n });
      before = after;
    }
    record(`${label}: pod add → kernel elements (compile + delta + microseg-nft), median`, wallOf(upd), `ms (${swaps} of ${upd.length} were table swaps: the table's shape changed)`);
    record(`${label}: pod add → kernel elements (compile + delta + microseg-nft), p99 of ${upd.length}`, p99(upd.map((x) => x.wall)), 'ms', '≤ 10 ms p99 from the store write');
    record(`${label}: pod add → kernel elements: CPU (node + microseg-nft)`, median(upd.map((x) => x.cpu)), 'ms');
    record(`${label}: pod add: microseg-nft element update alone (median / p99)`, median(upd.map((x) => x.kernel)), `ms (p99 ${p99(upd.map((x) => x.kernel)).toFixed(2)} ms)`, '≤ 10 ms p99');
    record(`${label}: pod add: of which the kernel (writer system time)`, median(upd.map((x) => x.sys)), 'ms');
    record(`${label}: pod add: set elements changed per pod (median)`, median(upd.map((x) => x.n)), 'elements');

    // What the agent reads back after every pass (hit counters, flow sets): the writer's list against nft -j.
    const lists: { wall: number; cpu: number }[] = [];
    const nftLists: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = now();
      await writer.listTable(table.name);
      lists.push({ wall: now() - t, cpu: writer.lastCpuMs });
      const u = now();
      nsx(ns, 'nft', '-j', 'list', 'table', 'inet', table.name);
      nftLists.push(now() - u);
    }
    record(`${label}: counters read-back, microseg-nft list`, wallOf(lists), 'ms');
    record(`${label}: counters read-back, nft -j list table`, median(nftLists), 'ms');
    await writer.replaceTable(before);
  } finally {
    writer.close();
  }
}

/**
 * The endpoint of a point as the world has it now: a write of a workload that changes its pods' labels
 * or ports makes them anew (same names and addresses, new objects), and the agent looks its points up
 * again at every pass.
 */
function current(world: World, ep: Endpoint): Endpoint {
  return world.endpointsOf(ep.owner).find((e) => e.name === ep.name) ?? ep;
}

/**
 * The workload whose pod adds the churn figures time: the point's own when a pod more changes the
 * point's elements (its pods are in the groups its rules name), else c0/ns-0/w0. Leaves the world as it was.
 */
function churnWorkload(world: World, target: Endpoint): string {
  const own = target.kind === 'pod' ? target.owner : undefined;
  const spec = own ? world.get('Workload', own) : undefined;
  if (!own || !spec) return 'c0/ns-0/w0';
  const before = compilePoint(enforcementPointModel(world, target)).table;
  world.restore('Workload', own, { ...spec, replicas: spec.replicas + 1 });
  const changed = renderText(before) !== renderText(compilePoint(enforcementPointModel(world, current(world, target))).table);
  world.restore('Workload', own, spec);
  return changed ? own : 'c0/ns-0/w0';
}

/** A client that opens and resets connections for 3 s and prints the rate. */
function connectLoop(ip: string, port: number): string {
  return `const net = require('net'); let n = 0; let live = 4; const end = Date.now() + 3000;
  const one = () => { if (Date.now() >= end) { if (--live === 0) console.log(Math.round(n / 3)); return; }
    const s = net.connect(${port}, '${ip}', () => { n++; s.resetAndDestroy(); one(); }); s.on('error', () => one()); };
  for (let i = 0; i < 4; i++) one();`;
}

/** A (source, tcp port) the in-direction maps send to an accepting rule chain: the first one found. */
function allowedTcp(table: Table, allowChains: ReadonlySet<string>): { addr: bigint; port: number; rule: string } | undefined {
  const maps = new Map(table.sets.map((s) => [s.name, s] as const));
  // Rule number → chain, per rule map.
  const chains = new Map(table.sets.flatMap((s) => (s.kind === 'rule-map' ? [[s.name, new Map(s.elements.map((x) => [x.rule, x.verdict.kind === 'goto' ? x.verdict.target : undefined] as const))] as const] : [])));
  for (const s of table.sets) {
    if (s.kind !== 'port-map' || !/^in_.*_tcp$/.test(s.name)) continue;
    for (const p of s.elements) {
      const cls = p.verdict.kind === 'goto' ? maps.get(p.verdict.target) : undefined;
      if (cls?.kind !== 'addr-map') continue;
      // The class's category's rule map: `in_<category>_c<k>` → `in_<category>_rules`.
      const chainOf = chains.get(cls.name.replace(/_c\d+$/, '_rules'));
      if (!chainOf) continue;
      // A usable source address: not in 0.0.0.0/8.
      const e = cls.elements.find((x) => allowChains.has(chainOf.get(x.rule) ?? '') && x.addr.hi >= 1n << 24n);
      // Port 0 cannot be listened on.
      if (e && p.hi >= 1) return { addr: e.addr.lo < 1n << 24n ? 1n << 24n : e.addr.lo, port: Math.max(p.lo, 1), rule: chainOf.get(e.rule)! };
    }
  }
  return undefined;
}

function formatV4(n: bigint): string {
  const x = Number(n);
  return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
}

function write(): void {
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length, results }, null, 2) + '\n');
  log(`results in ${OUT}`);
}

void main();
