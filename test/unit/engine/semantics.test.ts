import { effectiveRules, groupsOf, validateSpec, delta, connectivityMatrix } from '../../../provider/src/engine';
import { allowAll, decided, estate, put, trace } from './helpers';

const WEB = 'c1/shop/web';
const API = 'c1/shop/api';

describe('evaluation order', () => {
  it('evaluates categories emergency before infrastructure before environment before application', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'allow', action: 'allow' }] });
    put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 50, rules: [{ name: 'drop', action: 'drop', destinations: [{ group: 'api' }] }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop env/drop');
    put(w, 'FirewallPolicy', 'emer', { category: 'emergency', priority: 99, rules: [{ name: 'allow', action: 'allow', destinations: [{ group: 'api' }] }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow emer/allow');
  });

  it('orders equal priorities by policy name and warns about the tie', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'b-allow', { priority: 10, rules: [{ name: 'r', action: 'allow' }] });
    put(w, 'FirewallPolicy', 'a-drop', { priority: 10, rules: [{ name: 'r', action: 'drop' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop a-drop/r');
    expect(w.warnings()).toEqual(
      ['a-drop', 'b-allow'].map((name) => expect.objectContaining({ code: 'priority-tie', severity: 'warning', object: { kind: 'FirewallPolicy', name } })),
    );
  });

  it('orders lower policy priority first', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'a', { priority: 20, rules: [{ name: 'r', action: 'drop' }] });
    put(w, 'FirewallPolicy', 'b', { priority: 10, rules: [{ name: 'r', action: 'allow' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow b/r');
  });

  it('evaluates inline rules in list order', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'z-first', action: 'allow' }, { name: 'a-second', action: 'drop' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow p/z-first');
  });

  it('evaluates standalone rules by priority then name', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', {});
    put(w, 'FirewallRule', 'r3', { policy: 'p', priority: 5, action: 'drop' });
    put(w, 'FirewallRule', 'r2', { policy: 'p', priority: 1, action: 'reject' });
    put(w, 'FirewallRule', 'r1', { policy: 'p', priority: 1, action: 'allow' });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow p/r1');
    w.remove('FirewallRule', 'r1');
    expect(decided(trace(w, WEB, API, 9090))).toBe('reject p/r2');
  });

  it('pass skips the rest of its category and later non-application categories', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'infra', { category: 'infrastructure', priority: 1, rules: [{ name: 'pass', action: 'pass' }, { name: 'drop', action: 'drop' }] });
    put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'drop', action: 'drop' }] });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'allow', action: 'allow' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow app/allow');
  });

  it('pass in the application category goes to the default rule', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'app', { priority: 1, rules: [{ name: 'pass', action: 'pass' }, { name: 'drop', action: 'drop' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow default/default');
  });

  it('reports reject as reject', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'r', action: 'reject', direction: 'in' }] });
    allowAll(w);
    const t = trace(w, WEB, API, 9090);
    expect(decided(t)).toBe('reject p/r');
    expect(t.observations.at(-1)).toMatchObject({ component: 'destination-firewall', action: 'reject' });
  });

  it('default rule drops when configured to drop', () => {
    expect(decided(trace(estate({ defaultAction: 'drop' }), WEB, API, 9090))).toBe('drop default/default');
  });

  it('default rule allows when configured to allow', () => {
    expect(decided(trace(estate({ defaultAction: 'allow' }), WEB, API, 9090))).toBe('allow default/default');
  });

  it('skips disabled rules', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'off', action: 'allow', disabled: true }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop default/default');
  });
});

