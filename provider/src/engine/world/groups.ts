import { cidrContains, type Ip } from '../ip';
import type { Membership } from '../membership';
import { compileBlock } from '../rules';
import type { Atom, Endpoint, PeerSet } from '../types';
import type { Specs } from './specs';

export type GroupMember = { kind: 'pod' | 'vm-interface' | 'ip'; name: string; ip: string };

/**
 * SecurityGroups flattened over nested groups into peer sets (atoms, IP blocks, egress IPs), with the
 * caches that make 20k policies over 5k groups cheap, and the group queries (members, groups of an endpoint).
 */
export class Groups {
  private cache = new Map<string, PeerSet | undefined>();
  /** {@link depsOf} per group, cached like `cache` (20k policies reference 5k groups). */
  private depsCache = new Map<string, ReadonlySet<string>>();

  constructor(
    private readonly specs: Specs,
    private readonly membership: Membership,
    /** The allocated address of an EgressIp (groups may list egress IPs). */
    private readonly egressIp: (name: string) => Ip | undefined,
  ) {}

  /** A group, PodSelector or egress IP changed: every flattened group may be stale. */
  reset(): void {
    this.cache = new Map();
    this.depsCache = new Map();
  }

  /** A SecurityGroup flattened over nested groups (cycles are cut; validate() reports them). */
  group(name: string): PeerSet | undefined {
    if (this.cache.has(name)) return this.cache.get(name);
    const r = this.flatten(name, new Set());
    this.cache.set(name, r);
    return r;
  }

  private flatten(name: string, visiting: Set<string>): PeerSet | undefined {
    const g = this.specs.SecurityGroup.get(name);
    if (!g || visiting.has(name)) return undefined;
    visiting.add(name);
    const m = this.membership;
    const atoms = new Set<Atom>();
    const blocks = [];
    const ips = new Set<string>();
    for (const s of g.vmSelectors ?? []) atoms.add(m.vmSelectorAtom(s));
    for (const s of g.podSelectors ?? []) atoms.add(m.podSelectorAtom(s));
    for (const r of g.podSelectorRefs ?? []) {
      const s = this.specs.PodSelector.get(r);
      if (s) atoms.add(m.podSelectorAtom(s));
    }
    for (const v of g.vms ?? []) atoms.add(m.ownerAtom('vm-interface', v));
    for (const wl of g.workloads ?? []) atoms.add(m.ownerAtom('pod', wl));
    for (const b of g.ipBlocks ?? []) {
      const c = compileBlock(b.cidr, b.except);
      if (c) blocks.push(c);
    }
    for (const e of g.egressIps ?? []) {
      const ip = this.egressIp(e);
      if (ip) ips.add(ip.s);
    }
    for (const child of g.groups ?? []) {
      const c = this.flatten(child, visiting);
      if (!c) continue;
      c.atoms.forEach((a) => atoms.add(a));
      blocks.push(...c.blocks);
      c.ips.forEach((i) => ips.add(i));
    }
    visiting.delete(name);
    return { atoms: [...atoms], blocks, ips };
  }

  /** Names of the groups, PodSelectors and egress IPs a group depends on, transitively (cached). */
  depsOf(name: string): ReadonlySet<string> {
    let d = this.depsCache.get(name);
    if (!d) {
      const out = new Set<string>();
      this.deps(name, out);
      this.depsCache.set(name, (d = out));
    }
    return d;
  }

  private deps(name: string, out: Set<string>, seen = new Set<string>()): void {
    if (seen.has(name)) return;
    seen.add(name);
    out.add(`group:${name}`);
    const g = this.specs.SecurityGroup.get(name);
    if (!g) return;
    for (const r of g.podSelectorRefs ?? []) out.add(`psel:${r}`);
    for (const e of g.egressIps ?? []) out.add(`egress:${e}`);
    for (const c of g.groups ?? []) this.deps(c, out, seen);
  }

  /** Members of a SecurityGroup: pods, VM interfaces and egress IPs, plus its IP blocks. */
  members(name: string): { members: GroupMember[]; ipBlocks: string[] } {
    const g = this.group(name);
    if (!g) return { members: [], ipBlocks: [] };
    const ids = new Set<number>();
    for (const a of g.atoms) for (const id of a.members) ids.add(id);
    const members: GroupMember[] = [...ids].map((id) => this.membership.endpoints.get(id)!).map((ep) => ({ kind: ep.kind, name: ep.name, ip: ep.ip.s }));
    for (const ip of g.ips) members.push({ kind: 'ip', name: ip, ip });
    members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { members, ipBlocks: g.blocks.map((b) => (b.except.length ? `${b.cidr.s} except ${b.except.map((e) => e.s).join(',')}` : b.cidr.s)) };
  }

  /** Groups containing an endpoint (by selectors, static membership, or its IP in an IP block). */
  groupsOf(ep: Endpoint): string[] {
    const out: string[] = [];
    for (const name of this.specs.SecurityGroup.keys()) {
      const g = this.group(name);
      if (!g) continue;
      if (g.atoms.some((a) => ep.atoms.has(a)) || g.ips.has(ep.ip.s) || g.blocks.some((b) => cidrContains(b.cidr, ep.ip) && !b.except.some((e) => cidrContains(e, ep.ip)))) out.push(name);
    }
    return out.sort();
  }
}
