/**
 * A user's fresh projects, outside this repository, with only the release artifacts (issue 14): `npm run package`
 * builds them into a temporary directory; the plugin archive goes into a temporary PULUMI_HOME with
 * `pulumi plugin install resource microseg <version> --file <archive>`; each language's SDK is installed the way a
 * user installs it (npm tarball, wheel in a venv, Go module by `replace`); a small program per language comes up,
 * previews with no changes, and is destroyed, leaving the store empty. Nothing comes from this checkout but the
 * Pulumi CLI and Node 22 in .tools/bin (as a user has them on PATH); the provider is never on PATH and no
 * Pulumi.yaml names a plugin path, so no command may print "from $PATH".
 *
 * The nodejs and python language hosts cannot be built here (README "Toolchain notes"), so the TypeScript and
 * Python programs run inline through their Automation API, from the installed packages; the Pulumi YAML program runs
 * with the plain `pulumi up`. npm and pip install from the machine's package caches or registry; Go uses its module
 * cache. Cold (empty caches) this takes minutes; warm about a minute and a half.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { exportState, openSqliteStore } from '../../provider/src/store';
import { hostPluginArchive, ROOT, VERSION } from './harness';

jest.setTimeout(600_000);

const PULUMI_VERSION = /^PULUMI_VERSION=(\S+)$/m.exec(readFileSync(join(ROOT, 'scripts', 'versions.sh'), 'utf8'))![1];
const PLATFORMS = ['linux-amd64', 'linux-arm64', 'darwin-amd64', 'darwin-arm64', 'windows-amd64', 'windows-arm64'];

let dir: string;
let artifacts: string;
let pulumiHome: string;
/** Everything a user's shell would have: the Pulumi CLI and Node 22 on PATH, a local backend. No repository paths. */
let userEnv: NodeJS.ProcessEnv;
/** Every line Pulumi and the programs printed, to look for the ambient-plugin warning. */
const transcript: string[] = [];

