import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ipaddr from 'ipaddr.js';
import { parse, stringify } from 'yaml';
import { runFunction } from '../../../provider/src/backend/embedded';
import { runExport } from '../../../provider/src/cli/k8s-commands';
import { World } from '../../../provider/src/engine';
import { getKubernetesManifests } from '../../../provider/src/export/kubernetes';
import { selectorsMayOverlap, servicesMayOverlap } from '../../../provider/src/export/kubernetes/antrea-overlap';
import { ANTREA_STATIC_TIERS, antreaSchemaErrors } from '../../support/antrea-schemas';
import { runCli, type MemoryIo } from '../../support/cli';
import { estate, put } from '../engine/helpers';
import { exampleTopologyWorld } from '../../support/example-topology';
import { expectGolden } from '../../support/golden';

/**
 * Export to Antrea (flavor `antrea`: crd.antrea.io/v1beta1 ClusterNetworkPolicy in the static tiers,
 * ClusterGroup, Egress, plus NetworkPolicy): golden output for the example cluster, every object
 * validated against microseg's own JSON Schemas of those objects, written from Antrea's API documentation
 * (test/support/antrea-schemas.ts: strict fields, required fields, enums, ranges, formats) and against the admission rules of Antrea's webhook that need no cluster, one behaviour of the mapping per
 * test, and each refusal with its reason. Regenerate the golden file with MICROSEG_UPDATE_GOLDEN=1.
 */

const ROOT = path.join(__dirname, '..', '..', '..');
type Obj = Record<string, unknown>;

const STATIC_TIERS: readonly string[] = ANTREA_STATIC_TIERS;
const inside = (inner: string, outer: string): boolean => {
  const [a, ab] = ipaddr.parseCIDR(inner);
  const [b, bb] = ipaddr.parseCIDR(outer);
  return a.kind() === b.kind() && ab > bb && a.match([b, bb]);
};

/**
 * The admission checks of Antrea's webhook (pkg/controller/networkpolicy/validate.go at v2.7.0) that need
 * no cluster, over the objects in apply order: tiers exist, no Pass in baseline, unique rule names,
 * appliedTo in the spec or in every rule, a group peer stands alone and exists already, ipBlock excepts
 * strictly inside their CIDR, endPort only after a numeric port and not below it, a ClusterGroup sets
 * one kind of criterion, childGroups exist and have no childGroups themselves (one level of nesting).
 */
function webhookErrors(objects: readonly Obj[]): string[] {
  const out: string[] = [];
  const groups = new Map<string, Obj>();
  const ipBlock = (b: { cidr: string; except?: string[] }, at: string) => {
    for (const e of b.except ?? []) if (!inside(e, b.cidr)) out.push(`${at}: except CIDR ${e} is not a strict subset of CIDR ${b.cidr}`);
  };
  for (const m of objects) {
    const name = (m.metadata as { name: string }).name;
    const spec = m.spec as Obj;
    if (m.kind === 'ClusterGroup') {
      const set = Object.keys(spec);
      if (set.length > 2 || (set.length === 2 && !(set.includes('namespaceSelector') && set.includes('podSelector')))) out.push(`ClusterGroup ${name}: at most one of podSelector, ipBlocks or childGroups`);
      for (const c of (spec.childGroups as string[] | undefined) ?? []) {
        const child = groups.get(c);
        if (!child) out.push(`ClusterGroup ${name}: childGroup ${c} does not exist (yet)`);
        else if ((child.spec as Obj).childGroups) out.push(`ClusterGroup ${name}: childGroup ${c} has childGroups itself`);
      }
      ((spec.ipBlocks as { cidr: string; except?: string[] }[] | undefined) ?? []).forEach((b, i) => ipBlock(b, `ClusterGroup ${name}.ipBlocks[${i}]`));
      groups.set(name, m);
    }
    if (m.kind !== 'ClusterNetworkPolicy') continue;
    const tier = spec.tier as string;
    if (!STATIC_TIERS.includes(tier)) out.push(`${name}: tier ${tier} does not exist`);
    const rules = [...((spec.ingress as Obj[] | undefined) ?? []), ...((spec.egress as Obj[] | undefined) ?? [])];
    const names = rules.map((r) => r.name);
    if (new Set(names).size !== names.length) out.push(`${name}: rules names must be unique within the policy`);
    const inRules = rules.filter((r) => r.appliedTo).length;
    if (spec.appliedTo ? inRules > 0 : inRules !== rules.length) out.push(`${name}: appliedTo must be set in the spec or in every rule`);
    for (const r of rules) {
      const at = `${name}/${String(r.name)}`;
      if (tier === 'baseline' && r.action === 'Pass') out.push(`${at}: Pass action should not be set for Baseline Tier policy rules`);
      for (const p of [...((r.from as Obj[] | undefined) ?? []), ...((r.to as Obj[] | undefined) ?? []), ...((r.appliedTo as Obj[] | undefined) ?? [])]) {
        if (p.group !== undefined && Object.keys(p).length > 1) out.push(`${at}: group cannot be set with other peers`);
        if (p.group !== undefined && !groups.has(p.group as string)) out.push(`${at}: ClusterGroup ${String(p.group)} does not exist (yet)`);
        if (p.ipBlock) ipBlock(p.ipBlock as { cidr: string; except?: string[] }, at);
      }
      for (const port of (r.ports as { port?: number | string; endPort?: number }[] | undefined) ?? []) {
        if (port.endPort !== undefined && (typeof port.port !== 'number' || port.endPort < port.port)) out.push(`${at}: endPort needs a numeric port not above it`);
      }
    }
  }
  return out;
}