describe('rule matching', () => {
  it('applies a policy only where its appliedTo groups are', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { appliedTo: ['api'], rules: [{ name: 'r', action: 'drop' }] });
    allowAll(w);
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop p/r');
    expect(decided(trace(w, API, WEB, 8080))).toBe('drop p/r'); // out side of api
    expect(decided(trace(w, WEB, 'c1/ops/tools', 1))).toBe('allow zz-allow-all/any');
  });

  it('intersects rule-level appliedTo with the policy appliedTo', () => {
    const w = estate();
    put(w, 'SecurityGroup', 'shop', { podSelectors: [{ namespaces: ['shop'] }] });
    put(w, 'FirewallPolicy', 'p', { appliedTo: ['shop'], rules: [{ name: 'r', action: 'drop', appliedTo: ['web'], direction: 'in' }] });
    allowAll(w);
    expect(decided(trace(w, API, WEB, 8080))).toBe('drop p/r');
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow zz-allow-all/any');
  });

  it('evaluates out rules at the source and in rules at the destination', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'in-only', action: 'drop', direction: 'in', destinations: [{ group: 'web' }] }] });
    allowAll(w);
    const t = trace(w, API, WEB, 8080);
    expect(t.observations[0]).toMatchObject({ component: 'source-firewall', action: 'allow', policy: 'zz-allow-all' });
    expect(decided(t)).toBe('drop p/in-only');
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'out-only', action: 'drop', direction: 'out', sources: [{ group: 'web' }] }] });
    expect(decided(trace(w, API, WEB, 8080))).toBe('allow zz-allow-all/any');
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop p/out-only');
  });

  it('negates sources with sourcesExcluded', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'not-web', action: 'drop', direction: 'in', sources: [{ group: 'web' }], sourcesExcluded: true }] });
    allowAll(w);
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow zz-allow-all/any');
    expect(decided(trace(w, 'c1/ops/tools', API, 9090))).toBe('drop p/not-web');
  });

  it('negates destinations with destinationsExcluded', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'only-api', action: 'drop', direction: 'out', destinations: [{ group: 'api' }], destinationsExcluded: true }] });
    allowAll(w);
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow zz-allow-all/any');
    expect(decided(trace(w, WEB, 'c1/ops/tools', 1))).toBe('drop p/only-api');
  });

  it.each([
    ['tcp', 80, 'tcp', 80, true],
    ['tcp', 80, 'udp', 80, false],
    ['udp', 53, 'udp', 53, true],
    ['sctp', 3868, 'sctp', 3868, true],
    ['tcp', '8000-8100', 'tcp', 8080, true],
    ['tcp', '8000-8100', 'tcp', 8101, false],
    ['any', undefined, 'icmp', undefined, true],
  ] as const)('service %s %s matches %s/%s: %s', (proto, ports, flowProto, port, matches) => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'svc', action: 'allow', services: [{ protocol: proto, ...(ports !== undefined ? { ports: [ports] } : {}) }] }] });
    expect(trace(w, WEB, API, port, flowProto).verdict).toBe(matches ? 'allow' : 'drop');
  });

  it('matches icmp by type', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'ping', action: 'allow', services: [{ protocol: 'icmp', icmpType: 8 }] }] });
    expect(w.verdict({ source: WEB, destination: API, protocol: 'icmp', icmpType: 8 })).toMatchObject({ verdict: 'allow' });
    expect(w.verdict({ source: WEB, destination: API, protocol: 'icmp', icmpType: 0 })).toMatchObject({ verdict: 'drop' });
  });

  it('resolves named ports against the destination workload', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'http', action: 'allow', services: [{ protocol: 'tcp', ports: ['http'] }] }] });
    expect(trace(w, API, WEB, 8080).verdict).toBe('allow');
    expect(trace(w, API, WEB, 80).verdict).toBe('drop');
    expect(trace(w, WEB, API, 8080).verdict).toBe('drop'); // api has no port named http
  });

  it('matches an IP block and excludes its except ranges', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'net', action: 'allow', destinations: [{ cidr: '172.16.0.0/16', except: ['172.16.0.16/28'] }] }, { name: 'db-in', action: 'allow', direction: 'in' }] });
    expect(trace(w, 'vm:bastion', 'db', 5432).verdict).toBe('allow');
    expect(decided(trace(w, 'db', 'bastion', 22))).toBe('drop default/default');
  });
});

