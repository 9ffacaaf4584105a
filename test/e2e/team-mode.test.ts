/**
 * Team mode through the real Pulumi CLI: two "CI runners" (separate HOME, PULUMI_HOME, checkout and
 * microseg data directory; only the Pulumi file state backend is shared) deploy the flagship stack against
 * one `microseg serve` on PostgreSQL. The second runner's `pulumi up` changes nothing and its refresh
 * finds no drift; preview, policy impact and assertions behave as with the embedded backend.
 */
import * as pulumi from '@pulumi/pulumi';
import { LocalWorkspace, Stack } from '@pulumi/pulumi/automation';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseToken } from '../../provider/src/server/tokens';
import { startTeam, type Team } from '../support/team';
import { eventLog, MicrosegResource, ROOT, testEnv, type TestEnv } from './harness';

jest.setTimeout(600_000);

const { default: program } = require(join(ROOT, 'dist', 'examples', 'vcci-app', 'index.js')) as { default: () => Promise<Record<string, unknown>> };

interface Runner {
  env: TestEnv;
  workDir: string;
  stack(name: string, p?: pulumi.automation.PulumiFn): Promise<Stack>;
}

let team: Team;
let shared: TestEnv;
const runners: Runner[] = [];

function runner(backendUrl: string): Runner {
  const env = testEnv();
  env.envVars.PULUMI_BACKEND_URL = backendUrl;
  env.envVars.HOME = join(env.dir, 'home');
  env.envVars.PULUMI_CONFIG_PASSPHRASE = 'microseg-local';
  mkdirSync(env.envVars.HOME, { recursive: true });
  // Its own checkout of the project.
  const workDir = join(env.dir, 'vcci-app');
  cpSync(join(ROOT, 'examples', 'vcci-app'), workDir, { recursive: true });
  const projectFile = join(workDir, 'Pulumi.yaml');
  writeFileSync(projectFile, readFileSync(projectFile, 'utf8').replace('path: ../../provider/bin', `path: ${join(ROOT, 'provider', 'bin')}`));
  return {
    env,
    workDir,
    stack: (name, p) => LocalWorkspace.createOrSelectStack({ stackName: name, projectName: 'vcci-app', program: p ?? program }, { workDir, envVars: env.envVars }),
  };
}

beforeAll(async () => {
  team = await startTeam();
  shared = testEnv();
  const backendUrl = shared.envVars.PULUMI_BACKEND_URL;
  runners.push(runner(backendUrl), runner(backendUrl));
  // The first runner points the stack at the server; the config file is "committed" to the second checkout.
  const dev = await runners[0].stack('dev');
  await dev.setConfig('microseg:endpoint', { value: team.server.url });
  await dev.setConfig('microseg:token', { value: team.tokens['security-admin'], secret: true });
  cpSync(join(runners[0].workDir, 'Pulumi.dev.yaml'), join(runners[1].workDir, 'Pulumi.dev.yaml'));
}, 180_000);
afterAll(async () => {
  for (const r of runners) r.env.cleanup();
  shared?.cleanup();
  await team?.close();
});

test('runner A deploys the flagship dev stack into the server; nothing lands on its disk', async () => {
  const up = await (await runners[0].stack('dev')).up();
  expect(up.summary.result).toBe('succeeded');
  const traces = up.outputs.traceflows.value as Record<string, { verdict: string; decidedBy: string }>;
  expect(traces['frontend -> database tcp/5432']).toMatchObject({ verdict: 'drop', decidedBy: 'shop/frontend-deny-rest' });
  const listed = await team.call('GET', '/v1/environments/dev/objects');
  expect(listed.data.items.length).toBeGreaterThan(30);
  expect(existsSync(runners[0].env.dataDir)).toBe(false);
  // The token is a secret in the stack config and in the state, never in plain text.
  const secret = parseToken(team.tokens['security-admin'])!.secret;
  expect(readFileSync(join(runners[0].workDir, 'Pulumi.dev.yaml'), 'utf8')).not.toContain(secret);
  const stateDir = shared.envVars.PULUMI_BACKEND_URL.replace('file://', '');
  const files = (readdirSync(stateDir, { recursive: true }) as string[]).map((f) => join(stateDir, f)).filter((f) => statSync(f).isFile());
  expect(files.some((f) => f.endsWith('dev.json'))).toBe(true);
  expect(files.filter((f) => readFileSync(f, 'utf8').includes(secret))).toEqual([]);
});

