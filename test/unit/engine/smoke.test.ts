import { decided, estate, trace, put } from './helpers';

it('smoke: default drop between pods', () => {
  const w = estate();
  expect(decided(trace(w, 'c1/shop/web', 'c1/shop/api', 9090))).toBe('drop default/default');
  put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'a', action: 'allow', sources: [{ group: 'web' }], destinations: [{ group: 'api' }] }] });
  const t = trace(w, 'c1/shop/web', 'c1/shop/api', 9090);
  expect(decided(t)).toBe('allow p/a');
  expect(t.observations.map((o) => o.component)).toEqual(['source-firewall', 'destination-firewall', 'delivery']);
});