/** Schema errors of every Antrea object (microseg's schemas, test/support/antrea-schemas.ts), and the webhook's errors over the whole export. */
function validationErrors(objects: readonly Obj[]): string[] {
  return [...antreaSchemaErrors(objects), ...webhookErrors(objects)];
}

const exportOf = (w: World, podsOnly = false) => getKubernetesManifests(w, { cluster: 'c1', flavor: 'antrea', podsOnly });
const named = (objects: readonly Obj[], kind: string, name: string): Obj => objects.find((m) => m.kind === kind && (m.metadata as { name: string }).name === name)!;
const specOf = (objects: readonly Obj[], name: string) => named(objects, 'ClusterNetworkPolicy', name).spec as { tier: string; priority: number; ingress?: Obj[]; egress?: Obj[] };

describe('the example cluster (examples/topologies/kubernetes-networkpolicies.yaml)', () => {
  const exported = getKubernetesManifests(exampleTopologyWorld('kubernetes-networkpolicies.yaml'), { cluster: 'ake', flavor: 'antrea', podsOnly: true });

  it('exports with no refusal and matches the golden file', () => {
    expect(exported.refusals).toEqual([]);
    const text = exported.manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n');
    expectGolden(path.join(ROOT, 'test/data/golden/kubernetes-networkpolicies.antrea.yaml'), text);
  });

  it("every object validates against microseg's Antrea schemas and the webhook rules", () => {
    expect(exported.manifests.map((m) => m.kind)).toEqual(['ClusterGroup', 'ClusterNetworkPolicy', 'ClusterNetworkPolicy', 'ClusterNetworkPolicy', 'NetworkPolicy']);
    expect(validationErrors(exported.manifests)).toEqual([]);
  });
});

