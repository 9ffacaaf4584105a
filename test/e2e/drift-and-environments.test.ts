/**
 * The provider against the real Pulumi CLI where the store is shared with the world outside one stack:
 * drift made outside Pulumi shows in `refresh`; dev and prod stacks of one program coexist in one
 * store; invalid inputs fail `up` with CheckFailures naming the property and leave the store as it
 * was; deleting a group still used outside the program is refused with the list of users. Runs against the
 * embedded store and, in the jest project e2e-server, against `microseg serve` on PostgreSQL.
 */
import * as pulumi from '@pulumi/pulumi';
import { EngineEvent } from '@pulumi/pulumi/automation';
import { backendTestEnv, BackendTestEnv, MicrosegResource, eventLog, inlineStack } from './harness';

jest.setTimeout(300_000);

// Out-of-band writes (what the microseg CLI or another team does outside Pulumi) go through the backend the
// stacks use: the embedded store of the data directory, or the server's API (jest project e2e-server).
let env: BackendTestEnv;
beforeAll(async () => {
  env = await backendTestEnv();
}, 180_000);
afterAll(() => env?.cleanup());

const microsegSteps = (events: EngineEvent[]) => events.flatMap((e) => (e.resourcePreEvent && e.resourcePreEvent.metadata.type.startsWith('microseg:index:') ? [e.resourcePreEvent.metadata] : []));
const shortName = (urn: string) => urn.split('::').pop()!;

/** VMs, groups and a policy with two rules; `extra` lets a test add resources. */
function segmentation(extra: (g: { web: MicrosegResource; db: MicrosegResource }) => void = () => undefined) {
  return async () => {
    new MicrosegResource('VirtualMachine', 'web-1', { name: 'web-1', interfaces: [{ ip: '10.1.0.11' }], labels: { app: 'web' } });
    new MicrosegResource('VirtualMachine', 'db-1', { name: 'db-1', interfaces: [{ ip: '10.2.0.11' }], labels: { app: 'db' } });
    const web = new MicrosegResource('SecurityGroup', 'web', { name: 'web', vmSelectors: [{ matchLabels: { app: 'web' } }] });
    const db = new MicrosegResource('SecurityGroup', 'db', { name: 'db', vmSelectors: [{ matchLabels: { app: 'db' } }] });
    new MicrosegResource('FirewallPolicy', 'app', {
      name: 'app',
      rules: [
        { name: 'web-to-db', action: 'allow', sources: [{ group: web.id }], destinations: [{ group: db.id }], services: [{ protocol: 'tcp', ports: [5432] }] },
        { name: 'db-out', action: 'allow', sources: [{ group: db.id }], destinations: [{ cidr: '10.9.0.0/16' }] },
      ],
    });
    extra({ web, db });
    return {};
  };
}

