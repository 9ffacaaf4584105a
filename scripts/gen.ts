/**
 * Regenerates everything derived from the model's single definitions: schema.json, the per-resource
 * docs, and the SDKs (through tools/pulumi's microseg-gen-sdk, i.e. pkg/v3's code generators).
 * `--check` regenerates into a temporary directory and fails when a checked-in file is stale.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { microsegSchemaJson } from '../provider/src/schema';
import { renderReferenceDocs } from '../provider/src/schema/docs';

const root = join(__dirname, '..', '..');
const check = process.argv.includes('--check');
const skipSdk = process.argv.includes('--no-sdk');

/** The one version: package.json's. provider/src/version.ts carries it into the plugin and the CLI. */
const packageVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const versionFile = 'provider/src/version.ts';
const versionSource = (current: string) => current.replace(/^export const version = '[^']*';$/m, `export const version = '${packageVersion}';`);

function generate(out: string): void {
  mkdirSync(dirname(join(out, versionFile)), { recursive: true });
  writeFileSync(join(out, versionFile), versionSource(readFileSync(join(root, versionFile), 'utf8')));
  writeFileSync(join(out, 'schema.json'), microsegSchemaJson({ version: packageVersion }));
  for (const [file, content] of Object.entries(renderReferenceDocs())) {
    mkdirSync(dirname(join(out, file)), { recursive: true });
    writeFileSync(join(out, file), content);
  }
  if (!skipSdk) {
    const gen = join(root, '.tools', 'bin', 'microseg-gen-sdk');
    execFileSync(gen, [join(out, 'schema.json'), join(out, 'sdk'), 'nodejs', 'python', 'go'], { stdio: 'inherit' });
  }
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

const generatedDirs = ['sdk/nodejs', 'sdk/python', 'sdk/go', 'docs/reference'];

if (check) {
  const tmp = mkdtempSync(join(tmpdir(), 'microseg-gen-'));
  generate(tmp);
  const stale: string[] = [];
  const targets = ['schema.json', versionFile, ...generatedDirs.filter((d) => !skipSdk || !d.startsWith('sdk'))];
  for (const t of targets) {
    const fresh = listFiles(join(tmp, t)).concat(statSync(join(tmp, t), { throwIfNoEntry: false })?.isFile() ? [join(tmp, t)] : []);
    const committed = listFiles(join(root, t)).concat(statSync(join(root, t), { throwIfNoEntry: false })?.isFile() ? [join(root, t)] : []);
    const rel = (base: string) => (p: string) => relative(base, p);
    const freshSet = new Set(fresh.map(rel(tmp)));
    const committedSet = new Set(committed.map(rel(root)));
    for (const f of freshSet) {
      if (!committedSet.has(f) || readFileSync(join(root, f), 'utf8') !== readFileSync(join(tmp, f), 'utf8')) stale.push(f);
    }
    for (const f of committedSet) if (!freshSet.has(f)) stale.push(`${f} (no longer generated)`);
  }
  rmSync(tmp, { recursive: true, force: true });
  if (stale.length > 0) {
    process.stderr.write(`Generated files are stale; run \`npm run gen\` and commit:\n${stale.map((s) => `  ${s}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write('generated files are up to date\n');
} else {
  const tmp = mkdtempSync(join(tmpdir(), 'microseg-gen-'));
  generate(tmp);
  cpSync(join(tmp, 'schema.json'), join(root, 'schema.json'));
  cpSync(join(tmp, versionFile), join(root, versionFile));
  for (const d of generatedDirs.filter((x) => !skipSdk || !x.startsWith('sdk'))) {
    rmSync(join(root, d), { recursive: true, force: true });
    if (existsSync(join(tmp, d))) cpSync(join(tmp, d), join(root, d), { recursive: true });
  }
  rmSync(tmp, { recursive: true, force: true });
  process.stdout.write(`regenerated schema.json, ${versionFile} (${packageVersion}), docs/reference and sdk/\n`);
}