describe("the validation is strict: a good export, mutated, fails microseg's Antrea schemas", () => {
  /** A fresh copy of a good export with every kind the flavor emits: groups, a pool, an Egress, policies with ports and ICMP. */
  const good = (): Obj[] => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'p', {
      category: 'application',
      priority: 1,
      rules: [
        { name: 'web', action: 'allow', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: ['8080-8090'] }] },
        { name: 'ping', action: 'allow', direction: 'out', sources: [{ group: 'api' }], destinations: [{ cidr: '192.168.0.0/24' }], services: [{ protocol: 'icmp', icmpType: 8 }] },
      ],
    });
    w.upsert('EgressIp', 'pooled', { cluster: 'c1', pool: '192.168.0.192/28', podSelector: { podSelector: { matchLabels: { app: 'api' } } } }, { allocatedIp: '192.168.0.192' });
    const r = exportOf(w, true);
    expect(r.refusals).toEqual([]);
    return structuredClone(r.manifests) as Obj[];
  };
  const first = (objects: Obj[], kind: string): Obj & { spec: Obj; metadata: Obj } => objects.find((m) => m.kind === kind) as Obj & { spec: Obj; metadata: Obj };
  const policy = (objects: Obj[]) => named(objects, 'ClusterNetworkPolicy', 'p') as { spec: { priority: number; tier: string; ingress: Obj[]; egress: Obj[] } };

  it('the unmutated export validates and holds every kind', () => {
    const objects = good();
    expect(new Set(objects.map((m) => m.kind))).toEqual(new Set(['ClusterGroup', 'ExternalIPPool', 'Egress', 'ClusterNetworkPolicy']));
    expect(policy(objects).spec.ingress[0]!.ports).toEqual([{ protocol: 'TCP', port: 8080, endPort: 8090 }]);
    expect(policy(objects).spec.egress[0]!.protocols).toEqual([{ icmp: { icmpType: 8 } }]);
    expect(validationErrors(objects)).toEqual([]);
  });

  it('an unknown field fails, at any depth and in every kind', () => {
    const cases: [string, (o: Obj[]) => void][] = [
      ['spec', (o) => (policy(o).spec as Obj).sequence = 3],
      ['rule', (o) => (policy(o).spec.ingress[0]!.logLabel = 'x')],
      ['port', (o) => ((policy(o).spec.ingress[0]!.ports as Obj[])[0]!.sourcePort = 1)],
      ['peer', (o) => ((policy(o).spec.egress[0]!.to as Obj[])[0]!.fqdn = 'example.org')],
      ['from in an egress rule', (o) => (policy(o).spec.egress[0]!.from = [{ group: 'x' }])],
      ['ClusterGroup', (o) => (first(o, 'ClusterGroup').spec.serviceReference = { name: 'a', namespace: 'b' })],
      ['Egress', (o) => (first(o, 'Egress').spec.bandwidth = { rate: '1M', burst: '1M' })],
      ['ExternalIPPool range', (o) => ((first(o, 'ExternalIPPool').spec.ipRanges as Obj[])[0]!.cidr = '192.168.0.192/28')],
      ['metadata', (o) => (first(o, 'Egress').metadata.namespace = 'shop')],
    ];
    for (const [where, mutate] of cases) {
      const objects = good();
      mutate(objects);
      expect({ where, failed: antreaSchemaErrors(objects).length > 0 }).toEqual({ where, failed: true });
    }
  });

  it('a wrong enum value fails: action, protocol, tier, selector operator', () => {
    const cases: [string, (o: Obj[]) => void][] = [
      ['action', (o) => (policy(o).spec.ingress[0]!.action = 'Deny')],
      ['protocol', (o) => ((policy(o).spec.ingress[0]!.ports as Obj[])[0]!.protocol = 'tcp')],
      ['tier', (o) => (policy(o).spec.tier = 'Application')],
      ['operator', (o) => (first(o, 'Egress').spec.appliedTo = { podSelector: { matchExpressions: [{ key: 'app', operator: 'Equals', values: ['api'] }] } })],
    ];
    for (const [where, mutate] of cases) {
      const objects = good();
      mutate(objects);
      expect({ where, errors: antreaSchemaErrors(objects).some((e) => e.includes('must be equal to one of the allowed values')) }).toEqual({ where, errors: true });
    }
  });

  it('a missing required field fails: priority, tier, rule action, metadata.name, Egress appliedTo, pool nodeSelector, ipBlock cidr', () => {
    const cases: [string, (o: Obj[]) => void][] = [
      ['priority', (o) => delete (policy(o).spec as Partial<{ priority: number }>).priority],
      ['tier', (o) => delete (policy(o).spec as Partial<{ tier: string }>).tier],
      ['action', (o) => delete policy(o).spec.ingress[0]!.action],
      ['name', (o) => delete first(o, 'ClusterGroup').metadata.name],
      ['appliedTo', (o) => delete first(o, 'Egress').spec.appliedTo],
      ['nodeSelector', (o) => delete first(o, 'ExternalIPPool').spec.nodeSelector],
      ['cidr', (o) => delete ((policy(o).spec.egress[0]!.to as Obj[])[0]!.ipBlock as Obj).cidr],
    ];
    for (const [where, mutate] of cases) {
      const objects = good();
      mutate(objects);
      expect({ where, errors: antreaSchemaErrors(objects).some((e) => e.includes('must have required property')) }).toEqual({ where, errors: true });
    }
  });

  it('a value out of range or of the wrong format fails: priority, port, endPort, ICMP type, CIDR, IP, names, label values', () => {
    const cases: [string, (o: Obj[]) => void][] = [
      ['priority 0', (o) => (policy(o).spec.priority = 0)],
      ['priority 10001', (o) => (policy(o).spec.priority = 10001)],
      ['port 0', (o) => ((policy(o).spec.ingress[0]!.ports as Obj[])[0]!.port = 0)],
      ['endPort 65536', (o) => ((policy(o).spec.ingress[0]!.ports as Obj[])[0]!.endPort = 65536)],
      ['named port', (o) => ((policy(o).spec.ingress[0]!.ports as Obj[])[0]!.port = 'HTTP_PORT')],
      ['icmpType 256', (o) => (((policy(o).spec.egress[0]!.protocols as Obj[])[0]!.icmp as Obj).icmpType = 256)],
      ['cidr', (o) => (((policy(o).spec.egress[0]!.to as Obj[])[0]!.ipBlock as Obj).cidr = '192.168.0.0/33')],
      ['egressIP', (o) => (first(o, 'Egress').spec.egressIP = '192.168.0.300')],
      ['policy name', (o) => (policy(o) as unknown as { metadata: Obj }).metadata.name = 'Web_Policy'],
      ['group reference', (o) => (first(o, 'Egress').spec.externalIPPool = 'pool/1')],
      ['label value', (o) => (first(o, 'ClusterGroup').metadata.labels = { 'app.kubernetes.io/managed-by': 'micro seg' })],
      ['apiVersion', (o) => (first(o, 'Egress').apiVersion = 'crd.antrea.io/v1alpha2')],
    ];
    for (const [where, mutate] of cases) {
      const objects = good();
      mutate(objects);
      expect({ where, failed: antreaSchemaErrors(objects).length > 0 }).toEqual({ where, failed: true });
    }
  });
});

