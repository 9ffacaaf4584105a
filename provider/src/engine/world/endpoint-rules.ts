import type { Ip } from '../ip';
import { atomIdsOf, type Membership } from '../membership';
import { decideNetworkPolicies, type CompiledNetworkPolicy } from '../netpol';
import { appliesAt, BASELINE_RANK, firstMatchIndexed, indexRules } from '../rules';
import type { Addr, CompiledPolicy, CompiledRule, Endpoint, EndpointRules, FlowService, IndexedRules } from '../types';
import type { Policies } from './policies';

declare module '../types' {
  /** NetworkPolicies selecting the endpoint that isolate egress (`out`) or ingress (`in`), for `epoch`. */
  interface EndpointNetworkPolicies {
    readonly epoch: number;
    readonly in?: CompiledNetworkPolicy[];
    readonly out?: CompiledNetworkPolicy[];
  }
}

/**
 * The rules enforced at each endpoint: ordered lists per direction built from the atom → rule index,
 * shared by endpoints of equal identity and invalidated by epochs and atom rule versions, and the
 * first-match decision over them (the hot path of every verdict).
 */
export class EndpointRuleLists {
  /**
   * Rule lists per identity (the sorted ids of an endpoint's appliedTo atoms, see ruleIdentity) for the
   * current epoch: which rules apply at an endpoint depends only on those, so endpoints with equal ones (replicas, look-alike pods)
   * share one list and one index, which halves compile time and memory on our benchmark estate.
   */
  private identityRules = new Map<string, EndpointRules>();

  constructor(
    private readonly policies: Policies,
    private readonly membership: Membership,
    /** The IP of a cluster node (traffic from a pod's own node passes its NetworkPolicies). */
    private readonly nodeIp: (cluster: string, node: string) => Ip | undefined,
  ) {}

  /** Ordered rules enforced at an endpoint, cached until the endpoint's membership or the policies change. */
  rulesAt(ep: Endpoint): EndpointRules {
    this.policies.compile();
    const c = ep.cache;
    if (c && c.epoch === this.policies.epoch) return c;
    const sig = ruleIdentity(ep);
    let res = this.identityRules.get(sig);
    if (!res || res.epoch !== this.policies.epoch || res.version !== rulesVersionOf(ep)) {
      // Entries of identities nobody has any more are only dropped wholesale; bound the map under churn.
      if (this.identityRules.size > 2 * this.membership.endpoints.size + 1024) this.identityRules = new Map();
      res = this.buildRules(ep);
      this.identityRules.set(sig, res);
    }
    ep.cache = res;
    return res;
  }

  /**
   * Builds an endpoint's lists: the candidate policies (those with a rule indexed under one of its atoms,
   * plus policies enforced everywhere) in rank order, each contributing its rules that apply here in rule
   * order. Sorting policies instead of rules keeps a workload under 10,000 policies to one sort of 10,000.
   */
  private buildRules(ep: Endpoint): EndpointRules {
    const policies = new Set<CompiledPolicy>(this.policies.globalPolicies);
    for (const a of ep.atoms) {
      const rules = this.policies.rulesByAtom.get(a);
      if (rules) for (const r of rules) policies.add(r.policy);
    }
    const ordered = [...policies].sort((a, b) => a.rank - b.rank);
    const all: CompiledRule[] = [];
    const out: CompiledRule[] = [];
    const inn: CompiledRule[] = [];
    let staged = false;
    let baseline = false;
    for (const p of ordered) {
      for (const r of p.rules) {
        if (!appliesAt(r, ep)) continue;
        all.push(r);
        if (p.catRank === BASELINE_RANK) baseline = true;
        if (p.staged) staged = true;
        else {
          if (r.dirOut) out.push(r);
          if (r.dirIn) inn.push(r);
        }
      }
    }
    return {
      epoch: this.policies.epoch,
      version: rulesVersionOf(ep),
      all,
      out,
      in: inn,
      outAll: staged ? all.filter((r) => r.dirOut) : undefined,
      inAll: staged ? all.filter((r) => r.dirIn) : undefined,
      baseline,
    };
  }

  /**
   * Deciding rule at the source (out rules) or destination (in rules) firewall: first match over the
   * endpoint's ordered list, through its peer-atom index. `staged` includes staged policies (traceflow).
   */
  decideAt(ep: Endpoint, dir: 'in' | 'out', staged: boolean, src: Addr, dst: Addr, f: FlowService): CompiledRule | undefined {
    const c = this.rulesAt(ep);
    const peer = dir === 'in' ? src.ep : dst.ep;
    const peerIds = peer === undefined ? undefined : atomIdsOf(peer);
    let ix: IndexedRules;
    if (dir === 'in') {
      if (staged && !c.inAll) return undefined;
      ix = staged ? (c.inAllIdx ??= indexRules(c.inAll!, 'src')) : (c.inIdx ??= indexRules(c.in, 'src'));
    } else {
      if (staged && !c.outAll) return undefined;
      ix = staged ? (c.outAllIdx ??= indexRules(c.outAll!, 'dst')) : (c.outIdx ??= indexRules(c.out, 'dst'));
    }
    const peerIp = dir === 'in' ? src.ip : dst.ip;
    // emergency → application, then the NetworkPolicy layer for a pod a policy isolates, then baseline.
    const r = firstMatchIndexed(ix, peerIds, peerIp, src, dst, f, 'main');
    if (r) return r;
    const nps = this.networkPoliciesAt(ep, dir);
    if (nps) return decideNetworkPolicies(nps, dir, src, dst, f, dir === 'in' && ep.node !== undefined ? this.nodeIp(ep.cluster!, ep.node) : undefined);
    return c.baseline ? firstMatchIndexed(ix, peerIds, peerIp, src, dst, f, 'baseline') : undefined;
  }

  /** NetworkPolicies isolating `ep` in direction `dir`, ordered by identity; undefined when none does. */
  networkPoliciesAt(ep: Endpoint, dir: 'in' | 'out'): readonly CompiledNetworkPolicy[] | undefined {
    const np = this.policies;
    np.compile();
    let c = ep.netpols;
    if (!c || c.epoch !== np.npEpoch) {
      let ins: CompiledNetworkPolicy[] | undefined;
      let outs: CompiledNetworkPolicy[] | undefined;
      if (ep.kind === 'pod' && np.netpols.size) {
        const selecting: CompiledNetworkPolicy[] = [];
        for (const a of ep.atoms) for (const p of np.netpolsBySubject.get(a) ?? []) selecting.push(p);
        selecting.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        for (const p of selecting) {
          if (p.ingress) (ins ??= []).push(p);
          if (p.egress) (outs ??= []).push(p);
        }
      }
      ep.netpols = c = { epoch: np.npEpoch, in: ins, out: outs };
    }
    return dir === 'in' ? c.in : c.out;
  }
}

/** Sum of the rule versions of an endpoint's appliedTo atoms: versions only grow, so an equal sum means no change. */
function rulesVersionOf(ep: Endpoint): number {
  let v = 0;
  for (const a of ep.atoms) if (a.appliedTo) v += a.rulesVersion;
  return v;
}

/**
 * The identity of an endpoint's rule lists: the sorted ids of its atoms that some rule's appliedTo holds.
 * Which rules apply depends on nothing else, so endpoints differing only in peer atoms or NetworkPolicy
 * subjects (namespace-scoped, one per policy) share one list and one index.
 */
function ruleIdentity(ep: Endpoint): string {
  const ids: number[] = [];
  for (const a of ep.atoms) if (a.appliedTo) ids.push(a.id);
  return ids.sort((x, y) => x - y).join(',');
}
