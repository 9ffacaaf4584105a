import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { CliError, memoryIo } from '../../../provider/src/cli/io';
import { runImportK8s } from '../../../provider/src/cli/k8s-commands';
import { runTest } from '../../../provider/src/cli/test-command';
import { loadTopology } from '../../../provider/src/topology';

/** `microseg import-k8s` and Kubernetes objects written directly in topology files. */

const MANIFESTS = `apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { team: shop } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: 3
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: nginx, ports: [{ name: http, containerPort: 8080 }, { containerPort: 9999 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { selector: { app: web }, ports: [{ port: 80 }] }
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: { name: debug, namespace: shop, labels: { app: debug } }
    spec: { containers: [{ name: sh, image: busybox, ports: [{ name: dns, containerPort: 53, protocol: UDP }] }] }
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: web-from-debug, namespace: shop }
    spec:
      podSelector: { matchLabels: { app: web } }
      ingress: [{ from: [{ podSelector: { matchLabels: { app: debug } } }], ports: [{ port: http }] }]
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'microseg-k8s-'));
  writeFileSync(path.join(dir, 'shop.yaml'), MANIFESTS);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(fn: (io: ReturnType<typeof memoryIo>) => Promise<number>) {
  const io = memoryIo({ cwd: dir });
  try {
    return { code: await fn(io), out: io.out(), err: io.err() };
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    return { code: err.exitCode, out: io.out(), err: `microseg: ${err.message}\n` };
  }
}

test('import-k8s turns manifests into topology resources: namespaces, workloads with named ports, network policies', async () => {
  const r = await cli((io) => runImportK8s(['shop.yaml'], { cluster: 'c1' }, io));
  expect(r.code).toBe(0);
  expect(r.err).toBe('microseg: shop.yaml: object 3: skipped, v1 Service carries no segmentation\n');
  expect(parse(r.out)).toEqual({
    resources: {
      'namespace-shop': { type: 'microseg:index:Namespace', properties: { name: 'shop', cluster: 'c1', labels: { team: 'shop' } } },
      'workload-shop-web': { type: 'microseg:index:Workload', properties: { name: 'web', cluster: 'c1', namespace: 'shop', labels: { app: 'web' }, replicas: 3, ports: [{ name: 'http', port: 8080, protocol: 'tcp' }] } },
      'workload-shop-debug': { type: 'microseg:index:Workload', properties: { name: 'debug', cluster: 'c1', namespace: 'shop', labels: { app: 'debug' }, replicas: 1, ports: [{ name: 'dns', port: 53, protocol: 'udp' }] } },
      'netpol-shop-web-from-debug': {
        type: 'microseg:index:KubernetesNetworkPolicy',
        properties: { name: 'web-from-debug', cluster: 'c1', namespace: 'shop', podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'debug' } } }], ports: [{ port: 'http' }] }] },
      },
    },
  });
});

test('the imported resources, next to their cluster, make a topology file whose expectations hold', async () => {
  const imported = await cli((io) => runImportK8s(['shop.yaml'], { cluster: 'c1' }, io));
  const file = path.join(dir, 'topology.yaml');
  const cluster = `resources:\n  c1:\n    type: microseg:index:KubernetesCluster\n    properties: { podCidr: 10.1.0.0/16, serviceCidr: 10.96.0.0/12, nodes: [{ name: n1, ip: 192.168.0.1 }] }\n`;
  const expectations = `expectations:\n  - { from: workload-shop-debug, to: workload-shop-web, port: 8080, expect: allow }\n  - { from: workload-shop-debug, to: workload-shop-web, port: 9999, expect: drop }\n  - { from: workload-shop-web, to: workload-shop-debug, port: 53, protocol: udp, expect: allow }\n`;
  writeFileSync(file, `config: { 'microseg:defaultAction': allow }\n${cluster}${imported.out.replace(/^resources:\n/, '')}${expectations}`);
  const io = memoryIo();
  expect(await runTest([file], {}, io)).toBe(0);
  expect(io.out()).toContain('3 passed, 0 failed');
});

test('import-k8s refuses an invalid NetworkPolicy with the object and the property path', async () => {
  writeFileSync(path.join(dir, 'bad.yaml'), 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: bad, namespace: shop }\nspec:\n  podSelector: {}\n  egress: [{ to: [{ ipBlock: { cidr: 10.0.0.0/8 }, namespaceSelector: {} }] }]\n');
  const r = await cli((io) => runImportK8s(['bad.yaml'], { cluster: 'c1' }, io));
  expect(r.code).toBe(2);
  expect(r.err).toContain('bad.yaml: object 1 (KubernetesNetworkPolicy c1/shop/bad): egress[0].to[0]: the peer sets ipBlock together with podSelector or namespaceSelector');
});

describe('topology files accept Kubernetes objects typed as pulumi-kubernetes types them', () => {
  const head = `resources:\n  c1:\n    type: microseg:index:KubernetesCluster\n    properties: { podCidr: 10.1.0.0/16, serviceCidr: 10.96.0.0/12, nodes: [{ name: n1, ip: 192.168.0.1 }] }\n`;

  it('attaches them to the only cluster of the file', () => {
    const r = loadTopology(`${head}  np:\n    type: kubernetes:networking.k8s.io/v1:NetworkPolicy\n    properties: { metadata: { name: deny, namespace: shop }, spec: { podSelector: {} } }\n`);
    expect(r.ok && r.topology.objects.map((o) => [o.kind, o.identity])).toEqual([
      ['KubernetesCluster', 'c1'],
      ['KubernetesNetworkPolicy', 'c1/shop/deny'],
    ]);
  });

  it('with several clusters, asks for the microseg.io/cluster annotation', () => {
    const two = `${head}  c2:\n    type: microseg:index:KubernetesCluster\n    properties: { podCidr: 10.2.0.0/16, serviceCidr: 10.97.0.0/16, nodes: [{ name: n1, ip: 192.168.0.2 }] }\n`;
    const r = loadTopology(`${two}  ns:\n    type: kubernetes:core/v1:Namespace\n    properties: { metadata: { name: shop } }\n`);
    expect(r.ok ? [] : r.problems).toEqual([{ path: 'resources.ns.properties.metadata.annotations', message: expect.stringContaining('annotate the object with microseg.io/cluster: NAME') }]);
    const ok = loadTopology(`${two}  ns:\n    type: kubernetes:core/v1:Namespace\n    properties: { metadata: { name: shop, annotations: { microseg.io/cluster: c2 } } }\n`);
    expect(ok.ok && ok.topology.objects.at(-1)).toMatchObject({ kind: 'Namespace', identity: 'c2/shop' });
  });

  it('reports a NetworkPolicy error at its path in the file', () => {
    const r = loadTopology(`${head}  np:\n    type: kubernetes:networking.k8s.io/v1:NetworkPolicy\n    properties: { metadata: { name: x, namespace: shop }, spec: { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 79 }] }] } }\n`);
    expect(r.ok ? [] : r.problems).toEqual([expect.objectContaining({ path: 'resources.np.properties.ingress[0].ports[0].endPort' })]);
  });
});