describe('order', () => {
  it('categories go to the static tiers in microseg order and baseline after the NetworkPolicies', () => {
    const w = estate({ defaultAction: 'allow' });
    for (const category of ['baseline', 'application', 'environment', 'infrastructure', 'emergency'])
      put(w, 'FirewallPolicy', category, { category, priority: 1, rules: [{ name: 'r', action: 'drop', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] }] });
    const r = exportOf(w);
    expect(r.refusals).toEqual([]);
    expect(r.manifests.filter((m) => m.kind === 'ClusterNetworkPolicy').map((m) => `${(m.metadata as { name: string }).name}→${(m.spec as { tier: string }).tier}`)).toEqual([
      'emergency→emergency',
      'infrastructure→securityops',
      'environment→platform',
      'application→application',
      'baseline→baseline',
    ]);
    expect(validationErrors(r.manifests)).toEqual([]);
  });

  it('policies of one category get increasing priorities in evaluation order (priority, then name)', () => {
    const w = estate({ defaultAction: 'allow' });
    const rule = [{ name: 'r', action: 'allow', direction: 'in', destinations: [{ group: 'api' }] }];
    put(w, 'FirewallPolicy', 'late', { category: 'application', priority: 50, rules: rule });
    put(w, 'FirewallPolicy', 'tie-b', { category: 'application', priority: 7, rules: rule });
    put(w, 'FirewallPolicy', 'tie-a', { category: 'application', priority: 7, rules: rule });
    put(w, 'FirewallPolicy', 'first', { category: 'application', priority: 0, rules: rule });
    const r = exportOf(w);
    expect(['first', 'tie-a', 'tie-b', 'late'].map((n) => specOf(r.manifests, n).priority)).toEqual([1, 2, 3, 4]);
  });

  it('rules keep their order per direction; an inout rule becomes an ingress and an egress rule', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', {
      category: 'application',
      priority: 1,
      rules: [
        { name: 'a', action: 'allow', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] },
        { name: 'b', action: 'drop', direction: 'inout', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] },
        { name: 'c', action: 'drop', direction: 'out', sources: [{ group: 'web' }] },
        { name: 'd', action: 'allow', direction: 'in', destinations: [{ group: 'api' }], disabled: true },
        { name: 'e', action: 'drop', direction: 'in', destinations: [{ group: 'api' }] },
      ],
    });
    const spec = specOf(exportOf(w).manifests, 'p');
    expect(spec.ingress!.map((x) => `${String(x.name)} ${String(x.action)}`)).toEqual(['a Allow', 'b-in Drop', 'e Drop']);
    expect(spec.egress!.map((x) => `${String(x.name)} ${String(x.action)}`)).toEqual(['b-out Drop', 'c Drop']);
  });

  it('standalone FirewallRules keep their priority order', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', { category: 'application', priority: 1 });
    put(w, 'FirewallRule', 'p/z', { name: 'z', policy: 'p', priority: 1, action: 'allow', direction: 'in', destinations: [{ group: 'api' }] });
    put(w, 'FirewallRule', 'p/a', { name: 'a', policy: 'p', priority: 2, action: 'drop', direction: 'in', destinations: [{ group: 'api' }] });
    expect(specOf(exportOf(w).manifests, 'p').ingress!.map((x) => x.name)).toEqual(['z', 'a']);
  });

  it('a dropping default rule is the last baseline policy, dropping in and out for every pod', () => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, rules: [{ name: 'ops', action: 'allow', direction: 'in', destinations: [{ group: 'api' }] }] });
    const r = exportOf(w, true);
    expect(r.refusals).toEqual([]);
    expect(specOf(r.manifests, 'base').priority).toBe(1);
    expect(specOf(r.manifests, 'microseg-default-deny')).toEqual({
      tier: 'baseline',
      priority: 2,
      ingress: [{ name: 'default-in', action: 'Drop', appliedTo: [{ namespaceSelector: {} }] }],
      egress: [{ name: 'default-out', action: 'Drop', appliedTo: [{ namespaceSelector: {} }] }],
    });
    expect(validationErrors(r.manifests)).toEqual([]);
  });
});

