/**
 * Captures the team-mode walkthrough of docs/team-mode.md from a real run: a throw-away PostgreSQL, tokens,
 * `microseg serve`, the flagship dev stack deployed through it, the audit log, a refused write, and a
 * graceful stop. Called by scripts/capture-docs.sh with the directory the outputs go to.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import { exampleStack } from './demo';
import { freePort, startPostgres } from '../test/support/postgres';

const ROOT = join(__dirname, '..', '..');
const microseg = join(ROOT, 'provider', 'bin', 'microseg');

async function main(out: string): Promise<void> {
  const pg = await startPostgres();
  const work = mkdtempSync(join(tmpdir(), 'microseg-team-doc-'));
  const url = await pg.createDatabase('microseg');
  const shownUrl = url.replace(/127\.0\.0\.1:\d+\/[\w]+/, 'db.example:5432/microseg');
  const secrets: string[] = [];
  const redact = (s: string) => secrets.reduce((acc, t) => acc.split(t).join(`${t.slice(0, 18)}…`), s).split(url).join(shownUrl);
  const save = (name: string, text: string) => writeFileSync(join(out, name), redact(text).replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:8443'));
  const cli = (args: string[], env: Record<string, string> = {}) => {
    try {
      return execFileSync(microseg, args, { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      return `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
  };
  const withStderr = (args: string[]) => {
    const r = require('node:child_process').spawnSync(microseg, args, { encoding: 'utf8' }) as { stdout: string; stderr: string };
    return `${r.stderr}${r.stdout}`;
  };
  let server: ReturnType<typeof spawn> | undefined;
  try {
    const admin = withStderr(['token', 'create', '--store', url, '--role', 'security-admin', '--description', 'CI deploys']);
    const adminToken = admin.trim().split('\n').pop() as string;
    const owner = withStderr(['token', 'create', '--store', url, '--role', 'app-owner', '--namespaces', 'vcci/shop', '--description', 'shop team']);
    const ownerToken = owner.trim().split('\n').pop() as string;
    const auditor = withStderr(['token', 'create', '--store', url, '--role', 'auditor']);
    const auditorToken = auditor.trim().split('\n').pop() as string;
    secrets.push(adminToken, ownerToken, auditorToken);
    save('team-token-create', `$ microseg token create --store ${url} --role security-admin --description "CI deploys"\n${admin}$ microseg token create --store ${url} --role app-owner --namespaces vcci/shop\n${owner}`);

    const port = await freePort();
    let serverLog = '';
    const key = require('node:crypto').randomBytes(32).toString('base64') as string;
    server = spawn(microseg, ['serve', '--listen', `127.0.0.1:${port}`, '--store', url], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MICROSEG_SECRET_KEY: key } });
    server.stderr?.on('data', (d) => (serverLog += String(d)));
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 200; i++) {
      if ((await axios.get(`${base}/readyz`, { validateStatus: () => true }).catch(() => ({ status: 0 }))).status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const ready = await axios.get(`${base}/readyz`);
    save('team-serve', `$ microseg serve --listen 127.0.0.1:8443 --store ${url}\n${serverLog}$ curl -s http://127.0.0.1:8443/readyz\n${JSON.stringify(ready.data)}\n`);

    // The flagship dev stack, pointed at the server.
    const dir = join(work, 'vcci-app');
    cpSync(join(ROOT, 'examples', 'vcci-app'), dir, { recursive: true });
    const projectFile = join(dir, 'Pulumi.yaml');
    writeFileSync(projectFile, readFileSync(projectFile, 'utf8').replace('path: ../../provider/bin', `path: ${join(ROOT, 'provider', 'bin')}`));
    const backendDir = join(work, 'backend');
    require('node:fs').mkdirSync(backendDir, { recursive: true });
    const envVars = { PULUMI_BACKEND_URL: `file://${backendDir}`, PULUMI_HOME: join(work, 'pulumi-home'), PULUMI_CONFIG_PASSPHRASE: 'microseg-local', MICROSEG_DATA_DIR: join(work, 'unused') };
    const stack = await exampleStack('vcci-app', 'dev', { envVars, workDir: dir });
    await stack.setConfig('microseg:endpoint', { value: base });
    await stack.setConfig('microseg:token', { value: adminToken, secret: true });
    let upOut = '';
    await stack.up({ onOutput: (s) => (upOut += s) });
    const summary = upOut.split('\n');
    const from = summary.findIndex((l) => l.startsWith('Resources:'));
    save('team-up', `$ pulumi config set microseg:endpoint http://127.0.0.1:8443\n$ pulumi config set --secret microseg:token mseg_…\n$ pulumi up --yes\n…\n${summary.slice(from, from + 3).join('\n')}\n`);

    const audit = cli(['audit', '--endpoint', base, '-e', 'dev', '--limit', '5'], { MICROSEG_TOKEN: auditorToken });
    save('team-audit', `$ MICROSEG_TOKEN=<auditor token> microseg audit --endpoint http://127.0.0.1:8443 -e dev --limit 5\n${audit}`);

    const refused = await axios.put(
      `${base}/v1/environments/dev/objects/FirewallPolicy/shop-hotfix`,
      { spec: { name: 'shop-hotfix', category: 'infrastructure', appliedTo: ['frontend'], rules: [{ name: 'all', action: 'allow' }] } },
      { headers: { authorization: `Bearer ${ownerToken}` }, validateStatus: () => true },
    );
    save(
      'team-refused',
      `$ curl -s -X PUT -H "Authorization: Bearer <app-owner token>" -H 'content-type: application/json' \\\n    http://127.0.0.1:8443/v1/environments/dev/objects/FirewallPolicy/shop-hotfix -d '{"spec": {"name": "shop-hotfix", "category": "infrastructure", ...}}'\nHTTP ${refused.status}\n${JSON.stringify(refused.data, null, 2)}\n`,
    );

    const before = serverLog.length;
    const stopped = new Promise((r) => server?.on('exit', r));
    server.kill('SIGTERM');
    await stopped;
    save('team-stop', `$ kill -TERM <microseg serve>\n${serverLog.slice(before)}`);
    server = undefined;
  } finally {
    server?.kill('SIGKILL');
    pg.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main(process.argv[2]).catch((err: unknown) => {
    process.stderr.write(`team capture failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
