/**
 * The flagship example through the real CLI: both stacks come up, a second up changes nothing, replicas
 * drive the load balancer's members, and a change that opens frontend → database prints its policy
 * impact and fails the preview on the broken ConnectivityAssertion without touching the store. Runs
 * against the embedded store and, in the jest project e2e-server, against `microseg serve` on PostgreSQL.
 */
import * as pulumi from '@pulumi/pulumi';
import { Stack } from '@pulumi/pulumi/automation';
import { exampleStack } from '../../scripts/demo';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { backendTestEnv, BackendTestEnv, configureBackend, eventLog, MicrosegResource, ROOT } from './harness';

jest.setTimeout(400_000);

// The compiled example (the SDK's lazy exports do not survive jest's module transform).
const { default: program } = require(join(ROOT, 'dist', 'examples', 'vcci-app', 'index.js')) as { default: () => Promise<Record<string, unknown>> };

let env: BackendTestEnv;
let workDir: string;
beforeAll(async () => {
  env = await backendTestEnv();
  // A copy of the project, so stack config changes never touch the repository; the stack files carry the
  // encryption salt of the local demo passphrase.
  env.envVars.PULUMI_CONFIG_PASSPHRASE = 'microseg-local';
  workDir = join(env.dir, 'vcci-app');
  cpSync(join(ROOT, 'examples', 'vcci-app'), workDir, { recursive: true });
}, 180_000);
afterAll(() => env?.cleanup());

/** Every object of both stacks' environments with its revision: any write shows. */
async function storeSnapshot(): Promise<string[]> {
  return [...(await env.backend.objects('dev', true)).map((o) => `dev/${o}`), ...(await env.backend.objects('prod', true)).map((o) => `prod/${o}`)];
}

const stack = async (name: string, p?: pulumi.automation.PulumiFn): Promise<Stack> => {
  const s = await exampleStack('vcci-app', name, { envVars: env.envVars, program: p, workDir });
  await configureBackend(s, env);
  return s;
};

describe('examples/vcci-app', () => {
  test('the dev stack comes up, with traceflow outputs naming the deciding rules', async () => {
    const dev = await stack('dev');
    const up = await dev.up();
    expect(up.summary.result).toBe('succeeded');
    const traces = up.outputs.traceflows.value as Record<string, { verdict: string; decidedBy: string }>;
    expect(traces['frontend -> database tcp/5432']).toMatchObject({ verdict: 'drop', decidedBy: 'shop/frontend-deny-rest' });
    expect(traces['backend -> database tcp/5432']).toMatchObject({ verdict: 'allow', decidedBy: 'prod-boundaries/db-from-backend-egress' });
    expect(traces['apigateway -> rating tcp/8080']).toMatchObject({ verdict: 'allow', decidedBy: 'shop/gateway-to-rating' });
  });

  test('a second up of the dev stack changes nothing', async () => {
    const dev = await stack('dev');
    const up = await dev.up();
    expect(Object.keys(up.summary.resourceChanges ?? {})).toEqual(['same']);
  });

  test('the prod stack (zero trust, 3 backend replicas) coexists with dev and balances over 3 members', async () => {
    const prod = await stack('prod');
    const up = await prod.up();
    expect(up.outputs.loadBalancerMembers.value).toBe(3);
    expect(up.outputs.backendMembers.value).toBe(3);
    const dev = await stack('dev');
    expect((await dev.outputs()).loadBalancerMembers.value).toBe(1);
  });

  test('changing replicas changes the load balancer members', async () => {
    const prod = await stack('prod');
    await prod.setConfig('vcci-app:backendReplicas', { value: '4' });
    const up = await prod.up();
    expect(up.outputs.loadBalancerMembers.value).toBe(4);
    await prod.setConfig('vcci-app:backendReplicas', { value: '3' });
    await prod.up();
  });

  test('a change that opens frontend -> database shows its impact and fails preview on the assertion; the store is unchanged', async () => {
    const opening = async () => {
      const outputs = await program();
      new MicrosegResource('FirewallPolicy', 'hotfix', {
        name: 'hotfix',
        category: 'emergency',
        priority: 1,
        // Frontend pods reach the VM SNATed to their node's IP (overlay), so opening the frontend group alone
        // would not do it: this "quick fix" also opens the node subnet.
        rules: [{ name: 'frontend-to-db', action: 'allow', sources: [{ group: 'frontend' }, { cidr: '192.168.28.0/24' }], destinations: [{ group: 'database' }], services: [{ protocol: 'tcp', ports: [5432] }] }],
      });
      return outputs;
    };
    const before = await storeSnapshot();
    expect(before.length).toBeGreaterThan(40);
    const prod = await stack('prod', opening);
    const log = eventLog();
    await expect(prod.preview({ onEvent: log.onEvent })).rejects.toThrow(
      /this change of FirewallPolicy "hotfix" breaks connectivity assertion "frontend-cannot-reach-database": .*frontend -> database tcp\/5432 expected deny, planned allow \(decided by hotfix\/frontend-to-db\)/,
    );
    // At least one flow newly allowed (not "0 flow(s)"), nothing newly blocked, and the sampled flows into the
    // database are allowed by the hotfix rule.
    expect(log.diagnostics().join('\n')).toMatch(
      /policy impact of FirewallPolicy "hotfix": [1-9]\d* flow\(s\) newly allowed, 0 newly blocked\. newly allowed: [^\n]*-> vm:database tcp\/5432 \(allow by hotfix\/frontend-to-db\)/,
    );
    expect(await storeSnapshot()).toEqual(before);

    const fixed = await stack('prod');
    const preview = await fixed.preview();
    expect(preview.changeSummary).toEqual({ same: expect.any(Number) });
  });
});