describe('rule mapping', () => {
  it('allow, drop, reject and pass in application become Allow, Drop, Reject and Pass', () => {
    const w = estate({ defaultAction: 'allow' });
    const rules = (['allow', 'drop', 'reject', 'pass'] as const).map((action) => ({ name: action, action, direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] }));
    put(w, 'FirewallPolicy', 'p', { category: 'application', priority: 1, rules });
    const r = exportOf(w);
    expect(r.refusals).toEqual([]);
    expect(specOf(r.manifests, 'p').ingress!.map((x) => x.action)).toEqual(['Allow', 'Drop', 'Reject', 'Pass']);
  });

  it('the appliedTo of an in rule is its destinations ∩ the policy appliedTo; a lone pod-only group is referenced', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', {
      category: 'application',
      priority: 1,
      appliedTo: ['api'],
      rules: [
        { name: 'whole-group', action: 'allow', direction: 'in', sources: [{ group: 'web' }] },
        { name: 'narrowed', action: 'allow', direction: 'in', destinations: [{ podSelector: { namespaces: ['shop'], podSelector: { matchLabels: { tier: 'back' } } } }] },
      ],
    });
    const spec = specOf(exportOf(w).manifests, 'p');
    expect(spec.ingress![0]!.appliedTo).toEqual([{ group: 'api' }]);
    expect(spec.ingress![1]!.appliedTo).toEqual([{ podSelector: { matchLabels: { app: 'api', tier: 'back' } }, namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['shop'] }] } }]);
  });

  it('IP blocks keep except; a block its exceptions cover whole is left out (Antrea requires strict subsets)', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', {
      category: 'application',
      priority: 1,
      rules: [{ name: 'out', action: 'allow', direction: 'out', sources: [{ group: 'web' }], destinations: [{ cidr: '172.16.0.0/16', except: ['172.16.5.0/24'] }, { cidr: '2001:db8::/32', except: ['2001:db8::/64'] }, { cidr: '192.0.2.0/24', except: ['192.0.2.0/24'] }] }],
    });
    const r = exportOf(w);
    expect(specOf(r.manifests, 'p').egress![0]!.to).toEqual([{ ipBlock: { cidr: '172.16.0.0/16', except: ['172.16.5.0/24'] } }, { ipBlock: { cidr: '2001:db8::/32', except: ['2001:db8::/64'] } }]);
    expect(validationErrors(r.manifests)).toEqual([]);
  });

  it('negated IP peers become the whole address family with those addresses as except', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', {
      category: 'application',
      priority: 1,
      rules: [
        { name: 'not-bastion', action: 'drop', direction: 'in', sources: [{ vm: 'bastion' }, { cidr: '2001:db8::/32' }], sourcesExcluded: true, destinations: [{ group: 'api' }] },
        { name: 'only-db', action: 'drop', direction: 'out', sources: [{ group: 'web' }], destinations: [{ group: 'db' }], destinationsExcluded: true },
        // Negated VM destinations exclude no pod: the in rule applies to every pod the policy covers.
        { name: 'not-to-db', action: 'reject', direction: 'in', sources: [{ group: 'web' }], destinations: [{ vm: 'db' }], destinationsExcluded: true },
      ],
    });
    const r = exportOf(w, true);
    expect(r.refusals).toEqual([]);
    const spec = specOf(r.manifests, 'p');
    expect(spec.ingress![0]!.from).toEqual([{ ipBlock: { cidr: '0.0.0.0/0', except: ['172.16.0.20/32'] } }, { ipBlock: { cidr: '::/0', except: ['2001:db8::/32'] } }]);
    expect(spec.egress![0]!.to).toEqual([{ ipBlock: { cidr: '0.0.0.0/0', except: ['172.16.0.10/32'] } }, { ipBlock: { cidr: '::/0' } }]);
    expect(spec.ingress![1]).toEqual({ name: 'not-to-db', action: 'Reject', appliedTo: [{ namespaceSelector: {} }], from: [{ group: 'web' }] });
    expect(validationErrors(r.manifests)).toEqual([]);
  });

  it('VM peers become /32 ipBlocks, also for ingress', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', { category: 'application', priority: 1, rules: [{ name: 'from-bastion', action: 'allow', direction: 'in', sources: [{ vm: 'bastion' }], destinations: [{ group: 'api' }] }] });
    expect(specOf(exportOf(w).manifests, 'p').ingress![0]!.from).toEqual([{ ipBlock: { cidr: '172.16.0.20/32' } }]);
  });

  it('ports: numbers, ranges as port + endPort, named ports, protocol-only, any = TCP, UDP and SCTP, icmp with type', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', {
      category: 'application',
      priority: 1,
      rules: [
        {
          name: 'svc',
          action: 'allow',
          direction: 'in',
          destinations: [{ group: 'api' }],
          services: [{ protocol: 'tcp', ports: [80, '9000-9100', 'grpc', '443-443'] }, { protocol: 'udp' }, { protocol: 'any', ports: [53] }, { protocol: 'icmp', icmpType: 8 }, { protocol: 'icmpv6' }],
        },
      ],
    });
    const r = exportOf(w);
    const rule = specOf(r.manifests, 'p').ingress![0]!;
    expect(rule.ports).toEqual([
      { protocol: 'TCP', port: 80 },
      { protocol: 'TCP', port: 9000, endPort: 9100 },
      { protocol: 'TCP', port: 'grpc' },
      { protocol: 'TCP', port: 443 },
      { protocol: 'UDP' },
      { protocol: 'TCP', port: 53 },
      { protocol: 'UDP', port: 53 },
      { protocol: 'SCTP', port: 53 },
    ]);
    // Antrea's icmp is ICMPv6 for IPv6 peers; the pods of this IPv4 cluster send no ICMPv6.
    expect(rule.protocols).toEqual([{ icmp: { icmpType: 8 } }]);
    expect(validationErrors(r.manifests)).toEqual([]);
  });

  it('a rule only ICMPv6 flows match is left out in an IPv4 cluster: no pod flow matches it', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', { category: 'application', priority: 1, rules: [{ name: 'v6', action: 'drop', services: [{ protocol: 'icmpv6' }] }] });
    const r = exportOf(w);
    expect(r.refusals).toEqual([]);
    expect(r.manifests.filter((m) => m.kind === 'ClusterNetworkPolicy')).toEqual([]);
  });

  it('logged rules set enableLogging', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', { category: 'application', priority: 1, rules: [{ name: 'l', action: 'drop', direction: 'in', destinations: [{ group: 'api' }], logged: true }] });
    expect(specOf(exportOf(w).manifests, 'p').ingress![0]!.enableLogging).toBe(true);
  });

  it('a SecurityGroup of pods and VMs is a ClusterGroup of child groups, created before it and before the policies', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'SecurityGroup', 'mixed', { podSelectors: [{ podSelector: { matchLabels: { app: 'web' } } }, { namespaces: ['ops'] }], vms: ['bastion'], ipBlocks: [{ cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] }] });
    put(w, 'FirewallPolicy', 'p', { category: 'application', priority: 1, rules: [{ name: 'in', action: 'allow', direction: 'in', sources: [{ group: 'mixed' }], destinations: [{ group: 'api' }] }] });
    const r = exportOf(w);
    expect(r.manifests.filter((m) => m.kind === 'ClusterGroup').map((m) => [(m.metadata as { name: string }).name, m.spec])).toEqual([
      ['mixed-pods-0', { podSelector: { matchLabels: { app: 'web' } } }],
      ['mixed-pods-1', { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ops'] }] } }],
      ['mixed-ips', { ipBlocks: [{ cidr: '172.16.0.20/32' }, { cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] }] }],
      ['mixed', { childGroups: ['mixed-pods-0', 'mixed-pods-1', 'mixed-ips'] }],
      ['api', { podSelector: { matchLabels: { app: 'api' } } }],
    ]);
    expect(specOf(r.manifests, 'p').ingress![0]!.from).toEqual([{ group: 'mixed' }]);
    expect(validationErrors(r.manifests)).toEqual([]);
  });

  it('a pass in baseline becomes the default rule action (Antrea rejects Pass there; microseg goes on to the default rule)', () => {
    for (const defaultAction of ['allow', 'drop'] as const) {
      const w = estate({ defaultAction });
      put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, rules: [{ name: 'skip', action: 'pass', direction: 'in', destinations: [{ group: 'api' }] }] });
      const r = exportOf(w);
      expect(specOf(r.manifests, 'base').ingress![0]!.action).toBe(defaultAction === 'allow' ? 'Allow' : 'Drop');
      expect(validationErrors(r.manifests)).toEqual([]);
    }
  });

  it('a pass before application is exported where no application rule can match the same flows', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'to-np', action: 'pass', direction: 'in', destinations: [{ podSelector: { namespaces: ['ops'] } }] }] });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'shop-only', action: 'drop', direction: 'in', destinations: [{ podSelector: { namespaces: ['shop'] } }] }] });
    const r = exportOf(w, true);
    expect(r.refusals).toEqual([]);
    expect(specOf(r.manifests, 'env').ingress![0]!.action).toBe('Pass');
  });

  it('EgressIps become Egress objects applied to the pods they serve', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'EgressIp', 'shop-out', { cluster: 'c1', ip: '192.168.0.200', podSelector: { namespaces: ['shop'], podSelector: { matchLabels: { app: 'web' } } } });
    const r = exportOf(w);
    expect(named(r.manifests, 'Egress', 'shop-out').spec).toEqual({
      appliedTo: { podSelector: { matchLabels: { app: 'web' } }, namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['shop'] }] } },
      egressIP: '192.168.0.200',
    });
    expect(validationErrors(r.manifests)).toEqual([]);
  });

  it('an EgressIp allocated from a pool brings the pool as an ExternalIPPool, whole, before the Egress', () => {
    const w = estate({ defaultAction: 'allow' });
    w.upsert('EgressIp', 'pooled', { cluster: 'c1', pool: '192.168.0.192/28', podSelector: { podSelector: { matchLabels: { app: 'api' } } } }, { allocatedIp: '192.168.0.192' });
    const r = exportOf(w);
    expect(r.refusals).toEqual([]);
    expect(r.manifests.map((m) => `${String(m.kind)} ${(m.metadata as { name: string }).name}`)).toEqual(['ExternalIPPool microseg-pool-192.168.0.192-28', 'Egress pooled']);
    expect(r.manifests[0]!.spec).toEqual({ ipRanges: [{ start: '192.168.0.192', end: '192.168.0.207' }], nodeSelector: {} });
    expect(r.manifests[1]!.spec).toEqual({ appliedTo: { podSelector: { matchLabels: { app: 'api' } } }, egressIP: '192.168.0.192', externalIPPool: 'microseg-pool-192.168.0.192-28' });
    expect(validationErrors(r.manifests)).toEqual([]);
  });

  it('KubernetesNetworkPolicies are exported as NetworkPolicy objects', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'KubernetesNetworkPolicy', 'c1/shop/api-in', { name: 'api-in', cluster: 'c1', namespace: 'shop', podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] });
    expect(exportOf(w).manifests.filter((m) => m.kind === 'NetworkPolicy').map((m) => m.metadata)).toEqual([{ name: 'api-in', namespace: 'shop' }]);
  });
});

