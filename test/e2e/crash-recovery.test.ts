/**
 * Crash recovery, as a reliability engineer tries it: a Pulumi YAML program of 100 microseg resources,
 * `kill -9` of `pulumi` and, separately, of the provider process at random points during `pulumi up` and
 * during `pulumi destroy` (three of each per phase), then only what a user does: `pulumi cancel` when the
 * stack is locked, and the same `up`/`destroy` again. It must converge with no manual step: the Pulumi
 * state and the store hold the same objects, no duplicates, no orphans, each owned by the URN that
 * manages it. A provider whose engine was killed must exit on its own.
 *
 * Runs against the embedded store and, in the jest project e2e-server, against `microseg serve` on
 * PostgreSQL (a killed provider's request may still be applied by the server: the rerun must adopt it).
 *
 * The randomness is seeded; the seed is printed, and MICROSEG_FAULT_SEED=<n> replays a run.
 * The stack has no `microseg:environment`: its objects live in the environment named after the stack.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backendTestEnv, BackendTestEnv } from './harness';
import { mulberry32 } from '../support/seeded-random';

jest.setTimeout(175_000);

const SEED = Number(process.env.MICROSEG_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`crash-recovery seed ${SEED} (replay with MICROSEG_FAULT_SEED=${SEED})`);

const random = mulberry32(SEED);

const STACK = 'fault';
const VMS = 50;
const GROUPS = 25;
const POLICIES = 25;
const TOTAL = VMS + GROUPS + POLICIES;

/** 50 VMs, 25 groups selecting them by label, 25 policies referencing two groups each (so deletes are ordered). */
function program(): string {
  const lines = ['name: fault', 'runtime: yaml', 'resources:'];
  for (let i = 0; i < VMS; i++) {
    lines.push(`  vm-${i}:`, '    type: microseg:index:VirtualMachine', `    properties: { name: vm-${i}, interfaces: [{ ip: 10.${Math.floor(i / 200)}.${i % 200}.10 }], labels: { app: g${i % GROUPS} } }`);
  }
  for (let i = 0; i < GROUPS; i++) {
    lines.push(`  sg-${i}:`, '    type: microseg:index:SecurityGroup', `    properties: { name: sg-${i}, vmSelectors: [{ matchLabels: { app: g${i} } }] }`);
  }
  for (let i = 0; i < POLICIES; i++) {
    const a = i % GROUPS;
    const b = (i + 1) % GROUPS;
    lines.push(
      `  pol-${i}:`,
      '    type: microseg:index:FirewallPolicy',
      `    properties: { name: pol-${i}, priority: ${100 + i}, rules: [{ name: r, action: allow, sources: [{ group: "\${sg-${a}.name}" }], destinations: [{ group: "\${sg-${b}.name}" }], services: [{ protocol: tcp, ports: [${5000 + i}] }] }] }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

let env: BackendTestEnv;
let workDir: string;
const leftovers: number[] = [];

beforeAll(async () => {
  env = await backendTestEnv();
  // The DIY file backend writes each state file's metadata sidecar (`.json.attrs`) in place, not through a
  // temporary file: a `kill -9` of pulumi in that window leaves it empty, and every later command fails with
  // "failed to load checkpoint: EOF" until it is deleted by hand. That is Pulumi's backend, not the provider;
  // `metadata=skip` (a gocloud fileblob option) writes no sidecars, and the state files themselves are
  // replaced atomically. docs/concepts.md recommends it for file backends.
  env.envVars.PULUMI_BACKEND_URL = `${env.envVars.PULUMI_BACKEND_URL}?metadata=skip`;
  workDir = join(env.dir, 'project');
  require('node:fs').mkdirSync(workDir, { recursive: true });
  writeFileSync(join(workDir, 'Pulumi.yaml'), program());
  const init = await pulumi(['stack', 'init']);
  expect({ code: init.code, output: init.code === 0 ? '' : init.output }).toEqual({ code: 0, output: '' });
  // The backend's provider configuration, as a user sets it (the token as a secret).
  for (const [key, { value, secret }] of Object.entries(env.backend.stackConfig)) {
    const set = await pulumi(['config', 'set', ...(secret ? ['--secret'] : []), key, value]);
    expect({ code: set.code, output: set.code === 0 ? '' : set.output }).toEqual({ code: 0, output: '' });
  }
}, 180_000);

afterAll(async () => {
  // Pulumi's own language host lingers for minutes after its engine is killed; end the ones we started.
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await env?.cleanup();
});

interface Run {
  child: ChildProcess;
  /** stdout and stderr interleaved. */
  output: () => string;
  stdout: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[]): Run {
  const child = spawn('pulumi', [...args, '--non-interactive', '--stack', STACK, '--color', 'never'], { cwd: workDir, env: { ...process.env, ...env.envVars }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, stdout: () => stdout, done };
}

async function pulumi(args: string[]): Promise<{ code: number | null; output: string; stdout: string }> {
  const run = start(args);
  const { code } = await run.done;
  return { code, output: run.output(), stdout: run.stdout() };
}

/** What a user does: run the command; if the stack is locked by the killed run, `pulumi cancel` and run it again. */
async function recover(args: string[]): Promise<{ code: number | null; output: string }> {
  let r = await pulumi(args);
  if (r.code !== 0 && /currently locked/.test(r.output)) {
    const cancel = await pulumi(['cancel', '--yes']);
    expect(cancel.code).toBe(0);
    r = await pulumi(args);
  }
  return r;
}

/** Objects of the stack's environment, as `Kind/name` with their owners. */
async function stored(): Promise<Map<string, string | undefined>> {
  return new Map(Object.entries(await env.backend.owners(STACK)));
}

/** Process ids below `root` in the process tree, with their command lines. */
function descendants(root: number): { pid: number; cmdline: string }[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(entry), Number(fields[1]));
    } catch {
      // exited while we looked
    }
  }
  const out: { pid: number; cmdline: string }[] = [];
  const frontier = [root];
  while (frontier.length > 0) {
    const p = frontier.pop()!;
    for (const [child, ppid] of parent) {
      if (ppid !== p) continue;
      frontier.push(child);
      try {
        out.push({ pid: child, cmdline: readFileSync(`/proc/${child}/cmdline`, 'utf8').replace(/\0/g, ' ') });
      } catch {
        // exited while we looked
      }
    }
  }
  return out;
}

// The installed plugin runs its bundle (pulumi-resource-microseg.js); a checkout's provider/bin runs dist/.
const isProvider = (p: { cmdline: string }) => p.cmdline.includes('pulumi-resource-microseg.js') || p.cmdline.includes('provider/src/provider/main.js');

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (seed ${SEED})`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

type Victim = 'pulumi' | 'provider';

/**
 * Runs `args` and kills its victim once the store holds `reached(count)`. The run may end first, or find
 * the stack locked by the previous kill (then the user runs `pulumi cancel` and tries again). After a
 * `pulumi` kill, the providers it had started must exit on their own.
 */
async function killDuring(args: string[], victim: Victim, reached: (count: number) => boolean): Promise<'killed' | 'ended'> {
  for (;;) {
    const outcome = await killOnce(args, victim, reached);
    if (outcome !== 'locked') return outcome;
    const cancel = await pulumi(['cancel', '--yes']);
    expect(cancel.code).toBe(0);
  }
}

async function killOnce(args: string[], victim: Victim, reached: (count: number) => boolean): Promise<'killed' | 'ended' | 'locked'> {
  const run = start(args);
  let exited = false;
  void run.done.then(() => (exited = true));
  let providers: { pid: number; cmdline: string }[] = [];
  await until(`${args[0]} to reach its kill point`, async () => exited || (reached((await stored()).size) && (providers = descendants(run.child.pid!).filter(isProvider)).length > 0), 120_000);
  if (exited) {
    if (/currently locked/.test(run.output())) return 'locked';
    console.log(`${args[0]} ended before its kill point (seed ${SEED}): ${run.output().slice(-3000)}`);
    return 'ended';
  }
  const below = descendants(run.child.pid!);
  if (victim === 'pulumi') {
    run.child.kill('SIGKILL');
    await run.done;
    leftovers.push(...below.filter((p) => !isProvider(p)).map((p) => p.pid));
    // Each provider notices its engine is gone and exits (no signal reaches it: pulumi is dead).
    await until('the providers of a killed pulumi to exit on their own', () => providers.every((p) => !alive(p.pid)), 30_000);
  } else {
    for (const p of providers) process.kill(p.pid, 'SIGKILL');
    const { code } = await run.done;
    expect({ code: code === 0 ? 'succeeded' : 'failed', seed: SEED }).toEqual({ code: 'failed', seed: SEED });
  }
  return 'killed';
}

/** Pulumi's view: microseg resources of the stack as `Kind/id` → URN. */
async function stateObjects(): Promise<Map<string, string>> {
  const r = await pulumi(['stack', 'export']);
  expect(r.code).toBe(0);
  const json = r.stdout;
  const deployment = (JSON.parse(json) as { deployment: { resources?: { urn: string; id?: string; type: string }[]; pending_operations?: unknown[] } }).deployment;
  const out = new Map<string, string>();
  for (const res of deployment.resources ?? []) {
    if (!res.type.startsWith('microseg:index:')) continue;
    const key = `${res.type.split(':')[2]}/${res.id}`;
    expect({ duplicate: out.has(key) ? key : undefined, seed: SEED }).toEqual({ duplicate: undefined, seed: SEED });
    out.set(key, res.urn);
  }
  return out;
}

/** Random victims (three of each) at increasing (or, for destroy, decreasing) random store counts. */
function plan(): { victim: Victim; at: number }[] {
  const victims: Victim[] = ['pulumi', 'pulumi', 'pulumi', 'provider', 'provider', 'provider'];
  for (let i = victims.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [victims[i], victims[j]] = [victims[j], victims[i]];
  }
  // Six kill points spread over the run: one random point in each sixth of 5..90 objects. Not later: the
  // last few operations can finish between two looks at the store, and the run would end unkilled.
  return victims.map((victim, i) => ({ victim, at: 5 + Math.floor((i + random()) * (85 / victims.length)) }));
}

test('kill -9 of pulumi and of the provider during up, then plain reruns of up, converge: state = store, no duplicates', async () => {
  const points = plan();
  console.log(`up kill points (seed ${SEED}): ${points.map((p) => `${p.victim}@${p.at}`).join(', ')}`);
  const kills: Record<Victim, number> = { pulumi: 0, provider: 0 };
  for (const p of points) {
    if ((await killDuring(['up', '--yes', '--skip-preview'], p.victim, (n) => n >= p.at)) === 'killed') kills[p.victim]++;
  }
  expect(kills).toEqual({ pulumi: 3, provider: 3 });

  const up = await recover(['up', '--yes', '--skip-preview']);
  expect({ code: up.code, seed: SEED, output: up.code === 0 ? '' : up.output }).toEqual({ code: 0, seed: SEED, output: '' });

  const state = await stateObjects();
  const objects = await stored();
  expect(state.size).toBe(TOTAL);
  expect([...objects.keys()].sort()).toEqual([...state.keys()].sort());
  // Every object is owned by the resource that manages it in the state.
  for (const [key, urn] of state) expect({ key, owner: objects.get(key) }).toEqual({ key, owner: urn });
  // And the program is converged: nothing left to do.
  const preview = await pulumi(['preview', '--expect-no-changes']);
  expect({ code: preview.code, seed: SEED, output: preview.code === 0 ? '' : preview.output }).toEqual({ code: 0, seed: SEED, output: '' });
});

test('kill -9 of pulumi and of the provider during destroy, then plain reruns of destroy, leave neither state nor store objects', async () => {
  const points = plan().map((p) => ({ ...p, at: TOTAL - p.at }));
  console.log(`destroy kill points (seed ${SEED}): ${points.map((p) => `${p.victim}@${p.at}`).join(', ')}`);
  const kills: Record<Victim, number> = { pulumi: 0, provider: 0 };
  for (const p of points) {
    if ((await killDuring(['destroy', '--yes', '--skip-preview'], p.victim, (n) => n <= p.at)) === 'killed') kills[p.victim]++;
  }
  expect(kills).toEqual({ pulumi: 3, provider: 3 });

  const destroy = await recover(['destroy', '--yes', '--skip-preview']);
  expect({ code: destroy.code, seed: SEED, output: destroy.code === 0 ? '' : destroy.output }).toEqual({ code: 0, seed: SEED, output: '' });
  expect((await stateObjects()).size).toBe(0);
  expect([...(await stored()).keys()]).toEqual([]);
  // The embedded store stays (empty); in team mode nothing ever landed on this machine.
  expect(existsSync(env.dataDir)).toBe(env.backend.name === 'embedded');
});
