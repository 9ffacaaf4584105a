import type { SpecOf } from '../../model';
import type { Membership } from '../membership';
import { compileNetworkPolicy, type CompiledNetworkPolicy } from '../netpol';
import type { Problem } from '../problems';
import { comparePolicies, compilePolicy, type CompileContext } from '../rules';
import type { Atom, CompiledPolicy, CompiledRule } from '../types';
import type { Groups } from './groups';
import type { Specs } from './specs';

/**
 * The compiled layer: FirewallPolicies (with their standalone FirewallRules) and QuarantinePolicies
 * compiled to rules, the global policy order with its tie warnings, the atom → rule index the endpoint
 * rule lists are built from, and compiled NetworkPolicies. Writes only mark policies dirty; `compile()`
 * recompiles them and says which cached rule lists the change reaches (epochs, atom rule versions).
 */
export class Policies {
  private readonly policies = new Map<string, CompiledPolicy>();
  private readonly dirtyPolicies = new Set<string>();
  private ordered: CompiledPolicy[] = [];
  private orderDirty = true;
  readonly globalRules: CompiledRule[] = [];
  readonly rulesByAtom = new Map<Atom, Set<CompiledRule>>();
  /** Compiled NetworkPolicies by identity, and by the atom of the pods they select. */
  readonly netpols = new Map<string, CompiledNetworkPolicy>();
  readonly netpolsBySubject = new Map<Atom, Set<CompiledNetworkPolicy>>();
  private readonly dirtyNetpols = new Set<string>();
  /** Bumped whenever a NetworkPolicy changes: per-endpoint NetworkPolicy lists of older epochs are stale. */
  npEpoch = 1;
  /** Bumped when a change reaches every rule list (see compile). */
  epoch = 1;
  private tieWarnings: Problem[] = [];
  private readonly ctx: CompileContext;

  constructor(
    private readonly specs: Specs,
    private readonly membership: Membership,
    private readonly groups: Groups,
  ) {
    this.ctx = { membership, group: (n) => groups.group(n), podSelector: (n) => specs.PodSelector.get(n) };
  }

  /** Policies owning a rule in globalRules (no appliedTo anywhere): candidates at every endpoint. */
  get globalPolicies(): Set<CompiledPolicy> {
    return new Set(this.globalRules.map((r) => r.policy));
  }

  /** A FirewallPolicy (by name) or QuarantinePolicy (`quarantine:NAME`) must be recompiled. */
  markDirty(policy: string): void {
    this.dirtyPolicies.add(policy);
  }

  markNetworkPolicyDirty(key: string): void {
    this.dirtyNetpols.add(key);
  }

  /** A group, PodSelector or egress IP changed: recompile the policies that depend on it. */
  invalidate(dep: string): void {
    this.groups.reset();
    // deps hold the transitive closure over nested groups (see Groups.depsOf), so one lookup per policy suffices.
    for (const p of this.policies.values()) if (p.deps.has(dep)) this.dirtyPolicies.add(p.name);
  }

  /** Recompiles dirty policies and re-sorts the policy order; cheap when nothing changed. */
  compile(): void {
    if (this.dirtyPolicies.size === 0 && !this.orderDirty && this.dirtyNetpols.size === 0) return;
    const standalone = new Map<string, SpecOf['FirewallRule'][]>();
    if (this.dirtyPolicies.size) {
      for (const r of this.specs.FirewallRule.values()) {
        if (!this.dirtyPolicies.has(r.policy)) continue;
        let l = standalone.get(r.policy);
        if (!l) standalone.set(r.policy, (l = []));
        l.push(r);
      }
    }
    // Which cached rule lists the change reaches: those of endpoints in the old or new appliedTo of a
    // changed policy's rules. Ranks keep their relative order, so every other list stays valid. A rule
    // enforced everywhere, or a bulk change (start-up), drops every list instead.
    let everywhere = this.dirtyPolicies.size > 64;
    const touched = new Set<Atom>();
    const reach = (p: CompiledPolicy): void => {
      if (everywhere) return;
      for (const r of p.rules) {
        // A rule is in a list only if the endpoint is in every requirement, so the last one suffices.
        const req = r.appliedTo[r.appliedTo.length - 1];
        if (!req) {
          everywhere = true;
          return;
        }
        for (const a of req) touched.add(a);
      }
    };
    for (const name of this.dirtyPolicies) {
      const old = this.policies.get(name);
      if (old) reach(old);
      if (old) this.unindex(old);
      this.policies.delete(name);
      const compiled = name.startsWith('quarantine:') ? this.compileQuarantine(name.slice('quarantine:'.length)) : this.compileFirewallPolicy(name, standalone.get(name) ?? []);
      if (compiled) {
        // Transitive group dependencies so that a nested group change reaches this policy.
        const deps = compiled.deps as Set<string>;
        for (const d of [...deps]) if (d.startsWith('group:')) for (const x of this.groups.depsOf(d.slice(6))) deps.add(x);
        this.policies.set(name, compiled);
        this.index(compiled);
        reach(compiled);
      }
      this.orderDirty = true;
    }
    this.dirtyPolicies.clear();
    // NetworkPolicies live beside the rule lists: a change only makes every endpoint's NetworkPolicy
    // selection stale (npEpoch), recomputed when a verdict next reaches the layer there.
    if (this.dirtyNetpols.size) this.npEpoch++;
    for (const key of this.dirtyNetpols) {
      const old = this.netpols.get(key);
      if (old) {
        this.netpolsBySubject.get(old.subject)?.delete(old);
        this.netpols.delete(key);
      }
      const spec = this.specs.KubernetesNetworkPolicy.get(key);
      if (!spec) continue;
      const np = compileNetworkPolicy(this.membership, key, spec);
      this.netpols.set(key, np);
      let set = this.netpolsBySubject.get(np.subject);
      if (!set) this.netpolsBySubject.set(np.subject, (set = new Set()));
      set.add(np);
    }
    this.dirtyNetpols.clear();
    if (this.orderDirty) {
      this.ordered = [...this.policies.values()].sort(comparePolicies);
      this.ordered.forEach((p, i) => (p.rank = i));
      this.tieWarnings = [];
      for (let i = 1; i < this.ordered.length; i++) {
        const a = this.ordered[i - 1]!;
        const b = this.ordered[i]!;
        if (!a.quarantine && !b.quarantine && a.catRank === b.catRank && a.priority === b.priority) {
          const message = `policies "${a.name}" and "${b.name}" share priority ${a.priority} in category ${a.category}; they are ordered by name ("${a.name}" first). Give them distinct priorities to make the order explicit`;
          // One warning per policy of the pair: whichever of the two is written creates the tie and must
          // hear about it (callers keep the warnings of the object being written).
          for (const p of [a, b]) this.tieWarnings.push({ code: 'priority-tie', path: 'priority', severity: 'warning', message, object: { kind: 'FirewallPolicy', name: p.name } });
        }
      }
      this.orderDirty = false;
    }
    if (everywhere) this.epoch++;
    else
      for (const a of touched) {
        // Lists found through the identity map are checked against the atoms' versions (rulesAt); the
        // members drop the list they hold, which another endpoint may still share: one outside `a` (whose
        // identity did not hold `a` when it was first flagged as appliedTo) keeps a list that is still right.
        a.rulesVersion++;
        for (const id of a.members) {
          const ep = this.membership.endpoints.get(id);
          if (ep) ep.cache = undefined;
        }
      }
  }

