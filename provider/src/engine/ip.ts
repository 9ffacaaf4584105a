import ipaddr from 'ipaddr.js';

/**
 * IP addresses in a form cheap to compare: IPv4 as an unsigned 32-bit number, IPv6 as a bigint.
 * Flows are matched against CIDRs millions of times per second, so parsing happens once per flow
 * and matching is integer arithmetic.
 */
export type Ip = { readonly v: 4; readonly n: number; readonly s: string } | { readonly v: 6; readonly n: bigint; readonly s: string };

/** Parses an IP; undefined when the text is not an IP. `s` is the canonical text. */
export function parseIp(text: string): Ip | undefined {
  // Endpoint references (`workload:c/ns/w`, VM names) reach here first; ipaddr's validity check throws
  // internally on them, which is slow enough to dominate policy-impact evaluation. Only digits, dots,
  // hex digits and colons can form an address.
  if (!/^[0-9a-fA-F.:]+$/.test(text) && !text.includes('%')) return undefined;
  if (!ipaddr.isValid(text)) return undefined;
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.parse(text);
  } catch {
    return undefined;
  }
  if (a.kind() === 'ipv4') {
    // isValid accepts forms such as "10" or "0x0a.1"; only dotted quads are addresses for us.
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) return undefined;
    const b = (a as ipaddr.IPv4).octets;
    return { v: 4, n: ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!, s: a.toString() };
  }
  let n = 0n;
  for (const p of (a as ipaddr.IPv6).parts) n = (n << 16n) | BigInt(p);
  return { v: 6, n, s: a.toNormalizedString() === a.toString() ? a.toString() : a.toString() };
}

/** A CIDR as an inclusive integer range. */
export type Cidr = { readonly v: 4; readonly lo: number; readonly hi: number; readonly s: string } | { readonly v: 6; readonly lo: bigint; readonly hi: bigint; readonly s: string };

/** Parses `a.b.c.d/n`, an IPv6 CIDR, or a bare IP (a host route). Host bits set are rejected. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const maxBits = ip.v === 4 ? 32 : 128;
  let bits = maxBits;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return undefined;
    bits = Number(b);
    if (bits > maxBits) return undefined;
  }
  if (ip.v === 4) {
    const size = 2 ** (32 - bits);
    const lo = Math.floor(ip.n / size) * size;
    if (lo !== ip.n) return undefined;
    return { v: 4, lo, hi: lo + size - 1, s: `${ip.s}/${bits}` };
  }
  const size = 1n << BigInt(128 - bits);
  const lo = (ip.n / size) * size;
  if (lo !== ip.n) return undefined;
  return { v: 6, lo, hi: lo + size - 1n, s: `${ip.s}/${bits}` };
}

/** Parses a CIDR or an inclusive range `a-b` (pools). */
export function parseRange(text: string): Cidr | undefined {
  const dash = text.indexOf('-');
  if (dash < 0) return parseCidr(text);
  const a = parseIp(text.slice(0, dash).trim());
  const b = parseIp(text.slice(dash + 1).trim());
  if (!a || !b || a.v !== b.v) return undefined;
  if (a.v === 4 && b.v === 4) return a.n <= b.n ? { v: 4, lo: a.n, hi: b.n, s: text } : undefined;
  if (a.v === 6 && b.v === 6) return a.n <= b.n ? { v: 6, lo: a.n, hi: b.n, s: text } : undefined;
  return undefined;
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  if (c.v === 4) return ip.v === 4 && ip.n >= c.lo && ip.n <= c.hi;
  return ip.v === 6 && ip.n >= c.lo && ip.n <= c.hi;
}

export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  if (inner.v !== outer.v) return false;
  return inner.lo >= outer.lo && inner.hi <= outer.hi;
}

/** Renders an integer address of family v. */
export function formatIp(v: 4 | 6, n: number | bigint): string {
  if (v === 4) {
    const x = Number(n);
    return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
  }
  let x = BigInt(n);
  const parts: number[] = [];
  for (let i = 0; i < 8; i++) {
    parts.unshift(Number(x & 0xffffn));
    x >>= 16n;
  }
  return ipaddr.fromByteArray(parts.flatMap((p) => [p >> 8, p & 255])).toString();
}

/** An IP block: CIDR minus exceptions. */
export interface IpBlockMatcher {
  readonly cidr: Cidr;
  readonly except: readonly Cidr[];
}

export function ipBlockContains(b: IpBlockMatcher, ip: Ip): boolean {
  if (!cidrContains(b.cidr, ip)) return false;
  for (const e of b.except) if (cidrContains(e, ip)) return false;
  return true;
}
