import type { Kind, SpecOf } from '../model';

/** A reference from one spec to another object, by the target's identity, with where it is made. */
export interface Reference {
  readonly kind: Kind;
  readonly name: string;
  /** Property path in the referring spec, e.g. `rules[0].sources[1].group`. */
  readonly path: string;
}

type Peer = { group?: string; podSelectorRef?: string; vm?: string; workload?: string; podSelector?: { cluster?: string } };

/**
 * Every object a (valid, normalised) spec references, in property order. The single definition of
 * what refers to what: world validation reports the missing ones, and the store keeps them so that
 * deleting an object still in use is refused.
 */
export function referencesOf(kind: Kind, spec: unknown): Reference[] {
  const out: Reference[] = [];
  const add = (k: Kind, name: string | undefined, path: string) => {
    if (name !== undefined) out.push({ kind: k, name, path });
  };
  const peers = (list: readonly Peer[] | undefined, path: string) =>
    (list ?? []).forEach((p, i) => {
      add('SecurityGroup', p.group, `${path}[${i}].group`);
      add('PodSelector', p.podSelectorRef, `${path}[${i}].podSelectorRef`);
      add('VirtualMachine', p.vm, `${path}[${i}].vm`);
      add('Workload', p.workload, `${path}[${i}].workload`);
      add('KubernetesCluster', p.podSelector?.cluster, `${path}[${i}].podSelector.cluster`);
    });
  const groups = (list: readonly string[] | undefined, path: string) => (list ?? []).forEach((g, i) => add('SecurityGroup', g, `${path}[${i}]`));
  switch (kind) {
    case 'Namespace':
      add('KubernetesCluster', (spec as SpecOf['Namespace']).cluster, 'cluster');
      break;
    case 'Workload': {
      const w = spec as SpecOf['Workload'];
      add('KubernetesCluster', w.cluster, 'cluster');
      add('Namespace', `${w.cluster}/${w.namespace}`, 'namespace');
      break;
    }
    case 'KubernetesNetworkPolicy': {
      const n = spec as SpecOf['KubernetesNetworkPolicy'];
      add('KubernetesCluster', n.cluster, 'cluster');
      add('Namespace', `${n.cluster}/${n.namespace}`, 'namespace');
      break;
    }
    case 'PodSelector':
      add('KubernetesCluster', (spec as SpecOf['PodSelector']).cluster, 'cluster');
      break;
    case 'SecurityGroup': {
      const g = spec as SpecOf['SecurityGroup'];
      groups(g.groups, 'groups');
      (g.podSelectorRefs ?? []).forEach((r, i) => add('PodSelector', r, `podSelectorRefs[${i}]`));
      (g.vms ?? []).forEach((r, i) => add('VirtualMachine', r, `vms[${i}]`));
      (g.workloads ?? []).forEach((r, i) => add('Workload', r, `workloads[${i}]`));
      (g.egressIps ?? []).forEach((r, i) => add('EgressIp', r, `egressIps[${i}]`));
      break;
    }
    case 'FirewallPolicy': {
      const p = spec as SpecOf['FirewallPolicy'];
      groups(p.appliedTo, 'appliedTo');
      (p.rules ?? []).forEach((r, i) => {
        groups(r.appliedTo, `rules[${i}].appliedTo`);
        peers(r.sources, `rules[${i}].sources`);
        peers(r.destinations, `rules[${i}].destinations`);
      });
      break;
    }
    case 'FirewallRule': {
      const r = spec as SpecOf['FirewallRule'];
      add('FirewallPolicy', r.policy, 'policy');
      groups(r.appliedTo, 'appliedTo');
      peers(r.sources, 'sources');
      peers(r.destinations, 'destinations');
      break;
    }
    case 'EgressIp':
      add('KubernetesCluster', (spec as SpecOf['EgressIp']).cluster, 'cluster');
      break;
    case 'LoadBalancer': {
      const l = spec as SpecOf['LoadBalancer'];
      add('SecurityGroup', l.pool.group, 'pool.group');
      add('PodSelector', l.pool.podSelectorRef, 'pool.podSelectorRef');
      break;
    }
    case 'QuarantinePolicy':
      add('SecurityGroup', (spec as SpecOf['QuarantinePolicy']).forensicGroup, 'forensicGroup');
      break;
    default:
      break;
  }
  return out;
}