test('runner B (own home, own checkout) sees the same objects: up changes nothing, refresh finds no drift', async () => {
  const dev = await runners[1].stack('dev');
  const up = await dev.up();
  expect(Object.keys(up.summary.resourceChanges ?? {})).toEqual(['same']);
  const refresh = await dev.refresh();
  expect(Object.keys(refresh.summary.resourceChanges ?? {})).toEqual(['same']);
  const preview = await dev.preview();
  expect(Object.keys(preview.changeSummary)).toEqual(['same']);
  expect(existsSync(runners[1].env.dataDir)).toBe(false);
});

test('a change that breaks an assertion shows its impact and fails the preview; the server is unchanged', async () => {
  const before = (await team.call('GET', '/v1/environments/dev/changes?since=0&limit=10000')).data.seq;
  const opening = async () => {
    const outputs = await program();
    new MicrosegResource('FirewallPolicy', 'hotfix', {
      name: 'hotfix',
      category: 'emergency',
      priority: 1,
      rules: [{ name: 'frontend-to-db', action: 'allow', sources: [{ group: 'frontend' }, { cidr: '192.168.28.0/24' }], destinations: [{ group: 'database' }], services: [{ protocol: 'tcp', ports: [5432] }] }],
    });
    return outputs;
  };
  const log = eventLog();
  await expect((await runners[1].stack('dev', opening)).preview({ onEvent: log.onEvent })).rejects.toThrow(/breaks connectivity assertion .*"frontend-cannot-reach-database": vcci\/shop\/frontend -> database tcp\/5432 expected deny, planned allow/);
  expect(log.diagnostics().join('\n')).toMatch(/policy impact of FirewallPolicy "hotfix": \d+ flow\(s\) newly allowed/);
  expect((await team.call('GET', '/v1/environments/dev/changes?since=0&limit=10000')).data.seq).toBe(before);
});

test('a read-only token cannot deploy: the error names the role and the missing permission', async () => {
  const dev = await runners[1].stack('dev');
  await dev.setConfig('microseg:token', { value: team.tokens.auditor, secret: true });
  try {
    const adding = async () => {
      const outputs = await program();
      new MicrosegResource('VirtualMachine', 'extra', { name: 'extra', interfaces: [{ ip: '10.77.0.1' }] });
      return outputs;
    };
    await expect((await runners[1].stack('dev', adding)).up()).rejects.toThrow(/role auditor lacks permission objects\.create:VirtualMachine/);
  } finally {
    await dev.setConfig('microseg:token', { value: team.tokens['security-admin'], secret: true });
  }
  const audit = await team.call('GET', '/v1/environments/dev/audit', { token: team.tokens.auditor });
  expect(audit.data.records.length).toBeGreaterThan(30);
  expect(new Set(audit.data.records.map((r: { role: string }) => r.role))).toEqual(new Set(['security-admin']));
});

test('an object created outside Pulumi is imported through the server and becomes the stack\'s', async () => {
  const legacy = { name: 'legacy-vm', interfaces: [{ ip: '10.77.0.9' }], labels: { app: 'legacy' } };
  expect((await team.call('PUT', '/v1/environments/dev/objects/VirtualMachine/legacy-vm', { body: { spec: legacy } })).status).toBe(201);
  const importing = async () => {
    const outputs = await program();
    new MicrosegResource('VirtualMachine', 'legacy', legacy, { import: 'legacy-vm' });
    return outputs;
  };
  const up = await (await runners[1].stack('dev', importing)).up();
  expect(up.summary.resourceChanges).toMatchObject({ import: 1 });
  const stored = await team.call('GET', '/v1/environments/dev/objects/VirtualMachine/legacy-vm');
  expect(stored.data.owner).toMatch(/^urn:pulumi:dev::vcci-app::microseg:index:VirtualMachine::legacy$/);
});