describe('drift', () => {
  test('a policy changed outside Pulumi shows up in refresh, and up restores it', async () => {
    const stack = await inlineStack(env, 'drift', segmentation(), { 'microseg:environment': 'drift' });
    expect((await stack.up()).summary.result).toBe('succeeded');

    // Someone turns rule db-out into a drop outside Pulumi.
    const spec = structuredClone((await env.backend.get('drift', 'FirewallPolicy', 'app'))!.spec) as { rules: { action: string }[] };
    spec.rules[1].action = 'drop';
    await env.backend.update('drift', 'FirewallPolicy', 'app', spec);

    const log = eventLog();
    const refresh = await stack.refresh({ onEvent: log.onEvent });
    expect(refresh.summary.resourceChanges).toMatchObject({ update: 1 });
    // A refresh step's outcome (op update, with the detailed diff) comes with its outputs event.
    const drifted = log.events.flatMap((e) => (e.resOutputsEvent && e.resOutputsEvent.metadata.op === 'update' ? [e.resOutputsEvent.metadata] : []));
    expect(drifted.map((s) => shortName(s.urn))).toEqual(['app']);
    expect(Object.entries(drifted[0].detailedDiff ?? {}).map(([p, d]) => [p, d.diffKind])).toEqual([['rules[1].action', 'update']]);

    // The program still says allow: the next preview shows exactly the rule to put back.
    const plog = eventLog();
    const preview = await stack.preview({ onEvent: plog.onEvent });
    expect(preview.changeSummary).toMatchObject({ update: 1 });
    const update = microsegSteps(plog.events).find((s) => s.op === 'update')!;
    expect(Object.entries(update.detailedDiff ?? {}).map(([p, d]) => [p, d.diffKind])).toEqual([['rules[1].action', 'update']]);
    expect((await stack.up()).summary.resourceChanges).toMatchObject({ update: 1 });
    expect(((await env.backend.get('drift', 'FirewallPolicy', 'app'))!.spec as { rules: { action: string }[] }).rules[1].action).toBe('allow');
  });

  test('an object deleted outside Pulumi disappears from the stack on refresh', async () => {
    const stack = await inlineStack(env, 'drift', segmentation(), { 'microseg:environment': 'drift' });
    await env.backend.create('drift', 'VirtualMachine', 'stray', { name: 'stray', interfaces: [{ ip: '10.3.0.1' }] });
    // web-1 is used by nothing by name (groups select by label), so it can go.
    await env.backend.delete('drift', 'VirtualMachine', 'web-1');
    const refresh = await stack.refresh();
    expect(refresh.summary.resourceChanges).toMatchObject({ delete: 1 });
    const preview = await stack.preview();
    expect(preview.changeSummary).toMatchObject({ create: 1 });
    await stack.up();
    await stack.destroy();
    // Objects Pulumi never managed are left alone.
    expect(await env.backend.objects('drift', true)).toEqual(['VirtualMachine/stray@1']);
  });
});

describe('stack per environment', () => {
  test('dev and prod stacks of one program share one store without seeing each other', async () => {
    const program = async () => {
      const a = new MicrosegResource('VirtualMachine', 'a', { name: 'a', interfaces: [{ ip: '10.5.0.1' }], labels: { app: 'a' } });
      const b = new MicrosegResource('VirtualMachine', 'b', { name: 'b', interfaces: [{ ip: '10.5.0.2' }], labels: { app: 'b' } });
      new MicrosegResource('SecurityGroup', 'all', { name: 'all', vms: [a.id, b.id] });
      // No policy allows a → b: the verdict is the environment's default action.
      const probe = new MicrosegResource('ConnectivityAssertion', 'probe', {
        name: 'probe',
        from: pulumi.interpolate`vm:${a.id}`,
        to: pulumi.interpolate`vm:${b.id}`,
        port: 443,
        expect: new pulumi.Config('microseg').require('defaultAction') === 'allow' ? 'allow' : 'deny',
        verdict: undefined,
      });
      return { verdict: (probe as unknown as { verdict: pulumi.Output<string> }).verdict };
    };
    const dev = await inlineStack(env, 'dev', program, { 'microseg:environment': 'dev', 'microseg:defaultAction': 'allow' });
    const prod = await inlineStack(env, 'prod', program, { 'microseg:environment': 'prod', 'microseg:defaultAction': 'drop' });
    const [devUp, prodUp] = [await dev.up(), await prod.up()];
    expect(devUp.outputs.verdict.value).toBe('allow');
    expect(prodUp.outputs.verdict.value).toBe('drop');
    const objects = ['ConnectivityAssertion/probe@1', 'SecurityGroup/all@1', 'VirtualMachine/a@1', 'VirtualMachine/b@1'];
    expect(await env.backend.objects('dev', true)).toEqual(objects);
    expect(await env.backend.objects('prod', true)).toEqual(objects);

    // Neither sees the other: no changes on either, and destroying dev leaves prod whole.
    expect((await dev.preview()).changeSummary).toEqual({ same: 5 });
    expect((await prod.refresh()).summary.resourceChanges).toEqual({ same: 5 });
    await dev.destroy();
    expect(await env.backend.objects('dev', true)).toEqual([]);
    expect(await env.backend.objects('prod', true)).toEqual(objects);
    expect((await prod.preview()).changeSummary).toEqual({ same: 5 });
    await prod.destroy();
  });
});

