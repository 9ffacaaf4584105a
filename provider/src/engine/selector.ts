import type { z } from 'zod';
import type { labelSelector } from '../model/common';

export type LabelSelectorSpec = z.output<typeof labelSelector>;
export type Labels = Readonly<Record<string, string>>;

/** One compiled requirement; `values` is a Set for O(1) In/NotIn checks. */
interface Requirement {
  readonly key: string;
  readonly op: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  readonly values: ReadonlySet<string>;
}

/**
 * A label selector compiled once: matchLabels become `In` requirements, requirements are sorted so that
 * equal selectors written differently share one canonical key (and therefore one group atom).
 */
export class Selector {
  readonly key: string;
  /** A label key every selected object must carry, used to index the selector; undefined when none. */
  readonly requiredKey: string | undefined;
  /** For an `In` requirement on `requiredKey`, its values (the only ones that can match); undefined for Exists. */
  readonly requiredValues: ReadonlySet<string> | undefined;
  private readonly reqs: readonly Requirement[];

  constructor(spec: LabelSelectorSpec | undefined) {
    const reqs: Requirement[] = [];
    for (const [k, v] of Object.entries(spec?.matchLabels ?? {})) reqs.push({ key: k, op: 'In', values: new Set([v]) });
    for (const e of spec?.matchExpressions ?? []) reqs.push({ key: e.key, op: e.operator, values: new Set(e.values ?? []) });
    const canon = reqs.map((r) => `${r.key}\u0000${r.op}\u0000${[...r.values].sort().join('\u0001')}`);
    const order = canon.map((_, i) => i).sort((a, b) => (canon[a]! < canon[b]! ? -1 : canon[a]! > canon[b]! ? 1 : 0));
    const uniq: Requirement[] = [];
    const keys: string[] = [];
    for (const i of order) {
      if (keys[keys.length - 1] === canon[i]) continue;
      keys.push(canon[i]!);
      uniq.push(reqs[i]!);
    }
    this.reqs = uniq;
    this.key = keys.join('\u0002');
    const req = uniq.find((r) => r.op === 'In') ?? uniq.find((r) => r.op === 'Exists');
    this.requiredKey = req?.key;
    this.requiredValues = req?.op === 'In' ? req.values : undefined;
  }

  /** An empty selector selects everything. */
  get isEmpty(): boolean {
    return this.reqs.length === 0;
  }

  matches(labels: Labels): boolean {
    for (const r of this.reqs) {
      const has = Object.prototype.hasOwnProperty.call(labels, r.key);
      switch (r.op) {
        case 'In':
          if (!has || !r.values.has(labels[r.key]!)) return false;
          break;
        case 'NotIn':
          // Kubernetes: NotIn also selects objects without the key.
          if (has && r.values.has(labels[r.key]!)) return false;
          break;
        case 'Exists':
          if (!has) return false;
          break;
        case 'DoesNotExist':
          if (has) return false;
          break;
      }
    }
    return true;
  }
}
