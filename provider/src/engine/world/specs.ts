import type { Kind, SpecOf } from '../../model';
import type { Problem } from '../problems';

/** The spec layer: every declared object by kind and name (validated and normalised). */
export type Specs = { [K in Kind]: Map<string, SpecOf[K]> };

export function emptySpecs(): Specs {
  return {
    VirtualMachine: new Map(),
    KubernetesCluster: new Map(),
    Namespace: new Map(),
    Workload: new Map(),
    PodSelector: new Map(),
    SecurityGroup: new Map(),
    FirewallPolicy: new Map(),
    FirewallRule: new Map(),
    KubernetesNetworkPolicy: new Map(),
    EgressIp: new Map(),
    LoadBalancer: new Map(),
    QuarantinePolicy: new Map(),
    ConnectivityAssertion: new Map(),
  };
}

/**
 * Allocation problems by owner (`Kind/name`): pod CIDR or pool exhaustion, found while allocating (by the
 * inventory for pods, by addressing for egress IPs and VIPs) and reported by validate().
 */
export type AllocationProblems = Map<string, Problem>;

/** Every object, in insertion order per kind. */
export function* objectsOf(specs: Specs): Iterable<{ kind: Kind; name: string; spec: SpecOf[Kind] }> {
  for (const kind of Object.keys(specs) as Kind[]) for (const [name, spec] of specs[kind]) yield { kind, name, spec };
}
