import { z } from 'zod';
import { functions, identityOf, providerConfig, resources } from '../../../provider/src/model';

describe('model', () => {
  it('declares every resource and function of product.md', () => {
    expect(resources.map((r) => r.name).sort()).toEqual(
      ['ConnectivityAssertion', 'EgressIp', 'FirewallPolicy', 'FirewallRule', 'KubernetesCluster', 'KubernetesNetworkPolicy', 'LoadBalancer', 'Namespace', 'PodSelector', 'QuarantinePolicy', 'SecurityGroup', 'VirtualMachine', 'Workload'].sort(),
    );
    expect(functions.map((f) => f.name)).toEqual(['traceflow', 'getEffectiveRules', 'getGroupMembers', 'getConnectivityMatrix', 'getKubernetesManifests']);
  });

  it('converts every schema to JSON schema with named nested types', () => {
    for (const r of resources) {
      expect(r.nameProperty).toBe('name');
      expect(() => z.toJSONSchema(r.inputs, { io: 'input' })).not.toThrow();
      expect(() => z.toJSONSchema(r.outputs)).not.toThrow();
    }
    const policy = z.toJSONSchema(resources.find((r) => r.name === 'FirewallPolicy')!.inputs, { io: 'input' }) as { $defs?: Record<string, unknown> };
    expect(Object.keys(policy.$defs ?? {})).toEqual(expect.arrayContaining(['Rule', 'Peer', 'Service', 'LabelSelector']));
  });

  it('leaves environment and default action unset: the stack name and the stored setting decide', () => {
    expect(providerConfig.parse({})).toEqual({});
  });

  it('refuses an environment name the store could not hold', () => {
    expect(providerConfig.safeParse({ environment: 'dev/eu' }).success).toBe(false);
    expect(providerConfig.parse({ environment: 'prod-eu.1' })).toEqual({ environment: 'prod-eu.1' });
  });

  it('scopes namespace and workload identities by cluster', () => {
    expect(identityOf('Namespace', { name: 'default', cluster: 'c1' })).toBe('c1/default');
    expect(identityOf('Workload', { name: 'web', cluster: 'c1', namespace: 'shop' })).toBe('c1/shop/web');
    expect(identityOf('VirtualMachine', { name: 'db' })).toBe('db');
  });
});