  /** Compiled policies in evaluation order (call compile() first). */
  orderedPolicies(): readonly CompiledPolicy[] {
    return this.ordered;
  }

  /** Priority ties of the current order (call compile() first). */
  priorityTies(): readonly Problem[] {
    return this.tieWarnings;
  }

  private compileFirewallPolicy(name: string, standalone: SpecOf['FirewallRule'][]): CompiledPolicy | undefined {
    const p = this.specs.FirewallPolicy.get(name);
    if (!p) return undefined;
    // Inline rules win when both are present; validate() reports the mix as an error.
    const rules = p.rules?.length
      ? p.rules
      : standalone.sort((a, b) => a.priority - b.priority || (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
    return compilePolicy(this.ctx, { name, category: p.category, priority: p.priority, staged: p.enforcement === 'staged', quarantine: false, appliedTo: p.appliedTo }, rules);
  }

  private compileQuarantine(name: string): CompiledPolicy | undefined {
    const q = this.specs.QuarantinePolicy.get(name);
    if (!q) return undefined;
    // The quarantined set: VMs and pods (any cluster, any namespace) carrying the selector's labels.
    const qAtoms = [this.membership.vmSelectorAtom(q.selector), this.membership.podSelectorAtom({ podSelector: q.selector })];
    const base = { sourcesExcluded: false, destinationsExcluded: false, logged: true, disabled: false } as const;
    const rules: SpecOf['FirewallRule'][] = [];
    const r = (x: Omit<SpecOf['FirewallRule'], 'policy' | 'priority' | 'sourcesExcluded' | 'destinationsExcluded' | 'logged' | 'disabled'>): void => {
      rules.push({ ...base, policy: name, priority: 0, ...x });
    };
    if (q.forensicGroup !== undefined) r({ name: 'forensic-in', action: 'allow', direction: 'in', sources: [{ group: q.forensicGroup }], services: q.forensicServices });
    r({ name: 'isolate-in', action: 'drop', direction: 'in' });
    r({ name: 'isolate-out', action: 'drop', direction: 'out' });
    const compiled = compilePolicy(this.ctx, { name, category: 'emergency', priority: Number.MIN_SAFE_INTEGER, staged: false, quarantine: true }, rules);
    // appliedTo is the quarantined set itself (not a SecurityGroup), so set it directly.
    for (const rule of compiled.rules) (rule as unknown as { appliedTo: Atom[][] }).appliedTo = [qAtoms];
    return compiled;
  }

  private index(p: CompiledPolicy): void {
    for (const r of p.rules) {
      for (const req of r.appliedTo) for (const a of req) a.appliedTo = true;
      const req = r.appliedTo[r.appliedTo.length - 1];
      if (!req) this.globalRules.push(r);
      else
        for (const a of req) {
          let s = this.rulesByAtom.get(a);
          if (!s) this.rulesByAtom.set(a, (s = new Set()));
          s.add(r);
        }
    }
  }

  private unindex(p: CompiledPolicy): void {
    for (const r of p.rules) {
      const req = r.appliedTo[r.appliedTo.length - 1];
      if (!req) {
        const i = this.globalRules.indexOf(r);
        if (i >= 0) this.globalRules.splice(i, 1);
      } else for (const a of req) this.rulesByAtom.get(a)?.delete(r);
    }
  }
}
