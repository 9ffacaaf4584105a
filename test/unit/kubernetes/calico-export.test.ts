import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { runFunction } from '../../../provider/src/backend/embedded';
import { CliError, memoryIo } from '../../../provider/src/cli/io';
import { runExport } from '../../../provider/src/cli/k8s-commands';
import { World } from '../../../provider/src/engine';
import { getKubernetesManifests } from '../../../provider/src/export/kubernetes';
import { calicoSelector } from '../../../provider/src/export/kubernetes/calico-selector';
import { CALICO_BUILTIN_TIERS, calicoObjectErrors } from '../../support/calico-schemas';
import { decided, estate, put, trace } from '../engine/helpers';
import { exampleTopologyWorld } from '../../support/example-topology';
import { expectGolden } from '../../support/golden';

/**
 * Export to Calico (flavor `calico`: projectcalico.org/v3 Tier, GlobalNetworkPolicy,
 * StagedGlobalNetworkPolicy, GlobalNetworkSet, HostEndpoint + NetworkPolicy): golden output for the example
 * cluster, validation of every Calico object against microseg's own statement of the Calico API
 * (test/support/calico-schemas.ts, written from Calico's API reference documentation), the mapping one
 * behaviour per test, and the refusals. Regenerate the golden file with MICROSEG_UPDATE_GOLDEN=1.
 */

const ROOT = path.join(__dirname, '..', '..', '..');
const WEB = 'c1/shop/web';
const API = 'c1/shop/api';
type Obj = Record<string, unknown>;
type Manifest = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, unknown> };
type Rule = { action: string; protocol?: string; source?: Obj; destination?: Obj };
type Gnp = { tier: string; order: number; selector: string; namespaceSelector?: string; types: string[]; ingress?: Rule[]; egress?: Rule[] };

/** Errors of one exported object against microseg's statement of the Calico API (NetworkPolicy objects are passed through as declared). */
function schemaErrors(m: Obj): string[] {
  return m.apiVersion === 'networking.k8s.io/v1' ? [] : calicoObjectErrors(m);
}

const calico = (w: World, hostEndpoints = false) => getKubernetesManifests(w, { cluster: 'c1', flavor: 'calico', hostEndpoints });
const objects = (ms: readonly Obj[]) => ms as unknown as Manifest[];
const gnps = (ms: readonly Obj[]) => objects(ms).filter((m) => m.kind === 'GlobalNetworkPolicy');
const gnp = (ms: readonly Obj[], name: string): Gnp => {
  const m = objects(ms).find((x) => /GlobalNetworkPolicy$/.test(x.kind) && x.metadata.name === name);
  if (!m) throw new Error(`no policy ${name} in ${objects(ms).map((x) => x.metadata.name).join(', ')}`);
  return m.spec as unknown as Gnp;
};
/** A small world whose only policy is the one under test (default rule allow). */
function withPolicy(spec: Record<string, unknown>, name = 'app'): World {
  const w = estate({ defaultAction: 'allow' });
  put(w, 'FirewallPolicy', name, { category: 'application', priority: 1, ...spec });
  return w;
}