function exec(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  try {
    const out = execFileSync(cmd, args, { cwd: opts.cwd ?? dir, env: opts.env ?? userEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    transcript.push(out);
    return out;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${err.stdout ?? ''}\n${err.stderr ?? err.message}`);
  }
}

/** Like exec, keeping stderr too (Pulumi prints warnings there). */
function execAll(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return exec('bash', ['-c', '"$@" 2>&1', 'bash', cmd, ...args], opts);
}

/** The last line of a runner's stdout: its JSON summary. */
const summary = (out: string): Record<string, any> => JSON.parse(out.trim().split('\n').pop()!);

async function storeObjects(dataDir: string): Promise<string[]> {
  if (!existsSync(dataDir)) return [];
  const store = await openSqliteStore({ dataDir });
  try {
    const doc = await exportState(store);
    return Object.entries(doc.environments).flatMap(([env, { objects }]) => objects.map((o) => `${env}/${o.kind}/${o.name}`)).sort();
  } finally {
    await store.close();
  }
}

const toolDir = (tool: string): string => dirname(execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim());

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'microseg-fresh-'));
  artifacts = join(dir, 'artifacts');
  pulumiHome = join(dir, 'pulumi-home');
  mkdirSync(join(dir, 'backend'), { recursive: true });
  const started = Date.now();
  execFileSync(process.execPath, [join(ROOT, 'dist', 'scripts', 'package.js'), '--out', artifacts], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  process.stderr.write(`[fresh-project] npm run package: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  userEnv = {
    // The machine's environment (package registries, proxies, CA certificates, Go caches) without this checkout's
    // Pulumi and microseg settings.
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(PULUMI_|MICROSEG_|GOFLAGS$|GOWORK$)/.test(k))),
    // Node 22 and pulumi (+ pulumi-language-yaml) from .tools/bin, as a user has them on PATH; go and npm where they are.
    PATH: [join(ROOT, '.tools', 'bin'), ...['go', 'npm'].map(toolDir), '/usr/bin', '/bin'].join(':'),
    PULUMI_HOME: pulumiHome,
    PULUMI_BACKEND_URL: `file://${join(dir, 'backend')}`,
    PULUMI_CONFIG_PASSPHRASE: 'fresh',
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: 'true',
  };
  exec('pulumi', ['plugin', 'install', 'resource', 'microseg', VERSION, '--file', hostPluginArchive(artifacts)]);
}, 900_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the release artifacts', () => {
  test('one plugin archive per platform, named as Pulumi expects, and the SDK packages', () => {
    const files = readdirSync(artifacts).sort();
    expect(files).toEqual(
      [
        ...PLATFORMS.map((p) => `pulumi-resource-microseg-v${VERSION}-${p}.tar.gz`),
        `microseg-pulumi-${VERSION}.tgz`,
        `pulumi_microseg-${VERSION}-py3-none-any.whl`,
        `pulumi_microseg-${VERSION}.tar.gz`,
        `microseg-sdk-go-v${VERSION}.tar.gz`,
        'schema.json',
        'SHA256SUMS',
      ].sort(),
    );
    const sizes = Object.fromEntries(files.map((f) => [f, statSync(join(artifacts, f)).size]));
    process.stderr.write(`[fresh-project] artifact sizes: ${JSON.stringify(sizes)}\n`);
    expect(exec('sha256sum', ['--check', '--quiet', 'SHA256SUMS'], { cwd: artifacts })).toBe('');
  });

  test('the plugin archive holds the bundle with a POSIX launcher, or a .cmd launcher on Windows, and the visibility page; the linux-amd64 one the agent\'s netlink writer', () => {
    const list = (p: string) => exec('tar', ['tzf', join(artifacts, `pulumi-resource-microseg-v${VERSION}-${p}.tar.gz`)]).trim().split('\n').sort();
    const page = ['ui/app.js', 'ui/app.js.LEGAL.txt', 'ui/index.html', 'ui/style.css'];
    expect(list('linux-amd64')).toEqual(['README.md', 'microseg', 'microseg-nft', 'microseg.js', 'pulumi-resource-microseg', 'pulumi-resource-microseg.js', ...page]);
    expect(list('darwin-arm64')).toEqual(['README.md', 'microseg', 'microseg.js', 'pulumi-resource-microseg', 'pulumi-resource-microseg.js', ...page]);
    expect(list('windows-amd64')).toEqual(['README.md', 'microseg.cmd', 'microseg.js', 'pulumi-resource-microseg.cmd', 'pulumi-resource-microseg.js', ...page]);
  });

  test('the npm tarball has compiled JS and declarations, and ranges for a current @pulumi/pulumi', () => {
    const list = exec('tar', ['tzf', join(artifacts, `microseg-pulumi-${VERSION}.tgz`)]);
    expect(list).toMatch(/^package\/index\.js$/m);
    expect(list).toMatch(/^package\/index\.d\.ts$/m);
    expect(list).toMatch(/^package\/virtualMachine\.d\.ts$/m);
    expect(list).not.toMatch(/^package\/[^/]+\.ts$(?<!\.d\.ts)/m);
    const meta = JSON.parse(exec('tar', ['xzOf', join(artifacts, `microseg-pulumi-${VERSION}.tgz`), 'package/package.json'])) as Record<string, any>;
    expect(meta).toMatchObject({ name: '@microseg/pulumi', version: VERSION, main: 'index.js', types: 'index.d.ts', pulumi: { resource: true, name: 'microseg', version: VERSION } });
    expect(meta.dependencies).toEqual({ '@pulumi/pulumi': '^3.142.0' });
    expect(meta.devDependencies).toBeUndefined();
  });
});

