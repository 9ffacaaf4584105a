/**
 * A KubernetesNetworkPolicy through the real Pulumi CLI, with what it decides: `pulumi up` creates a
 * cluster, namespaces, workloads and the policy; traceflow and getKubernetesManifests (invokes in the same
 * program) reflect it; one field changed previews exactly that path and moves the verdict; refresh shows no
 * drift; a fresh stack imports the policy by id; destroy removes it. resources.test.ts covers the other
 * kinds' lifecycle; this file is about the NetworkPolicy and the verdicts and export it drives. Runs against
 * the embedded store and, in the jest project e2e-server, against `microseg serve` on PostgreSQL.
 */
import * as pulumi from '@pulumi/pulumi';
import { EngineEvent, Stack } from '@pulumi/pulumi/automation';
import { backendTestEnv, BackendTestEnv, MicrosegResource, eventLog, inlineStack } from './harness';

jest.setTimeout(600_000);

type Variant = 'v1' | 'v2';
const ENVIRONMENT = 'netpol';
// Default allow, as a brownfield cluster: what is dropped is dropped by the NetworkPolicy.
const CONFIG = { 'microseg:environment': ENVIRONMENT, 'microseg:defaultAction': 'allow' };
const POLICY_ID = 'k1/shop/cart-ingress';

/**
 * The program. v1 admits frontend → cart on tcp/9000 only; v2 changes the one port of the rule to 9100.
 * `adopt` declares the policy alone with the `import` option (its cluster and namespace exist already).
 */
function program(variant: Variant): () => Promise<Record<string, unknown>> {
  return async () => {
    const cluster = new MicrosegResource('KubernetesCluster', 'k1', { name: 'k1', podCidr: '10.50.0.0/16', serviceCidr: '10.96.0.0/16', nodes: [{ name: 'n1', ip: '192.168.50.11' }], networkMode: 'flat' });
    const shop = new MicrosegResource('Namespace', 'shop', { name: 'shop', cluster: cluster.id, labels: { team: 'shop' } });
    const nsName = shop.id.apply((id) => id.split('/')[1]);
    const frontend = new MicrosegResource('Workload', 'frontend', { name: 'frontend', cluster: cluster.id, namespace: nsName, labels: { app: 'frontend' }, replicas: 1 });
    const cart = new MicrosegResource('Workload', 'cart', { name: 'cart', cluster: cluster.id, namespace: nsName, labels: { app: 'cart' }, replicas: 1, ports: [{ name: 'api', port: 9000 }] });
    const policy = new MicrosegResource(
      'KubernetesNetworkPolicy',
      'cart-ingress',
      {
        name: 'cart-ingress',
        cluster: cluster.id,
        namespace: nsName,
        podSelector: { matchLabels: { app: 'cart' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'frontend' } } }], ports: [{ protocol: 'TCP', port: variant === 'v2' ? 9100 : 9000 }] }],
        podCount: undefined,
      },
      { dependsOn: [frontend, cart] },
    );
    const after = { dependsOn: [policy] };
    const trace = (port: number) =>
      pulumi.runtime.invokeOutput<{ verdict: string; decidingPolicy: string; decidingRule: string }>('microseg:index:traceflow', { source: 'workload:k1/shop/frontend', destination: 'workload:k1/shop/cart', protocol: 'tcp', port }, after).apply((t) => `${t.verdict} by ${t.decidingPolicy}/${t.decidingRule}`);
    const exported = pulumi.runtime.invokeOutput<{ manifests: unknown[] }>('microseg:index:getKubernetesManifests', { cluster: 'k1', flavor: 'kubernetes' }, after);
    return {
      podCount: (policy as unknown as { podCount: pulumi.Output<number> }).podCount,
      tcp9000: trace(9000),
      tcp9100: trace(9100),
      manifests: exported.apply((e) => e.manifests),
    };
  };
}

/** The policy alone, adopting the stored object by id (the `import` resource option). */
function adoptProgram(): () => Promise<void> {
  return async () => {
    new MicrosegResource(
      'KubernetesNetworkPolicy',
      'cart-ingress',
      {
        name: 'cart-ingress',
        cluster: 'k1',
        namespace: 'shop',
        podSelector: { matchLabels: { app: 'cart' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'frontend' } } }], ports: [{ protocol: 'TCP', port: 9100 }] }],
      },
      { import: POLICY_ID },
    );
  };
}

