import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import * as ipaddr from 'ipaddr.js';
import { parse, stringify } from 'yaml';
import { runFunction } from '../../../provider/src/backend/embedded';
import { getKubernetesManifests } from '../../../provider/src/export/kubernetes';
import { subtractCidrs } from '../../../provider/src/export/kubernetes/cidr';
import { estate, put } from '../engine/helpers';
import { exampleTopologyWorld } from '../../support/example-topology';
import { expectGolden } from '../../support/golden';

/**
 * Export to Kubernetes (flavor `kubernetes`: ClusterNetworkPolicy v1alpha2 + NetworkPolicy): golden
 * output for the example cluster, validation of every ClusterNetworkPolicy against the real CRD schema
 * (network-policy-api's config/crd/standard, the Go module pinned in tools/crds and copied by scripts/setup.sh
 * into .tools/crds/network-policy-api) and its offline-checkable CEL rules, and refusals
 * with their construct and reason. Regenerate the golden file with MICROSEG_UPDATE_GOLDEN=1.
 */

const ROOT = path.join(__dirname, '..', '..', '..');
const CRD_DIR = path.join(ROOT, '.tools/crds/network-policy-api');
type Crd = { spec: { versions: { name: string; schema: { openAPIV3Schema: Record<string, unknown> } }[] } };
/** The v1alpha2 schema of one release channel's CRD. */
function channelSchema(channel: 'standard' | 'experimental'): Record<string, unknown> {
  const file = path.join(CRD_DIR, channel, 'policy.networking.k8s.io_clusternetworkpolicies.yaml');
  if (!existsSync(file)) throw new Error(`${file} is missing: run scripts/setup.sh (it downloads the network-policy-api module)`);
  return (parse(readFileSync(file, 'utf8')) as Crd).spec.versions.find((v) => v.name === 'v1alpha2')!.schema.openAPIV3Schema;
}
/** As `kubectl apply --validate=strict`: a field the schema does not declare is an error, not pruned. */
function strict(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(strict);
  if (!s || typeof s !== 'object') return s;
  const o = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, x]) => [p, strict(x)])) : strict(v)]));
  if (o.properties && o.additionalProperties === undefined) o.additionalProperties = false;
  return o;
}
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
const schemas = { standard: channelSchema('standard'), experimental: channelSchema('experimental') };
const validators = { standard: ajv.compile(strict(schemas.standard) as object), experimental: ajv.compile(strict(schemas.experimental) as object) };

/** CEL's isCIDR: an IPv4 or IPv6 prefix in CIDR notation. */
function isCidr(text: string): boolean {
  return ipaddr.isValidCIDR(text);
}
/** CEL's `cidr(self) == cidr(self).masked()`: no host bits set below the prefix. */
function isMasked(text: string): boolean {
  const [addr] = ipaddr.parseCIDR(text);
  const network = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
  return network.toNormalizedString() === addr.toNormalizedString();
}

/** The experimental channel's egress rule: a named port cannot go with networks, nodes or domainNames peers. */
const NO_NAMED_PORT_TO_NETWORKS = '!(self.to.exists(peer, has(peer.networks) || has(peer.nodes) || has(peer.domainNames)) && has(self.protocols) && self.protocols.exists(protocol, has(protocol.destinationNamedPort)))';

