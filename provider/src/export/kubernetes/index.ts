import type { World } from '../../engine';
import { clusterNetworkPolicyExport } from './clusternetworkpolicy';
import type { ExportOptions, KubernetesExport } from './flavor';

export type { ExportOptions, Flavor, KubernetesExport, Refusal } from './flavor';

/**
 * The pod side of a cluster's policy as Kubernetes objects of one flavor (pure). Each flavor keeps every
 * verdict or refuses the construct with the reason; it never exports a silently different verdict.
 */
export function getKubernetesManifests(world: World, options: ExportOptions): KubernetesExport {
  switch (options.flavor) {
    case 'kubernetes':
      return clusterNetworkPolicyExport(world, options);
  }
}
