/** The target APIs of `getKubernetesManifests` / `microseg export --flavor`. */
export type Flavor = 'kubernetes';

export interface Refusal {
  /** The construct, e.g. `FirewallPolicy web/deny-ssh: action reject`. */
  readonly construct: string;
  readonly reason: string;
}

export interface KubernetesExport {
  readonly manifests: readonly Record<string, unknown>[];
  readonly refusals: readonly Refusal[];
}

export interface ExportOptions {
  readonly cluster: string;
  readonly flavor: Flavor;
  /** Accept that ingress from a pod's own node is always admitted (Kubernetes does) where microseg drops it. */
  readonly podsOnly?: boolean;
}