/** Evaluates the CRD's x-kubernetes-validations that need no apiserver; unknown rules fail loudly. */
function celErrors(s: Record<string, unknown>, v: unknown, at: string): string[] {
  const out: string[] = [];
  for (const rule of (s['x-kubernetes-validations'] as { rule: string; message: string }[] | undefined) ?? []) {
    if (rule.rule === 'self.start < self.end') {
      const r = v as { start: number; end: number };
      if (!(r.start < r.end)) out.push(`${at}: ${rule.message}`);
    } else if (rule.rule === 'isCIDR(self)') {
      if (!isCidr(String(v))) out.push(`${at}: ${rule.message}`);
    } else if (rule.rule === 'isCIDR(self) && cidr(self) == cidr(self).masked()') {
      if (!isCidr(String(v)) || !isMasked(String(v))) out.push(`${at}: ${rule.message}`);
    } else if (rule.rule.replace(/\s+/g, ' ') === NO_NAMED_PORT_TO_NETWORKS) {
      const r = v as { to?: Record<string, unknown>[]; protocols?: Record<string, unknown>[] };
      const outside = (r.to ?? []).some((p) => 'networks' in p || 'nodes' in p || 'domainNames' in p);
      if (outside && (r.protocols ?? []).some((p) => 'destinationNamedPort' in p)) out.push(`${at}: ${rule.message}`);
    } else out.push(`${at}: CEL rule not checked offline: ${rule.rule}`);
  }
  const props = s.properties as Record<string, Record<string, unknown>> | undefined;
  if (props && v && typeof v === 'object' && !Array.isArray(v)) for (const [k, sub] of Object.entries(props)) if (k in (v as object)) out.push(...celErrors(sub, (v as Record<string, unknown>)[k], `${at}.${k}`));
  const items = s.items as Record<string, unknown> | undefined;
  if (items && Array.isArray(v)) v.forEach((x, i) => out.push(...celErrors(items, x, `${at}[${i}]`)));
  return out;
}

function schemaErrors(m: Record<string, unknown>): string[] {
  if (m.kind !== 'ClusterNetworkPolicy') return [];
  // Named ports (destinationNamedPort) are in the experimental channel only since v0.3.0: an object that uses
  // one must validate there; every other object must validate against the standard channel.
  const channel = JSON.stringify(m).includes('"destinationNamedPort"') ? 'experimental' : 'standard';
  const validate = validators[channel];
  const ok = validate(m);
  return [...(ok ? [] : (validate.errors ?? []).map((e) => `${channel}: ${e.instancePath} ${e.message}`)), ...celErrors(schemas[channel], m, '')];
}

describe('the example cluster (examples/topologies/kubernetes-networkpolicies.yaml)', () => {
  const world = exampleTopologyWorld('kubernetes-networkpolicies.yaml');
  const exported = getKubernetesManifests(world, { cluster: 'ake', flavor: 'kubernetes', podsOnly: true });

  it('exports with no refusal and matches the golden file', () => {
    expect(exported.refusals).toEqual([]);
    const text = exported.manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n');
    expectGolden(path.join(ROOT, 'test/data/golden/kubernetes-networkpolicies.kubernetes.yaml'), text);
  });

  it('every ClusterNetworkPolicy validates against the CRD schema and its CEL rules', () => {
    const cnps = exported.manifests.filter((m) => m.kind === 'ClusterNetworkPolicy');
    expect(cnps.length).toBeGreaterThan(0);
    for (const m of cnps) expect({ name: (m.metadata as { name: string }).name, errors: schemaErrors(m) }).toEqual({ name: (m.metadata as { name: string }).name, errors: [] });
  });

  it('the validation refuses what a cluster would: an unknown field, a host-bit CIDR, a named port towards networks', () => {
    const cnp = exported.manifests.find((m) => m.kind === 'ClusterNetworkPolicy')!;
    const base = JSON.parse(JSON.stringify(cnp)) as { spec: Record<string, unknown> };
    expect(schemaErrors({ ...base, spec: { ...base.spec, surprise: 1 } })).toEqual([expect.stringMatching(/standard: \/spec must NOT have additional properties/)]);
    const egress = (to: unknown, protocols: unknown) => ({ ...base, spec: { tier: 'Admin', priority: 1, subject: { namespaces: {} }, egress: [{ name: 'x', action: 'Deny', to, protocols }] } });
    expect(schemaErrors(egress([{ networks: ['10.0.0.1/8'] }], undefined))).toEqual([expect.stringMatching(/^\.spec\.egress\[0\]\.to\[0\]\.networks\[0\]: /)]);
    expect(schemaErrors(egress([{ networks: ['10.0.0.0/8'] }], [{ destinationNamedPort: 'http' }]))).toEqual([expect.stringMatching(/^\.spec\.egress\[0\]: /)]);
    expect(schemaErrors(egress([{ pods: { namespaceSelector: {}, podSelector: {} } }], [{ destinationNamedPort: 'http' }]))).toEqual([]);
  });

  it('keeps the order: Admin priorities follow the categories, baseline and the default rule come last in tier Baseline', () => {
    const summary = exported.manifests.filter((m) => m.kind === 'ClusterNetworkPolicy').map((m) => {
      const spec = m.spec as { tier: string; priority: number; ingress?: { action: string }[]; egress?: { action: string }[] };
      return `${spec.tier}/${spec.priority} ${(spec.ingress ?? spec.egress)![0]!.action} ${(m.metadata as { name: string }).name}`;
    });
    expect(summary).toEqual([
      'Admin/0 Deny emergency-block-ingress',
      'Admin/0 Deny emergency-block-egress',
      'Admin/1 Pass delegate-shop-to-networkpolicies-ingress',
      'Baseline/0 Deny baseline-default-deny-ingress-ingress',
    ]);
    // The user's NetworkPolicy, then the isolation of the pods microseg closes to outside sources.
    expect(exported.manifests.filter((m) => m.kind === 'NetworkPolicy').map((m) => `${(m.metadata as { namespace: string }).namespace}/${(m.metadata as { name: string }).name}`)).toEqual([
      'shop/cart-ingress',
      'monitoring/microseg-ingress-0',
      'shop/microseg-ingress-0',
    ]);
  });
});

