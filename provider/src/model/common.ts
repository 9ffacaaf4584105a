import { z } from 'zod';

/**
 * Building blocks shared by several resources. Every reference between resources is by the referenced
 * object's backend **name** (a string), so programs stay readable and the store can key objects by
 * `(kind, name)`. Namespaces and workloads are scoped by cluster, see {@link identityOf} in `./index`.
 */

/** The backend name of an object; autonamed by the provider from the Pulumi resource name when absent. */
export const nameField = (what: string) =>
  z.string().min(1).max(253).optional().describe(`Backend name of the ${what}; unique per kind in the environment. Autonamed from the Pulumi resource name when absent.`);

/** Key/value tags, as Kubernetes labels. */
export const labels = z.record(z.string(), z.string()).describe('Labels (key/value tags) used by selectors.');

export const selectorOperator = z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']).describe('Operator: In, NotIn, Exists or DoesNotExist.');

/** One `matchExpressions` entry, Kubernetes semantics. */
export const labelSelectorRequirement = z
  .object({
    key: z.string().min(1).describe('Label key the requirement applies to.'),
    operator: selectorOperator,
    values: z.array(z.string()).optional().describe('Values for In and NotIn (at least one); must be empty for Exists and DoesNotExist.'),
  })
  .meta({ id: 'LabelSelectorRequirement' });

/**
 * A Kubernetes label selector. `matchLabels` and `matchExpressions` are ANDed; an empty selector selects
 * everything (as in Kubernetes).
 */
export const labelSelector = z
  .object({
    matchLabels: z.record(z.string(), z.string()).optional().describe('Labels that must all be present with exactly these values.'),
    matchExpressions: z.array(labelSelectorRequirement).optional().describe('Requirements that must all hold.'),
  })
  .meta({ id: 'LabelSelector' });

/**
 * Selects pods. Namespace scope: `namespaces` (names) and/or `namespaceSelector` (labels of Namespace
 * objects); when both are given a namespace must satisfy both; when neither is given every namespace
 * is in scope (policies are cluster-wide, not namespaced). `cluster` absent means every cluster.
 */
export const podSelectorSpec = z
  .object({
    cluster: z.string().optional().describe('Cluster name the selector is limited to; every cluster when absent.'),
    namespaces: z.array(z.string()).optional().describe('Namespace names in scope; combined (AND) with namespaceSelector.'),
    namespaceSelector: labelSelector.optional().describe('Selects namespaces by their labels (kubernetes.io/metadata.name is implied).'),
    podSelector: labelSelector.optional().describe('Selects pods by their workload labels; absent or empty selects every pod in scope.'),
  })
  .meta({ id: 'PodSelectorSpec' });

/** CIDR with exceptions. */
export const ipBlock = z
  .object({
    cidr: z.string().describe('IPv4 or IPv6 CIDR, e.g. 10.0.0.0/8; a bare IP means a /32 or /128.'),
    except: z.array(z.string()).optional().describe('CIDRs inside `cidr` that are excluded.'),
  })
  .meta({ id: 'IpBlock' });

/**
 * A rule peer (source or destination). Exactly one selector field must be set:
 * `group` (SecurityGroup name), `podSelector` (inline), `podSelectorRef` (PodSelector name),
 * `vmSelector` (VM labels), `vm` (VM name), `workload` (workload identity `cluster/namespace/name`),
 * `cidr` (with optional `except`).
 */
export const peer = z
  .object({
    group: z.string().optional().describe('Name of a SecurityGroup.'),
    podSelector: podSelectorSpec.optional().describe('Inline pod selector.'),
    podSelectorRef: z.string().optional().describe('Name of a PodSelector resource.'),
    vmSelector: labelSelector.optional().describe('Selects virtual machines by their labels.'),
    vm: z.string().optional().describe('Name of a VirtualMachine (all its interfaces).'),
    workload: z.string().optional().describe('Identity of a Workload: `cluster/namespace/name`.'),
    cidr: z.string().optional().describe('IPv4 or IPv6 CIDR or bare IP.'),
    except: z.array(z.string()).optional().describe('CIDRs excluded from `cidr` (only with `cidr`).'),
  })
  .meta({ id: 'Peer' });

export const protocol = z.enum(['tcp', 'udp', 'sctp', 'icmp', 'icmpv6', 'any']);
export const flowProtocol = z.enum(['tcp', 'udp', 'sctp', 'icmp', 'icmpv6']);

/** A port: a number, an "a-b" range, or a named port of the destination workload. */
export const portSpec = z.union([z.number().int(), z.string()]);

/** A service a rule matches: protocol and destination ports (empty means every port). */
export const service = z
  .object({
    protocol: protocol.default('any').describe('Protocol: tcp, udp, sctp, icmp, icmpv6 or any. `any` with ports means tcp, udp and sctp on those ports; without ports, every protocol.'),
    ports: z
      .array(portSpec)
      .optional()
      .describe('Destination ports: numbers (80), ranges ("8000-8080") or named ports of the destination workload ("http"); empty means every port. Only for tcp, udp, sctp and any (= those three).'),
    icmpType: z.number().int().optional().describe('ICMP type (icmp/icmpv6 only); every type when absent.'),
    icmpCode: z.number().int().optional().describe('ICMP code (icmp/icmpv6 only, with icmpType); every code when absent.'),
  })
  .meta({ id: 'Service' });

export const ruleAction = z.enum(['allow', 'drop', 'reject', 'pass']);
export const ruleDirection = z.enum(['in', 'out', 'inout']);
export const category = z.enum(['emergency', 'infrastructure', 'environment', 'application', 'baseline']);

/** Fields common to inline rules and standalone FirewallRule resources. */
export const ruleFields = {
  action: ruleAction.describe('allow, drop, reject (drop and tell the sender: TCP RST / ICMP unreachable) or pass (from emergency, infrastructure or environment: skip to the application category; from application: skip to the Kubernetes NetworkPolicy layer, then baseline; from baseline: skip to the default rule).'),
  direction: ruleDirection.default('inout').describe('in: evaluated where the destination is enforced; out: where the source is; inout: both.'),
  sources: z.array(peer).optional().describe('Sources; empty or absent means any.'),
  destinations: z.array(peer).optional().describe('Destinations; empty or absent means any.'),
  sourcesExcluded: z.boolean().default(false).describe('When true the rule matches sources that are NOT in `sources` (NSX negation).'),
  destinationsExcluded: z.boolean().default(false).describe('When true the rule matches destinations that are NOT in `destinations`.'),
  services: z.array(service).optional().describe('Services; empty or absent means any protocol and port.'),
  appliedTo: z.array(z.string()).optional().describe('SecurityGroup names narrowing where the rule is enforced (intersected with the policy appliedTo).'),
  logged: z.boolean().default(false).describe('Log flows matching this rule.'),
  disabled: z.boolean().default(false).describe('A disabled rule never matches.'),
  description: z.string().optional().describe('Free text.'),
};

/** An inline rule of a FirewallPolicy; `name` is required and unique inside the policy. */
export const inlineRule = z
  .object({
    name: z.string().min(1).describe('Stable rule name, unique inside the policy.'),
    ...ruleFields,
  })
  .meta({ id: 'Rule' });
