/**
 * `npm run package`: the release artifacts, into `.release/` (git-ignored) unless `--out DIR`:
 *
 *   pulumi-resource-microseg-v<version>-<os>-<arch>.tar.gz   the provider plugin, for every platform Node.js 22 runs on
 *   microseg-pulumi-<version>.tgz                            the nodejs SDK (npm tarball: compiled JS + .d.ts)
 *   pulumi_microseg-<version>-py3-none-any.whl / .tar.gz     the Python SDK (wheel and sdist)
 *   microseg-sdk-go-v<version>.tar.gz                        the Go SDK module (its own go.mod)
 *   schema.json, SHA256SUMS
 *
 * How the plugin runs: one JavaScript file bundled by esbuild (the provider and every dependency; `node:sqlite` is
 * built into Node) run by the user's Node.js >= 22, which a Pulumi TypeScript user has anyway. So one bundle serves
 * every platform, an archive is ~0.5 MB instead of a ~100 MB single executable per platform, and nothing depends on
 * this checkout. Each archive holds a launcher (`pulumi-resource-microseg`, a POSIX shell script; `.cmd` on
 * Windows, which Pulumi probes for) that says clearly when node is missing, and the bundle refuses an older Node
 * with its version. The `microseg` CLI ships in the same archive the same way.
 *
 * Options:
 *   --out DIR                    output directory (default .release)
 *   --plugin-download-url URL    baked into schema.json, the SDKs and the plugin's GetSchema (`pluginDownloadURL`),
 *                                so `pulumi` can download the plugin from there (also MICROSEG_PLUGIN_DOWNLOAD_URL)
 *   --plugin-only [--host]       only the plugin archives (with --host: only this machine's platform); what setup uses
 *
 * One version, package.json's, names and drives everything (`npm run gen` writes it into the sources).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { microsegSchemaJson } from '../provider/src/schema';
import { version as builtVersion } from '../provider/src/version';

const root = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const version = pkg.version;

/** Every platform Node.js 22 publishes binaries for that Pulumi also ships on (os-arch as Pulumi names them). */
export const PLATFORMS = ['linux-amd64', 'linux-arm64', 'darwin-amd64', 'darwin-arm64', 'windows-amd64', 'windows-arm64'] as const;
export type Platform = (typeof PLATFORMS)[number];

export function hostPlatform(): Platform {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const p = `${os}-${arch}`;
  if (!(PLATFORMS as readonly string[]).includes(p)) throw new Error(`no microseg plugin for platform ${p}`);
  return p as Platform;
}

export const pluginArchiveName = (v: string, platform: Platform): string => `pulumi-resource-microseg-v${v}-${platform}.tar.gz`;

const NODE_CHECK = (name: string) =>
  `if (Number(process.versions.node.split('.')[0]) < 22) {\n` +
  `  process.stderr.write('${name}: Node.js >= 22 is required (it has node:sqlite); found ' + process.version + ' at ' + process.execPath + '. Install Node.js 22 or newer (https://nodejs.org), or set MICROSEG_NODE to its path.\\n');\n` +
  `  process.exit(1);\n}`;

/**
 * `microseg agent` keeps a whole environment's world in memory and compiles on every change: a larger
 * young generation makes V8's scavenges rarer (each costs milliseconds on such a heap), and `gc` exposed
 * lets the agent collect it between passes rather than in the middle of one (bench/agent.ts).
 */
const AGENT_LINES = [
  '# `microseg agent`: a larger young generation, collected between passes (see provider/src/agent/agent.ts).',
  'case "${1:-}" in agent) exec "$node" --max-semi-space-size=64 --expose-gc "$dir/microseg.js" "$@" ;; esac',
  '',
].join('\n');