describe('the example cluster (examples/topologies/kubernetes-networkpolicies.yaml)', () => {
  const exported = getKubernetesManifests(exampleTopologyWorld('kubernetes-networkpolicies.yaml'), { cluster: 'ake', flavor: 'calico', podsOnly: true });

  it('exports with no refusal with podsOnly (Calico peers can be any address) and matches the golden file', () => {
    expect(exported.refusals).toEqual([]);
    const text = exported.manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n');
    expectGolden(path.join(ROOT, 'test/data/golden/kubernetes-networkpolicies.calico.yaml'), text);
  });

  it('every Calico object validates against the Calico API statement (test/support/calico-schemas.ts)', () => {
    expect(exported.manifests.length).toBeGreaterThan(0);
    for (const m of exported.manifests) expect({ name: (m.metadata as { name: string }).name, errors: schemaErrors(m) }).toEqual({ name: (m.metadata as { name: string }).name, errors: [] });
  });

  describe('the validation catches an exporter that breaks the Calico API (a good export, mutated)', () => {
    // A valid export with a ported rule: microseg-application.app-r, ingress [{ action: Allow, protocol: TCP, destination: { ports: [80] } }].
    const valid = calico(withPolicy({ rules: [{ name: 'r', action: 'allow', direction: 'in', services: [{ protocol: 'tcp', ports: [80] }] }] })).manifests;
    const good = (kind: string): Obj => {
      const m = valid.find((x) => x.kind === kind && (kind !== 'GlobalNetworkPolicy' || (x.metadata as { name: string }).name === 'microseg-application.app-r'))!;
      expect(schemaErrors(m)).toEqual([]);
      return structuredClone(m);
    };

    it('an unknown field', () => {
      const m = good('GlobalNetworkPolicy');
      ((m.spec as Gnp).ingress![0] as Obj).priority = 1;
      expect(schemaErrors(m).join('\n')).toMatch(/must NOT have additional properties \(priority\)/);
    });

    it('a wrong enum value (action, types, protocol)', () => {
      for (const mutate of [(s: Gnp) => (s.ingress![0]!.action = 'Drop'), (s: Gnp) => (s.types = ['Inbound']), (s: Gnp) => (s.ingress![0]!.protocol = 'tcp')]) {
        const m = good('GlobalNetworkPolicy');
        mutate(m.spec as Gnp);
        expect(schemaErrors(m).join('\n')).toMatch(/must be equal to one of the allowed values|must match exactly one schema/);
      }
    });

    it('a missing required field', () => {
      const m = good('GlobalNetworkPolicy');
      delete ((m.spec as Gnp).ingress![0] as Obj).action;
      expect(schemaErrors(m).join('\n')).toMatch(/must have required property 'action'/);
    });

    it("a tier rule: Calico's default tier denies, kube-admin passes at order 1,000; a policy is named <tier>.<name>", () => {
      const tier = good('Tier');
      const spec = tier.spec as { order: number; defaultAction: string };
      expect(schemaErrors({ ...tier, metadata: { name: 'default' }, spec: { order: 1_000_000, defaultAction: 'Pass' } })).toEqual(['default: tier default has defaultAction Deny']);
      expect(schemaErrors({ ...tier, metadata: { name: 'kube-admin' }, spec: { ...spec, order: 1_000, defaultAction: 'Deny' } })).toEqual(['kube-admin: tier kube-admin has defaultAction Pass']);
      expect(schemaErrors({ ...tier, metadata: { name: 'kube-admin' }, spec: { order: 2_000, defaultAction: 'Pass' } })).toEqual(['kube-admin: tier kube-admin has order 1000']);
      const policy = good('GlobalNetworkPolicy');
      (policy.metadata as { name: string }).name = 'no-tier-prefix';
      expect(schemaErrors(policy)).toEqual([`no-tier-prefix: a policy in tier ${(policy.spec as Gnp).tier} is named ${(policy.spec as Gnp).tier}.<name>`]);
    });

    it('ports and nets: a reversed range, a port without a ported protocol, a bad CIDR', () => {
      const m = good('GlobalNetworkPolicy');
      (m.spec as Gnp).ingress![0]!.destination!.ports = ['90:80'];
      expect(schemaErrors(m).join('\n')).toMatch(/ports\/0 must match exactly one schema/);
      const icmp = good('GlobalNetworkPolicy');
      (icmp.spec as Gnp).ingress![0]!.protocol = 'ICMP';
      expect(schemaErrors(icmp).join('\n')).toMatch(/ports need protocol TCP, UDP, SCTP or UDPLite/);
      const set = { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkSet', metadata: { name: 'net' }, spec: { nets: ['10.0.0.0/33'] } };
      expect(schemaErrors(set).join('\n')).toMatch(/nets\/0 must match format "cidr"/);
    });
  });

  it('keeps the NetworkPolicies as networking.k8s.io/v1 objects, which Calico evaluates in its default tier', () => {
    expect(objects(exported.manifests).filter((m) => m.kind === 'NetworkPolicy').map((m) => m.metadata.name)).toEqual(['cart-ingress']);
  });
});

describe('tiers', () => {
  it('categories become tiers with defaultAction Pass, ordered around Calico default tier (the NetworkPolicies): application before it, baseline and the default rule after it', () => {
    const w = estate({ defaultAction: 'drop' });
    for (const [i, category] of ['emergency', 'infrastructure', 'environment', 'application', 'baseline'].entries())
      put(w, 'FirewallPolicy', category, { category, priority: i, rules: [{ name: 'r', action: 'allow', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] }] });
    const tiers = objects(calico(w).manifests).filter((m) => m.kind === 'Tier').map((m) => ({ name: m.metadata.name, ...(m.spec as { order: number; defaultAction: string }) }));
    expect(tiers).toEqual([
      { name: 'microseg-emergency', order: 100, defaultAction: 'Pass' },
      { name: 'microseg-infrastructure', order: 200, defaultAction: 'Pass' },
      { name: 'microseg-environment', order: 300, defaultAction: 'Pass' },
      { name: 'microseg-application', order: 400, defaultAction: 'Pass' },
      { name: 'microseg-baseline', order: 2_000_000, defaultAction: 'Pass' },
      { name: 'microseg-default', order: 3_000_000, defaultAction: 'Pass' },
    ]);
    // Calico's own tiers (tiered-policy page of Calico's docs): kube-admin 1,000, default 1,000,000, kube-baseline 10,000,000.
    expect(tiers.find((t) => t.name === 'microseg-application')!.order).toBeLessThan(CALICO_BUILTIN_TIERS.default!.order);
    expect(tiers.find((t) => t.name === 'microseg-baseline')!.order).toBeGreaterThan(CALICO_BUILTIN_TIERS.default!.order);
    expect(tiers.find((t) => t.name === 'microseg-default')!.order).toBeLessThan(CALICO_BUILTIN_TIERS['kube-baseline']!.order);
  });

  it('the default rule is the only policy of the last tier, for every pod', () => {
    for (const action of ['drop', 'allow'] as const) {
      const r = calico(estate({ defaultAction: action }));
      const verdict = action === 'drop' ? 'Deny' : 'Allow';
      expect(gnps(r.manifests).map((m) => m.metadata.name)).toEqual(['microseg-default.default-rule']);
      expect(gnp(r.manifests, 'microseg-default.default-rule')).toEqual({ tier: 'microseg-default', order: 1, namespaceSelector: 'all()', selector: 'all()', types: ['Ingress', 'Egress'], ingress: [{ action: verdict }], egress: [{ action: verdict }] });
    }
  });
});