const shortName = (urn: string) => urn.split('::').pop()!;
const policyEvents = (events: EngineEvent[]) => events.flatMap((e) => (e.resourcePreEvent && e.resourcePreEvent.metadata.type === 'microseg:index:KubernetesNetworkPolicy' ? [e.resourcePreEvent.metadata] : []));

let env: BackendTestEnv;
let main: Stack;
beforeAll(async () => {
  env = await backendTestEnv();
}, 180_000);
afterAll(() => env?.cleanup());

test('up creates the policy; traceflow and the export reflect it', async () => {
  main = await inlineStack(env, 'main', program('v1'), CONFIG);
  const up = await main.up();
  expect(up.summary.result).toBe('succeeded');
  expect(up.summary.resourceChanges).toEqual({ create: 6 }); // cluster, namespace, 2 workloads, policy, stack
  expect(up.outputs.podCount.value).toBe(1);
  expect(up.outputs.tcp9000.value).toBe(`allow by ${POLICY_ID}/ingress[0]`);
  expect(up.outputs.tcp9100.value).toBe(`drop by ${POLICY_ID}/ingress-isolation`);
  // Nothing else to export: no microseg rule, and the default rule allows as Kubernetes does.
  expect(up.outputs.manifests.value).toEqual([
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'cart-ingress', namespace: 'shop' },
      spec: {
        podSelector: { matchLabels: { app: 'cart' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'frontend' } } }], ports: [{ protocol: 'TCP', port: 9000 }] }],
      },
    },
  ]);
  expect(await env.backend.objects(ENVIRONMENT)).toContain(`KubernetesNetworkPolicy/${POLICY_ID}`);
});

test('changing the rule port previews exactly that path as an update', async () => {
  main = await inlineStack(env, 'main', program('v2'), CONFIG);
  const log = eventLog();
  await main.preview({ onEvent: log.onEvent });
  const steps = policyEvents(log.events);
  expect(steps.map((s) => [shortName(s.urn), s.op])).toEqual([['cart-ingress', 'update']]);
  expect(Object.fromEntries(Object.entries(steps[0]!.detailedDiff ?? {}).map(([p, d]) => [p, d.diffKind]))).toEqual({ 'ingress[0].ports[0].port': 'update' });
});

test('up applies the change: the verdicts move with the port', async () => {
  const up = await main.up();
  expect(up.summary.result).toBe('succeeded');
  expect(up.summary.resourceChanges).toEqual({ same: 5, update: 1 });
  expect(up.outputs.tcp9000.value).toBe(`drop by ${POLICY_ID}/ingress-isolation`);
  expect(up.outputs.tcp9100.value).toBe(`allow by ${POLICY_ID}/ingress[0]`);
});

test('refresh shows no drift and a preview afterwards is empty', async () => {
  const refresh = await main.refresh();
  expect(refresh.summary.result).toBe('succeeded');
  expect(refresh.summary.resourceChanges).toEqual({ same: 6 });
  const preview = await main.preview();
  expect(preview.changeSummary).toEqual({ same: 6 });
});

test('a fresh stack imports the policy by id and shows no changes', async () => {
  const adopt = await inlineStack(env, 'adopt', adoptProgram(), CONFIG);
  const log = eventLog();
  const up = await adopt.up({ onEvent: log.onEvent });
  expect(up.summary.result).toBe('succeeded');
  expect(policyEvents(log.events).map((s) => s.op)).toEqual(['import']);
  expect((await adopt.preview()).changeSummary).toEqual({ same: 2 });
  // The adopting stack lets go of the object without deleting it.
  await adopt.workspace.removeStack('adopt', { force: true });
});

test('destroy deletes the policy with everything else', async () => {
  const destroy = await main.destroy();
  expect(destroy.summary.result).toBe('succeeded');
  expect(destroy.summary.resourceChanges).toEqual({ delete: 6 });
  expect(await env.backend.objects(ENVIRONMENT)).toEqual([]);
});
