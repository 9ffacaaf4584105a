import type { World } from '../../engine';
import type { SpecOf } from '../../model';

/** A `networking.k8s.io/v1` NetworkPolicy object as kubectl applies it. */
export interface NetworkPolicyManifest {
  readonly apiVersion: 'networking.k8s.io/v1';
  readonly kind: 'NetworkPolicy';
  readonly metadata: { readonly name: string; readonly namespace: string; readonly labels?: Readonly<Record<string, string>> };
  readonly spec: {
    readonly podSelector: SpecOf['KubernetesNetworkPolicy']['podSelector'];
    readonly policyTypes?: readonly ('Ingress' | 'Egress')[];
    readonly ingress?: SpecOf['KubernetesNetworkPolicy']['ingress'];
    readonly egress?: SpecOf['KubernetesNetworkPolicy']['egress'];
  };
}

/**
 * The Kubernetes object of a KubernetesNetworkPolicy: the model keeps the NetworkPolicySpec's own shape,
 * so this only moves name and namespace into metadata. policyTypes is written as declared (the apiserver
 * defaults it the way the engine infers it).
 */
export function networkPolicyManifest(spec: SpecOf['KubernetesNetworkPolicy']): NetworkPolicyManifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: spec.name!, namespace: spec.namespace },
    spec: {
      podSelector: spec.podSelector,
      ...(spec.policyTypes !== undefined ? { policyTypes: spec.policyTypes } : {}),
      ...(spec.ingress !== undefined ? { ingress: spec.ingress } : {}),
      ...(spec.egress !== undefined ? { egress: spec.egress } : {}),
    },
  };
}

/** The cluster's KubernetesNetworkPolicies as objects, by name: every flavor exports them as declared. */
export function clusterNetworkPolicyManifests(world: World, cluster: string): NetworkPolicyManifest[] {
  return world
    .names('KubernetesNetworkPolicy')
    .sort()
    .map((n) => world.get('KubernetesNetworkPolicy', n)!)
    .filter((np) => np.cluster === cluster)
    .map(networkPolicyManifest);
}
