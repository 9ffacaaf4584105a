/**
 * The examples of docs/concepts.md "Four choices that decide edge cases", as the engine evaluates them:
 * effective appliedTo, IP-block-only appliedTo, quarantine scope, pass in application, `any` with ports.
 */
import { effectiveRules } from '../../../provider/src/engine';
import { allowAll, decided, estate, put, trace } from './helpers';

const WEB = 'c1/shop/web';
const API = 'c1/shop/api';

test('1. a rule applies where the policy appliedTo and its own appliedTo intersect', () => {
  const w = estate();
  put(w, 'FirewallPolicy', 'shop', {
    appliedTo: ['web'],
    rules: [
      { name: 'never-enforced', action: 'drop', appliedTo: ['db'] },
      { name: 'on-web', action: 'allow', direction: 'in', sources: [{ group: 'api' }] },
    ],
  });
  const rules = effectiveRules(w, WEB) as { rule: string }[];
  expect(rules.map((r) => r.rule)).toEqual(['on-web', 'on-web']); // both pods of web, never-enforced nowhere
  expect(effectiveRules(w, 'db')).toEqual([]);
});

test('2. an appliedTo group of IP blocks only applies the policy nowhere, with a warning', () => {
  const w = estate();
  put(w, 'SecurityGroup', 'dmz', { ipBlocks: [{ cidr: '203.0.113.0/24' }] });
  put(w, 'FirewallPolicy', 'lock', { appliedTo: ['dmz'], rules: [{ name: 'deny', action: 'drop' }] });
  allowAll(w);
  expect(decided(trace(w, WEB, API, 9090))).toBe('allow zz-allow-all/any');
  expect(w.warnings()).toEqual([
    expect.objectContaining({ code: 'appliedto-ip-only', path: 'appliedTo[0]', severity: 'warning', object: { kind: 'FirewallPolicy', name: 'lock' } }),
  ]);
});

test('3. quarantine isolates the quarantined endpoints and never opens the forensic host\'s own egress', () => {
  const w = estate();
  put(w, 'QuarantinePolicy', 'ir', { selector: { matchExpressions: [{ key: 'quarantine', operator: 'Exists' }] }, forensicGroup: 'bastion', forensicServices: [{ protocol: 'tcp', ports: [22] }] });
  put(w, 'Workload', 'c1/shop/api', { name: 'api', cluster: 'c1', namespace: 'shop', labels: { app: 'api', quarantine: 'ir-42' }, replicas: 1 });
  // Default drop and no policy for the bastion: its own side drops it; quarantine does not open it.
  expect(decided(trace(w, 'bastion', API, 22))).toBe('drop default/default');
  allowAll(w);
  expect(decided(trace(w, 'bastion', API, 22))).toBe('allow ir/forensic-in');
  expect(decided(trace(w, 'bastion', API, 80))).toBe('drop ir/isolate-in');
  expect(decided(trace(w, API, 'db', 5432))).toBe('drop ir/isolate-out');
  // Not quarantined: untouched.
  expect(decided(trace(w, WEB, 'db', 5432))).toBe('allow zz-allow-all/any');
});

test('4. pass from infrastructure continues at application; pass in application ends at the default rule', () => {
  const w = estate();
  put(w, 'FirewallPolicy', 'infra', { category: 'infrastructure', rules: [{ name: 'to-app-owners', action: 'pass' }] });
  put(w, 'FirewallPolicy', 'env', { category: 'environment', rules: [{ name: 'skipped', action: 'drop' }] });
  put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'app-decides', action: 'pass', sources: [{ group: 'web' }] }] });
  allowAll(w);
  expect(decided(trace(w, WEB, 'db', 5432))).toBe('drop default/default');
  expect(decided(trace(w, 'bastion', 'db', 5432))).toBe('allow zz-allow-all/any');
});

test('protocol any with ports matches tcp, udp and sctp on those ports, and no ICMP', () => {
  const w = estate();
  put(w, 'FirewallPolicy', 'p', { priority: 1, rules: [{ name: 'any-53', action: 'drop', destinations: [{ vm: 'db' }], services: [{ protocol: 'any', ports: [53] }] }] });
  allowAll(w);
  for (const protocol of ['tcp', 'udp', 'sctp'] as const) expect(decided(trace(w, 'bastion', 'db', 53, protocol))).toBe('drop p/any-53');
  expect(decided(trace(w, 'bastion', 'db', 54))).toBe('allow zz-allow-all/any');
  expect(decided(trace(w, 'bastion', 'db', undefined, 'icmp'))).toBe('allow zz-allow-all/any');
});

test('effective rules leave out rules that can never match the target, and show what each rule matches', () => {
  const w = estate();
  put(w, 'FirewallPolicy', 'p', {
    rules: [
      { name: 'web-to-db', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'db' }], services: [{ protocol: 'tcp', ports: [5432, '6000-6010'] }] },
      { name: 'not-bastion', action: 'drop', direction: 'in', sources: [{ group: 'bastion' }], sourcesExcluded: true, destinations: [{ podSelector: { namespaces: ['shop'], podSelector: { matchLabels: { app: 'api' } } } }] },
    ],
  });
  // api is neither a source of web-to-db nor its destination: that rule cannot match there.
  expect(effectiveRules(w, API)).toEqual([
    expect.objectContaining({ rule: 'not-bastion', direction: 'in', sources: ['not group:bastion'], destinations: ['pods{app=api} ns in (shop)'], services: [] }),
  ]);
  expect(effectiveRules(w, 'db')).toEqual([expect.objectContaining({ rule: 'web-to-db', direction: 'in', services: ['tcp/5432,6000-6010'] })]);
});