describe('selectors and groups', () => {
  const sel = (expr: Record<string, unknown>) => ({ podSelectors: [{ podSelector: expr }] });
  it.each([
    ['matchLabels', { matchLabels: { tier: 'front' } }, ['c1/shop/web-0', 'c1/shop/web-1']],
    ['In', { matchExpressions: [{ key: 'app', operator: 'In', values: ['api', 'tools'] }] }, ['c1/ops/tools-0', 'c1/shop/api-0']],
    ['NotIn (also selects pods without the key)', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, ['c1/ops/tools-0', 'c1/shop/api-0']],
    ['Exists', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, ['c1/shop/api-0', 'c1/shop/web-0', 'c1/shop/web-1']],
    ['DoesNotExist', { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, ['c1/ops/tools-0']],
    ['empty selects all', {}, ['c1/ops/tools-0', 'c1/shop/api-0', 'c1/shop/web-0', 'c1/shop/web-1']],
  ])('pod selector %s', (_n, expr, members) => {
    const w = estate();
    put(w, 'SecurityGroup', 'g', sel(expr));
    expect(w.groupMembers('g').members.map((m) => m.name)).toEqual(members);
  });

  it('selects namespaces by label', () => {
    const w = estate();
    put(w, 'SecurityGroup', 'g', { podSelectors: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] });
    expect(w.groupMembers('g').members.map((m) => m.name)).toEqual(['c1/ops/tools-0']);
    put(w, 'Namespace', 'c1/shop', { name: 'shop', cluster: 'c1', labels: { team: 'ops' } });
    expect(w.groupMembers('g').members).toHaveLength(4);
  });

  it('follows workload relabels and replica changes', () => {
    const w = estate();
    put(w, 'Workload', 'c1/ops/tools', { name: 'tools', cluster: 'c1', namespace: 'ops', labels: { app: 'web' }, replicas: 2 });
    expect(w.groupMembers('web').members).toHaveLength(4);
  });

  it('unions nested groups', () => {
    const w = estate();
    put(w, 'SecurityGroup', 'app', { groups: ['web', 'api'] });
    put(w, 'SecurityGroup', 'all', { groups: ['app', 'db'], ipBlocks: [{ cidr: '203.0.113.0/24' }] });
    expect(w.groupMembers('all').members.map((m) => m.name)).toEqual(['c1/shop/api-0', 'c1/shop/web-0', 'c1/shop/web-1', 'db#0']);
    expect(w.groupMembers('all').ipBlocks).toEqual(['203.0.113.0/24']);
    expect(groupsOf(w, WEB)).toEqual(['all', 'app', 'web']);
  });

  it('recompiles policies when a nested group changes', () => {
    const w = estate();
    put(w, 'SecurityGroup', 'outer', { groups: ['inner'] });
    put(w, 'SecurityGroup', 'inner', { vms: [] });
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'r', action: 'allow', sources: [{ group: 'outer' }] }] });
    expect(trace(w, WEB, API, 1).verdict).toBe('drop');
    put(w, 'SecurityGroup', 'inner', { workloads: ['c1/shop/web'] });
    expect(decided(trace(w, WEB, API, 1))).toBe('allow p/r');
  });
});

describe('translations', () => {
  it('SNATs pod traffic leaving an overlay cluster to the node IP', () => {
    const w = estate({ networkMode: 'overlay' });
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'r', action: 'allow', sources: [{ group: 'web' }] }] });
    const t = trace(w, WEB, 'db', 5432);
    expect(t.observations.find((o) => o.component === 'snat')).toMatchObject({ translatedSourceIp: '192.168.0.11' });
    expect(decided(t)).toBe('drop default/default'); // db sees the node IP, not a web pod
  });

  it('keeps the pod IP in flat mode', () => {
    const w = estate({ networkMode: 'flat' });
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'r', action: 'allow', sources: [{ group: 'web' }] }] });
    const t = trace(w, WEB, 'db', 5432);
    expect(t.observations.some((o) => o.component === 'snat')).toBe(false);
    expect(decided(t)).toBe('allow p/r');
  });

  it('SNATs to the egress IP, which a VM rule can match', () => {
    const w = estate();
    put(w, 'EgressIp', 'web-egress', { cluster: 'c1', pool: '198.51.100.0/30', podSelector: { podSelector: { matchLabels: { app: 'web' } } } });
    put(w, 'SecurityGroup', 'web-out', { egressIps: ['web-egress'] });
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'out', action: 'allow', direction: 'out' }, { name: 'db-from-web', action: 'allow', direction: 'in', sources: [{ group: 'web-out' }], destinations: [{ group: 'db' }] }] });
    expect(w.outputsOf('EgressIp', 'web-egress')).toEqual({ allocatedIp: '198.51.100.0' });
    const t = trace(w, WEB, 'db', 5432);
    expect(t.observations.find((o) => o.component === 'snat')).toMatchObject({ translatedSourceIp: '198.51.100.0' });
    expect(decided(t)).toBe('allow p/db-from-web');
    expect(decided(trace(w, API, 'db', 5432))).toBe('drop default/default');
  });

  it('DNATs a VIP to a healthy member deterministically and follows churn', () => {
    const w = estate();
    allowAll(w);
    put(w, 'LoadBalancer', 'web-lb', { vip: '10.200.0.1', listeners: [{ port: 80, targetPort: 'http' }], pool: { group: 'web' } });
    const a = trace(w, API, 'lb:web-lb', 80);
    const lb = a.observations.find((o) => o.component === 'load-balancer')!;
    expect(lb).toMatchObject({ action: 'dnat', translatedPort: 8080 });
    expect(trace(w, API, 'lb:web-lb', 80).observations.find((o) => o.component === 'load-balancer')).toEqual(lb);
    const chosen = lb.translatedDestinationIp!;
    const member = w.groupMembers('web').members.find((m) => m.ip === chosen)!;
    w.setMemberHealth(member.name, false);
    const other = trace(w, API, 'lb:web-lb', 80).observations.find((o) => o.component === 'load-balancer')!;
    expect(other.translatedDestinationIp).not.toBe(chosen);
    put(w, 'Workload', 'c1/shop/web', { name: 'web', cluster: 'c1', namespace: 'shop', labels: { app: 'web' }, replicas: 0, ports: [{ name: 'http', port: 8080 }] });
    expect(decided(trace(w, API, 'lb:web-lb', 80))).toBe('drop lb:web-lb/no-healthy-member');
  });

  it('evaluates the source side against the VIP before DNAT', () => {
    const w = estate();
    put(w, 'LoadBalancer', 'web-lb', { vip: '10.200.0.1', listeners: [{ port: 80, targetPort: 8080 }], pool: { group: 'web' } });
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'to-vip', action: 'allow', direction: 'out', destinations: [{ cidr: '10.200.0.1' }] }, { name: 'web-in', action: 'allow', direction: 'in', destinations: [{ group: 'web' }], services: [{ protocol: 'tcp', ports: [8080] }] }] });
    expect(decided(trace(w, API, '10.200.0.1', 80))).toBe('allow p/web-in');
  });
});