describe('stacks as environments', () => {
  const objects = ['FirewallPolicy/app', 'SecurityGroup/db', 'SecurityGroup/web', 'VirtualMachine/db-1', 'VirtualMachine/web-1'];

  test('two stacks of one project with no microseg:environment deploy side by side into one store', async () => {
    const alpha = await inlineStack(env, 'alpha', segmentation());
    const beta = await inlineStack(env, 'beta', segmentation());
    expect((await alpha.up()).summary.result).toBe('succeeded');
    expect((await beta.up()).summary.result).toBe('succeeded');
    // Each stack's objects live in the environment named after it, owned by its own resources.
    expect(await env.backend.objects('alpha')).toEqual(objects);
    expect(await env.backend.objects('beta')).toEqual(objects);
    expect((await env.backend.owners('alpha'))['VirtualMachine/web-1']).toBe('urn:pulumi:alpha::microseg-e2e::microseg:index:VirtualMachine::web-1');
    expect((await env.backend.owners('beta'))['VirtualMachine/web-1']).toBe('urn:pulumi:beta::microseg-e2e::microseg:index:VirtualMachine::web-1');
    expect((await alpha.preview()).changeSummary).toEqual({ same: 6 });
    expect((await beta.preview()).changeSummary).toEqual({ same: 6 });
  });

  test('a name collision with objects of another stack fails in preview, naming the owner and how to import, and writes nothing', async () => {
    // A third stack pointed at alpha's environment declares the same names.
    const intruder = await inlineStack(env, 'gamma', segmentation(), { 'microseg:environment': 'alpha' });
    const before = await env.backend.objects('alpha', true);
    const log = eventLog();
    await expect(intruder.preview({ onEvent: log.onEvent })).rejects.toThrow();
    const diags = log.diagnostics().join('\n');
    // The engine stops at the first refused create; which one comes first depends on scheduling.
    const refused = /(\w+) "([\w-]+)" already exists in environment "alpha" and is managed by resource "\2" \(microseg:index:\1\) of stack "alpha" in project "microseg-e2e"/.exec(diags);
    expect(refused).not.toBeNull();
    expect(diags).toContain(`pulumi import microseg:index:${refused![1]} <resource name> ${refused![2]}`);
    await expect(intruder.up()).rejects.toThrow(/already exists in environment "alpha"/);
    expect(await env.backend.objects('alpha', true)).toEqual(before);
    await intruder.workspace.removeStack('gamma', { force: true });

    const alpha = await inlineStack(env, 'alpha', segmentation());
    const beta = await inlineStack(env, 'beta', segmentation());
    await alpha.destroy();
    expect(await env.backend.objects('alpha')).toEqual([]);
    expect(await env.backend.objects('beta')).toEqual(objects);
    await beta.destroy();
  });
});

