/**
 * Realization benchmark (`node --max-old-space-size=8192 dist/bench/realize.js [--scale 1] [--runs 5] [--skip-kernel]`,
 * as root for the kernel parts). On the engine bench's estate (bench/engine.ts, same generator and seed):
 *
 * - compile: the enforcement point with the most in-rules (the bench target pod, ~1,700 at scale 1) and
 *   every VM interface of the estate; ruleset size in rules and set elements;
 * - apply: the `nft -j -f` transaction of that largest ruleset in a fresh namespace, and an element update
 *   (one pod added to a group the point's rules name) from world change to kernel;
 * - per-packet cost: iperf3 throughput and new TCP connections per second between two namespaces with
 *   the largest ruleset loaded on the receiver vs no ruleset, in the same run, as ratios.
 *
 * Results go to bench/results/realize.json. Figures, not assertions: nothing fails on a slow machine.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { elementDelta } from '../provider/src/agent';
import { enforcementPointModel, validateSpec, World, type Endpoint } from '../provider/src/engine';
import { compilePoint, renderJson, replaceTable } from '../provider/src/realize/nftables';
import { generate } from './engine';

const argv = process.argv.slice(2);
const RUNS = Number(argv[argv.indexOf('--runs') + 1] ?? 5) || 5;
const SKIP_KERNEL = argv.includes('--skip-kernel');
const OUT = path.join(__dirname, '..', '..', 'bench', 'results', 'realize.json');
const now = () => performance.now();
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, { value: number; unit: string; target?: string }> = {};
const record = (name: string, value: number, unit: string, target?: string) => {
  results[name] = { value: Math.round(value * 100) / 100, unit, ...(target ? { target } : {}) };
  log(`${name.padEnd(48)} ${results[name]!.value} ${unit}${target ? `  (target ${target})` : ''}`);
};

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

function nftApply(ns: string, doc: unknown): number {
  const file = path.join(os.tmpdir(), `microseg-bench-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(doc));
  const t = now();
  nsx(ns, 'nft', '-j', '-f', file);
  const ms = now() - t;
  fs.rmSync(file, { force: true });
  return ms;
}

async function main(): Promise<void> {
  const world = buildWorld();
  world.compile();

  // The point with the most in-rules: the bench target's pod (policies applied to it), checked against VMs.
  const target = world.endpointsOf('c0/ns-0/bench-target')[0]!;
  const inRules = (ep: Endpoint) => world.rulesAt(ep).in.length;
  record('largest point: in-rules (engine)', inRules(target), 'rules');
  const times: number[] = [];
  let compiled = compilePoint(enforcementPointModel(world, target));
  for (let i = 0; i < RUNS; i++) {
    const t = now();
    compiled = compilePoint(enforcementPointModel(world, target));
    renderJson(compiled.table);
    times.push(now() - t);
  }
  record('compile largest point (model + nft + JSON)', median(times), 'ms', '≤ 50 ms');
  record('largest point: kernel rules', compiled.stats.rules, 'rules');
  record('largest point: set/map elements', compiled.stats.elements, 'elements');

  const vms = [...world.membership.endpoints.values()].filter((e) => e.kind === 'vm-interface').slice(0, Number(process.env.BENCH_VMS ?? 1e9));
  const tAll = now();
  let elements = 0;
  for (const ep of vms) elements += compilePoint(enforcementPointModel(world, ep)).stats.elements;
  record(`compile every VM interface (${vms.length})`, (now() - tAll) / 1000, 's', '≤ 30 s');
  record('VM interfaces: mean set/map elements', elements / vms.length, 'elements');

  if (SKIP_KERNEL || process.getuid?.() !== 0) {
    log('kernel parts skipped (need root, nft and iperf3)');
    return write();
  }
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
    const { table } = compiled;
    const map = table.sets.find((s) => s.kind === 'map' && s.name.startsWith('in_') && s.v === 4 && s.elements.some((e) => e.verdict?.kind === 'goto'));
    const allowChains = new Set(table.chains.filter((c) => c.rules.some((r) => r.verdict?.kind === 'accept')).map((c) => c.name));
    const el = map && map.kind === 'map' ? map.elements.find((e) => e.service.protocol === 'tcp' && e.verdict?.kind === 'goto' && allowChains.has(e.verdict.target)) : undefined;
    const clientIp = el ? formatV4(el.addr.lo) : '10.255.0.1';
    const port = el ? el.service.lo : 8080;
    log(`client ${clientIp} → target ${target.ip.s} tcp/${port} (allowed by ${el?.verdict?.kind === 'goto' ? el.verdict.target : 'nothing: default drop'})`);
    nsx(a, 'ip', 'addr', 'add', `${clientIp}/32`, 'dev', 'eth0');
    nsx(b, 'ip', 'addr', 'add', `${target.ip.s}/32`, 'dev', 'eth0');
    for (const n of [a, b]) {
      nsx(n, 'ip', 'link', 'set', 'lo', 'up');
      nsx(n, 'ip', 'link', 'set', 'eth0', 'up');
    }
    nsx(a, 'ip', 'route', 'add', `${target.ip.s}/32`, 'dev', 'eth0');
    nsx(b, 'ip', 'route', 'add', `${clientIp}/32`, 'dev', 'eth0');

    // Apply: the whole table, median of runs (each run swaps the table atomically).
    const applyTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) applyTimes.push(nftApply(b, replaceTable(table)));
    record('nft apply largest ruleset (table swap)', median(applyTimes), 'ms', '≤ 200 ms');

    // A pod joins a group the point's rules name: world change → recompile → element delta → kernel.
    const updTimes: number[] = [];
    let before = table;
    for (let i = 0; i < RUNS; i++) {
      const spec = world.get('Workload', 'c0/ns-0/w0')!;
      const t = now();
      world.restore('Workload', 'c0/ns-0/w0', { ...spec, replicas: spec.replicas + 1 });
      const after = compilePoint(enforcementPointModel(world, target)).table;
      const delta = elementDelta(before, after);
      const file = path.join(os.tmpdir(), `microseg-bench-delta-${process.pid}.json`);
      fs.writeFileSync(file, JSON.stringify(delta));
      nsx(b, 'nft', '-j', '-f', file);
      updTimes.push(now() - t);
      fs.rmSync(file, { force: true });
      before = after;
    }
    record('pod add → kernel elements (compile + delta + nft)', median(updTimes), 'ms', '≤ 10 ms p99 from the store write');

    // Per-packet cost, same run: no ruleset, the largest ruleset, no ruleset again. Both servers listen
    // on the port the ruleset allows (iperf3's control and data connections included), one at a time.
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const serve = async (args: string[]) => {
      const proc = spawn('ip', ['netns', 'exec', b, ...args], { stdio: 'ignore' });
      servers.push(proc);
      await sleep(700);
      return proc;
    };
    const measure = async (label: string) => {
      const iperfServer = await serve(['iperf3', '-s', '-p', String(port)]);
      const out = JSON.parse(nsx(a, 'iperf3', '-c', target.ip.s, '-p', String(port), '-t', '4', '-J')) as { end: { sum_received: { bits_per_second: number } } };
      iperfServer.kill();
      const g = out.end.sum_received.bits_per_second / 1e9;
      const connServer = await serve([process.execPath, '-e', `require('net').createServer((c) => { c.on('error', () => {}); c.destroy(); }).listen(${port}, '0.0.0.0')`]);
      const c = Number(nsx(a, process.execPath, '-e', connectLoop(target.ip.s, port)).trim());
      connServer.kill();
      await sleep(300);
      log(`${label}: ${g.toFixed(2)} Gbit/s, ${c} connections/s`);
      return { g, c };
    };
    nsx(b, 'nft', 'delete', 'table', 'inet', table.name);
    const none1 = await measure('no ruleset');
    nftApply(b, replaceTable(table));
    const loaded = await measure('largest ruleset');
    nsx(b, 'nft', 'delete', 'table', 'inet', table.name);
    const none2 = await measure('no ruleset again');
    const base = { g: (none1.g + none2.g) / 2, c: (none1.c + none2.c) / 2 };
    record('iperf3 throughput with / without ruleset', (100 * loaded.g) / base.g, '%', '≥ 90 %');
    record('new connections/s with / without ruleset', (100 * loaded.c) / base.c, '%', '≥ 90 %');
    record('new connections/s without ruleset', base.c, 'conn/s');
    record('iperf3 without ruleset', base.g, 'Gbit/s');
  } finally {
    for (const s of servers) s.kill();
    cleanup();
  }
  write();
}

/** A client that opens and resets connections for 3 s and prints the rate. */
function connectLoop(ip: string, port: number): string {
  return `const net = require('net'); let n = 0; let live = 4; const end = Date.now() + 3000;
  const one = () => { if (Date.now() >= end) { if (--live === 0) console.log(Math.round(n / 3)); return; }
    const s = net.connect(${port}, '${ip}', () => { n++; s.resetAndDestroy(); one(); }); s.on('error', () => one()); };
  for (let i = 0; i < 4; i++) one();`;
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