/** POSIX launcher: resolves its own directory through symlinks, finds node, runs the bundle next to it. */
const shLauncher = (name: string) => `#!/bin/sh
# ${name} ${version}: runs ${name}.js (the bundled microseg ${name === 'microseg' ? 'CLI' : 'provider plugin'}) under Node.js >= 22.
# The node binary is $MICROSEG_NODE if set, else the first \`node\` on PATH.
self="$0"
while [ -h "$self" ]; do
  link="$(readlink "$self")"
  case "$link" in /*) self="$link" ;; *) self="$(dirname "$self")/$link" ;; esac
done
dir="$(cd "$(dirname "$self")" && pwd)"
node="\${MICROSEG_NODE:-node}"
if ! command -v "$node" >/dev/null 2>&1; then
  echo "${name}: Node.js >= 22 is required, but \\\`$node\\\` was not found (PATH=$PATH). Install Node.js 22 or newer (https://nodejs.org), or set MICROSEG_NODE to its path." >&2
  exit 1
fi
# node:sqlite is still flagged experimental on Node 22; its warning must not reach users.
NODE_NO_WARNINGS=1
export NODE_NO_WARNINGS
${name === 'microseg' ? AGENT_LINES : ''}exec "$node" "$dir/${name}.js" "$@"
`;

/** Windows launcher (Pulumi probes for <name>.exe, then <name>.cmd). */
const cmdLauncher = (name: string) =>
  [
    '@echo off',
    `rem ${name} ${version}: runs ${name}.js under Node.js >= 22 (%MICROSEG_NODE% if set, else node on PATH).`,
    'setlocal',
    'set "MICROSEG_NODE_BIN=%MICROSEG_NODE%"',
    'if "%MICROSEG_NODE_BIN%"=="" set "MICROSEG_NODE_BIN=node"',
    'where "%MICROSEG_NODE_BIN%" >nul 2>nul',
    `if errorlevel 1 if not exist "%MICROSEG_NODE_BIN%" (echo ${name}: Node.js ^>= 22 is required, but %MICROSEG_NODE_BIN% was not found. Install Node.js 22 or newer, or set MICROSEG_NODE to its path. 1>&2 & exit /b 1)`,
    'set NODE_NO_WARNINGS=1',
    `"%MICROSEG_NODE_BIN%" "%~dp0${name}.js" %*`,
    '',
  ].join('\r\n');

function sh(cmd: string, args: string[], cwd = root, env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
  }
}

function log(msg: string): void {
  process.stderr.write(`[package] ${msg}\n`);
}

/** A deterministic tar.gz of `files` (relative to `dir`), written atomically: readers never see half a file. */
function tarGz(dir: string, files: string[], dest: string): void {
  const tmp = `${dest}.tmp-${process.pid}`;
  sh('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-czf', tmp, '-C', dir, ...files]);
  renameSync(tmp, dest);
}

async function bundle(staging: string, downloadUrl: string | undefined): Promise<void> {
  const define = { MICROSEG_PLUGIN_DOWNLOAD_URL: downloadUrl ? JSON.stringify(downloadUrl) : 'undefined' };
  const entries: [string, string][] = [
    ['pulumi-resource-microseg', join(root, 'provider', 'src', 'provider', 'main.ts')],
    ['microseg', join(root, 'provider', 'src', 'cli', 'main.ts')],
  ];
  for (const [name, entry] of entries) {
    await build({
      entryPoints: [entry],
      outfile: join(staging, `${name}.js`),
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      define,
      // pg's optional native binding; the pure-JS client is what microseg uses.
      external: ['pg-native'],
      banner: { js: `#!/usr/bin/env node\n// microseg ${version} (${name}): bundled with esbuild; see the archive's README.md.\n${NODE_CHECK(name)}` },
      legalComments: 'none',
      logLevel: 'warning',
    });
  }
}

