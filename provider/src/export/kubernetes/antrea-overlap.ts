import { parseCidr } from '../../engine/ip';
import type { LabelSelector, PodSel, Service } from './selection';

/**
 * Sound "may these overlap?" tests on label selectors, CIDRs and services, for the Antrea flavor's
 * refusals (a pass before application, overlapping Egresses). `false` is a proof that no pod, address
 * or flow can be in both; `true` only means it could not be ruled out.
 */

/** Whether one object's labels could satisfy both selectors at once. */
export function selectorsMayOverlap(a: LabelSelector, b: LabelSelector): boolean {
  type Key = { exists: boolean; absent: boolean; allowed?: Set<string>; forbidden: Set<string> };
  const keys = new Map<string, Key>();
  const key = (k: string): Key => {
    let x = keys.get(k);
    if (!x) keys.set(k, (x = { exists: false, absent: false, forbidden: new Set() }));
    return x;
  };
  const allow = (x: Key, values: readonly string[]): void => {
    x.exists = true;
    x.allowed = x.allowed ? new Set([...x.allowed].filter((v) => values.includes(v))) : new Set(values);
  };
  for (const s of [a, b]) {
    for (const [k, v] of Object.entries(s.matchLabels ?? {})) allow(key(k), [v]);
    for (const e of s.matchExpressions ?? []) {
      const x = key(e.key);
      if (e.operator === 'In') allow(x, e.values ?? []);
      else if (e.operator === 'NotIn') for (const v of e.values ?? []) x.forbidden.add(v);
      else if (e.operator === 'Exists') x.exists = true;
      else x.absent = true;
    }
  }
  for (const x of keys.values()) {
    if (x.exists && x.absent) return false;
    if (x.allowed && [...x.allowed].every((v) => x.forbidden.has(v))) return false;
  }
  return true;
}

export function podSelsMayOverlap(a: readonly PodSel[], b: readonly PodSel[]): boolean {
  return a.some((x) => b.some((y) => selectorsMayOverlap(x.namespaceSelector, y.namespaceSelector) && selectorsMayOverlap(x.podSelector, y.podSelector)));
}

/** Whether two CIDRs share an address (an unparsable one is assumed to). */
export function cidrsMayOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y) return true;
  if (x.v !== y.v) return false;
  return x.v === 4 ? x.lo <= (y.hi as number) && (y.lo as number) <= x.hi : x.lo <= (y.hi as bigint) && (y.lo as bigint) <= x.hi;
}

/** Numeric destination port ranges of one service, or undefined for "every port" / a named port. */
function portRanges(s: Service): [number, number][] | undefined {
  if (!s.ports?.length) return undefined;
  const out: [number, number][] = [];
  for (const p of s.ports) {
    if (typeof p === 'number') out.push([p, p]);
    else if (/^\d+$/.test(p)) out.push([Number(p), Number(p)]);
    else {
      const m = /^(\d+)-(\d+)$/.exec(p);
      if (!m) return undefined; // a named port could resolve to any number
      out.push([Number(m[1]), Number(m[2])]);
    }
  }
  return out;
}

/** Whether two service lists (empty = every flow) could match one flow. */
export function servicesMayOverlap(a: readonly Service[] | undefined, b: readonly Service[] | undefined): boolean {
  if (!a?.length || !b?.length) return true;
  const l4 = (p: string): string[] => (p === 'any' ? ['tcp', 'udp', 'sctp', 'icmp', 'icmpv6'] : [p]);
  return a.some((x) =>
    b.some((y) => {
      const px = x.protocol === 'any' && !x.ports?.length ? l4('any') : x.protocol === 'any' ? ['tcp', 'udp', 'sctp'] : [x.protocol];
      const py = y.protocol === 'any' && !y.ports?.length ? l4('any') : y.protocol === 'any' ? ['tcp', 'udp', 'sctp'] : [y.protocol];
      if (!px.some((p) => py.includes(p))) return false;
      if (x.icmpType !== undefined && y.icmpType !== undefined && x.icmpType !== y.icmpType) return false;
      const rx = portRanges(x);
      const ry = portRanges(y);
      if (!rx || !ry) return true;
      return rx.some(([a0, a1]) => ry.some(([b0, b1]) => a0 <= b1 && b0 <= a1));
    }),
  );
}
