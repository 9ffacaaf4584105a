import { z } from 'zod';
import { defineResource } from './define';
import { category, flowProtocol, inlineRule, ipBlock, labelSelector, nameField, podSelectorSpec, ruleFields, service } from './common';

export const podSelectorInputs = z.object({
  name: nameField('pod selector'),
  ...podSelectorSpec.shape,
});

export const podSelectorResource = defineResource({
  name: 'PodSelector',
  description: 'A reusable pod selector (Kubernetes label-selector semantics; an empty selector selects all pods).',
  inputs: podSelectorInputs,
  outputs: z.object({
    memberCount: z.number().int().describe('Number of pods selected when last applied.'),
  }),
  nameProperty: 'name',
});

/** A resolved member of a group. */
export const groupMember = z
  .object({
    kind: z.enum(['pod', 'vm-interface', 'ip']).describe('pod, vm-interface or ip (egress IP, IP block is listed separately).'),
    name: z.string().describe('Pod `cluster/namespace/pod`, VM `vm#interfaceIndex`, or the IP.'),
    ip: z.string().describe('IP of the member.'),
  })
  .meta({ id: 'GroupMember' });

export const securityGroupInputs = z.object({
  name: nameField('security group'),
  vmSelectors: z.array(labelSelector).optional().describe('VM label selectors; a VM matching any is a member (all its interfaces).'),
  podSelectors: z.array(podSelectorSpec).optional().describe('Inline pod selectors; a pod matching any is a member.'),
  podSelectorRefs: z.array(z.string()).optional().describe('Names of PodSelector resources.'),
  ipBlocks: z.array(ipBlock).optional().describe('IP blocks (CIDR with except).'),
  groups: z.array(z.string()).optional().describe('Nested SecurityGroup names (union); cycles are rejected.'),
  vms: z.array(z.string()).optional().describe('Static VM members by name.'),
  workloads: z.array(z.string()).optional().describe('Static workload members by identity `cluster/namespace/name`.'),
  egressIps: z.array(z.string()).optional().describe('Names of EgressIp resources whose IPs are members.'),
  description: z.string().optional().describe('Free text.'),
});

export const securityGroup = defineResource({
  name: 'SecurityGroup',
  description: 'A union of member criteria: VM and pod selectors, IP blocks, nested groups, static members and egress IPs.',
  inputs: securityGroupInputs,
  outputs: z.object({
    members: z.array(groupMember).describe('Resolved members (pods, VM interfaces and egress IPs).'),
    memberCount: z.number().int().describe('Number of resolved members (IP blocks not counted).'),
  }),
  nameProperty: 'name',
});

export const firewallPolicyInputs = z.object({
  name: nameField('firewall policy'),
  category: category.default('application').describe('emergency → infrastructure → environment → application → (Kubernetes NetworkPolicies of the pods they select) → baseline (evaluation order). baseline decides only what no earlier category nor a NetworkPolicy decided, like the ClusterNetworkPolicy Baseline tier.'),
  priority: z.number().int().min(0).default(1000).describe('Order inside the category, lower first (0 or more); ties are ordered by name with a warning.'),
  appliedTo: z.array(z.string()).optional().describe('SecurityGroup names where the policy is enforced; everywhere when absent.'),
  enforcement: z.enum(['enforce', 'staged']).default('enforce').describe('staged: evaluated and reported by traceflow, never changes the verdict.'),
  rules: z.array(inlineRule).optional().describe('Inline rules in evaluation order. A policy uses inline rules or FirewallRule resources, never both.'),
  description: z.string().optional().describe('Free text.'),
});

/** Like Antrea's desiredNodesRealized/currentNodesRealized, per enforcement point. */
export const policyRealization = z
  .object({
    desiredPointsRealized: z.number().int().describe('Enforcement points where the policy applies (VM interfaces and pods).'),
    currentPointsRealized: z.number().int().describe('Of those, the points whose agent reports this revision of the policy realized.'),
    pointsNotRealized: z.array(z.string()).describe('The points not (yet) realized (unreported, pending or error), sorted; at most 100 listed (`microseg realization` shows all, with errors).'),
  })
  .meta({ id: 'PolicyRealization' });

export const firewallPolicy = defineResource({
  name: 'FirewallPolicy',
  description: 'An ordered set of rules in a category, with a priority and an optional appliedTo.',
  inputs: firewallPolicyInputs,
  outputs: z.object({
    realization: policyRealization.optional().describe('Enforcement points where the policy applies, desired vs realized, read from the agents\' reports at create, update and refresh.'),
  }),
  nameProperty: 'name',
});

export const firewallRuleInputs = z.object({
  name: z.string().min(1).max(253).optional().describe('Rule name, unique inside its policy (the id is `policy/name`). Autonamed from the Pulumi resource name when absent.'),
  policy: z.string().min(1).describe('Name of the FirewallPolicy the rule belongs to (which must have no inline rules).'),
  priority: z.number().int().min(0).default(1000).describe('Order inside the policy, lower first (0 or more); ties by name.'),
  ...ruleFields,
});

export const firewallRule = defineResource({
  name: 'FirewallRule',
  description: 'A standalone rule attached to a FirewallPolicy, ordered by priority then name. Its name is unique inside its policy; its id is `policy/name`.',
  inputs: firewallRuleInputs,
  outputs: z.object({}),
  nameProperty: 'name',
  // The id is `policy/name`: moving a rule to another policy is a new object.
  replaceOnChanges: ['policy'],
});

