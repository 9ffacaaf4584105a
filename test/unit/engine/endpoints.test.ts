/**
 * Endpoint references: one set of forms for the CLI, topology expectations and ConnectivityAssertion.
 */
import { decided, estate, put, trace } from './helpers';

test.each([
  ['vm:db', 'db#0'],
  ['db', 'db#0'],
  ['vm:multi#1', 'multi#1'],
  ['multi#1', 'multi#1'],
  ['workload:c1/shop/web', 'c1/shop/web-0'],
  ['c1/shop/web', 'c1/shop/web-0'],
  ['shop/web', 'c1/shop/web-0'],
  ['workload:shop/web', 'c1/shop/web-0'],
  ['pod:c1/shop/web-1', 'c1/shop/web-1'],
  ['c1/shop/web-1', 'c1/shop/web-1'],
])('%s resolves to %s', (ref, endpoint) => {
  const w = estate();
  put(w, 'VirtualMachine', 'multi', { interfaces: [{ ip: '172.16.5.1' }, { ip: '172.16.6.1' }] });
  const r = w.resolve(ref);
  if ('problem' in r) throw new Error(r.problem.message);
  expect(r.ep?.name).toBe(endpoint);
});

test('an interface index the VM does not have is an error naming the interfaces it has', () => {
  const r = estate().resolve('vm:db#3');
  expect(r).toEqual({ problem: expect.objectContaining({ message: expect.stringContaining('VM "db" has 1 interface(s) (db#0)') }) });
});

test('NAMESPACE/NAME present in two clusters is ambiguous and names both', () => {
  const w = estate();
  put(w, 'KubernetesCluster', 'c2', { podCidr: '10.2.0.0/16', nodes: [{ name: 'm1', ip: '192.168.9.11' }] });
  put(w, 'Namespace', 'c2/shop', { name: 'shop', cluster: 'c2' });
  put(w, 'Workload', 'c2/shop/web', { name: 'web', cluster: 'c2', namespace: 'shop', replicas: 1 });
  expect(w.resolve('shop/web')).toEqual({ problem: expect.objectContaining({ code: 'ambiguous-endpoint', message: expect.stringContaining('c1/shop/web, c2/shop/web') }) });
});

test('traceflow takes a given interface of a VM as its source', () => {
  const w = estate();
  put(w, 'VirtualMachine', 'multi', { interfaces: [{ ip: '172.16.5.1' }, { ip: '172.16.6.1' }] });
  put(w, 'FirewallPolicy', 'p', { rules: [{ name: 'second-nic', action: 'allow', sources: [{ cidr: '172.16.6.0/24' }] }] });
  expect(decided(trace(w, 'vm:multi#1', 'db', 5432))).toBe('allow p/second-nic');
  expect(decided(trace(w, 'vm:multi#0', 'db', 5432))).toBe('drop default/default');
});