describe('policies and rules', () => {
  it('order keeps policy priority, then rule order; one GlobalNetworkPolicy per rule', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'second', { category: 'application', priority: 20, rules: [{ name: 'c', action: 'drop', direction: 'in' }] });
    put(w, 'FirewallPolicy', 'first', { category: 'application', priority: 10, rules: [{ name: 'a', action: 'allow', direction: 'in' }, { name: 'b', action: 'drop', direction: 'in', disabled: true }, { name: 'b2', action: 'drop', direction: 'out' }] });
    const r = calico(w);
    expect(gnps(r.manifests).filter((m) => (m.spec as { tier: string }).tier === 'microseg-application').map((m) => `${(m.spec as { order: number }).order} ${m.metadata.name}`)).toEqual([
      '1 microseg-application.first-a',
      '2 microseg-application.first-b2',
      '3 microseg-application.second-c',
    ]);
  });

  it('a rule between pods becomes an ingress policy on its destinations and an egress policy on its sources', () => {
    const w = withPolicy({ rules: [{ name: 'both', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] }] });
    const r = calico(w);
    expect(gnp(r.manifests, 'microseg-application.app-both-ingress')).toEqual({
      tier: 'microseg-application',
      order: 1,
      namespaceSelector: 'all()',
      selector: "app == 'api'",
      types: ['Ingress'],
      ingress: [{ action: 'Allow', source: { namespaceSelector: 'all()', selector: "app == 'web'" } }],
    });
    expect(gnp(r.manifests, 'microseg-application.app-both-egress')).toEqual({
      tier: 'microseg-application',
      order: 2,
      namespaceSelector: 'all()',
      selector: "app == 'web'",
      types: ['Egress'],
      egress: [{ action: 'Allow', destination: { namespaceSelector: 'all()', selector: "app == 'api'" } }],
    });
  });

  it('appliedTo becomes the policy selector; destinations given by address stay a rule entity (they may hold pod IPs)', () => {
    const w = withPolicy({ appliedTo: ['api'], rules: [{ name: 'r', action: 'drop', direction: 'in', sources: [{ group: 'web' }], destinations: [{ cidr: '10.1.0.0/16' }] }] });
    expect(gnp(calico(w).manifests, 'microseg-application.app-r')).toEqual({
      tier: 'microseg-application',
      order: 1,
      namespaceSelector: 'all()',
      selector: "app == 'api'",
      types: ['Ingress'],
      ingress: [{ action: 'Deny', source: { namespaceSelector: 'all()', selector: "app == 'web'" }, destination: { nets: ['10.1.0.0/16'] } }],
    });
  });

  it('label selectors become Calico selector expressions (matchLabels, In, NotIn, Exists, DoesNotExist)', () => {
    expect(calicoSelector({})).toBe('all()');
    expect(
      calicoSelector({
        matchLabels: { tier: 'back', app: 'api' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod', 'dev'] },
          { key: 'zone', operator: 'In', values: ['a'] },
          { key: 'team', operator: 'NotIn', values: ['x', 'y'] },
          { key: 'shard', operator: 'NotIn', values: ['1'] },
          { key: 'example.com/owner', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
    ).toBe("app == 'api' && tier == 'back' && env in {'dev', 'prod'} && zone == 'a' && team not in {'x', 'y'} && shard != '1' && has(example.com/owner) && !has(legacy)");
  });

  it('namespaces and namespace selectors become the peer namespaceSelector', () => {
    const w = withPolicy({ rules: [{ name: 'r', action: 'allow', direction: 'in', sources: [{ podSelector: { namespaces: ['ops'], podSelector: { matchLabels: { app: 'tools' } } } }, { podSelector: { namespaceSelector: { matchLabels: { team: 'shop' } } } }] }] });
    expect(gnp(calico(w).manifests, 'microseg-application.app-r').ingress).toEqual([
      { action: 'Allow', source: { namespaceSelector: "kubernetes.io/metadata.name == 'ops'", selector: "app == 'tools'" } },
      { action: 'Allow', source: { namespaceSelector: "team == 'shop'" } },
    ]);
  });

  it('an IP block becomes nets, its except notNets', () => {
    const w = withPolicy({ rules: [{ name: 'r', action: 'drop', direction: 'in', sources: [{ cidr: '203.0.113.0/24', except: ['203.0.113.8/29'] }, { cidr: '2001:db8::/32' }] }] });
    expect(gnp(calico(w).manifests, 'microseg-application.app-r').ingress).toEqual([
      { action: 'Deny', source: { nets: ['203.0.113.0/24'], notNets: ['203.0.113.8/29'] } },
      { action: 'Deny', source: { nets: ['2001:db8::/32'] } },
    ]);
  });

  it("a SecurityGroup's addresses (VMs, IP blocks) become one GlobalNetworkSet selected by its label, its pods a pod peer", () => {
    const w = withPolicy({ rules: [{ name: 'r', action: 'allow', direction: 'out', sources: [{ group: 'web' }], destinations: [{ group: 'mixed' }] }] });
    put(w, 'SecurityGroup', 'mixed', { vmSelectors: [{ matchLabels: { role: 'db' } }], ipBlocks: [{ cidr: '198.51.100.0/24', except: ['198.51.100.128/25'] }], podSelectors: [{ podSelector: { matchLabels: { app: 'api' } } }] });
    const r = calico(w);
    const set = objects(r.manifests).find((m) => m.kind === 'GlobalNetworkSet')!;
    expect(set).toEqual({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkSet', metadata: { name: 'microseg-mixed', labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.io/network-set': 'microseg-mixed' } }, spec: { nets: ['172.16.0.10/32', '198.51.100.0/25'] } });
    expect(gnp(r.manifests, 'microseg-application.app-r')).toMatchObject({ selector: "app == 'web'", types: ['Egress'] });
    expect(gnp(r.manifests, 'microseg-application.app-r').egress).toEqual([
      { action: 'Allow', destination: { namespaceSelector: 'all()', selector: "app == 'api'" } },
      { action: 'Allow', destination: { selector: "microseg.io/network-set == 'microseg-mixed'" } },
    ]);
    for (const m of r.manifests) expect(schemaErrors(m)).toEqual([]);
  });

  it('ports: numbers, ranges as a:b, named ports, one rule per protocol (any = TCP, UDP and SCTP)', () => {
    const w = withPolicy({ rules: [{ name: 'r', action: 'allow', direction: 'in', services: [{ protocol: 'tcp', ports: [80, '8000-8080', 'http', '443-443'] }, { protocol: 'any', ports: [53] }, { protocol: 'icmp' }] }] });
    const r = calico(w);
    expect(gnp(r.manifests, 'microseg-application.app-r').ingress).toEqual([
      { action: 'Allow', protocol: 'TCP', destination: { ports: [80, '8000:8080', 'http', 443] } },
      { action: 'Allow', protocol: 'TCP', destination: { ports: [53] } },
      { action: 'Allow', protocol: 'UDP', destination: { ports: [53] } },
      { action: 'Allow', protocol: 'SCTP', destination: { ports: [53] } },
      { action: 'Allow', protocol: 'ICMP' },
    ]);
    for (const m of r.manifests) expect(schemaErrors(m)).toEqual([]);
  });

  it('negated peers become notSelector (namespace labels under pcns.) and notNets', () => {
    const w = withPolicy({ rules: [{ name: 'r', action: 'drop', direction: 'in', sourcesExcluded: true, sources: [{ podSelector: { namespaceSelector: { matchLabels: { team: 'shop' } }, podSelector: { matchLabels: { app: 'web' } } } }, { cidr: '10.9.0.0/16' }] }] });
    expect(gnp(calico(w).manifests, 'microseg-application.app-r').ingress).toEqual([
      { action: 'Deny', source: { notNets: ['10.9.0.0/16'], notSelector: "(has(projectcalico.org/namespace) && pcns.team == 'shop' && app == 'web')" } },
    ]);
  });
});

