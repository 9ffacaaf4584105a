/**
 * A small model of the nftables objects microseg emits: one `inet` table of named sets, maps and chains.
 * Both renderings (`nft -j` JSON and `nft` text) come from it, so they cannot disagree.
 */

export type Family = 4 | 6;

/** An address key part: one address, a prefix or a range (bounds as integers of the family). */
export interface AddrKey {
  readonly v: Family;
  readonly lo: bigint;
  readonly hi: bigint;
}

export interface ServiceKey {
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly lo: number;
  readonly hi: number;
}

export type Verdict =
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'reject-tcp' }
  | { readonly kind: 'reject-icmpx' }
  | { readonly kind: 'goto'; readonly target: string };

/** A named interval set of addresses (a rule's peers). */
export interface AddressSet {
  readonly kind: 'set';
  readonly name: string;
  readonly v: Family;
  readonly elements: readonly AddrKey[];
}

/** `addr . inet_proto . inet_service` keys: a plain set (staged rules' lookups, which never decide). */
export interface ServiceMap {
  readonly kind: 'service-set';
  readonly name: string;
  readonly v: Family;
  readonly elements: readonly { readonly addr: AddrKey; readonly service: ServiceKey; readonly verdict?: Verdict }[];
}

/**
 * The first level of a category's decision: destination port (one protocol) → the chain of the port
 * interval's address class. A single-field interval map (an rbtree in the kernel: O(log n) per lookup).
 */
export interface PortMap {
  readonly kind: 'port-map';
  readonly name: string;
  readonly elements: readonly { readonly lo: number; readonly hi: number; readonly verdict: Verdict }[];
}

/**
 * The second level: peer address → the number of the rule owning it for that class of ports (a data map,
 * `ipv4_addr : mark`). A single-field interval map (an rbtree in the kernel: O(log n) per lookup); its
 * keys are disjoint (first-match order compiled in, see boxes.ts). The number goes through the
 * connection's mark to {@link RuleMap}, the one map whose elements jump to chains: a pod add changes
 * these elements only, and an update of plain data does not make the kernel validate the table's chain
 * graph at commit (adding an element that jumps to a chain does: every verdict element of the table is
 * walked again, ~2 ms on the benchmark's largest point).
 */
export interface AddressMap {
  readonly kind: 'addr-map';
  readonly name: string;
  readonly v: Family;
  readonly elements: readonly { readonly addr: AddrKey; readonly rule: number }[];
}

/** Rule number → the rule's chain (`mark : verdict`, a hash map): one per category with address classes, static while its rules are. */
export interface RuleMap {
  readonly kind: 'rule-map';
  readonly name: string;
  readonly elements: readonly { readonly rule: number; readonly verdict: Verdict }[];
}

export type NamedSet = AddressSet | ServiceMap | PortMap | AddressMap | RuleMap | FlowSet;

/**
 * A dynamic set the kernel fills: one element per `saddr . daddr . l4proto . dport` a drop rule met, with
 * its own packet and byte counter and an idle timeout. The agent lists it to report dropped flows (a drop
 * leaves no conntrack entry to read).
 */
export interface FlowSet {
  readonly kind: 'flow-set';
  readonly name: string;
  readonly v: Family;
  /** Seconds an element without packets lives. */
  readonly timeout: number;
  readonly size: number;
  readonly elements: readonly never[];
}

export type Match =
  | { readonly m: 'ct-state'; readonly states: readonly string[] }
  | { readonly m: 'ifname'; readonly dir: 'iif' | 'oif'; readonly name: string }
  | { readonly m: 'nfproto'; readonly v: Family }
  | { readonly m: 'addr'; readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly op: '==' | '!='; readonly addr: string }
  | { readonly m: 'addr-set'; readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly set: string }
  | { readonly m: 'l4proto'; readonly protocols: readonly string[] }
  | { readonly m: 'service-lookup'; readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly set: string }
  | { readonly m: 'icmp'; readonly v: Family; readonly type?: number; readonly code?: number };

export interface Rule {
  readonly match: readonly Match[];
  /**
   * Verdict map lookup instead of a plain verdict: `th dport vmap @map`, or an address class:
   * `ct mark set ip saddr map @map ct mark vmap @rules` (the peer's rule number, through the connection's
   * mark, to the rule's chain; an address without an element ends the rule there).
   */
  readonly vmap?: { readonly key: 'dport'; readonly map: string } | { readonly key: 'class'; readonly v: Family; readonly field: 'saddr' | 'daddr'; readonly map: string; readonly rules: string };
  readonly counter?: boolean;
  /** `ct mark set N`: tags the connection with the deciding rule, for flow records read from conntrack. */
  readonly ctMark?: number;
  /** `update @set { saddr . daddr . l4proto . dport }` (tcp/udp/sctp only): a dropped-flow record. */
  readonly recordFlow?: { readonly v: Family; readonly set: string };
  readonly log?: string;
  readonly verdict?: Verdict;
  readonly comment?: string;
}