describe('staged and quarantine', () => {
  it('reports staged policies without changing the verdict', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'stage', { priority: 1, enforcement: 'staged', rules: [{ name: 'would-drop', action: 'drop' }] });
    allowAll(w);
    const t = trace(w, WEB, API, 9090);
    expect(decided(t)).toBe('allow zz-allow-all/any');
    expect(t.staged[0]).toEqual({ category: 'application', policy: 'stage', rule: 'would-drop', action: 'drop' });
    expect(t.observations[0]!.staged).toHaveLength(1);
  });

  it('expands quarantine to highest-priority emergency rules with a forensic exception', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'emer', { category: 'emergency', priority: 0, rules: [{ name: 'allow', action: 'allow' }] });
    put(w, 'QuarantinePolicy', 'q', { selector: { matchExpressions: [{ key: 'quarantine', operator: 'Exists' }] }, forensicGroup: 'bastion' });
    expect(trace(w, WEB, API, 9090).verdict).toBe('allow');
    put(w, 'Workload', 'c1/shop/api', { name: 'api', cluster: 'c1', namespace: 'shop', labels: { app: 'api', quarantine: 'ir-42' }, replicas: 1 });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop q/isolate-in');
    expect(decided(trace(w, API, WEB, 8080))).toBe('drop q/isolate-out');
    expect(decided(trace(w, 'bastion', API, 22))).toBe('allow q/forensic-in');
    expect((effectiveRules(w, API) as { policy: string }[])[0]).toMatchObject({ policy: 'q', rule: 'forensic-in' });
  });
});

describe('queries', () => {
  it('lists effective rules in evaluation order', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'b', { priority: 2, rules: [{ name: 'r', action: 'allow' }] });
    put(w, 'FirewallPolicy', 'a', { priority: 1, appliedTo: ['api'], rules: [{ name: 'r', action: 'drop', direction: 'in' }] });
    const rules = effectiveRules(w, API) as { policy: string; direction: string }[];
    expect(rules.map((r) => `${r.policy}:${r.direction}`)).toEqual(['a:in', 'b:inout']);
    expect((effectiveRules(w, WEB) as unknown[]).length).toBe(2); // one per pod
  });

  it('computes a connectivity matrix between groups', () => {
    const w = estate();
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'r', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] }] });
    const cells = connectivityMatrix(w, ['web', 'api'], 'tcp', 9090);
    expect(cells.find((c) => c.from === 'web' && c.to === 'api')).toMatchObject({ verdict: 'allow', allowed: 2, total: 2 });
    expect(cells.find((c) => c.from === 'api' && c.to === 'web')).toMatchObject({ verdict: 'deny' });
  });

  it('diffs two worlds into newly allowed and newly blocked flows', () => {
    const before = estate();
    const after = before.clone();
    put(after, 'FirewallPolicy', 'p', { rules: [{ name: 'r', action: 'allow', sources: [{ group: 'api' }], destinations: [{ group: 'web' }] }] });
    const d = delta(before, after, [WEB, API], [{ protocol: 'tcp', port: 8080 }]);
    expect(d.newlyBlocked).toEqual([]);
    expect(d.newlyAllowed.map((c) => `${c.source}->${c.destination}`)).toEqual(['c1/shop/api-0->c1/shop/web-0', 'c1/shop/api-0->c1/shop/web-1']);
    expect(d.newlyAllowed[0]!.after.decision).toMatchObject({ policy: 'p', rule: 'r' });
  });
});