describe('pass', () => {
  it('a pass in application stays a Pass: the next tiers are the NetworkPolicies (default tier), baseline, the default rule', () => {
    const w = withPolicy({ rules: [{ name: 'delegate', action: 'pass', direction: 'in', destinations: [{ group: 'api' }] }] });
    expect(gnp(calico(w).manifests, 'microseg-application.app-delegate')).toMatchObject({ selector: "app == 'api'", ingress: [{ action: 'Pass' }] });
  });

  it('a pass in emergency is repeated first in the later tiers before application, so it continues at application as in microseg', () => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'em', { category: 'emergency', priority: 1, rules: [{ name: 'skip', action: 'pass', direction: 'in', sources: [{ group: 'web' }] }] });
    put(w, 'FirewallPolicy', 'infra', { category: 'infrastructure', priority: 1, rules: [{ name: 'block', action: 'drop', direction: 'in' }] });
    put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'block', action: 'drop', direction: 'in' }] });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'ok', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] }] });
    const r = calico(w);
    const summary = gnps(r.manifests).map((m) => `${(m.spec as Gnp).tier}/${(m.spec as Gnp).order} ${((m.spec as Gnp).ingress ?? (m.spec as Gnp).egress)![0]!.action} ${m.metadata.name}`);
    expect(summary).toEqual([
      'microseg-emergency/1 Pass microseg-emergency.em-skip',
      'microseg-infrastructure/1 Pass microseg-infrastructure.pass-from-emergency-em-skip',
      'microseg-infrastructure/2 Deny microseg-infrastructure.infra-block',
      'microseg-environment/1 Pass microseg-environment.pass-from-emergency-em-skip',
      'microseg-environment/2 Deny microseg-environment.env-block',
      'microseg-application/1 Allow microseg-application.app-ok-ingress',
      'microseg-application/2 Allow microseg-application.app-ok-egress',
      'microseg-default/1 Deny microseg-default.default-rule',
    ]);
    // The repeated rule is the same rule.
    expect(gnp(r.manifests, 'microseg-environment.pass-from-emergency-em-skip').ingress).toEqual(gnp(r.manifests, 'microseg-emergency.em-skip').ingress);
    // microseg's verdict the tiers reproduce: web → api passes emergency, skips both drops, allowed in application.
    expect(decided(trace(w, WEB, API, 80))).toBe('allow app/ok');
  });
});