describe('refusals name the construct and the reason', () => {
  it('traffic from nodes that microseg drops needs podsOnly: Kubernetes always admits a pod\'s own node', () => {
    const r = getKubernetesManifests(exampleTopologyWorld('kubernetes-networkpolicies.yaml'), { cluster: 'ake', flavor: 'kubernetes' });
    expect(r.refusals).toEqual([{ construct: 'ingress from the nodes of cluster ake', reason: expect.stringContaining('always admits traffic from a pod\'s own node') }]);
  });

  it('ingress from a VM is exported as an ipBlock NetworkPolicy, here on the named port of the pods (east-west-to-pod)', () => {
    const r = getKubernetesManifests(exampleTopologyWorld('east-west-to-pod.yaml'), { cluster: 'ake', flavor: 'kubernetes', podsOnly: true });
    expect(r.refusals).toEqual([]);
    const backend = r.manifests.find((m) => m.kind === 'NetworkPolicy' && JSON.stringify((m.spec as { podSelector: unknown }).podSelector) === '{"matchLabels":{"app":"backend"}}')!;
    expect((backend.spec as { ingress: unknown }).ingress).toEqual([{ from: [{ ipBlock: { cidr: '192.168.28.213/32' } }], ports: [{ protocol: 'TCP', port: 'http' }] }]);
  });

  it('reject, staged policies, negation, ICMP and a pass before application are refused', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'delegate', action: 'pass', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] }] });
    put(w, 'FirewallPolicy', 'app', {
      category: 'application',
      priority: 1,
      rules: [
        { name: 'rst', action: 'reject', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] },
        { name: 'not-web', action: 'drop', direction: 'in', sources: [{ group: 'web' }], sourcesExcluded: true, destinations: [{ group: 'api' }] },
        { name: 'ping', action: 'allow', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }], services: [{ protocol: 'icmp' }] },
        { name: 'ok', action: 'allow', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: ['grpc', '9000-9100', 80] }] },
      ],
    });
    put(w, 'FirewallPolicy', 'trial', { category: 'application', priority: 2, enforcement: 'staged', rules: [{ name: 'x', action: 'drop' }] });
    const r = getKubernetesManifests(w, { cluster: 'c1', flavor: 'kubernetes' });
    expect(r.refusals).toEqual([
      { construct: 'FirewallPolicy env/delegate', reason: expect.stringContaining('a ClusterNetworkPolicy Pass skips the rest of the Admin tier') },
      { construct: 'FirewallPolicy app/rst', reason: 'action reject: ClusterNetworkPolicy actions are Accept, Deny and Pass' },
      { construct: 'FirewallPolicy app/not-web', reason: expect.stringContaining('negated peers') },
      { construct: 'FirewallPolicy app/ping', reason: expect.stringContaining('protocol icmp') },
      { construct: 'FirewallPolicy trial: enforcement staged', reason: 'ClusterNetworkPolicy has no staged or audit form' },
    ]);
    // What is exportable is still exported correctly: named ports, ranges and numbers.
    const ok = r.manifests.find((m) => (m.metadata as { name: string }).name === 'app-ok-ingress')!;
    expect(schemaErrors(ok)).toEqual([]);
    expect(ok.spec).toEqual({
      tier: 'Admin',
      priority: 0,
      subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'api' } } } },
      ingress: [
        {
          name: 'ok',
          action: 'Accept',
          from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'web' } } } }],
          protocols: [{ destinationNamedPort: 'grpc' }, { tcp: { destinationPort: { range: { start: 9000, end: 9100 } } } }, { tcp: { destinationPort: { number: 80 } } }],
        },
      ],
    });
  });

  it('a dropping default rule becomes Baseline denies for pods and isolating NetworkPolicies for outside sources', () => {
    const w = estate({ defaultAction: 'drop' });
    const r = getKubernetesManifests(w, { cluster: 'c1', flavor: 'kubernetes', podsOnly: true });
    expect(r.refusals).toEqual([]);
    expect(r.manifests.map((m) => `${m.kind} ${(m.metadata as { namespace?: string }).namespace ?? (m.spec as { tier: string }).tier} ${(m.metadata as { name: string }).name}`)).toEqual([
      'ClusterNetworkPolicy Baseline microseg-default-deny-ingress',
      'ClusterNetworkPolicy Baseline microseg-default-deny-egress',
      'NetworkPolicy ops microseg-ingress-0',
      'NetworkPolicy shop microseg-ingress-0',
    ]);
    expect(r.manifests[2]!.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress'], ingress: [] });
    for (const m of r.manifests) expect(schemaErrors(m)).toEqual([]);
  });
});