export interface Chain {
  readonly name: string;
  readonly hook?: 'input' | 'output';
  readonly rules: readonly Rule[];
}

export interface Table {
  readonly family: 'inet';
  readonly name: string;
  readonly sets: readonly NamedSet[];
  readonly chains: readonly Chain[];
}

/**
 * Equal chains: the same object, or the same name, hook and rules field by field (what both renderings
 * print). Compiles keep the chain objects of what did not change, so most comparisons stop at identity.
 */
export function sameChain(a: Chain, b: Chain): boolean {
  if (a === b) return true;
  if (a.name !== b.name || a.hook !== b.hook || a.rules.length !== b.rules.length) return false;
  for (let i = 0; i < a.rules.length; i++) if (!sameRule(a.rules[i]!, b.rules[i]!)) return false;
  return true;
}

export function sameRule(a: Rule, b: Rule): boolean {
  if (a === b) return true;
  if (a.counter !== b.counter || a.ctMark !== b.ctMark || a.log !== b.log || a.comment !== b.comment) return false;
  if (a.match.length !== b.match.length) return false;
  for (let i = 0; i < a.match.length; i++) if (!sameMatch(a.match[i]!, b.match[i]!)) return false;
  if (a.recordFlow !== b.recordFlow && (a.recordFlow?.v !== b.recordFlow?.v || a.recordFlow?.set !== b.recordFlow?.set)) return false;
  if (a.vmap !== b.vmap) {
    const [x, y] = [a.vmap, b.vmap];
    if (!x || !y || x.key !== y.key || x.map !== y.map) return false;
    if (x.key === 'class' && (y.key !== 'class' || x.v !== y.v || x.field !== y.field || x.rules !== y.rules)) return false;
  }
  return sameVerdict(a.verdict, b.verdict);
}

export function sameVerdict(a: Verdict | undefined, b: Verdict | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.kind !== b.kind) return false;
  return a.kind !== 'goto' || a.target === (b as typeof a).target;
}

function sameMatch(a: Match, b: Match): boolean {
  if (a === b) return true;
  if (a.m !== b.m) return false;
  switch (a.m) {
    case 'ct-state':
    case 'l4proto': {
      const [x, y] = a.m === 'ct-state' ? [a.states, (b as typeof a).states] : [a.protocols, (b as typeof a).protocols];
      return x.length === y.length && x.every((s, i) => s === y[i]);
    }
    case 'ifname':
      return a.dir === (b as typeof a).dir && a.name === (b as typeof a).name;
    case 'nfproto':
      return a.v === (b as typeof a).v;
    case 'addr': {
      const y = b as typeof a;
      return a.v === y.v && a.field === y.field && a.op === y.op && a.addr === y.addr;
    }
    case 'addr-set':
    case 'service-lookup': {
      const y = b as typeof a;
      return a.v === y.v && a.field === y.field && a.set === y.set;
    }
    case 'icmp': {
      const y = b as typeof a;
      return a.v === y.v && a.type === y.type && a.code === y.code;
    }
  }
}

/**
 * Equal set declarations, elements aside: name, kind, family and (dynamic sets) timeout and size, which
 * with the kind make the type and flags both renderings print.
 */
export function sameSetDeclaration(a: NamedSet, b: NamedSet): boolean {
  if (a === b) return true;
  if (a.name !== b.name || a.kind !== b.kind) return false;
  if (a.kind === 'port-map' || a.kind === 'rule-map') return true;
  if (a.v !== (b as typeof a).v) return false;
  return a.kind !== 'flow-set' || (a.timeout === (b as typeof a).timeout && a.size === (b as typeof a).size);
}

/**
 * Equal tables but for set and map elements: the same name, chains (by identity, else by content) and
 * set declarations in the same order. Then an element update turns one into the other. Compiles keep
 * the objects of what did not change, so a pod add compares a few chains by content, the rest by
 * identity (rendering both tables as text to compare them cost more than the kernel's update).
 */
export function sameShape(a: Table, b: Table): boolean {
  if (a === b) return true;
  if (a.family !== b.family || a.name !== b.name || a.chains.length !== b.chains.length || a.sets.length !== b.sets.length) return false;
  for (let i = 0; i < a.chains.length; i++) if (!sameChain(a.chains[i]!, b.chains[i]!)) return false;
  for (let i = 0; i < a.sets.length; i++) if (!sameSetDeclaration(a.sets[i]!, b.sets[i]!)) return false;
  return true;
}