describe('bad input', () => {
  /** Invalid values and the CheckFailure path each must produce. */
  const INVALID: [kind: string, name: string, props: Record<string, unknown>, path: string][] = [
    ['VirtualMachine', 'bad-vm', { interfaces: [{ ip: '10.0.0.300' }] }, 'interfaces[0].ip'],
    ['KubernetesCluster', 'bad-cluster', { podCidr: '10.244.0.1/16', serviceCidr: '10.96.0.0/12', nodes: [{ name: 'n', ip: '10.0.0.1' }] }, 'podCidr'],
    ['Workload', 'bad-workload', { cluster: 'c', namespace: 'n', replicas: -1 }, 'replicas'],
    ['SecurityGroup', 'bad-group', { ipBlocks: [{ cidr: '10.0.0.0/8', except: ['192.168.0.0/16'] }] }, 'ipBlocks[0].except[0]'],
    ['FirewallPolicy', 'bad-policy', { rules: [{ name: 'r', action: 'permit' }] }, 'rules[0].action'],
    ['FirewallRule', 'bad-rule', { policy: 'p', action: 'allow', services: [{ protocol: 'tcp', ports: ['80-70'] }] }, 'services[0].ports[0]'],
    ['EgressIp', 'bad-egress', { cluster: 'c', ip: '192.0.2.1', pool: '192.0.2.0/28', podSelector: {} }, 'pool'],
    ['LoadBalancer', 'bad-lb', { vip: '192.0.2.9', listeners: [{ port: 70000 }], pool: { group: 'g' } }, 'listeners[0].port'],
    ['QuarantinePolicy', 'bad-quarantine', { selector: {} }, 'selector'],
    ['ConnectivityAssertion', 'bad-assertion', { from: 'a', to: 'b', protocol: 'tcp', expect: 'allow' }, 'port'],
  ];

  /** The program's resources changed to invalid values, with the path each CheckFailure must name. */
  const INVALID_UPDATES: [kind: string, name: string, props: Record<string, unknown>, path: string][] = [
    ['VirtualMachine', 'web-1', { name: 'web-1', interfaces: [{ ip: 'web-1.local' }], labels: { app: 'web' } }, 'interfaces[0].ip'],
    ['VirtualMachine', 'db-1', { name: 'db-1', interfaces: [], labels: { app: 'db' } }, 'interfaces'],
    ['SecurityGroup', 'web', { name: 'web', vmSelectors: [{ matchExpressions: [{ key: 'app', operator: 'In' }] }] }, 'vmSelectors[0].matchExpressions[0].values'],
    ['SecurityGroup', 'db', { name: 'db', vmSelectors: [{ matchLabels: { app: 'db' } }], groups: ['db'] }, 'groups'],
    ['FirewallPolicy', 'app', { name: 'app', priority: 'high', rules: [{ name: 'x', action: 'allow' }] }, 'priority'],
  ];
  const invalidProgram = async () => {
    for (const [kind, name, props] of [...INVALID_UPDATES, ...INVALID]) new MicrosegResource(kind, name, props);
  };
  // A top-level property is printed with its value; a nested path leads the reason (the engine would
  // print a nested property's value as `{<nil>}`).
  const failure = (kind: string, name: string, path: string) =>
    /^[A-Za-z]+$/.test(path) ? `microseg:index:${kind} resource '${name}': property ${path} value` : `microseg:index:${kind} resource '${name}' has a problem: ${path}: `;
  // A missing top-level property is reported like a nested one (its value would print as `{<nil>}`).
  const failureMissing = (kind: string, name: string, path: string) => `microseg:index:${kind} resource '${name}' has a problem: ${path}: `;

  test('up of many invalid resources fails, every CheckFailure it reports names its resource\'s property, and the store is untouched', async () => {
    const good = segmentation();
    const stack = await inlineStack(env, 'bad', good, { 'microseg:environment': 'bad' });
    await stack.up();
    const before = await env.backend.objects('bad', true);
    expect(before).toHaveLength(5);

    const bad = await inlineStack(env, 'bad', invalidProgram, { 'microseg:environment': 'bad' });
    const log = eventLog();
    await expect(bad.up({ onEvent: log.onEvent })).rejects.toThrow();
    const diags = log.diagnostics().join('\n');
    // The engine stops at the first CheckFailures, so which of the 15 get reported in one update varies (the
    // next test gives each its own update). Every one that is reported must name its resource's property.
    const expected = [...INVALID_UPDATES, ...INVALID].map(([kind, name, , path]) => `${kind} ${name} ${path}`);
    // `property P value V` for a top-level property; `has a problem: P: ...` for a nested or missing one.
    const reported = [...diags.matchAll(/microseg:index:(\w+) resource '([^']+)'(?:: property (\S+) value| has a problem: ([^:\s]+): )/g)].map(([, kind, name, p1, p2]) => `${kind} ${name} ${p1 ?? p2}`);
    expect(diags).not.toContain('{<nil>}');
    expect(reported.length).toBeGreaterThan(0);
    for (const r of reported) expect(expected).toContain(r);
    expect(await env.backend.objects('bad', true)).toEqual(before);
  });

  // The engine stops at the first CheckFailure (even with --continue-on-error), so each invalid
  // resource gets its own update, three stacks at a time.
  test('every invalid resource fails up with a CheckFailure naming its property; the store stays as it was', async () => {
    const before = await env.backend.objects('bad', true);
    const cases = [...INVALID_UPDATES, ...INVALID];
    const failuresSeen: string[] = [];
    const lanes = [0, 1, 2].map(async (lane) => {
      for (let i = lane; i < cases.length; i += 3) {
        const [kind, name, props, path] = cases[i];
        const stack = await inlineStack(env, `bad-${lane}`, async () => {
          new MicrosegResource(kind, name, props);
        }, { 'microseg:environment': 'bad' });
        const log = eventLog();
        await expect(stack.up({ onEvent: log.onEvent })).rejects.toThrow();
        const diags = log.diagnostics().join('\n');
        if (diags.includes('{<nil>}')) failuresSeen.push(`${kind}.${path} prints a nil value: ${diags}`);
        else if (diags.includes(failure(kind, name, path)) || diags.includes(failureMissing(kind, name, path))) failuresSeen.push(`${kind}.${path}`);
        else failuresSeen.push(`${kind}.${path} MISSING in: ${diags.split('\n').filter((l) => l.includes('problem')).join(' | ')}`);
      }
    });
    await Promise.all(lanes);
    expect(failuresSeen.sort()).toEqual(cases.map(([kind, , , path]) => `${kind}.${path}`).sort());
    expect(await env.backend.objects('bad', true)).toEqual(before);

    // With the valid program back, nothing is pending.
    const again = await inlineStack(env, 'bad', segmentation(), { 'microseg:environment': 'bad' });
    expect((await again.preview()).changeSummary).toEqual({ same: 6 });
    await again.destroy();
  });
});

