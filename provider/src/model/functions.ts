import { z } from 'zod';
import { defineFunction } from './define';
import { category, flowProtocol, ruleAction, ruleDirection } from './common';
import { groupMember } from './segmentation';

const endpointRef = (what: string) =>
  z.string().min(1).describe(`${what}: an IP, a VM name, a workload identity \`cluster/namespace/name\` (first pod) or a LoadBalancer name; prefixes vm:, workload:, lb: disambiguate.`);

export const verdict = z.enum(['allow', 'drop', 'reject']);

/** A rule that matched in one evaluation step. */
export const ruleHit = z
  .object({
    category: z.string().describe('Category of the policy, or `default`.'),
    policy: z.string().describe('Policy name, or `default`.'),
    rule: z.string().describe('Rule name, or `default`.'),
    action: ruleAction.describe('Action of the rule.'),
  })
  .meta({ id: 'RuleHit' });

export const observation = z
  .object({
    component: z.enum(['source-firewall', 'load-balancer', 'snat', 'destination-firewall', 'delivery']).describe('Component that observed the packet.'),
    action: z.string().describe('allow, drop, reject, dnat, snat, delivered, skipped (side not managed).'),
    category: z.string().optional().describe('Category of the deciding rule (firewall components).'),
    policy: z.string().optional().describe('Policy of the deciding rule, or `default`.'),
    rule: z.string().optional().describe('Deciding rule, or `default`.'),
    sourceIp: z.string().optional().describe('Source IP as seen by this component.'),
    destinationIp: z.string().optional().describe('Destination IP as seen by this component.'),
    translatedSourceIp: z.string().optional().describe('Source IP after SNAT.'),
    translatedDestinationIp: z.string().optional().describe('Destination IP after DNAT.'),
    translatedPort: z.number().int().optional().describe('Destination port after DNAT.'),
    staged: z.array(ruleHit).optional().describe('What staged policies would have done at this component.'),
    note: z.string().optional().describe('Human-readable detail.'),
  })
  .meta({ id: 'Observation' });

export const traceflow = defineFunction({
  name: 'traceflow',
  description: 'Simulates a flow and explains, component by component, which rule decided.',
  inputs: z.object({
    source: endpointRef('Source'),
    destination: endpointRef('Destination'),
    protocol: flowProtocol.default('tcp').describe('Protocol.'),
    port: z.number().int().min(0).max(65535).optional().describe('Destination port.'),
    sourcePort: z.number().int().min(0).max(65535).optional().describe('Source port (affects load-balancer member choice only).'),
  }),
  outputs: z.object({
    verdict: verdict.describe('Final verdict.'),
    decidingPolicy: z.string().describe('Policy of the deciding rule, or `default`.'),
    decidingRule: z.string().describe('Deciding rule, or `default`.'),
    observations: z.array(observation).describe('Ordered observations.'),
  }),
});

export const effectiveRule = z
  .object({
    enforcementPoint: z.string().describe('Pod or VM interface the rule is enforced on.'),
    direction: ruleDirection.describe('Direction(s) in which the rule can match here: in (the endpoint as destination), out (as source) or inout.'),
    category: category.describe('Category.'),
    policy: z.string().describe('Policy name.'),
    policyPriority: z.number().int().describe('Policy priority.'),
    rule: z.string().describe('Rule name.'),
    action: ruleAction.describe('Action.'),
    staged: z.boolean().describe('Whether the policy is staged.'),
    disabled: z.boolean().describe('Whether the rule is disabled.'),
    sources: z.array(z.string()).describe('Sources as declared, e.g. `group:web`, `cidr:10.0.0.0/8`, `not vm:db`; empty means any.'),
    destinations: z.array(z.string()).describe('Destinations as declared; empty means any.'),
    services: z.array(z.string()).describe('Services, e.g. `tcp/80,443`, `udp/53`, `icmp type 8`; empty means any.'),
  })
  .meta({ id: 'EffectiveRule' });