/** The plugin archives (one bundle, per-platform launchers). */
async function packagePlugin(out: string, staging: string, platforms: readonly Platform[], downloadUrl: string | undefined): Promise<string[]> {
  const dir = join(staging, 'plugin');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await bundle(dir, downloadUrl);
  writeFileSync(
    join(dir, 'README.md'),
    `# microseg ${version}: the Pulumi resource provider plugin and the \`microseg\` CLI\n\n` +
      'Needs Node.js >= 22 on PATH (or MICROSEG_NODE pointing at it).\n\n' +
      `    pulumi plugin install resource microseg ${version} --file ${pluginArchiveName(version, 'linux-amd64').replace('linux-amd64', '<os>-<arch>')}\n\n` +
      `The CLI is \`microseg\` in the installed plugin directory (~/.pulumi/plugins/resource-microseg-v${version}/);\n` +
      'link it onto PATH (only it: a `pulumi-resource-microseg` found on PATH would take precedence over the installed plugin).\n',
  );
  // The visibility page (`microseg ui`, and `/ui/` of `microseg serve`) beside the bundle, built by scripts/build-ui.ts.
  const uiBuilt = join(root, 'dist', 'ui');
  if (!existsSync(join(uiBuilt, 'app.js'))) throw new Error('dist/ui/app.js is missing: run scripts/setup.sh (it builds the visibility page) before packaging');
  const uiFiles = readdirSync(uiBuilt).sort();
  mkdirSync(join(dir, 'ui'));
  for (const f of uiFiles) cpSync(join(uiBuilt, f), join(dir, 'ui', f));
  for (const name of ['pulumi-resource-microseg', 'microseg']) {
    writeFileSync(join(dir, name), shLauncher(name));
    chmodSync(join(dir, name), 0o755);
    writeFileSync(join(dir, `${name}.cmd`), cmdLauncher(name));
  }
  const written: string[] = [];
  for (const platform of platforms) {
    const launchers = platform.startsWith('windows') ? ['pulumi-resource-microseg.cmd', 'microseg.cmd'] : ['pulumi-resource-microseg', 'microseg'];
    // The agent's netlink writer (tools/nft-writer, built by setup for this machine): in the archive of
    // the platform it was built for; elsewhere the agent uses the nft command (docs/realization.md).
    const writer = platform === 'linux-amd64' && process.arch === 'x64' && existsSync(join(root, '.tools', 'bin', 'microseg-nft')) ? ['microseg-nft'] : [];
    if (writer.length) cpSync(join(root, '.tools', 'bin', 'microseg-nft'), join(dir, 'microseg-nft'));
    const dest = join(out, pluginArchiveName(version, platform));
    tarGz(dir, ['README.md', 'pulumi-resource-microseg.js', 'microseg.js', ...launchers, ...writer, ...uiFiles.map((f) => `ui/${f}`)], dest);
    written.push(dest);
  }
  return written;
}

/** The SDK sources: the checked-in ones, or regenerated with the download URL baked in. */
function sdkSources(staging: string, downloadUrl: string | undefined): string {
  const dir = join(staging, 'sdk');
  rmSync(dir, { recursive: true, force: true });
  if (!downloadUrl) {
    cpSync(join(root, 'sdk'), dir, { recursive: true });
    cpSync(join(root, 'schema.json'), join(staging, 'schema.json'));
    return dir;
  }
  writeFileSync(join(staging, 'schema.json'), microsegSchemaJson({ version, pluginDownloadURL: downloadUrl }));
  log('generating the SDKs with pluginDownloadURL');
  sh(join(root, '.tools', 'bin', 'microseg-gen-sdk'), [join(staging, 'schema.json'), dir, 'nodejs', 'python', 'go']);
  return dir;
}

/** nodejs: tsc into bin/, which is the package root (as Pulumi's own providers publish), then `npm pack`. */
function packageNodejs(sdk: string, out: string): string {
  const src = join(sdk, 'nodejs');
  sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', src]);
  const bin = join(src, 'bin');
  const meta = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8')) as Record<string, unknown>;
  delete meta.scripts;
  delete meta.devDependencies;
  const published = { ...meta, main: 'index.js', types: 'index.d.ts', engines: { node: '>=18' } };
  writeFileSync(join(bin, 'package.json'), `${JSON.stringify(published, null, 4)}\n`);
  cpSync(join(src, 'README.md'), join(bin, 'README.md'));
  const file = sh('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', out], bin).trim().split('\n').pop()!;
  return join(out, file);
}