describe('allocation', () => {
  it('keeps pod IPs stable across updates that keep replicas', () => {
    const w = estate();
    const before = w.outputsOf('Workload', 'c1/shop/web');
    put(w, 'Workload', 'c1/shop/web', { name: 'web', cluster: 'c1', namespace: 'shop', labels: { app: 'web', v: '2' }, replicas: 2 });
    expect(w.outputsOf('Workload', 'c1/shop/web')).toEqual(before);
    expect(w.clone().outputsOf('Workload', 'c1/shop/web')).toEqual(before);
  });

  it('reports pod CIDR exhaustion as a validation problem', () => {
    const w = estate();
    put(w, 'KubernetesCluster', 'tiny', { podCidr: '10.9.0.0/30', serviceCidr: '10.10.0.0/24', nodes: [{ name: 'n', ip: '192.168.1.1' }] });
    put(w, 'Namespace', 'tiny/default', { name: 'default', cluster: 'tiny' });
    put(w, 'Workload', 'tiny/default/big', { name: 'big', cluster: 'tiny', namespace: 'default', replicas: 3 });
    expect(w.validate()).toContainEqual(expect.objectContaining({ code: 'ip-exhausted', path: 'replicas', object: { kind: 'Workload', name: 'tiny/default/big' } }));
  });
});

describe('validation', () => {
  it('returns every problem with property paths', () => {
    const r = validateSpec('FirewallPolicy', {
      name: 'p',
      rules: [
        { name: 'a', action: 'allow' },
        { name: 'a', action: 'allow', sources: [{ cidr: '10.0.0.1/8' }] },
        { name: 'c', action: 'allow', services: [{ protocol: 'tcp', ports: [80, '90-70'] }], destinations: [{ podSelector: { podSelector: { matchExpressions: [{ key: 'x', operator: 'In' }] } } }] },
      ],
    });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => `${p.code} ${p.path}`)).toEqual([
      'duplicate-rule-name rules[1].name',
      'invalid-cidr rules[1].sources[0].cidr',
      'selector-values rules[2].destinations[0].podSelector.podSelector.matchExpressions[0].values',
      'invalid-port-range rules[2].services[0].ports[1]',
    ]);
  });

  it('renders schema errors with paths', () => {
    const r = validateSpec('FirewallPolicy', { rules: [{ name: 'a', action: 'permit' }] });
    expect(r.problems[0]).toMatchObject({ code: 'schema-invalid_value', path: 'rules[0].action' });
    expect(r.problems[0]!.message).toContain('"allow"');
  });

  it('rejects a peer with two selectors', () => {
    const r = validateSpec('FirewallRule', { policy: 'p', action: 'allow', sources: [{ group: 'g', cidr: '10.0.0.0/8' }] });
    expect(r.problems).toEqual([expect.objectContaining({ code: 'one-of', path: 'sources[0]' })]);
  });

  it('reports unknown references, cycles and mixed inline and standalone rules', () => {
    const w = estate();
    put(w, 'SecurityGroup', 'x', { groups: ['y'] });
    put(w, 'SecurityGroup', 'y', { groups: ['x', 'nope'] });
    put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'a', action: 'allow' }] });
    put(w, 'FirewallRule', 'r', { policy: 'p', action: 'drop', sources: [{ podSelectorRef: 'missing' }] });
    const codes = w.validate().filter((p) => p.severity !== 'warning').map((p) => `${p.code} ${p.object?.kind}/${p.object?.name} ${p.path}`);
    expect(codes).toEqual(expect.arrayContaining([
      'unknown-reference SecurityGroup/y groups[1]',
      'group-cycle SecurityGroup/y groups[0]',
      'unknown-reference FirewallRule/r sources[0].podSelectorRef',
      'mixed-rules FirewallPolicy/p rules',
    ]));
  });
});
