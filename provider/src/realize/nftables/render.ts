import { addressText } from '../../engine';
import type { AddrKey, Chain, Match, NamedSet, Rule, ServiceKey, Table, Verdict } from './ir';

/**
 * Renders a {@link Table} as `nft` text and as the `nft -j` JSON command list. Both are deterministic:
 * the same table renders to the same bytes.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const BITS = { 4: 32, 6: 128 } as const;

/** The prefix length when [lo, hi] is exactly one prefix, else undefined. */
function prefixLen(k: AddrKey): number | undefined {
  const size = k.hi - k.lo + 1n;
  if ((size & (size - 1n)) !== 0n || k.lo % size !== 0n) return undefined;
  let bits = 0;
  for (let s = size; s > 1n; s >>= 1n) bits++;
  return BITS[k.v] - bits;
}

function addrText(k: AddrKey): string {
  if (k.lo === k.hi) return addressText(k.v, k.lo);
  const len = prefixLen(k);
  return len !== undefined ? `${addressText(k.v, k.lo)}/${len}` : `${addressText(k.v, k.lo)}-${addressText(k.v, k.hi)}`;
}

function addrJson(k: AddrKey): Json {
  if (k.lo === k.hi) return addressText(k.v, k.lo);
  const len = prefixLen(k);
  return len !== undefined ? { prefix: { addr: addressText(k.v, k.lo), len } } : { range: [addressText(k.v, k.lo), addressText(k.v, k.hi)] };
}

const portText = (s: Pick<ServiceKey, 'lo' | 'hi'>) => (s.lo === s.hi ? `${s.lo}` : `${s.lo}-${s.hi}`);
const portJson = (s: Pick<ServiceKey, 'lo' | 'hi'>): Json => (s.lo === s.hi ? s.lo : { range: [s.lo, s.hi] });
const ipProto = (v: 4 | 6) => (v === 4 ? 'ip' : 'ip6');
const addrType = (v: 4 | 6) => (v === 4 ? 'ipv4_addr' : 'ipv6_addr');
const quote = (s: string) => `"${s.replace(/["\\]/g, '_')}"`;

function verdictText(v: Verdict): string {
  switch (v.kind) {
    case 'accept':
    case 'drop':
      return v.kind;
    case 'reject-tcp':
      return 'reject with tcp reset';
    case 'reject-icmpx':
      return 'reject with icmpx type admin-prohibited';
    case 'goto':
      return `goto ${v.target}`;
  }
}

function verdictJson(v: Verdict): Json {
  switch (v.kind) {
    case 'accept':
      return { accept: null };
    case 'drop':
      return { drop: null };
    case 'reject-tcp':
      return { reject: { type: 'tcp reset' } };
    case 'reject-icmpx':
      return { reject: { type: 'icmpx', expr: 'admin-prohibited' } };
    case 'goto':
      return { goto: { target: v.target } };
  }
}

function matchText(m: Match): string {
  switch (m.m) {
    case 'ct-state':
      return `ct state ${m.states.join(',')}`;
    case 'ifname':
      return `${m.dir}name ${quote(m.name)}`;
    case 'nfproto':
      return `meta nfproto ${m.v === 4 ? 'ipv4' : 'ipv6'}`;
    case 'addr':
      return `${ipProto(m.v)} ${m.field} ${m.op === '!=' ? '!= ' : ''}${m.addr}`;
    case 'addr-set':
      return `${ipProto(m.v)} ${m.field} @${m.set}`;
    case 'l4proto':
      return m.protocols.length === 1 ? `meta l4proto ${m.protocols[0]}` : `meta l4proto { ${m.protocols.join(', ')} }`;
    case 'service-lookup':
      return `${ipProto(m.v)} ${m.field} . meta l4proto . th dport @${m.set}`;
    case 'icmp': {
      const p = m.v === 4 ? 'icmp' : 'icmpv6';
      const parts = [`meta l4proto ${m.v === 4 ? 'icmp' : 'ipv6-icmp'}`];
      if (m.type !== undefined) parts.push(`${p} type ${m.type}`);
      if (m.code !== undefined) parts.push(`${p} code ${m.code}`);
      return parts.join(' ');
    }
  }
}

