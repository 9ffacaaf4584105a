import { z } from 'zod';
import { defineResource } from './define';
import { labelSelector, nameField } from './common';

/**
 * Kubernetes NetworkPolicy (`networking.k8s.io/v1`) in the model. The fields below `namespace` are the
 * NetworkPolicySpec with its own names and shape, so a manifest's `spec` can be copied as is; only the
 * protocol keeps the Kubernetes spelling (`TCP`, `UDP`, `SCTP`). Semantics (engine/netpol.ts): a pod a
 * policy selects is isolated for each of the policy's types, and then only what the union of the
 * selecting policies' rules allows gets through; pods no policy selects are not isolated.
 */

export const networkPolicyIpBlock = z
  .object({
    cidr: z.string().describe('CIDR the peer allows, e.g. 192.168.1.0/24.'),
    except: z.array(z.string()).optional().describe('CIDRs inside `cidr` that are not allowed.'),
  })
  .meta({ id: 'NetworkPolicyIpBlock' });

export const networkPolicyPeer = z
  .object({
    podSelector: labelSelector
      .optional()
      .describe('Pods selected by label: in the policy namespace when alone, in the namespaces namespaceSelector selects when both are set (AND).'),
    namespaceSelector: labelSelector.optional().describe('Namespaces selected by label (`kubernetes.io/metadata.name` is implied); alone it selects every pod in them.'),
    ipBlock: networkPolicyIpBlock.optional().describe('An IP block; must not be combined with the selectors.'),
  })
  .meta({ id: 'NetworkPolicyPeer' });

export const networkPolicyProtocol = z.enum(['TCP', 'UDP', 'SCTP']);

export const networkPolicyPort = z
  .object({
    protocol: networkPolicyProtocol.default('TCP').describe('TCP, UDP or SCTP; TCP when absent.'),
    port: z
      .union([z.number().int(), z.string()])
      .optional()
      .describe('Port number, or a named port resolved on the destination pod; every port of the protocol when absent.'),
    endPort: z.number().int().optional().describe('Last port of the range `port`..`endPort` (inclusive); only with a numeric `port`.'),
  })
  .meta({ id: 'NetworkPolicyPort' });

export const networkPolicyIngressRule = z
  .object({
    from: z.array(networkPolicyPeer).optional().describe('Sources; every source when empty or absent.'),
    ports: z.array(networkPolicyPort).optional().describe('Destination ports; every port and protocol when empty or absent.'),
  })
  .meta({ id: 'NetworkPolicyIngressRule' });

export const networkPolicyEgressRule = z
  .object({
    to: z.array(networkPolicyPeer).optional().describe('Destinations; every destination when empty or absent.'),
    ports: z.array(networkPolicyPort).optional().describe('Destination ports; every port and protocol when empty or absent.'),
  })
  .meta({ id: 'NetworkPolicyEgressRule' });

export const kubernetesNetworkPolicyInputs = z.object({
  name: nameField('network policy (its Kubernetes name)'),
  cluster: z.string().min(1).describe('Name of the KubernetesCluster.'),
  namespace: z.string().min(1).describe('Kubernetes namespace of the policy (a Namespace of that cluster); it selects pods of this namespace only.'),
  podSelector: labelSelector.default({}).describe('Pods of the namespace the policy applies to; empty selects every pod of the namespace.'),
  policyTypes: z
    .array(z.enum(['Ingress', 'Egress']))
    .optional()
    .describe('Directions the policy isolates. When absent or empty: Ingress, plus Egress when `egress` has at least one rule (the apiserver defaulting); an egress-only or deny-all-egress policy must list Egress.'),
  ingress: z.array(networkPolicyIngressRule).optional().describe('Allowed ingress; with Ingress isolation and no rules, all ingress is denied.'),
  egress: z.array(networkPolicyEgressRule).optional().describe('Allowed egress; with Egress isolation and no rules, all egress is denied.'),
  description: z.string().optional().describe('Free text.'),
});

/** A network policy is identified by `cluster/namespace/name` (see identityOf). */
export const kubernetesNetworkPolicy = defineResource({
  name: 'KubernetesNetworkPolicy',
  description:
    'A Kubernetes NetworkPolicy (networking.k8s.io/v1) of a namespace. It decides for the pods it selects after the application category and before the baseline category. Identity: `cluster/namespace/name`.',
  inputs: kubernetesNetworkPolicyInputs,
  outputs: z.object({
    podCount: z.number().int().describe('Number of pods the policy selects.'),
  }),
  nameProperty: 'name',
  replaceOnChanges: ['cluster', 'namespace', 'name'],
});
