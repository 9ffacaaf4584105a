import { AddressPool } from '../allocate';
import { cidrContains, parseIp, parseRange, type Ip } from '../ip';
import type { Membership } from '../membership';
import type { Atom, EgressState, Endpoint, LbState, PeerSet } from '../types';
import type { AllocationProblems, Specs } from './specs';

/**
 * Static addresses: egress IPs and load-balancer VIPs (fixed or allocated from a pool, never twice), the
 * VIP index, load-balancer pool members and their health, and which egress IP a pod leaves with.
 */
export class Addressing {
  readonly lbs = new Map<string, LbState>();
  readonly vips = new Map<string, LbState>();
  readonly egress = new Map<string, EgressState>();
  private readonly usedStaticIps = new Set<string>();
  readonly unhealthy = new Set<string>();

  constructor(
    private readonly specs: Specs,
    private readonly membership: Membership,
    private readonly allocationProblems: AllocationProblems,
    /** A flattened SecurityGroup (load-balancer pools may name one). */
    private readonly group: (name: string) => PeerSet | undefined,
  ) {}

  private allocateStatic(owner: string, fixed: string | undefined, pool: string | undefined, previous: string | undefined, what: string): Ip | undefined {
    this.allocationProblems.delete(owner);
    if (fixed !== undefined) return parseIp(fixed);
    const range = pool !== undefined ? parseRange(pool) : undefined;
    if (!range) return undefined;
    const p = new AddressPool(range, false);
    for (const u of this.usedStaticIps) {
      const ip = parseIp(u);
      if (ip) p.reserve(ip);
    }
    const prev = previous ? parseIp(previous) : undefined;
    if (prev && cidrContains(range, prev) && !this.usedStaticIps.has(prev.s)) return prev;
    const ip = p.allocate();
    if (!ip) {
      const [kind, name] = owner.split('/') as [string, string];
      this.allocationProblems.set(owner, { code: 'ip-exhausted', path: what === 'VIP' ? 'vipPool' : 'pool', message: `pool ${pool} has no free address for the ${what}; expected a larger pool or fewer users of it`, object: { kind, name } });
    }
    return ip;
  }

  syncEgress(name: string, previous: string | undefined): void {
    const old = this.egress.get(name);
    if (old?.ip) this.usedStaticIps.delete(old.ip.s);
    this.egress.delete(name);
    const spec = this.specs.EgressIp.get(name);
    if (!spec) return;
    const ip = this.allocateStatic(`EgressIp/${name}`, spec.ip, spec.pool, previous ?? old?.ip?.s, 'egress IP');
    if (ip) this.usedStaticIps.add(ip.s);
    this.egress.set(name, { name, spec, ip, atom: this.membership.podSelectorAtom({ ...spec.podSelector, cluster: spec.cluster }) });
  }

  syncLb(name: string, previous: string | undefined): void {
    const old = this.lbs.get(name);
    if (old?.vip) {
      this.usedStaticIps.delete(old.vip.s);
      if (this.vips.get(old.vip.s) === old) this.vips.delete(old.vip.s);
    }
    this.lbs.delete(name);
    const spec = this.specs.LoadBalancer.get(name);
    if (!spec) return;
    const vip = this.allocateStatic(`LoadBalancer/${name}`, spec.vip, spec.vipPool, previous ?? old?.vip?.s, 'VIP');
    const st: LbState = { name, spec, vip };
    if (vip) {
      this.usedStaticIps.add(vip.s);
      if (!this.vips.has(vip.s)) this.vips.set(vip.s, st);
    }
    this.lbs.set(name, st);
  }

  /** Pool members of a load balancer, sorted by name so the choice is stable under churn of others. */
  lbMembers(name: string): Endpoint[] {
    const lb = this.lbs.get(name);
    if (!lb) return [];
    const atoms: Atom[] = [];
    const pool = lb.spec.pool;
    if (pool.group !== undefined) atoms.push(...(this.group(pool.group)?.atoms ?? []));
    else if (pool.podSelector) atoms.push(this.membership.podSelectorAtom(pool.podSelector));
    else if (pool.podSelectorRef !== undefined) {
      const s = this.specs.PodSelector.get(pool.podSelectorRef);
      if (s) atoms.push(this.membership.podSelectorAtom(s));
    }
    const ids = new Set<number>();
    for (const a of atoms) for (const id of a.members) ids.add(id);
    return [...ids].map((id) => this.membership.endpoints.get(id)!).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Marks a load-balancer member (endpoint name) healthy or not; unhealthy members get no flows. */
  setMemberHealth(member: string, healthy: boolean): void {
    if (healthy) this.unhealthy.delete(member);
    else this.unhealthy.add(member);
  }

  isHealthy(ep: Endpoint): boolean {
    return !this.unhealthy.has(ep.name);
  }

  /** Sum of the member versions of every egress IP's selector: it moves when a pod starts or stops leaving by an egress IP. */
  egressMembersVersion(): number {
    let v = 0;
    for (const e of this.egress.values()) v += e.atom?.version ?? 0;
    return v;
  }

  /** The egress IP applying to a pod: the first EgressIp by name of its cluster selecting it. */
  egressFor(ep: Endpoint): { name: string; ip: Ip } | undefined {
    let best: EgressState | undefined;
    for (const e of this.egress.values()) {
      if (e.spec.cluster !== ep.cluster || !e.ip || !e.atom?.members.has(ep.id)) continue;
      if (!best || e.name < best.name) best = e;
    }
    return best && best.ip ? { name: best.name, ip: best.ip } : undefined;
  }
}