export const getEffectiveRules = defineFunction({
  name: 'getEffectiveRules',
  description: 'Rules enforced on a workload or VM, in evaluation order, with sources, destinations and services; rules that can never match there are left out.',
  inputs: z.object({ target: endpointRef('Workload or VM') }),
  outputs: z.object({ rules: z.array(effectiveRule).describe('Effective rules in evaluation order.') }),
});

export const getGroupMembers = defineFunction({
  name: 'getGroupMembers',
  description: 'Resolved members of a SecurityGroup.',
  inputs: z.object({ group: z.string().min(1).describe('SecurityGroup name.') }),
  outputs: z.object({
    members: z.array(groupMember).describe('Members.'),
    ipBlocks: z.array(z.string()).describe('IP blocks, rendered `cidr` or `cidr except a,b`.'),
    count: z.number().int().describe('Number of members.'),
  }),
});

export const matrixCell = z
  .object({
    from: z.string().describe('Source group.'),
    to: z.string().describe('Destination group.'),
    verdict: z.enum(['allow', 'deny', 'partial', 'empty']).describe('allow: every member pair allowed; deny: none; partial: some; empty: no pairs.'),
    allowed: z.number().int().describe('Allowed member pairs.'),
    total: z.number().int().describe('Member pairs evaluated.'),
  })
  .meta({ id: 'MatrixCell' });

export const getConnectivityMatrix = defineFunction({
  name: 'getConnectivityMatrix',
  description: 'Verdicts between every pair of groups for one protocol and port.',
  inputs: z.object({
    groups: z.array(z.string()).min(1).describe('SecurityGroup names.'),
    protocol: flowProtocol.default('tcp').describe('Protocol.'),
    port: z.number().int().min(0).max(65535).optional().describe('Destination port.'),
  }),
  outputs: z.object({ cells: z.array(matrixCell).describe('One cell per ordered pair of groups.') }),
});

export const getKubernetesManifests = defineFunction({
  name: 'getKubernetesManifests',
  description:
    "The pod side of a cluster's policy as Kubernetes objects to apply: flavor `kubernetes` is ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, tiers Admin and Baseline) plus the cluster's NetworkPolicies; flavor `antrea` is Antrea-native ClusterNetworkPolicy, ClusterGroup and Egress (crd.antrea.io/v1beta1) plus the NetworkPolicies; flavor `calico` is projectcalico.org/v3 Tier, GlobalNetworkPolicy, StagedGlobalNetworkPolicy, GlobalNetworkSet (and HostEndpoint with hostEndpoints) plus the NetworkPolicies. Fails, listing each construct with its reason, when the flavor cannot keep a verdict (see docs/kubernetes.md).",
  inputs: z.object({
    cluster: z.string().min(1).describe('Name of the KubernetesCluster.'),
    flavor: z.enum(['kubernetes', 'antrea', 'calico']).default('kubernetes').describe('Target API: kubernetes (ClusterNetworkPolicy + NetworkPolicy), antrea (Antrea ClusterNetworkPolicy in the static tiers, ClusterGroup, Egress + NetworkPolicy) or calico (projectcalico.org/v3 tiers and GlobalNetworkPolicies + NetworkPolicy).'),
    podsOnly: z.boolean().default(false).describe("Every flavor: accept that ingress from a pod's own node (kubelet probes, host-network pods) is always admitted, as Kubernetes, Antrea and Calico do, where microseg would drop it; otherwise the export refuses. Pod and outside sources are exported exactly either way."),
    hostEndpoints: z.boolean().default(false).describe('Flavor calico: also write each VM interface as a HostEndpoint (for a Calico node on the VM) and apply the VM side of the rules to it; otherwise VMs appear as addresses only.'),
  }),
  outputs: z.object({
    manifests: z.array(z.record(z.string(), z.unknown())).describe('The objects, in apply order.'),
    yaml: z.string().describe('The same objects as one multi-document YAML text.'),
  }),
});