const payload = (protocol: string, field: string): Json => ({ payload: { protocol, field } });
const meta = (key: string): Json => ({ meta: { key } });
const eq = (left: Json, right: Json, op = '=='): Json => ({ match: { op, left, right } });
const serviceKey = (v: 4 | 6, field: string): Json => ({ concat: [payload(ipProto(v), field), meta('l4proto'), payload('th', 'dport')] });

function matchJson(m: Match): Json[] {
  switch (m.m) {
    case 'ct-state':
      return [eq({ ct: { key: 'state' } }, [...m.states], 'in')];
    case 'ifname':
      return [eq(meta(`${m.dir}name`), m.name)];
    case 'nfproto':
      return [eq(meta('nfproto'), m.v === 4 ? 'ipv4' : 'ipv6')];
    case 'addr':
      return [eq(payload(ipProto(m.v), m.field), m.addr, m.op)];
    case 'addr-set':
      return [eq(payload(ipProto(m.v), m.field), `@${m.set}`)];
    case 'l4proto':
      return [eq(meta('l4proto'), m.protocols.length === 1 ? m.protocols[0]! : { set: [...m.protocols] })];
    case 'service-lookup':
      return [eq(serviceKey(m.v, m.field), `@${m.set}`)];
    case 'icmp': {
      const p = m.v === 4 ? 'icmp' : 'icmpv6';
      const out: Json[] = [eq(meta('l4proto'), m.v === 4 ? 'icmp' : 'ipv6-icmp')];
      if (m.type !== undefined) out.push(eq(payload(p, 'type'), m.type));
      if (m.code !== undefined) out.push(eq(payload(p, 'code'), m.code));
      return out;
    }
  }
}

const ctMark: Json = { ct: { key: 'mark' } };
const markText = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
const flowKeyText = (v: 4 | 6) => `${ipProto(v)} saddr . ${ipProto(v)} daddr . meta l4proto . th dport`;
const flowKeyJson = (v: 4 | 6): Json => ({ concat: [payload(ipProto(v), 'saddr'), payload(ipProto(v), 'daddr'), meta('l4proto'), payload('th', 'dport')] });

function ruleText(r: Rule): string {
  const parts = r.match.map(matchText);
  if (r.recordFlow) parts.push(`update @${r.recordFlow.set} { ${flowKeyText(r.recordFlow.v)} }`);
  if (r.ctMark !== undefined) parts.push(`ct mark set ${markText(r.ctMark)}`);
  if (r.vmap) parts.push(r.vmap.key === 'dport' ? `th dport vmap @${r.vmap.map}` : `ct mark set ${ipProto(r.vmap.v)} ${r.vmap.field} map @${r.vmap.map} ct mark vmap @${r.vmap.rules}`);
  if (r.log !== undefined) parts.push(`log prefix ${quote(r.log)}`);
  if (r.counter) parts.push('counter');
  if (r.verdict) parts.push(verdictText(r.verdict));
  if (r.comment !== undefined) parts.push(`comment ${quote(r.comment)}`);
  return parts.join(' ');
}