it('staged policies become StagedGlobalNetworkPolicy in the same tier and order, which Calico counts without enforcing', () => {
  const w = withPolicy({ enforcement: 'staged', rules: [{ name: 'trial', action: 'drop', direction: 'in', sources: [{ group: 'web' }] }] });
  const r = calico(w);
  const staged = objects(r.manifests).find((m) => m.kind === 'StagedGlobalNetworkPolicy')!;
  expect(staged.metadata.name).toBe('microseg-application.app-trial');
  expect(staged.spec).toMatchObject({ tier: 'microseg-application', order: 1, ingress: [{ action: 'Deny' }] });
  for (const m of r.manifests) expect(schemaErrors(m)).toEqual([]);
});

describe('HostEndpoints (hostEndpoints: true)', () => {
  it('each VM interface becomes a HostEndpoint with node, expectedIPs and labels, and rules applied to VMs select it', () => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'db', { category: 'application', priority: 1, appliedTo: ['db'], rules: [{ name: 'from-web', action: 'allow', direction: 'in', sources: [{ group: 'web' }], services: [{ protocol: 'tcp', ports: [5432] }] }] });
    const r = calico(w, true);
    expect(objects(r.manifests).filter((m) => m.kind === 'HostEndpoint')).toEqual([
      { apiVersion: 'projectcalico.org/v3', kind: 'HostEndpoint', metadata: { name: 'microseg-vm-bastion', labels: { role: 'bastion', 'app.kubernetes.io/managed-by': 'microseg', 'microseg.io/vm': 'bastion' } }, spec: { node: 'bastion', expectedIPs: ['172.16.0.20'] } },
      { apiVersion: 'projectcalico.org/v3', kind: 'HostEndpoint', metadata: { name: 'microseg-vm-db', labels: { role: 'db', env: 'prod', 'app.kubernetes.io/managed-by': 'microseg', 'microseg.io/vm': 'db' } }, spec: { node: 'db', expectedIPs: ['172.16.0.10'] } },
    ]);
    expect(gnp(r.manifests, 'microseg-application.db-from-web')).toMatchObject({ selector: "microseg.io/vm == 'db'", types: ['Ingress'] });
    expect(gnp(r.manifests, 'microseg-application.db-from-web').namespaceSelector).toBeUndefined();
    // The default rule covers the VMs too (a HostEndpoint without policy would drop everything).
    expect(objects(r.manifests).filter((m) => m.metadata.name.startsWith('microseg-default.')).map((m) => (m.spec as Gnp).selector)).toEqual(['all()', 'has(microseg.io/vm)']);
    for (const m of r.manifests) expect(schemaErrors(m)).toEqual([]);
  });

  it('without it, rules applied only to VMs are not exported (the pod side only) and no HostEndpoint is written', () => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'db', { category: 'application', priority: 1, appliedTo: ['db'], rules: [{ name: 'from-web', action: 'allow', direction: 'in', sources: [{ group: 'web' }] }] });
    const r = calico(w);
    expect(objects(r.manifests).map((m) => m.kind)).not.toContain('HostEndpoint');
    expect(gnps(r.manifests).map((m) => m.metadata.name)).toEqual(['microseg-default.default-rule']);
  });
});