export const egressIpInputs = z.object({
  name: nameField('egress IP'),
  cluster: z.string().min(1).describe('Name of the KubernetesCluster whose pods it applies to.'),
  ip: z.string().optional().describe('The egress IP; allocated from `pool` when absent.'),
  pool: z.string().optional().describe('CIDR or range "a-b" to allocate the egress IP from.'),
  podSelector: podSelectorSpec.describe('Pods whose traffic leaving the cluster is SNATed to this IP (cluster is implied).'),
});

export const egressIp = defineResource({
  name: 'EgressIp',
  description:
    'A stable SNAT address for selected pods leaving the cluster. When several EgressIps select a pod, the first by name applies.',
  inputs: egressIpInputs,
  outputs: z.object({ allocatedIp: z.string().describe('The egress IP in use.') }),
  nameProperty: 'name',
});

export const listener = z
  .object({
    port: z.number().int().describe('Port on the VIP.'),
    protocol: flowProtocol.default('tcp').describe('Protocol: tcp, udp or sctp.'),
    targetPort: z.union([z.number().int(), z.string()]).optional().describe('Member port: number or named port; the listener port when absent.'),
  })
  .meta({ id: 'Listener' });

export const lbPool = z
  .object({
    group: z.string().optional().describe('SecurityGroup whose pods and VM interfaces are members.'),
    podSelector: podSelectorSpec.optional().describe('Inline pod selector for the members.'),
    podSelectorRef: z.string().optional().describe('Name of a PodSelector for the members.'),
  })
  .meta({ id: 'LoadBalancerPool' });

export const healthCheck = z
  .object({
    protocol: z.enum(['tcp', 'http']).default('tcp').describe('Probe protocol.'),
    port: z.union([z.number().int(), z.string()]).optional().describe('Probe port; the target port when absent.'),
    path: z.string().optional().describe('HTTP path for http probes.'),
    intervalSeconds: z.number().int().min(1).default(10).describe('Seconds between probes.'),
    unhealthyThreshold: z.number().int().min(1).default(3).describe('Failed probes before a member is taken out.'),
  })
  .meta({ id: 'HealthCheck' });

export const loadBalancerInputs = z.object({
  name: nameField('load balancer'),
  vip: z.string().optional().describe('Virtual IP; allocated from `vipPool` when absent.'),
  vipPool: z.string().optional().describe('CIDR or range "a-b" to allocate the VIP from.'),
  listeners: z.array(listener).min(1).describe('Listeners (at least one).'),
  pool: lbPool.describe('Pool members: exactly one of group, podSelector, podSelectorRef; members follow pod churn.'),
  algorithm: z.enum(['round-robin', 'least-connections', 'source-hash']).default('round-robin').describe('Balancing algorithm of the dataplane; traceflow picks a member deterministically from a hash of the flow.'),
  healthCheck: healthCheck.optional().describe('Health check settings.'),
});

export const loadBalancer = defineResource({
  name: 'LoadBalancer',
  description: 'A VIP whose listeners are DNATed to healthy pool members.',
  inputs: loadBalancerInputs,
  outputs: z.object({
    allocatedVip: z.string().describe('The VIP in use.'),
    memberCount: z.number().int().describe('Number of pool members when last applied.'),
  }),
  nameProperty: 'name',
});

export const quarantinePolicyInputs = z.object({
  name: nameField('quarantine policy'),
  selector: labelSelector.describe('Selects the quarantined VMs and pods by label, e.g. matchExpressions [{key: quarantine, operator: Exists}].'),
  forensicGroup: z.string().optional().describe('SecurityGroup that may still reach the quarantined workloads.'),
  forensicServices: z.array(service).optional().describe('Services the forensic group may use; any when absent.'),
});

export const quarantinePolicy = defineResource({
  name: 'QuarantinePolicy',
  description:
    'Isolates workloads selected by label: expands to emergency-category rules ahead of every other policy that allow the forensic group in and drop everything else to and from the quarantined workloads.',
  inputs: quarantinePolicyInputs,
  outputs: z.object({}),
  nameProperty: 'name',
});

export const connectivityAssertionInputs = z.object({
  name: nameField('connectivity assertion'),
  from: z.string().min(1).describe('Source: an IP, `vm:NAME` (first interface) or `vm:NAME#i`, `workload:CLUSTER/NAMESPACE/NAME` or `NAMESPACE/NAME` (first pod), `pod:CLUSTER/NAMESPACE/POD`; the prefix may be left out when the name is unambiguous.'),
  to: z.string().min(1).describe('Destination: the same forms as `from`, or a LoadBalancer `lb:NAME`.'),
  protocol: flowProtocol.default('tcp').describe('Protocol of the flow.'),
  port: z.number().int().min(0).max(65535).optional().describe('Destination port (tcp, udp, sctp).'),
  expect: z.enum(['allow', 'deny']).describe('allow: the flow must be allowed; deny: it must be dropped or rejected.'),
});

export const connectivityAssertion = defineResource({
  name: 'ConnectivityAssertion',
  description: 'A declared expectation checked during preview and apply; a broken expectation fails them.',
  inputs: connectivityAssertionInputs,
  outputs: z.object({
    verdict: z.enum(['allow', 'drop', 'reject']).describe('The verdict computed for the flow.'),
    decidingRule: z.string().describe('`policy/rule` that decided, or `default`.'),
    passed: z.boolean().describe('Whether the expectation holds.'),
  }),
  nameProperty: 'name',
});
