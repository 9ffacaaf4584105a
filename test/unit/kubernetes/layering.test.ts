import type { World } from '../../../provider/src/engine';
import { decided, estate, put, trace } from '../engine/helpers';

/**
 * Where the NetworkPolicy layer sits (product.md, "Decisions that sharpen points 1–6"): emergency →
 * infrastructure → environment → application → Kubernetes NetworkPolicy (only for pods a policy selects,
 * per direction) → baseline → default rule; `pass` in application continues at the NetworkPolicy layer,
 * then baseline. This is the ClusterNetworkPolicy order (Admin tier → NetworkPolicy → Baseline tier).
 */

const WEB = 'c1/shop/web';
const API = 'c1/shop/api';
const TOOLS = 'c1/ops/tools';

function np(w: World, name: string, spec: Record<string, unknown>, namespace = 'shop'): void {
  put(w, 'KubernetesNetworkPolicy', `c1/${namespace}/${name}`, { name, cluster: 'c1', namespace, ...spec });
}
const apiFromWeb = { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] };

describe('the NetworkPolicy layer between application and baseline', () => {
  it('an emergency drop wins over a NetworkPolicy allow', () => {
    const w = estate({ defaultAction: 'allow' });
    np(w, 'api-from-web', apiFromWeb);
    put(w, 'FirewallPolicy', 'lockdown', { category: 'emergency', priority: 1, rules: [{ name: 'drop-api', action: 'drop', destinations: [{ group: 'api' }] }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop lockdown/drop-api');
  });

  it('an application allow admits a flow to a pod a NetworkPolicy isolates', () => {
    const w = estate({ defaultAction: 'allow' });
    np(w, 'deny-api', { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] });
    put(w, 'FirewallPolicy', 'ops-to-api', { category: 'application', priority: 1, rules: [{ name: 'allow', action: 'allow', direction: 'in', sources: [{ podSelector: { namespaces: ['ops'] } }], destinations: [{ group: 'api' }] }] });
    expect(decided(trace(w, TOOLS, API, 9090))).toBe('allow ops-to-api/allow');
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop c1/shop/deny-api/ingress-isolation');
  });

  it('an application drop wins over a NetworkPolicy allow', () => {
    const w = estate({ defaultAction: 'allow' });
    np(w, 'api-from-web', apiFromWeb);
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'drop', action: 'drop', direction: 'in', destinations: [{ group: 'api' }] }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop app/drop');
  });

  it('pass in the application category continues at the NetworkPolicy layer', () => {
    const w = estate({ defaultAction: 'drop' });
    np(w, 'api-from-web', apiFromWeb);
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'to-np', action: 'pass', direction: 'in', destinations: [{ group: 'api' }] }, { name: 'drop', action: 'drop' }] });
    put(w, 'FirewallPolicy', 'out', { category: 'application', priority: 0, rules: [{ name: 'egress', action: 'allow', direction: 'out' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow c1/shop/api-from-web/ingress[0]');
    expect(decided(trace(w, TOOLS, API, 9090))).toBe('drop c1/shop/api-from-web/ingress-isolation');
  });

  it('pass from infrastructure reaches application, and then the NetworkPolicy layer', () => {
    const w = estate({ defaultAction: 'drop' });
    np(w, 'api-from-web', apiFromWeb);
    put(w, 'FirewallPolicy', 'infra', { category: 'infrastructure', priority: 1, rules: [{ name: 'delegate', action: 'pass' }, { name: 'drop', action: 'drop' }] });
    put(w, 'FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'drop', action: 'drop' }] });
    put(w, 'FirewallPolicy', 'out', { category: 'application', priority: 0, rules: [{ name: 'egress', action: 'allow', direction: 'out' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow c1/shop/api-from-web/ingress[0]');
  });

  it('pass without a selecting NetworkPolicy falls through to baseline, then the default rule', () => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1, rules: [{ name: 'pass', action: 'pass' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop default/default');
    put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, rules: [{ name: 'allow', action: 'allow' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow base/allow');
  });
});

describe('the baseline category', () => {
  it('decides only for pods no NetworkPolicy selects, per direction', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, rules: [{ name: 'deny', action: 'drop' }] });
    np(w, 'api-from-web', apiFromWeb);
    np(w, 'web-egress', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'], egress: [{}] });
    // web egress and api ingress: NetworkPolicies decide; baseline is never reached.
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow c1/shop/api-from-web/ingress[0]');
    // tools: no policy selects it for egress, so baseline decides at the source.
    expect(decided(trace(w, TOOLS, API, 9090))).toBe('drop base/deny');
    // web is isolated for egress only: its ingress meets baseline.
    expect(decided(trace(w, API, WEB, 8080))).toBe('drop base/deny');
  });

  it('comes after every other category, whatever the priorities', () => {
    const w = estate({ defaultAction: 'drop' });
    put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 0, rules: [{ name: 'allow', action: 'allow' }] });
    put(w, 'FirewallPolicy', 'app', { category: 'application', priority: 1000, rules: [{ name: 'drop-api', action: 'drop', destinations: [{ group: 'api' }] }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('drop app/drop-api');
    expect(decided(trace(w, API, WEB, 8080))).toBe('allow base/allow');
  });

  it('decides for VMs (no NetworkPolicy ever selects them)', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, rules: [{ name: 'deny-db', action: 'reject', direction: 'in', destinations: [{ group: 'db' }] }] });
    expect(decided(trace(w, 'bastion', 'db', 5432))).toBe('reject base/deny-db');
  });

  it('pass in baseline goes to the default rule', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, rules: [{ name: 'pass', action: 'pass' }, { name: 'drop', action: 'drop' }] });
    put(w, 'FirewallPolicy', 'base2', { category: 'baseline', priority: 2, rules: [{ name: 'drop', action: 'drop' }] });
    expect(decided(trace(w, WEB, API, 9090))).toBe('allow default/default');
  });

  it('a staged baseline policy is reported and never decides', () => {
    const w = estate({ defaultAction: 'allow' });
    put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, enforcement: 'staged', rules: [{ name: 'drop', action: 'drop', direction: 'in' }] });
    const t = trace(w, WEB, API, 9090);
    expect(decided(t)).toBe('allow default/default');
    expect(t.staged).toEqual([expect.objectContaining({ policy: 'base', rule: 'drop', action: 'drop' })]);
  });

  it('a staged baseline rule is not reported for a pod a NetworkPolicy decides', () => {
    const w = estate({ defaultAction: 'allow' });
    np(w, 'api-from-web', apiFromWeb);
    put(w, 'FirewallPolicy', 'base', { category: 'baseline', priority: 1, enforcement: 'staged', rules: [{ name: 'drop', action: 'drop', direction: 'in' }] });
    const t = trace(w, WEB, API, 9090);
    expect(decided(t)).toBe('allow c1/shop/api-from-web/ingress[0]');
    expect(t.staged).toEqual([]);
  });
});