it('IP blocks with exceptions become exception-free CIDRs covering exactly the same addresses', () => {
  expect(subtractCidrs('10.0.0.0/24', ['10.0.0.0/26', '10.0.0.200/32'])).toEqual(['10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/29', '10.0.0.201/32', '10.0.0.202/31', '10.0.0.204/30', '10.0.0.208/28', '10.0.0.224/27']);
  expect(subtractCidrs('0.0.0.0/0', [])).toEqual(['0.0.0.0/0']);
  expect(subtractCidrs('2001:db8::/32', ['2001:db8::/64'])).toBeUndefined();
});

describe('the getKubernetesManifests function (Pulumi invoke)', () => {
  it('returns the manifests and their YAML, or fails listing every refusal', () => {
    const w = estate({ defaultAction: 'drop' });
    const r = runFunction(w, 'getKubernetesManifests', { cluster: 'c1', flavor: 'kubernetes', podsOnly: true }) as { manifests: { kind: string }[]; yaml: string };
    expect(r.manifests.map((m) => m.kind)).toEqual(['ClusterNetworkPolicy', 'ClusterNetworkPolicy', 'NetworkPolicy', 'NetworkPolicy']);
    expect(parse(r.yaml.split('---\n')[0]!)).toEqual(r.manifests[0]);
    expect(() => runFunction(w, 'getKubernetesManifests', { cluster: 'c1', flavor: 'kubernetes' })).toThrow(/export refused: ingress from the nodes of cluster c1: Kubernetes always admits/);
  });
});

describe('the flagship cluster (examples/vcci-app)', () => {
  it('exports with no refusal with podsOnly, VM sources as ipBlocks, and every ClusterNetworkPolicy validates', async () => {
    const { vcciWorld } = await import('../../support/vcci-world');
    const w = await vcciWorld();
    const r = getKubernetesManifests(w, { cluster: 'vcci', flavor: 'kubernetes', podsOnly: true });
    expect(r.refusals).toEqual([]);
    for (const m of r.manifests) expect(schemaErrors(m)).toEqual([]);
    const text = stringify(r.manifests.filter((m) => m.kind === 'NetworkPolicy' && (m.metadata as { namespace: string }).namespace === 'shop'), { lineWidth: 0 });
    expect(text).toContain('cidr: 192.168.28.99/32'); // the forensic host, to quarantined pods
    expect(text).toContain('cidr: 192.168.28.213/32'); // the rating VM, to the backend
    // Without podsOnly only the nodes are refused: microseg's default rule drops them, Kubernetes admits a pod's own node.
    expect(getKubernetesManifests(w, { cluster: 'vcci', flavor: 'kubernetes' }).refusals.map((x) => x.construct)).toEqual(['ingress from the nodes of cluster vcci']);
  }, 120_000);
});