describe('the installed plugin', () => {
  const pluginDir = () => join(pulumiHome, 'plugins', `resource-microseg-v${VERSION}`);

  test('pulumi lists it, and its CLI reports the one version', () => {
    expect(exec('pulumi', ['plugin', 'ls'])).toMatch(new RegExp(`microseg\\s+resource\\s+${VERSION.replace(/\./g, '\\.')}`));
    expect(exec(join(pluginDir(), 'microseg'), ['--version']).trim()).toBe(VERSION);
  });

  test('its CLI serves the visibility page from the archive (`microseg ui`)', async () => {
    const data = join(dir, 'ui-data');
    const child = spawn(join(pluginDir(), 'microseg'), ['ui', '--port', '0', '--data-dir', data], { env: userEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        let err = '';
        child.stdout.on('data', (b: Buffer) => {
          out += String(b);
          const m = /at (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.stderr.on('data', (b: Buffer) => (err += String(b)));
        child.once('exit', (code) => reject(new Error(`microseg ui exited with ${code}: ${err}`)));
      });
      const index = await fetch(url);
      expect(index.status).toBe(200);
      expect(await index.text()).toMatch(/<script[^>]+app\.js/);
      const app = await fetch(new URL('app.js', url));
      expect(app.status).toBe(200);
      expect((await app.text()).length).toBeGreaterThan(100_000); // Cytoscape.js is bundled in
    } finally {
      // Wait for the exit, so no server outlives the test.
      const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('its launcher says clearly when node is missing or older than 22', () => {
    const noNode = { ...userEnv, PATH: '/nonexistent' };
    expect(() => execFileSync('/bin/sh', [join(pluginDir(), 'pulumi-resource-microseg')], { env: noNode, stdio: 'pipe' })).toThrow(/Node\.js >= 22 is required, but `node` was not found/);
    const old = join(dir, 'old-node');
    mkdirSync(old, { recursive: true });
    // A node that reports version 20: the bundle's first statement refuses it before loading anything.
    writeFileSync(join(old, 'node'), `#!/bin/sh\nexec "${process.execPath}" -e 'Object.defineProperty(process, "versions", { value: { ...process.versions, node: "20.11.1" } }); Object.defineProperty(process, "version", { value: "v20.11.1" }); require(process.argv[1])' "$@"\n`, { mode: 0o755 });
    let stderr = '';
    try {
      execFileSync(join(pluginDir(), 'pulumi-resource-microseg'), [], { env: { ...userEnv, PATH: `${old}:/usr/bin:/bin` }, stdio: 'pipe' });
    } catch (e) {
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(stderr).toMatch(/pulumi-resource-microseg: Node\.js >= 22 is required \(it has node:sqlite\); found v20\.11\.1/);
  });
});

describe('a fresh project per language', () => {
  test('TypeScript: the npm tarball in a new project, through the Automation API', async () => {
    const project = join(dir, 'ts');
    mkdirSync(project);
    const tsVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'typescript', 'package.json'), 'utf8')) as { version: string }).version;
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'fresh-ts', private: true, main: 'index.ts', dependencies: { '@microseg/pulumi': `file:${join(artifacts, `microseg-pulumi-${VERSION}.tgz`)}`, '@pulumi/pulumi': PULUMI_VERSION }, devDependencies: { typescript: tsVersion, '@types/node': '^22' } }, null, 2),
    );
    exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: project });
    writeFileSync(
      join(project, 'index.ts'),
      `import * as microseg from '@microseg/pulumi';

export default async () => {
  const db = new microseg.VirtualMachine('db', { name: 'ts-db', interfaces: [{ ip: '192.168.60.10' }], labels: { app: 'ts-db' } });
  const group = new microseg.SecurityGroup('db', { name: 'ts-db', vms: [db.name] });
  const policy = new microseg.FirewallPolicy('db-access', {
    name: 'ts-db-access',
    category: 'application',
    priority: 100,
    appliedTo: [group.name],
    rules: [{ name: 'app-to-db', action: 'allow', sources: [{ cidr: '10.20.0.0/16' }], destinations: [{ group: group.name }], services: [{ protocol: 'tcp', ports: [5432] }] }],
  });
  return { vm: db.id, group: group.id, policy: policy.id };
};
`,
    );
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, target: 'es2022', module: 'commonjs', moduleResolution: 'node10', outDir: 'bin', skipLibCheck: true, types: ['node'] }, files: ['index.ts'] }));
    exec('node', [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);
    // The runner uses the project's own @pulumi/pulumi (Automation API) and runs the compiled default export inline.
    writeFileSync(
      join(project, 'run.js'),
      `const { LocalWorkspace } = require('@pulumi/pulumi/automation');
const program = require('./bin/index.js').default;
(async () => {
  const stack = await LocalWorkspace.createOrSelectStack({ stackName: 'dev', projectName: 'fresh-ts', program }, { workDir: __dirname, projectSettings: { name: 'fresh-ts', runtime: 'nodejs' }, envVars: {} });
  const log = (s) => process.stderr.write(s);
  const up = await stack.up({ onOutput: log });
  const preview = await stack.preview({ onOutput: log });
  const destroy = await stack.destroy({ onOutput: log });
  console.log(JSON.stringify({ up: { result: up.summary.result, changes: up.summary.resourceChanges, outputs: Object.fromEntries(Object.entries(up.outputs).map(([k, v]) => [k, v.value])) }, preview: preview.changeSummary, destroy: { result: destroy.summary.result, changes: destroy.summary.resourceChanges } }));
})().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    const dataDir = join(dir, 'data-ts');
    const out = execAll('node', [join(project, 'run.js')], { cwd: project, env: { ...userEnv, MICROSEG_DATA_DIR: dataDir } });
    expect(summary(out)).toEqual({
      up: { result: 'succeeded', changes: { create: 4 }, outputs: { vm: 'ts-db', group: 'ts-db', policy: 'ts-db-access' } },
      preview: { same: 4 },
      destroy: { result: 'succeeded', changes: { delete: 4 } },
    });
    expect(await storeObjects(dataDir)).toEqual([]);
  });

  test('TypeScript: examples/vcci-app compiles as an ordinary program against the installed SDK package', () => {
    const project = join(dir, 'vcci-app');
    cpSync(join(ROOT, 'examples', 'vcci-app'), project, { recursive: true });
    cpSync(join(dir, 'ts', 'node_modules'), join(project, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    exec('node', [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);
    const entry = require(join(project, 'bin', 'index.js')) as { default?: unknown };
    expect(typeof entry.default).toBe('function');
  });

  test('Python: the wheel in a new venv, through the Automation API', async () => {
    const venv = join(dir, 'venv');
    const python3 = ['python3.13', 'python3.12', 'python3.11', 'python3.10', 'python3.9', 'python3'].find((c) => {
      try {
        execFileSync(c, ['-c', 'import sys, venv; sys.exit(sys.version_info < (3, 9))'], { stdio: 'ignore', env: process.env });
        return true;
      } catch {
        return false;
      }
    })!;
    execFileSync(python3, ['-m', 'venv', venv], { stdio: 'ignore' });
    const py = join(venv, 'bin', 'python');
    exec(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', join(artifacts, `pulumi_microseg-${VERSION}-py3-none-any.whl`), `pulumi==${PULUMI_VERSION}`]);
    const project = join(dir, 'py');
    mkdirSync(project);
    writeFileSync(
      join(project, 'run.py'),
      `import json, sys
import pulumi
import pulumi_microseg as microseg
from pulumi import automation as auto

def program():
    db = microseg.VirtualMachine("db", name="py-db", interfaces=[microseg.VmInterfaceArgs(ip="192.168.61.10")], labels={"app": "py-db"})
    group = microseg.SecurityGroup("db", name="py-db", vms=[db.name])
    pulumi.export("vm", db.id)
    pulumi.export("group", group.id)

stack = auto.create_or_select_stack(stack_name="dev", project_name="fresh-py", program=program,
    opts=auto.LocalWorkspaceOptions(work_dir=sys.path[0], project_settings=auto.ProjectSettings(name="fresh-py", runtime="python")))
log = lambda m: print(m, file=sys.stderr)
up = stack.up(on_output=log)
preview = stack.preview(on_output=log)
destroy = stack.destroy(on_output=log)
print(json.dumps({"up": {"result": up.summary.result, "changes": up.summary.resource_changes, "outputs": {k: v.value for k, v in up.outputs.items()}},
                  "preview": preview.change_summary, "destroy": {"result": destroy.summary.result, "changes": destroy.summary.resource_changes}}))
`,
    );
    const dataDir = join(dir, 'data-py');
    const out = execAll(py, [join(project, 'run.py')], { cwd: project, env: { ...userEnv, MICROSEG_DATA_DIR: dataDir, PYTHONDONTWRITEBYTECODE: '1' } });
    expect(summary(out)).toEqual({
      up: { result: 'succeeded', changes: { create: 3 }, outputs: { vm: 'py-db', group: 'py-db' } },
      preview: { same: 3 },
      destroy: { result: 'succeeded', changes: { delete: 3 } },
    });
    expect(await storeObjects(dataDir)).toEqual([]);
  });

  // Cold (empty Go build cache) compiling the Pulumi Go SDK takes minutes on 2 cores; warm, seconds.
  test('Go: the SDK module by replace, through the Automation API', async () => {
    const project = join(dir, 'go');
    exec('tar', ['xzf', join(artifacts, `microseg-sdk-go-v${VERSION}.tar.gz`), '-C', dir]);
    mkdirSync(project);
    for (const f of ['main.go', 'program.go', 'go.mod', 'go.sum']) cpSync(join(ROOT, 'examples', 'sdk-go', f), join(project, f));
    const gomod = join(project, 'go.mod');
    writeFileSync(gomod, readFileSync(gomod, 'utf8').replace(/^replace github\.com\/microseg\/microseg\/sdk\/go => .*$/m, `replace github.com/microseg/microseg/sdk/go => ${join(dir, `microseg-sdk-go-v${VERSION}`)}`));
    const dataDir = join(dir, 'data-go');
    const out = execAll('go', ['run', '.', 'up', 'preview', 'destroy'], { cwd: project, env: { ...userEnv, MICROSEG_DATA_DIR: dataDir, GOWORK: 'off', GOFLAGS: '-mod=mod' } });
    const result = summary(out);
    expect(result.up).toMatchObject({ result: 'succeeded', resourceChanges: { create: 4 }, providerVersion: VERSION });
    expect(result.preview.changeSummary).toEqual({ same: 4 });
    expect(result.destroy).toEqual({ result: 'succeeded', resourceChanges: { delete: 4 } });
    expect(await storeObjects(dataDir)).toEqual([]);
  }, 1_200_000);

  test('Pulumi YAML: `pulumi up` with the installed plugin', async () => {
    const project = join(dir, 'yaml');
    mkdirSync(project);
    writeFileSync(
      join(project, 'Pulumi.yaml'),
      `name: fresh-yaml
runtime: yaml
resources:
  db:
    type: microseg:VirtualMachine
    properties:
      name: yaml-db
      interfaces:
        - ip: 192.168.62.10
      labels:
        app: yaml-db
  dbGroup:
    type: microseg:SecurityGroup
    properties:
      name: yaml-db
      vms:
        - \${db.name}
outputs:
  vm: \${db.id}
`,
    );
    const dataDir = join(dir, 'data-yaml');
    const env = { ...userEnv, MICROSEG_DATA_DIR: dataDir };
    execAll('pulumi', ['stack', 'init', 'dev', '--non-interactive'], { cwd: project, env });
    const up = execAll('pulumi', ['up', '--yes', '--non-interactive', '--skip-preview'], { cwd: project, env });
    expect(up).toMatch(/3 created/);
    // Neither "using pulumi-resource-microseg from $PATH" nor any other warning.
    expect(up).not.toMatch(/warning/i);
    expect(await storeObjects(dataDir)).toHaveLength(2);
    const preview = execAll('pulumi', ['preview', '--expect-no-changes', '--non-interactive'], { cwd: project, env });
    expect(preview).toMatch(/3 unchanged/);
    const destroy = execAll('pulumi', ['destroy', '--yes', '--non-interactive', '--skip-preview'], { cwd: project, env });
    expect(destroy).toMatch(/3 deleted/);
    expect(await storeObjects(dataDir)).toEqual([]);
  });

  test('no command printed the "from $PATH" warning', () => {
    expect(transcript.join('\n')).not.toMatch(/from \$PATH/);
    expect(transcript.join('\n')).toMatch(/created/);
  });
});

test('the host plugin archive the e2e harness installs is where setup puts it', () => {
  expect(existsSync(hostPluginArchive())).toBe(true);
});
