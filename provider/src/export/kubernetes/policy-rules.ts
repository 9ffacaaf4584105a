import type { World } from '../../engine';
import type { SpecOf } from '../../model';

/** A policy category (emergency … application, baseline) as the engine orders them. */
export type Category = ReturnType<World['orderedPolicies']>[number]['category'];

export type RuleSpec = SpecOf['FirewallRule'] | NonNullable<SpecOf['FirewallPolicy']['rules']>[number];

/** One policy in evaluation order with its rules in rule order, as every flavor exports it. */
export interface OrderedPolicy {
  readonly name: string;
  readonly category: Category;
  readonly staged: boolean;
  /** True for a QuarantinePolicy (its rules are synthesised: forensic allow, isolate in and out). */
  readonly quarantine: boolean;
  /** The policy's appliedTo groups; for a quarantine, undefined (see `quarantineSelector`). */
  readonly appliedTo: readonly string[] | undefined;
  /** The pod label selector a quarantine applies to. */
  readonly quarantineSelector?: Record<string, unknown>;
  /** Enabled and disabled rules in rule order (callers skip `disabled`). */
  readonly rules: readonly RuleSpec[];
}

/**
 * The firewall and quarantine policies in the engine's evaluation order (category, then priority), each
 * with its rules from the specs (inline rules, or the FirewallRule objects of the policy by priority and
 * name), so an exporter keeps both the policy order and the rule order.
 */
export function orderedPolicyRules(world: World): OrderedPolicy[] {
  const out: OrderedPolicy[] = [];
  for (const p of world.orderedPolicies()) {
    const fp = world.get('FirewallPolicy', p.name);
    const q = p.quarantine ? world.get('QuarantinePolicy', p.name) : undefined;
    if (q) {
      const base = { sourcesExcluded: false, destinationsExcluded: false, logged: true, disabled: false, policy: p.name, priority: 0 } as const;
      const rules: RuleSpec[] = [
        ...(q.forensicGroup !== undefined ? [{ ...base, name: 'forensic-in', action: 'allow' as const, direction: 'in' as const, sources: [{ group: q.forensicGroup }], services: q.forensicServices }] : []),
        { ...base, name: 'isolate-in', action: 'drop', direction: 'in' },
        { ...base, name: 'isolate-out', action: 'drop', direction: 'out' },
      ];
      out.push({ name: p.name, category: p.category, staged: p.staged, quarantine: true, appliedTo: undefined, quarantineSelector: q.selector, rules });
    } else if (fp) {
      const rules = fp.rules?.length
        ? fp.rules
        : world
            .names('FirewallRule')
            .map((n) => world.get('FirewallRule', n)!)
            .filter((r) => r.policy === p.name)
            .sort((a, b) => a.priority - b.priority || (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
      out.push({ name: p.name, category: p.category, staged: p.staged, quarantine: false, appliedTo: fp.appliedTo, rules });
    }
  }
  return out;
}
