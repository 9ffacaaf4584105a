import { z } from 'zod';
import type { FunctionDefinition, ResourceDefinition } from './define';
import { kubernetesCluster, namespace, virtualMachine, workload } from './inventory';
import {
  connectivityAssertion,
  egressIp,
  firewallPolicy,
  firewallRule,
  loadBalancer,
  podSelectorResource,
  quarantinePolicy,
  securityGroup,
} from './segmentation';
import { kubernetesNetworkPolicy } from './kubernetes';
import { getConnectivityMatrix, getEffectiveRules, getGroupMembers, getKubernetesManifests, traceflow } from './functions';

export * from './define';
export * from './common';
export * from './inventory';
export * from './segmentation';
export * from './kubernetes';
export * from './functions';
export * from './config';

/** Every resource, in dependency order (inventory first). */
export const resources: ResourceDefinition[] = [
  virtualMachine,
  kubernetesCluster,
  namespace,
  workload,
  podSelectorResource,
  securityGroup,
  firewallPolicy,
  firewallRule,
  kubernetesNetworkPolicy,
  egressIp,
  loadBalancer,
  quarantinePolicy,
  connectivityAssertion,
];

export const functions: FunctionDefinition[] = [traceflow, getEffectiveRules, getGroupMembers, getConnectivityMatrix, getKubernetesManifests];

/** Resource kinds, i.e. the `X` of `microseg:index:X`. */
export type Kind =
  | 'VirtualMachine'
  | 'KubernetesCluster'
  | 'Namespace'
  | 'Workload'
  | 'PodSelector'
  | 'SecurityGroup'
  | 'FirewallPolicy'
  | 'FirewallRule'
  | 'KubernetesNetworkPolicy'
  | 'EgressIp'
  | 'LoadBalancer'
  | 'QuarantinePolicy'
  | 'ConnectivityAssertion';

export const kinds: readonly Kind[] = resources.map((r) => r.name as Kind);

/** Parsed (defaults applied) spec of each kind. */
export interface SpecOf {
  VirtualMachine: z.output<typeof virtualMachine.inputs>;
  KubernetesCluster: z.output<typeof kubernetesCluster.inputs>;
  Namespace: z.output<typeof namespace.inputs>;
  Workload: z.output<typeof workload.inputs>;
  PodSelector: z.output<typeof podSelectorResource.inputs>;
  SecurityGroup: z.output<typeof securityGroup.inputs>;
  FirewallPolicy: z.output<typeof firewallPolicy.inputs>;
  FirewallRule: z.output<typeof firewallRule.inputs>;
  KubernetesNetworkPolicy: z.output<typeof kubernetesNetworkPolicy.inputs>;
  EgressIp: z.output<typeof egressIp.inputs>;
  LoadBalancer: z.output<typeof loadBalancer.inputs>;
  QuarantinePolicy: z.output<typeof quarantinePolicy.inputs>;
  ConnectivityAssertion: z.output<typeof connectivityAssertion.inputs>;
}

/** What users write for each kind (defaults optional). */
export type InputOf<K extends Kind> = z.input<(typeof definitionsByKind)[K]['inputs']>;

export const definitionsByKind = {
  VirtualMachine: virtualMachine,
  KubernetesCluster: kubernetesCluster,
  Namespace: namespace,
  Workload: workload,
  PodSelector: podSelectorResource,
  SecurityGroup: securityGroup,
  FirewallPolicy: firewallPolicy,
  FirewallRule: firewallRule,
  KubernetesNetworkPolicy: kubernetesNetworkPolicy,
  EgressIp: egressIp,
  LoadBalancer: loadBalancer,
  QuarantinePolicy: quarantinePolicy,
  ConnectivityAssertion: connectivityAssertion,
} as const;

export function isKind(s: string): s is Kind {
  return Object.prototype.hasOwnProperty.call(definitionsByKind, s);
}

/**
 * The backend identity (store key) of an object: its `name`, except that namespaces are scoped by cluster
 * (`cluster/name`) and workloads by cluster and namespace (`cluster/namespace/name`), because every cluster
 * has a `default` namespace, Kubernetes network policies are scoped like workloads, and standalone rules by policy (`policy/name`). References to workloads (static group members, assertion endpoints) use this
 * identity. `name` must already be set (the provider autonames before calling this).
 */
export function identityOf(kind: Kind, spec: { name?: string; cluster?: string; namespace?: string; policy?: string }): string {
  const name = spec.name ?? '';
  if (kind === 'Namespace') return `${spec.cluster ?? ''}/${name}`;
  if (kind === 'Workload' || kind === 'KubernetesNetworkPolicy') return `${spec.cluster ?? ''}/${spec.namespace ?? ''}/${name}`;
  // Rule names are scoped to their policy: two policies may both have a rule `allow-dns`. Objects stored
  // under a bare name before (and Pulumi ids of that form) keep working: they are read, updated and
  // deleted under the id they have.
  if (kind === 'FirewallRule') return `${spec.policy ?? ''}/${name}`;
  return name;
}