describe('refusals name the construct and the reason', () => {
  it("ingress from the nodes that microseg drops, which Antrea admits from a pod's own node ahead of every policy", () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'api-closed', action: 'drop', direction: 'in', destinations: [{ group: 'api' }] }] });
    expect(exportOf(w).refusals).toEqual([
      {
        construct: 'ingress from the nodes of cluster c1',
        reason: expect.stringMatching(/^Antrea admits traffic from a pod's own node .* ahead of every policy, but microseg drops it for pods \{"matchLabels":\{"app":"api"\}\} in ops \(FirewallPolicy app\/api-closed\).*accept that with --pods-only$/),
      },
    ]);
  });

  it('podsOnly accepts that; a drop whose sources leave the nodes out needs nothing', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'api-closed', action: 'drop', direction: 'in', destinations: [{ group: 'api' }] }] });
    const r = exportOf(w, true);
    expect(r.refusals).toEqual([]);
    expect(specOf(r.manifests, 'app').ingress).toEqual([{ name: 'api-closed', action: 'Drop', appliedTo: [{ group: expect.any(String) }] }]);
    // Negated sources that hold the nodes: they are not dropped, and nothing is refused without podsOnly.
    put(w, 'FirewallPolicy', 'app', {
      category: 'application',
      priority: 1,
      rules: [{ name: 'not-nodes', action: 'drop', direction: 'in', sources: [{ cidr: '192.168.0.0/24' }], sourcesExcluded: true, destinations: [{ group: 'api' }] }],
    });
    expect(exportOf(w).refusals).toEqual([]);
  });

  it('a pass before application that may skip an application rule', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'delegate', action: 'pass', direction: 'in', destinations: [{ group: 'api' }] }] });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'api-in', action: 'allow', direction: 'in', sources: [{ group: 'web' }], destinations: [{ group: 'api' }], services: [{ protocol: 'tcp', ports: [9090] }] }] });
    expect(exportOf(w).refusals).toEqual([
      {
        construct: 'FirewallPolicy env/delegate',
        reason: 'pass in environment: microseg continues at the application category, an Antrea Pass skips every tier down to the K8s NetworkPolicies, and application rule app/api-in may match the same ingress flows',
      },
    ]);
  });

  it('staged policies', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'trial', { category: 'application', priority: 1, enforcement: 'staged', rules: [{ name: 'x', action: 'drop' }] });
    expect(exportOf(w).refusals).toEqual([{ construct: 'FirewallPolicy trial: enforcement staged', reason: expect.stringContaining('no audit-only form') }]);
  });

  it('negated pod peers, and negated IP blocks with except', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', {
      category: 'application',
      priority: 1,
      rules: [
        { name: 'not-web', action: 'drop', direction: 'in', sources: [{ group: 'web' }], sourcesExcluded: true, destinations: [{ group: 'api' }] },
        { name: 'not-api', action: 'drop', direction: 'in', destinations: [{ group: 'api' }], destinationsExcluded: true },
        { name: 'not-block', action: 'drop', direction: 'out', sources: [{ group: 'web' }], destinations: [{ cidr: '192.0.2.0/24', except: ['192.0.2.0/25'] }], destinationsExcluded: true },
      ],
    });
    expect(exportOf(w).refusals).toEqual([
      { construct: 'FirewallPolicy p/not-web', reason: expect.stringContaining('cannot negate a label selector') },
      { construct: 'FirewallPolicy p/not-api', reason: expect.stringContaining('cannot negate a label selector') },
      { construct: 'FirewallPolicy p/not-block', reason: expect.stringContaining('negated IP blocks with except') },
    ]);
  });

  it('static workload members', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'SecurityGroup', 'pinned', { workloads: ['c1/shop/web'] });
    put(w, 'FirewallPolicy', 'p', { category: 'application', priority: 1, rules: [{ name: 'r', action: 'allow', direction: 'in', sources: [{ group: 'pinned' }], destinations: [{ group: 'api' }] }] });
    expect(exportOf(w).refusals).toEqual([{ construct: 'FirewallPolicy p/r', reason: 'group pinned has static workload members: Antrea selects pods by labels only' }]);
  });

  it('destinations given as IP blocks inside the pod CIDR', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'p', { category: 'application', priority: 1, rules: [{ name: 'r', action: 'drop', direction: 'in', destinations: [{ cidr: '10.1.2.0/24' }] }] });
    expect(exportOf(w).refusals).toEqual([{ construct: 'FirewallPolicy p/r', reason: expect.stringContaining('overlapping the pod CIDR 10.1.0.0/16') }]);
  });

  it('EgressIps that may select the same pod (Antrea would pick one at random)', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'EgressIp', 'a', { cluster: 'c1', ip: '192.168.0.200', podSelector: { namespaces: ['shop'] } });
    put(w, 'EgressIp', 'b', { cluster: 'c1', ip: '192.168.0.201', podSelector: { podSelector: { matchLabels: { app: 'web' } } } });
    put(w, 'EgressIp', 'c', { cluster: 'c1', ip: '192.168.0.202', podSelector: { namespaces: ['ops'] } });
    const r = exportOf(w);
    expect(r.refusals).toEqual([{ construct: 'EgressIp b', reason: expect.stringContaining('may select pods that EgressIp a selects too') }]);
    expect(r.manifests.filter((m) => m.kind === 'Egress').map((m) => (m.metadata as { name: string }).name)).toEqual(['a', 'c']);
  });
});

