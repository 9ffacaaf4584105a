import type { LabelSelector } from './selection';

/**
 * Kubernetes label selectors as Calico selector expressions (`projectcalico.org/v3` `selector`,
 * `namespaceSelector`). Calico's `k not in {...}` and `!has(k)` select objects without the label, as
 * Kubernetes' NotIn and DoesNotExist do, so the translation is exact.
 */
export function calicoSelector(sel: LabelSelector, prefix = ''): string {
  const q = (v: string): string => `'${v}'`;
  const set = (values: readonly string[] | undefined): string => `{${[...(values ?? [])].sort().map(q).join(', ')}}`;
  const terms: string[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) terms.push(`${prefix}${k} == ${q(v)}`);
  for (const e of sel.matchExpressions ?? []) {
    const k = `${prefix}${e.key}`;
    if (e.operator === 'In') terms.push(e.values?.length === 1 ? `${k} == ${q(e.values[0]!)}` : `${k} in ${set(e.values)}`);
    else if (e.operator === 'NotIn') terms.push(e.values?.length === 1 ? `${k} != ${q(e.values[0]!)}` : `${k} not in ${set(e.values)}`);
    else if (e.operator === 'Exists') terms.push(`has(${k})`);
    else if (e.operator === 'DoesNotExist') terms.push(`!has(${k})`);
    else throw new Error(`unknown label selector operator ${e.operator}`);
  }
  return terms.length ? terms.join(' && ') : 'all()';
}