describe('refusals name the construct and the reason', () => {
  it("ingress from the nodes that microseg drops, which Calico admits from a host to its local pods ahead of every policy", () => {
    const w = withPolicy({ rules: [{ name: 'api-closed', action: 'drop', direction: 'in', destinations: [{ group: 'api' }] }] });
    expect(calico(w).refusals).toEqual([
      {
        construct: 'ingress from the nodes of cluster c1',
        reason: expect.stringMatching(/^Calico admits traffic from a host to its local pods .* ahead of every policy, but microseg drops it for pods \{"matchLabels":\{"app":"api"\}\} in ops \(FirewallPolicy app\/api-closed\).*accept that with --pods-only$/),
      },
    ]);
  });

  it('podsOnly accepts that; a drop whose sources leave the nodes out needs nothing', () => {
    const closed = withPolicy({ rules: [{ name: 'api-closed', action: 'drop', direction: 'in', destinations: [{ group: 'api' }] }] });
    expect(getKubernetesManifests(closed, { cluster: 'c1', flavor: 'calico', podsOnly: true }).refusals).toEqual([]);
    const notNodes = withPolicy({ rules: [{ name: 'not-nodes', action: 'drop', direction: 'in', sources: [{ cidr: '192.168.0.0/24' }], sourcesExcluded: true, destinations: [{ group: 'api' }] }] });
    expect(calico(notNodes).refusals).toEqual([]);
  });

  it('without podsOnly, a rule applied to pods by address makes the node check impossible', () => {
    const w = withPolicy({ rules: [{ name: 'by-ip', action: 'allow', direction: 'in', destinations: [{ cidr: '10.1.0.0/24' }] }] });
    expect(calico(w).refusals).toEqual([{ construct: 'ingress from the nodes of cluster c1', reason: expect.stringContaining('FirewallPolicy app/by-ip apply to pods by address') }]);
  });

  it('reject has no Calico form', () => {
    const r = calico(withPolicy({ rules: [{ name: 'rst', action: 'reject', direction: 'in', sources: [{ group: 'web' }] }] }));
    expect(r.refusals).toEqual([{ construct: 'FirewallPolicy app/rst', reason: expect.stringContaining('action reject: Calico rule actions are Allow, Deny, Pass and Log') }]);
  });

  it('static workload members cannot be selected by labels', () => {
    const w = withPolicy({ rules: [{ name: 'r', action: 'allow', direction: 'in', sources: [{ group: 'static' }] }] });
    put(w, 'SecurityGroup', 'static', { workloads: ['c1/shop/web'] });
    expect(calico(w).refusals).toEqual([{ construct: 'FirewallPolicy app/r', reason: 'group static has static workload members: Calico selects pods by labels only' }]);
  });

  it('negated IP addresses with IPv6 (notNets would make the rule IPv4-only)', () => {
    const r = calico(withPolicy({ rules: [{ name: 'r', action: 'drop', direction: 'in', sourcesExcluded: true, sources: [{ cidr: '2001:db8::/32' }] }] }));
    expect(r.refusals).toEqual([{ construct: 'FirewallPolicy app/r', reason: 'negated IP addresses with IPv6: Calico notNets make a rule match one IP family only' }]);
  });

  it('an IPv6 block with except inside a group (its GlobalNetworkSet has no except)', () => {
    const w = withPolicy({ rules: [{ name: 'r', action: 'allow', direction: 'in', sources: [{ group: 'v6' }] }] });
    put(w, 'SecurityGroup', 'v6', { ipBlocks: [{ cidr: '2001:db8::/32', except: ['2001:db8::/64'] }] });
    expect(calico(w).refusals).toEqual([{ construct: 'FirewallPolicy app/r', reason: 'IPv6 block 2001:db8::/32 with except in a group: a GlobalNetworkSet has no except, and IPv6 exceptions are not subtracted' }]);
  });

  it('a negated IP block with except', () => {
    const r = calico(withPolicy({ rules: [{ name: 'r', action: 'drop', direction: 'in', sourcesExcluded: true, sources: [{ cidr: '10.9.0.0/16', except: ['10.9.1.0/24'] }] }] }));
    expect(r.refusals).toEqual([{ construct: 'FirewallPolicy app/r', reason: 'a negated IP block with except: Calico notNets has no except' }]);
  });
});