function ruleExpr(r: Rule): Json[] {
  const expr: Json[] = r.match.flatMap(matchJson);
  if (r.recordFlow) expr.push({ set: { op: 'update', elem: flowKeyJson(r.recordFlow.v), set: `@${r.recordFlow.set}` } });
  if (r.ctMark !== undefined) expr.push({ mangle: { key: ctMark, value: r.ctMark } });
  if (r.vmap?.key === 'dport') expr.push({ vmap: { key: payload('th', 'dport'), data: `@${r.vmap.map}` } });
  else if (r.vmap) expr.push({ mangle: { key: ctMark, value: { map: { key: payload(ipProto(r.vmap.v), r.vmap.field), data: `@${r.vmap.map}` } } } }, { vmap: { key: ctMark, data: `@${r.vmap.rules}` } });
  if (r.log !== undefined) expr.push({ log: { prefix: r.log.replace(/["\\]/g, '_') } });
  if (r.counter) expr.push({ counter: { packets: 0, bytes: 0 } });
  if (r.verdict) expr.push(verdictJson(r.verdict));
  return expr;
}

/** A map (`map` in both renderings): its elements carry data (a verdict or a mark). */
const isMap = (s: NamedSet) => s.kind === 'port-map' || s.kind === 'addr-map' || s.kind === 'rule-map';

function setText(s: NamedSet): string[] {
  if (s.kind === 'flow-set')
    return [`\tset ${s.name} {`, `\t\ttype ${addrType(s.v)} . ${addrType(s.v)} . inet_proto . inet_service`, `\t\tsize ${s.size}`, '\t\tflags dynamic,timeout', '\t\tcounter', `\t\ttimeout ${s.timeout}s`, '\t}'];
  const type = s.kind === 'set' ? addrType(s.v) : s.kind === 'service-set' ? `${addrType(s.v)} . inet_proto . inet_service` : s.kind === 'port-map' ? 'inet_service : verdict' : s.kind === 'addr-map' ? `${addrType(s.v)} : mark` : 'mark : verdict';
  const lines = [`\t${isMap(s) ? 'map' : 'set'} ${s.name} {`, `\t\ttype ${type}`];
  // A rule map's keys are single numbers: a hash map, no intervals.
  if (s.kind !== 'rule-map') lines.push('\t\tflags interval');
  const elems = elementTexts(s);
  if (elems.length) lines.push(`\t\telements = { ${elems.join(',\n\t\t\t     ')} }`);
  lines.push('\t}');
  return lines;
}

/** The elements of a set or map as `nft` text (also used for element updates). */
export function elementTexts(s: NamedSet, which?: readonly number[]): string[] {
  const pick = <T,>(xs: readonly T[]): readonly T[] => (which ? which.map((i) => xs[i]!) : xs);
  switch (s.kind) {
    case 'flow-set':
      return [];
    case 'set':
      return pick(s.elements).map(addrText);
    case 'service-set':
      return pick(s.elements).map((e) => `${addrText(e.addr)} . ${e.service.protocol} . ${portText(e.service)}`);
    case 'port-map':
      return pick(s.elements).map((e) => `${portText(e)} : ${verdictText(e.verdict)}`);
    case 'addr-map':
      return pick(s.elements).map((e) => `${addrText(e.addr)} : ${markText(e.rule)}`);
    case 'rule-map':
      return pick(s.elements).map((e) => `${markText(e.rule)} : ${verdictText(e.verdict)}`);
  }
}

/** The keys (no verdicts) of some elements as `nft` text: what `delete element` takes. */
export function elementKeyTexts(s: NamedSet, which: readonly number[]): string[] {
  switch (s.kind) {
    case 'port-map':
      return which.map((i) => portText(s.elements[i]!));
    case 'addr-map':
      return which.map((i) => addrText(s.elements[i]!.addr));
    case 'rule-map':
      return which.map((i) => markText(s.elements[i]!.rule));
    default:
      return elementTexts(s, which);
  }
}

function chainText(c: Chain): string[] {
  const lines = [`\tchain ${c.name} {`];
  if (c.hook) lines.push(`\t\ttype filter hook ${c.hook} priority filter; policy accept;`);
  for (const r of c.rules) lines.push(`\t\t${ruleText(r)}`);
  lines.push('\t}');
  return lines;
}

/** The table as `nft -f` input. */
export function renderText(t: Table): string {
  const lines = [`table ${t.family} ${t.name} {`];
  for (const s of t.sets) lines.push(...setText(s));
  for (const c of t.chains) lines.push(...chainText(c));
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** One element of a set or map as `nft -j` JSON (also used for element updates). */
export function elementJson(s: NamedSet, i: number): Json {
  switch (s.kind) {
    case 'flow-set':
      throw new Error(`flow set ${s.name} has no static elements`);
    case 'set':
      return addrJson(s.elements[i]!);
    case 'service-set': {
      const e = s.elements[i]!;
      return { concat: [addrJson(e.addr), e.service.protocol, portJson(e.service)] };
    }
    case 'port-map': {
      const e = s.elements[i]!;
      return [portJson(e), verdictJson(e.verdict)];
    }
    case 'addr-map': {
      const e = s.elements[i]!;
      return [addrJson(e.addr), e.rule];
    }
    case 'rule-map': {
      const e = s.elements[i]!;
      return [e.rule, verdictJson(e.verdict)];
    }
  }
}

/** The JSON object describing a set or map (without the `add` wrapper). */
export function setJson(t: Table, s: NamedSet, withElements = true): Record<string, Json> {
  if (s.kind === 'flow-set')
    // nft's JSON knows the flag `dynamic` only implicitly (from the `update` statement that uses the set).
    return { family: t.family, table: t.name, name: s.name, type: [addrType(s.v), addrType(s.v), 'inet_proto', 'inet_service'], flags: ['timeout'], timeout: s.timeout, size: s.size, stmt: [{ counter: null }] };
  const type: Json = s.kind === 'set' || s.kind === 'addr-map' ? addrType(s.v) : s.kind === 'port-map' ? 'inet_service' : s.kind === 'rule-map' ? 'mark' : [addrType(s.v), 'inet_proto', 'inet_service'];
  const o: Record<string, Json> = { family: t.family, table: t.name, name: s.name, type };
  if (s.kind !== 'rule-map') o.flags = ['interval'];
  if (s.kind === 'port-map' || s.kind === 'rule-map') o.map = 'verdict';
  else if (s.kind === 'addr-map') o.map = 'mark';
  if (withElements && s.elements.length) o.elem = s.elements.map((_, i) => elementJson(s, i));
  return o;
}

/** `nft -j -f` commands that add the table and everything in it (see {@link replaceTable} for a swap). */
export function renderJson(t: Table): { nftables: Json[] } {
  const cmds: Json[] = [{ add: { table: { family: t.family, name: t.name } } }];
  // Chains first: verdict-map elements jump to them.
  for (const c of t.chains) {
    const chain: Record<string, Json> = { family: t.family, table: t.name, name: c.name };
    if (c.hook) Object.assign(chain, { type: 'filter', hook: c.hook, prio: 0, policy: 'accept' });
    cmds.push({ add: { chain } });
  }
  for (const s of t.sets) cmds.push({ add: { [isMap(s) ? 'map' : 'set']: setJson(t, s) } });
  for (const c of t.chains)
    for (const r of c.rules) {
      const rule: Record<string, Json> = { family: t.family, table: t.name, chain: c.name, expr: ruleExpr(r) };
      if (r.comment !== undefined) rule.comment = r.comment.replace(/["\\]/g, '_');
      cmds.push({ add: { rule } });
    }
  return { nftables: cmds };
}

/**
 * One transaction that replaces the table atomically: create it if missing (so the delete cannot fail),
 * delete it, add the new one. The kernel applies all of it or nothing, so no packet ever sees an empty
 * or half-built table, and a refused ruleset leaves the previous one in place.
 */
export function replaceTable(t: Table): { nftables: Json[] } {
  const doc = renderJson(t);
  return { nftables: [{ add: { table: { family: t.family, name: t.name } } }, { delete: { table: { family: t.family, name: t.name } } }, ...doc.nftables] };
}

/** The same swap as `nft -f` text. */
export function replaceTableText(t: Table): string {
  return `add table ${t.family} ${t.name}\ndelete table ${t.family} ${t.name}\n${renderText(t)}`;
}