describe('references outside the program', () => {
  test('deleting a SecurityGroup still used by a policy outside the program fails, listing the users', async () => {
    const stack = await inlineStack(env, 'shared', async () => {
      new MicrosegResource('SecurityGroup', 'shared', { name: 'shared', ipBlocks: [{ cidr: '10.7.0.0/16' }] });
    }, { 'microseg:environment': 'shared' });
    await stack.up();
    await env.backend.create('shared', 'FirewallPolicy', 'other-team', { name: 'other-team', appliedTo: ['shared'], rules: [{ name: 'in', action: 'allow', sources: [{ group: 'shared' }] }] });
    const log = eventLog();
    await expect(stack.destroy({ onEvent: log.onEvent })).rejects.toThrow();
    const diags = log.diagnostics().join('\n');
    expect(diags).toContain('SecurityGroup "shared" is still used by FirewallPolicy "other-team"');
    // The group is still there, and still in the stack.
    expect(await env.backend.objects('shared', true)).toEqual(['FirewallPolicy/other-team@1', 'SecurityGroup/shared@1']);
    expect((await stack.preview()).changeSummary).toEqual({ same: 2 });
    await env.backend.delete('shared', 'FirewallPolicy', 'other-team');
    expect((await stack.destroy()).summary.result).toBe('succeeded');
  });
});

describe('connectivity assertions', () => {
  test('a broken ConnectivityAssertion fails up', async () => {
    const stack = await inlineStack(env, 'broken-assertion', async () => {
      const a = new MicrosegResource('VirtualMachine', 'a', { name: 'a', interfaces: [{ ip: '10.6.0.1' }] });
      const b = new MicrosegResource('VirtualMachine', 'b', { name: 'b', interfaces: [{ ip: '10.6.0.2' }] });
      // Nothing allows a → b under the default drop.
      new MicrosegResource('ConnectivityAssertion', 'must-reach', { name: 'must-reach', from: pulumi.interpolate`vm:${a.id}`, to: pulumi.interpolate`vm:${b.id}`, port: 443, expect: 'allow' });
    }, { 'microseg:environment': 'broken-assertion' });
    try {
      await expect(stack.up()).rejects.toThrow(/must-reach/);
    } finally {
      await stack.destroy().catch(() => undefined);
    }
  });
});