describe('the getKubernetesManifests function, the CLI and the flagship', () => {
  it('microseg export --flavor calico prints the manifests of a topology file; a refusal exits 1 naming the flavor', async () => {
    const io = memoryIo({ cwd: ROOT });
    expect(await runExport({ cluster: 'ake', flavor: 'calico', podsOnly: true, topology: 'examples/topologies/kubernetes-networkpolicies.yaml' }, io)).toBe(0);
    expect(io.out()).toBe(readFileSync(path.join(ROOT, 'test/data/golden/kubernetes-networkpolicies.calico.yaml'), 'utf8'));
    const dir = mkdtempSync(path.join(tmpdir(), 'microseg-calico-'));
    try {
      const file = path.join(dir, 'reject.yaml');
      writeFileSync(file, readFileSync(path.join(ROOT, 'examples/topologies/kubernetes-networkpolicies.yaml'), 'utf8').replace(/action: drop/, 'action: reject'));
      const err = await runExport({ cluster: 'ake', flavor: 'calico', podsOnly: true, topology: file }, memoryIo({ cwd: ROOT })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).message).toMatch(/^export refused: 1 construct\(s\) cannot be expressed in flavor calico without changing a verdict:\n  FirewallPolicy \S+: action reject: Calico rule actions/);
      expect((err as CliError).exitCode).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Pulumi invoke passes the flavor and hostEndpoints through', () => {
    const r = runFunction(estate({ defaultAction: 'drop' }), 'getKubernetesManifests', { cluster: 'c1', flavor: 'calico', hostEndpoints: true, podsOnly: true }) as { manifests: { kind: string }[]; yaml: string };
    expect(r.manifests.map((m) => m.kind)).toEqual(['Tier', 'HostEndpoint', 'HostEndpoint', 'GlobalNetworkPolicy', 'GlobalNetworkPolicy']);
    expect(parse(r.yaml.split('---\n')[0]!)).toEqual(r.manifests[0]);
  });

  it('the flagship cluster (examples/vcci-app) exports with no refusal, every object validates, and the output matches its golden file', async () => {
    const { vcciWorld } = await import('../../support/vcci-world');
    const w = await vcciWorld();
    for (const hostEndpoints of [false, true]) {
      const r = getKubernetesManifests(w, { cluster: 'vcci', flavor: 'calico', hostEndpoints, podsOnly: true });
      expect(r.refusals).toEqual([]);
      // Without podsOnly only the nodes are refused: microseg's default rule drops them, Calico admits a host's own pods.
      expect(getKubernetesManifests(w, { cluster: 'vcci', flavor: 'calico', hostEndpoints }).refusals.map((x) => x.construct)).toEqual(['ingress from the nodes of cluster vcci']);
      for (const m of r.manifests) expect(schemaErrors(m)).toEqual([]);
      if (hostEndpoints) continue;
      // What `microseg export --cluster vcci --flavor calico` prints after `npm run demo` (docs/kubernetes.md).
      const text = r.manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n');
      expectGolden(path.join(ROOT, 'test/data/golden/vcci.calico.yaml'), text);
    }
  }, 120_000);
});
