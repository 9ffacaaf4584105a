/** loadTopology and buildWorld: every problem with its path in the file, references, config, warnings. */
import { buildWorld, loadTopology, runExpectations, type TopologyProblem } from '../../../provider/src/topology';

const BASE = `
resources:
  c1:
    type: microseg:index:KubernetesCluster
    properties: { podCidr: 10.1.0.0/16, serviceCidr: 10.96.0.0/12, nodes: [{ name: n1, ip: 192.168.0.11 }], networkMode: flat }
  shop:
    type: microseg:index:Namespace
    properties: { cluster: "\${c1}" }
  web:
    type: microseg:index:Workload
    properties: { cluster: "\${c1}", namespace: "\${shop.name}", labels: { app: web } }
  db:
    type: microseg:Workload
    properties: { cluster: "\${c1}", namespace: "\${shop.name}", labels: { app: db } }
  vm1:
    type: microseg:index:VirtualMachine
    properties: { interfaces: [{ ip: 172.16.0.10 }], labels: { role: x } }
`;

function problems(text: string): TopologyProblem[] {
  const r = loadTopology(text);
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

function ok(text: string) {
  const r = loadTopology(text);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.topology;
}

test('references resolve to backend identities in any order, with the shorthand type accepted', () => {
  const t = ok(BASE);
  expect(t.objects.map((o) => `${o.kind}/${o.identity}`)).toEqual(['KubernetesCluster/c1', 'Namespace/c1/shop', 'Workload/c1/shop/web', 'Workload/c1/shop/db', 'VirtualMachine/vm1']);
  expect(t.defaultAction).toBe('drop');
});

test('${x.prop} reaches into lists with [i]', () => {
  const t = ok(`${BASE}
  g:
    type: microseg:index:SecurityGroup
    properties: { ipBlocks: [{ cidr: "\${vm1.interfaces[0].ip}/32" }] }
`);
  expect(t.objects.find((o) => o.key === 'g')!.spec.ipBlocks).toEqual([{ cidr: '172.16.0.10/32' }]);
});

test('YAML syntax errors give the line and column', () => {
  expect(problems('resources:\n  a: [1, 2\n')[0]!.path).toMatch(/^line \d+, column \d+$/);
});

test('file-level problems: unknown top-level key, unknown type, missing resources', () => {
  expect(problems(`${BASE}\nvariables: {}\n`)).toEqual([{ path: 'variables', message: 'unknown key "variables"' }]);
  expect(problems('resources:\n  x: { type: "microseg:index:Nope" }\n')[0]).toMatchObject({ path: 'resources.x.type', message: expect.stringContaining('unknown type "microseg:index:Nope"; expected one of microseg:index:VirtualMachine') });
  expect(problems('name: x\n')[0]!.path).toBe('resources');
});

test('schema and semantic problems carry the full property path', () => {
  const p = problems(`${BASE}
  pol:
    type: microseg:index:FirewallPolicy
    properties:
      rules:
        - { name: a, action: alow }
        - { name: b, action: allow, sources: [{ cidr: 10.0.0.0/33 }] }
`);
  expect(p.map((x) => x.path)).toEqual(['resources.pol.properties.rules[0].action']);
  const q = problems(`${BASE}
  pol:
    type: microseg:index:FirewallPolicy
    properties:
      rules: [{ name: b, action: allow, sources: [{ cidr: 10.0.0.0/33 }] }]
`);
  expect(q[0]!.path).toBe('resources.pol.properties.rules[0].sources[0].cidr');
});

test('a misspelt property is an error, not silently dropped', () => {
  const p = problems(`${BASE}
  pol:
    type: microseg:index:FirewallPolicy
    properties:
      rule: [{ name: a, action: allow }]
`);
  expect(p).toEqual([{ path: 'resources.pol.properties.rule', message: expect.stringContaining('unknown property "rule" of FirewallPolicy; expected one of name, category, priority') }]);
  const nested = problems(`${BASE}
  pol:
    type: microseg:index:FirewallPolicy
    properties:
      rules: [{ name: a, action: allow, sources: [{ grop: x }] }]
`);
  // A peer with no known selector is refused by the engine's one-of check before unknown keys are looked at.
  expect(nested[0]!.path).toMatch(/^resources\.pol\.properties\.rules\[0\]\.sources\[0\]/);
  const nested2 = problems(`${BASE}
  pol:
    type: microseg:index:FirewallPolicy
    properties:
      rules: [{ name: a, action: allow, sources: [{ group: g, grop: x }] }]
  g:
    type: microseg:index:SecurityGroup
    properties: {}
`);
  expect(nested2.map((x) => x.path)).toEqual(['resources.pol.properties.rules[0].sources[0].grop']);
});

test('unknown and looping references are reported where they are written', () => {
  expect(problems(`${BASE}
  g:
    type: microseg:index:SecurityGroup
    properties: { vms: ["\${vm2}"] }
`)).toEqual([{ path: 'resources.g.properties.vms[0]', message: expect.stringContaining('${vm2} refers to no resource of this file') }]);
  expect(problems(`${BASE}
  g:
    type: microseg:index:SecurityGroup
    properties: { vms: ["\${vm1.host}"] }
`)[0]!.message).toContain('vm1 has no input property "host"');
  const loop = problems(`
resources:
  a:
    type: microseg:index:SecurityGroup
    properties: { description: "\${b.description}" }
  b:
    type: microseg:index:SecurityGroup
    properties: { description: "\${a.description}" }
`);
  expect(loop.some((x) => x.message.includes('refers back to itself'))).toBe(true);
});

test('duplicate backend names are refused', () => {
  expect(problems(`${BASE}
  other:
    type: microseg:index:VirtualMachine
    properties: { name: vm1, interfaces: [{ ip: 172.16.0.11 }] }
`)[0]).toMatchObject({ path: 'resources.other.properties.name', message: expect.stringContaining('already declared by resource vm1') });
});

test('expectations: schema, endpoint kinds, rule syntax, ports for icmp, a port required for tcp', () => {
  const p = problems(`${BASE}
expectations:
  - { from: web, to: db, port: 70000, expect: allow }
  - { from: shop, to: db, port: 80, expect: allow }
  - { from: web, to: db, expect: maybe }
  - { from: web, to: db, port: 80, expect: allow, rule: justone }
  - { from: web, to: db, protocol: icmp, port: 1, expect: allow }
  - { from: web, to: db, expect: allow, extra: 1 }
  - { from: web, to: db, protocol: udp, expect: allow }
  - { from: web, to: db, port: 80, expect: allow, sourceRule: justone }
`);
  expect(p.map((x) => x.path)).toEqual([
    'expectations[0].port',
    'expectations[1].from',
    'expectations[2].expect',
    'expectations[3].rule',
    'expectations[4].port',
    'expectations[5].extra',
    'expectations[6].port',
    'expectations[7].sourceRule',
  ]);
  expect(p.find((x) => x.path === 'expectations[6].port')?.message).toBe('protocol udp needs a port: the destination port decides which rules match; expected e.g. port: 443');
});

test('an expectation can check the rule at the source and at the destination separately', () => {
  const t = ok(`${BASE}  out-policy:
    type: microseg:index:FirewallPolicy
    properties: { name: egress, rules: [{ name: web-out, action: allow, direction: out, sources: [{ workload: c1/shop/web }] }] }
  in-policy:
    type: microseg:index:FirewallPolicy
    properties: { name: ingress, rules: [{ name: db-in, action: allow, direction: in, destinations: [{ workload: c1/shop/db }] }] }
expectations:
  - { from: web, to: db, port: 5432, expect: allow, sourceRule: out-policy/web-out, destinationRule: ingress/db-in }
  - { from: web, to: db, port: 5432, expect: allow, sourceRule: default }
  - { from: 203.0.113.9, to: db, port: 5432, expect: allow, sourceRule: none, destinationRule: in-policy/db-in }
`);
  const { results } = runExpectations(buildWorld(t).world, t.expectations);
  expect(results.map((r) => [r.passed, r.sourceRule, r.destinationRule])).toEqual([
    [true, 'egress/web-out', 'ingress/db-in'],
    [false, 'egress/web-out', 'ingress/db-in'],
    [true, 'none', 'ingress/db-in'],
  ]);
  expect(results[1]!.reason).toBe('expected default at the source firewall, got egress/web-out');
});

test('world-level problems map back to resources: unknown references and group cycles', () => {
  const t = ok(`${BASE}
  a:
    type: microseg:index:SecurityGroup
    properties: { groups: [b], vms: [nope] }
  b:
    type: microseg:index:SecurityGroup
    properties: { groups: [a] }
`);
  const w = buildWorld(t);
  expect(w.problems).toEqual(
    expect.arrayContaining([
      { path: 'resources.a.properties.vms[0]', message: expect.stringContaining('VirtualMachine "nope" does not exist') },
      { path: expect.stringMatching(/^resources\.(a|b)\.properties\.groups\[0\]$/), message: expect.stringContaining('cycle') },
    ]),
  );
});

test('priority ties are warnings, not errors', () => {
  const t = ok(`${BASE}
  p1:
    type: microseg:index:FirewallPolicy
    properties: { priority: 10, rules: [{ name: r, action: allow }] }
  p2:
    type: microseg:index:FirewallPolicy
    properties: { priority: 10, rules: [{ name: r, action: drop }] }
`);
  const w = buildWorld(t);
  expect(w.problems).toEqual([]);
  expect(w.warnings.map((x) => x.message).join('\n')).toMatch(/p1.*p2|p2.*p1/);
});

test('config: defaultAction plain or Pulumi style; a bad value is a problem', () => {
  expect(ok(`config:\n  microseg:defaultAction: allow\n${BASE}`).defaultAction).toBe('allow');
  expect(ok(`config:\n  microseg:defaultAction: { default: allow }\n${BASE}`).defaultAction).toBe('allow');
  expect(problems(`config:\n  microseg:defaultAction: maybe\n${BASE}`)).toEqual([{ path: 'config["microseg:defaultAction"]', message: expect.stringContaining('expected "drop"') }]);
});

test('expectations run through traceflow: default drop, default allow, deny, rule by resource key', () => {
  const policy = `
  web-to-db:
    type: microseg:index:FirewallPolicy
    properties:
      name: allow-web-db
      rules: [{ name: r1, action: allow, sources: [{ workload: "\${web}" }], destinations: [{ workload: "\${db}" }] }]
expectations:
  - { from: web, to: db, port: 5432, expect: allow, rule: web-to-db/r1 }
  - { from: db, to: web, port: 80, expect: deny, rule: default }
  - { from: vm1, to: "\${db}", port: 80, expect: drop }
`;
  const t = ok(BASE + policy);
  expect(t.expectations[0]!.rule).toBe('allow-web-db/r1');
  const { results, problems: p } = runExpectations(buildWorld(t).world, t.expectations);
  expect(p).toEqual([]);
  expect(results.map((r) => [r.passed, r.verdict, r.decidedBy])).toEqual([
    [true, 'allow', 'allow-web-db/r1'],
    [true, 'drop', 'default'],
    [true, 'drop', 'default'],
  ]);
  const allow = ok(`config:\n  microseg:defaultAction: allow\n${BASE}${policy}`);
  const r2 = runExpectations(buildWorld(allow).world, allow.expectations).results;
  expect(r2.map((r) => [r.passed, r.verdict])).toEqual([[true, 'allow'], [false, 'allow'], [false, 'allow']]);
  expect(r2[1]!.reason).toBe('expected deny, got allow');
});

test('an endpoint the engine cannot resolve is a problem of the file', () => {
  const t = ok(`${BASE}\nexpectations:\n  - { from: ghost, to: db, port: 80, expect: drop }\n`);
  expect(runExpectations(buildWorld(t).world, t.expectations).problems).toEqual([{ path: 'expectations[0].from', message: expect.stringContaining('"ghost" is not an IP') }]);
});

test('ConnectivityAssertion resources are evaluated as expectations', () => {
  const t = ok(`${BASE}
  a1:
    type: microseg:index:ConnectivityAssertion
    properties: { from: "\${web}", to: "\${vm1}", port: 22, expect: deny }
`);
  expect(t.expectations).toEqual([expect.objectContaining({ path: 'resources.a1', from: 'c1/shop/web', to: 'vm1', expect: 'deny' })]);
  const r = runExpectations(buildWorld(t).world, t.expectations);
  expect(r.results[0]!.passed).toBe(true);
});

test('expectations accept every endpoint form: resource keys with vm:/workload: and #i, NAMESPACE/NAME and pod:', () => {
  const t = ok(`${BASE}  vm2:
    type: microseg:index:VirtualMachine
    properties: { name: two-nics, interfaces: [{ ip: 172.16.0.20 }, { ip: 172.16.1.20 }] }
  p:
    type: microseg:index:FirewallPolicy
    properties: { rules: [{ name: second-nic, action: allow, sources: [{ cidr: 172.16.1.0/24 }] }] }
expectations:
  - { from: "vm:vm2#1", to: web, port: 80, expect: allow, rule: p/second-nic }
  - { from: "vm2#0", to: web, port: 80, expect: drop }
  - { from: "vm:two-nics#1", to: "shop/web", port: 80, expect: allow }
  - { from: "pod:c1/shop/db-0", to: "workload:web", port: 80, expect: drop }
`);
  const { world, problems: p } = buildWorld(t);
  expect(p).toEqual([]);
  const { results, problems: unresolved } = runExpectations(world, t.expectations);
  expect(unresolved).toEqual([]);
  expect(results.map((r) => [r.expectation.from, r.expectation.to, r.passed])).toEqual([
    ['vm:two-nics#1', 'workload:c1/shop/web', true],
    ['vm:two-nics#0', 'workload:c1/shop/web', true],
    ['vm:two-nics#1', 'shop/web', true],
    ['pod:c1/shop/db-0', 'workload:c1/shop/web', true],
  ]);
});
