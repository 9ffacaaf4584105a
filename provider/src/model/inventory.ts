import { z } from 'zod';
import { defineResource } from './define';
import { labels, nameField, flowProtocol } from './common';

/** One network interface of a VM; each interface is an enforcement point. */
export const vmInterface = z
  .object({
    ip: z.string().describe('IPv4 or IPv6 address of the interface.'),
    network: z.string().optional().describe('Name of the network the interface is attached to.'),
  })
  .meta({ id: 'VmInterface' });

export const virtualMachineInputs = z.object({
  name: nameField('virtual machine'),
  interfaces: z.array(vmInterface).min(1).describe('Network interfaces (at least one); each is an enforcement point.'),
  labels: labels.optional(),
  host: z.string().optional().describe('Hypervisor host or bare-metal server running the VM.'),
});

/** How far an enforcement point is in realizing the desired state, as its agent reported it. */
export const realizationState = z
  .enum(['unreported', 'pending', 'realized', 'error'])
  .describe('unreported: no agent reported for the point; pending: the agent has not yet applied (or not yet seen) this object\'s current revision; realized: the kernel enforces it; error: the kernel refused it and keeps the last good ruleset.');

/** The realization status of one VM interface (see docs/realization.md). */
export const interfaceRealization = z
  .object({
    enforcementPoint: z.string().describe('Enforcement point of the interface, `vm:NAME#i`.'),
    state: realizationState,
    desiredRevision: z.number().int().optional().describe('Change-log revision of the newest desired ruleset the agent computed for the point.'),
    realizedRevision: z.number().int().optional().describe('Change-log revision of the ruleset the kernel enforces (0: none yet).'),
    error: z.string().optional().describe('Why the kernel refused the desired ruleset (state error).'),
    updatedAt: z.string().optional().describe('When the agent last reported (ISO-8601).'),
  })
  .meta({ id: 'InterfaceRealization' });

export const virtualMachine = defineResource({
  name: 'VirtualMachine',
  description: 'A virtual machine with one or more interfaces and labels used by segmentation selectors.',
  inputs: virtualMachineInputs,
  outputs: z.object({
    realization: z.array(interfaceRealization).optional().describe('Realization status per interface, read from the agents\' reports at create, update and refresh.'),
  }),
  nameProperty: 'name',
});

export const kubernetesNode = z
  .object({
    name: z.string().min(1).describe('Node name.'),
    ip: z.string().describe('Node IP: the SNAT address of pod traffic leaving the cluster in overlay mode.'),
  })
  .meta({ id: 'KubernetesNode' });

export const kubernetesClusterInputs = z.object({
  name: nameField('cluster'),
  podCidr: z.string().describe('CIDR pod IPs are allocated from.'),
  serviceCidr: z
    .string()
    .default('10.96.0.0/12')
    .describe('CIDR of Kubernetes services; 10.96.0.0/12 (the kubeadm default) when absent. Must not overlap the pod CIDR.'),
  nodes: z.array(kubernetesNode).min(1).describe('Cluster nodes; pods are spread over them in order.'),
  networkMode: z
    .enum(['flat', 'overlay'])
    .default('overlay')
    .describe('overlay: pod traffic leaving the cluster is SNATed to its node IP unless an EgressIp applies; flat: pod IPs are routable and kept.'),
});

export const kubernetesCluster = defineResource({
  name: 'KubernetesCluster',
  description: 'A Kubernetes cluster: pod and service CIDRs, nodes and network mode.',
  inputs: kubernetesClusterInputs,
  outputs: z.object({}),
  nameProperty: 'name',
  replaceOnChanges: ['podCidr'],
});

export const namespaceInputs = z.object({
  name: nameField('namespace (the Kubernetes namespace name)'),
  cluster: z.string().min(1).describe('Name of the KubernetesCluster.'),
  labels: labels.optional(),
});

/** A namespace is identified by `cluster/name` (see identityOf). */
export const namespace = defineResource({
  name: 'Namespace',
  description: 'A Kubernetes namespace. Its identity is `cluster/name`; the label `kubernetes.io/metadata.name` is implied.',
  inputs: namespaceInputs,
  outputs: z.object({}),
  nameProperty: 'name',
  replaceOnChanges: ['cluster', 'name'],
});

export const namedPort = z
  .object({
    name: z.string().min(1).describe('Port name, referenced by rules and load-balancer listeners.'),
    port: z.number().int().describe('Container port number.'),
    protocol: flowProtocol.default('tcp').describe('Protocol of the port.'),
  })
  .meta({ id: 'NamedPort' });

export const pod = z
  .object({
    name: z.string().describe('Pod name: `<workload>-<index>`.'),
    ip: z.string().describe('Allocated pod IP.'),
    node: z.string().describe('Node the pod runs on.'),
  })
  .meta({ id: 'Pod' });

export const workloadInputs = z.object({
  name: nameField('workload'),
  cluster: z.string().min(1).describe('Name of the KubernetesCluster.'),
  namespace: z.string().min(1).describe('Kubernetes namespace name (a Namespace of that cluster).'),
  labels: labels.optional(),
  replicas: z.number().int().min(0).default(1).describe('Number of pods.'),
  ports: z.array(namedPort).optional().describe('Named container ports.'),
});

/** A workload is identified by `cluster/namespace/name` (see identityOf). */
export const workload = defineResource({
  name: 'Workload',
  description:
    'A declared set of pods. The backend allocates pod IPs from the cluster pod CIDR and keeps them stable across updates that keep the replica count. Identity: `cluster/namespace/name`.',
  inputs: workloadInputs,
  outputs: z.object({
    pods: z.array(pod).describe('Pods with their allocated IPs and nodes.'),
  }),
  nameProperty: 'name',
  replaceOnChanges: ['cluster', 'namespace', 'name'],
});
