import type { Kind } from '../model';

/**
 * Kubernetes manifests → microseg objects (pure). What a cluster's manifests say about segmentation:
 * NetworkPolicies (networking.k8s.io/v1) as they are, Namespaces' labels, and the pods of Pods,
 * Deployments, StatefulSets, DaemonSets and ReplicaSets (labels of the pod template, replicas, named
 * container ports). Used by `microseg import-k8s` and by topology files, which accept these objects as
 * resources typed as pulumi-kubernetes types them (`kubernetes:networking.k8s.io/v1:NetworkPolicy`).
 * Anything else (Services, ConfigMaps...) carries no segmentation and is skipped with a reason.
 */

export interface ImportedObject {
  readonly kind: Kind;
  /** The microseg spec (inputs, before validation). */
  readonly spec: Record<string, unknown>;
}

export type ImportResult = { readonly object: ImportedObject } | { readonly skipped: string } | { readonly problem: { readonly path: string; readonly message: string } };

/** `apiVersion` + `kind` of the manifests we read, with the pulumi-kubernetes type token of each. */
export const KUBERNETES_TYPES: Readonly<Record<string, string>> = {
  'networking.k8s.io/v1/NetworkPolicy': 'kubernetes:networking.k8s.io/v1:NetworkPolicy',
  'v1/Namespace': 'kubernetes:core/v1:Namespace',
  'v1/Pod': 'kubernetes:core/v1:Pod',
  'apps/v1/Deployment': 'kubernetes:apps/v1:Deployment',
  'apps/v1/StatefulSet': 'kubernetes:apps/v1:StatefulSet',
  'apps/v1/DaemonSet': 'kubernetes:apps/v1:DaemonSet',
  'apps/v1/ReplicaSet': 'kubernetes:apps/v1:ReplicaSet',
};

/** `kubernetes:networking.k8s.io/v1:NetworkPolicy` → `{apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy'}`. */
export function parsePulumiKubernetesType(type: string): { apiVersion: string; kind: string } | undefined {
  const m = /^kubernetes:([^:]+):([A-Za-z]+)$/.exec(type);
  if (!m) return undefined;
  const apiVersion = m[1]!.startsWith('core/') ? m[1]!.slice('core/'.length) : m[1]!;
  return KUBERNETES_TYPES[`${apiVersion}/${m[2]}`] ? { apiVersion, kind: m[2]! } : undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface ContainerPort {
  name?: unknown;
  containerPort?: unknown;
  protocol?: unknown;
}

/** Named container ports of a pod spec (unnamed ones cannot be referenced by a rule). */
function namedPorts(podSpec: unknown): { name: string; port: number; protocol: string }[] {
  const out: { name: string; port: number; protocol: string }[] = [];
  if (!isObj(podSpec)) return out;
  for (const c of [...(Array.isArray(podSpec.containers) ? podSpec.containers : []), ...(Array.isArray(podSpec.initContainers) ? podSpec.initContainers : [])]) {
    if (!isObj(c) || !Array.isArray(c.ports)) continue;
    for (const p of c.ports as ContainerPort[]) {
      if (typeof p.name === 'string' && typeof p.containerPort === 'number') out.push({ name: p.name, port: p.containerPort, protocol: typeof p.protocol === 'string' ? p.protocol.toLowerCase() : 'tcp' });
    }
  }
  return out;
}

/**
 * One manifest → one microseg object. `cluster` is the KubernetesCluster the manifest belongs to;
 * `defaultNamespace` is used when metadata.namespace is absent (kubectl's `default`).
 */
export function fromManifest(m: unknown, cluster: string, defaultNamespace = 'default'): ImportResult {
  if (!isObj(m)) return { problem: { path: '', message: 'a manifest must be an object with apiVersion, kind and metadata' } };
  const apiVersion = String(m.apiVersion ?? '');
  const kind = String(m.kind ?? '');
  if (!KUBERNETES_TYPES[`${apiVersion}/${kind}`]) return { skipped: `${apiVersion || '?'} ${kind || '?'} carries no segmentation` };
  const meta = isObj(m.metadata) ? m.metadata : {};
  const name = meta.name;
  if (typeof name !== 'string' || name === '') return { problem: { path: 'metadata.name', message: `${kind} has no metadata.name` } };
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : defaultNamespace;
  const spec = isObj(m.spec) ? m.spec : {};
  switch (kind) {
    case 'NetworkPolicy': {
      const out: Obj = { name, cluster, namespace, podSelector: spec.podSelector ?? {} };
      for (const f of ['policyTypes', 'ingress', 'egress'] as const) if (spec[f] !== undefined && spec[f] !== null) out[f] = spec[f];
      return { object: { kind: 'KubernetesNetworkPolicy', spec: out } };
    }
    case 'Namespace':
      return { object: { kind: 'Namespace', spec: { name, cluster, ...(isObj(meta.labels) ? { labels: meta.labels } : {}) } } };
    case 'Pod': {
      const ports = namedPorts(spec);
      return { object: { kind: 'Workload', spec: { name, cluster, namespace, labels: isObj(meta.labels) ? meta.labels : {}, replicas: 1, ...(ports.length ? { ports } : {}) } } };
    }
    default: {
      // Controllers: pods carry the template's labels; a DaemonSet has one pod per node, recorded as 1.
      const template = isObj(spec.template) ? spec.template : {};
      const tmeta = isObj(template.metadata) ? template.metadata : {};
      const replicas = kind === 'DaemonSet' ? 1 : typeof spec.replicas === 'number' ? spec.replicas : 1;
      const ports = namedPorts(template.spec);
      return { object: { kind: 'Workload', spec: { name, cluster, namespace, labels: isObj(tmeta.labels) ? tmeta.labels : {}, replicas, ...(ports.length ? { ports } : {}) } } };
    }
  }
}

/** Flattens `kind: List` (kubectl get -o yaml) into its items. */
export function flattenManifests(docs: readonly unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const d of docs) {
    if (d === null || d === undefined) continue;
    if (isObj(d) && d.kind === 'List' && Array.isArray(d.items)) out.push(...flattenManifests(d.items));
    else out.push(d);
  }
  return out;
}