describe('the overlap tests behind the refusals are sound', () => {
  it('selectors are disjoint only when no label set satisfies both', () => {
    expect(selectorsMayOverlap({ matchLabels: { app: 'a' } }, { matchLabels: { app: 'b' } })).toBe(false);
    expect(selectorsMayOverlap({ matchLabels: { app: 'a' } }, { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['a'] }] })).toBe(false);
    expect(selectorsMayOverlap({ matchExpressions: [{ key: 'x', operator: 'Exists' }] }, { matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] })).toBe(false);
    expect(selectorsMayOverlap({ matchExpressions: [{ key: 'x', operator: 'In', values: ['1', '2'] }] }, { matchExpressions: [{ key: 'x', operator: 'In', values: ['2', '3'] }] })).toBe(true);
    expect(selectorsMayOverlap({ matchLabels: { app: 'a' } }, { matchLabels: { tier: 'b' } })).toBe(true);
    expect(selectorsMayOverlap({ matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['1'] }] }, { matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] })).toBe(true);
  });

  it('services are disjoint only by protocol or port', () => {
    expect(servicesMayOverlap([{ protocol: 'tcp', ports: [80] }], [{ protocol: 'tcp', ports: ['81-90'] }])).toBe(false);
    expect(servicesMayOverlap([{ protocol: 'tcp', ports: [80] }], [{ protocol: 'udp', ports: [80] }])).toBe(false);
    expect(servicesMayOverlap([{ protocol: 'tcp', ports: [80] }], [{ protocol: 'tcp', ports: ['http'] }])).toBe(true);
    expect(servicesMayOverlap([{ protocol: 'any' }], [{ protocol: 'icmp' }])).toBe(true);
    expect(servicesMayOverlap(undefined, [{ protocol: 'tcp', ports: [1] }])).toBe(true);
  });
});