/** A venv with `build` (PyPI, once), so wheels and sdists build without network afterwards (--no-isolation). */
function pythonBuilder(): string {
  const venv = join(root, '.tools', 'pybuild');
  const py = join(venv, 'bin', 'python');
  if (!existsSync(join(venv, 'build.stamp'))) {
    log('creating .tools/pybuild (python -m build)');
    const base = ['python3.13', 'python3.12', 'python3.11', 'python3.10', 'python3.9', 'python3'].find((c) => {
      try {
        execFileSync(c, ['-c', 'import sys, venv; sys.exit(sys.version_info < (3, 9))'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
    if (!base) throw new Error('no python >= 3.9 with the venv module found (needed to build the Python SDK)');
    rmSync(venv, { recursive: true, force: true });
    sh(base, ['-m', 'venv', venv]);
    sh(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'build', 'setuptools>=61', 'wheel']);
    writeFileSync(join(venv, 'build.stamp'), 'build setuptools wheel\n');
  }
  return py;
}

function packagePython(sdk: string, out: string): string[] {
  const src = join(sdk, 'python');
  // pyproject.toml names README.md at the project root; the generator writes it inside the package.
  cpSync(join(src, 'pulumi_microseg', 'README.md'), join(src, 'README.md'));
  sh(pythonBuilder(), ['-m', 'build', '--no-isolation', '--sdist', '--wheel', '--outdir', out, src], src, { ...process.env, PYTHONDONTWRITEBYTECODE: '1' });
  return readdirSync(out).filter((f) => f.startsWith(`pulumi_microseg-${version}`)).map((f) => join(out, f));
}

function packageGo(sdk: string, staging: string, out: string): string {
  const name = `microseg-sdk-go-v${version}`;
  const dir = join(staging, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(sdk, 'go'), dir, { recursive: true });
  const dest = join(out, `${name}.tar.gz`);
  tarGz(staging, [name], dest);
  return dest;
}

function sha256sums(out: string): void {
  const lines = readdirSync(out)
    .filter((f) => f !== 'SHA256SUMS' && statSync(join(out, f)).isFile() && !f.includes('.tmp-'))
    .sort()
    .map((f) => `${createHash('sha256').update(readFileSync(join(out, f))).digest('hex')}  ${f}`);
  writeFileSync(join(out, 'SHA256SUMS'), `${lines.join('\n')}\n`);
}

export interface PackageOptions {
  out?: string;
  pluginDownloadURL?: string;
  pluginOnly?: boolean;
  platforms?: readonly Platform[];
}

export async function packageRelease(opts: PackageOptions = {}): Promise<string[]> {
  if (builtVersion !== version) throw new Error(`provider/src/version.ts says ${builtVersion}, package.json ${version}: run \`npm run gen\` and rebuild`);
  const out = opts.out ?? join(root, '.release');
  mkdirSync(out, { recursive: true });
  // Staging lives in this checkout (dist/, git-ignored) so the SDK's tsc finds the repository's node_modules.
  const staging = join(root, 'dist', `package-staging-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  const started = Date.now();
  try {
    const written = await packagePlugin(out, staging, opts.platforms ?? PLATFORMS, opts.pluginDownloadURL);
    if (!opts.pluginOnly) {
      const sdk = sdkSources(staging, opts.pluginDownloadURL);
      cpSync(join(staging, 'schema.json'), join(out, 'schema.json'));
      written.push(join(out, 'schema.json'));
      written.push(packageNodejs(sdk, out));
      written.push(...packagePython(sdk, out));
      written.push(packageGo(sdk, staging, out));
      sha256sums(out);
    }
    log(`${written.length} artifacts in ${out} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return written;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function parseArgs(argv: string[]): PackageOptions {
  const opts: PackageOptions = { pluginDownloadURL: process.env.MICROSEG_PLUGIN_DOWNLOAD_URL || undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--out') opts.out = value();
    else if (a === '--plugin-download-url') opts.pluginDownloadURL = value();
    else if (a === '--plugin-only') opts.pluginOnly = true;
    else if (a === '--host') opts.platforms = [hostPlatform()];
    else throw new Error(`unknown option ${a} (see scripts/package.ts)`);
  }
  return opts;
}

if (require.main === module) {
  packageRelease(parseArgs(process.argv.slice(2)))
    .then((files) => process.stdout.write(`${files.map((f) => `${f}\t${statSync(f).size}`).join('\n')}\n`))
    .catch((err: unknown) => {
      process.stderr.write(`package failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
