import { parseIp } from '../../provider/src/engine';
import type { AddressMap, AddrKey, Match, PortMap, Rule, RuleMap, ServiceMap, Table, Verdict } from '../../provider/src/realize/nftables';

/**
 * Follows a first packet (conntrack state new) through a compiled table, as kube-proxy's tests trace
 * packets through their generated rules: a fast oracle check without root. It knows exactly the
 * statements the compiler emits and fails loudly on anything else.
 */
export interface TracePacket {
  readonly hook: 'input' | 'output';
  readonly v: 4 | 6;
  readonly saddr: bigint;
  readonly daddr: bigint;
  readonly protocol: 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6';
  readonly dport?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

export type TraceVerdict = 'allow' | 'drop' | 'reject';

const inKey = (k: AddrKey, v: 4 | 6, a: bigint) => k.v === v && a >= k.lo && a <= k.hi;

export function tracePacket(t: Table, p: TracePacket): { verdict: TraceVerdict; path: string[] } {
  const chains = new Map(t.chains.map((c) => [c.name, c]));
  const sets = new Map(t.sets.map((s) => [s.name, s]));
  const path: string[] = [];
  const l4 = p.protocol === 'icmpv6' ? 'ipv6-icmp' : p.protocol;
  const addr = (field: 'saddr' | 'daddr') => (field === 'saddr' ? p.saddr : p.daddr);
  const matches = (m: Match): boolean => {
    switch (m.m) {
      case 'ct-state':
        return false; // a first packet is new
      case 'ifname':
        return false;
      case 'nfproto':
        return m.v === p.v;
      case 'addr': {
        if (m.v !== p.v) return false;
        const ip = parseIp(m.addr)!;
        const equal = addr(m.field) === BigInt(ip.n);
        return m.op === '!=' ? !equal : equal;
      }
      case 'addr-set': {
        if (m.v !== p.v) return false;
        const s = sets.get(m.set)!;
        return s.kind === 'set' && s.elements.some((k) => inKey(k, p.v, addr(m.field)));
      }
      case 'l4proto':
        return m.protocols.includes(l4);
      case 'service-lookup':
        return m.v === p.v && lookup(sets.get(m.set) as ServiceMap, addr(m.field)) !== undefined;
      case 'icmp':
        return m.v === p.v && l4 === (m.v === 4 ? 'icmp' : 'ipv6-icmp') && (m.type === undefined || m.type === p.icmpType) && (m.code === undefined || m.code === p.icmpCode);
    }
  };
  const lookup = (s: ServiceMap, a: bigint) =>
    s.elements.find((e) => inKey(e.addr, p.v, a) && e.service.protocol === p.protocol && p.dport !== undefined && p.dport >= e.service.lo && p.dport <= e.service.hi);
  let chain = chains.get(p.hook)!;
  for (let hops = 0; hops < 1000; hops++) {
    path.push(chain.name);
    let next: Verdict | undefined;
    for (const r of chain.rules as Rule[]) {
      if (!r.match.every(matches)) continue;
      if (r.vmap) {
        let e: { verdict: Verdict } | undefined;
        if (r.vmap.key === 'dport') {
          // `th dport` of a protocol without ports matches nothing (the compiler puts an l4proto match first).
          const m = sets.get(r.vmap.map) as PortMap;
          if (m.kind !== 'port-map') throw new Error(`${m.name} is not a port map`);
          e = p.dport === undefined ? undefined : m.elements.find((x) => p.dport! >= x.lo && p.dport! <= x.hi);
        } else {
          // `ct mark set ip saddr map @class ct mark vmap @rules`: an address without an element ends the rule.
          const { v, field, map, rules } = r.vmap;
          if (v !== p.v) continue;
          const m = sets.get(map) as AddressMap;
          if (m.kind !== 'addr-map') throw new Error(`${m.name} is not an address map`);
          const hit = m.elements.find((x) => inKey(x.addr, p.v, addr(field)));
          if (!hit) continue;
          const rm = sets.get(rules) as RuleMap;
          if (rm?.kind !== 'rule-map') throw new Error(`${rules} is not a rule map`);
          e = rm.elements.find((x) => x.rule === hit.rule);
          // The kernel would end the rule here too, but the compiler never numbers a rule its map lacks.
          if (!e) throw new Error(`${map}: rule number ${hit.rule} is not in ${rules}`);
        }
        if (!e) continue;
        next = e.verdict;
      } else next = r.verdict;
      if (next) break;
    }
    if (!next) return { verdict: 'allow', path }; // end of chain: the base chain's policy accept
    if (next.kind === 'goto') {
      chain = chains.get(next.target)!;
      if (!chain) throw new Error(`goto to a missing chain ${next.target}`);
      continue;
    }
    return { verdict: next.kind === 'accept' ? 'allow' : next.kind === 'drop' ? 'drop' : 'reject', path };
  }
  throw new Error('chain loop');
}