describe('the getKubernetesManifests function (Pulumi invoke)', () => {
  it('passes the flavor through', () => {
    const w = estate({ defaultAction: 'drop' });
    const r = runFunction(w, 'getKubernetesManifests', { cluster: 'c1', flavor: 'antrea', podsOnly: true }) as { manifests: Obj[]; yaml: string };
    expect(r.manifests.map((m) => `${String(m.apiVersion)} ${String(m.kind)}`)).toEqual(['crd.antrea.io/v1beta1 ClusterNetworkPolicy']);
    expect(parse(r.yaml)).toEqual(r.manifests[0]);
  });
});

describe('microseg export --flavor antrea', () => {
  const cli = (fn: (io: MemoryIo) => Promise<number>, cwd = ROOT) => runCli(fn, { cwd });

  it('prints the objects of a topology file as multi-document YAML', async () => {
    const r = await cli((io) => runExport({ cluster: 'ake', flavor: 'antrea', podsOnly: true, topology: 'examples/topologies/kubernetes-networkpolicies.yaml' }, io));
    expect(r).toEqual({ code: 0, out: readFileSync(path.join(ROOT, 'test/data/golden/kubernetes-networkpolicies.antrea.yaml'), 'utf8'), err: '' });
  });

  it('exits 1 listing every refusal, and prints no object', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'microseg-antrea-'));
    try {
      writeFileSync(
        path.join(dir, 'staged.yaml'),
        stringify({
          name: 'staged',
          resources: {
            c1: { type: 'microseg:index:KubernetesCluster', properties: { podCidr: '10.1.0.0/16', serviceCidr: '10.96.0.0/12', nodes: [{ name: 'n1', ip: '192.168.0.11' }] } },
            trial: { type: 'microseg:index:FirewallPolicy', properties: { category: 'application', enforcement: 'staged', rules: [{ name: 'x', action: 'drop' }] } },
          },
        }),
      );
      const r = await cli((io) => runExport({ cluster: 'c1', flavor: 'antrea', topology: 'staged.yaml' }, io), dir);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toBe(
        'microseg: export refused: 1 construct(s) cannot be expressed in flavor antrea without changing a verdict:\n  FirewallPolicy trial: enforcement staged: an Antrea-native rule always decides (enableLogging only logs its decision): there is no audit-only form that keeps the verdicts\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the flagship cluster (examples/vcci-app)', () => {
  it('exports whole in flavor antrea (no refusal) and every object validates', async () => {
    const { vcciWorld } = await import('../../support/vcci-world');
    const w = await vcciWorld();
    const r = getKubernetesManifests(w, { cluster: 'vcci', flavor: 'antrea', podsOnly: true });
    expect(r.refusals).toEqual([]);
    expect(validationErrors(r.manifests)).toEqual([]);
    const kinds = r.manifests.map((m) => m.kind);
    expect(new Set(kinds)).toEqual(new Set(['ClusterGroup', 'Egress', 'ClusterNetworkPolicy', 'NetworkPolicy'].filter((k) => kinds.includes(k))));
    expect(kinds.filter((k) => k === 'Egress')).toHaveLength(2);
    // docs/kubernetes.md shows the dev stack's 15 objects; with the default rule drop the baseline deny follows.
    expect(r.manifests).toHaveLength(16);
    expect((r.manifests[15]!.metadata as { name: string }).name).toBe('microseg-default-deny');
    // The VM peers the standard ClusterNetworkPolicy refuses are ipBlocks here.
    expect(JSON.stringify(r.manifests)).toContain('"cidr":"192.168.28.213/32"');
    expect(JSON.stringify(r.manifests)).toContain('"cidr":"192.168.28.99/32"');
    // Without podsOnly only the nodes are refused: microseg's default rule drops them, Antrea admits a pod's own node.
    expect(getKubernetesManifests(w, { cluster: 'vcci', flavor: 'antrea' }).refusals.map((x) => x.construct)).toEqual(['ingress from the nodes of cluster vcci']);
  }, 120_000);
});
