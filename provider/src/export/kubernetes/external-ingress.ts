import type { World } from '../../engine';
import { parseCidr } from '../../engine/ip';
import { policyTypesOf } from '../../engine/netpol';
import { rangeCidrs } from './cidr';
import type { Refusal } from './flavor';
import type { Category } from './policy-rules';
import { matchesLabels, NAME_LABEL, Refused, type LabelSelector, type PodSel, type Selection, type Service } from './selection';

/**
 * Ingress to pods from sources outside the cluster (VMs, IP blocks, "any source"), realized with
 * NetworkPolicies for flavor `kubernetes` (pure).
 *
 * Why this is exact: the ingress peers of a standard ClusterNetworkPolicy (v1alpha2) select pods only, so
 * no Admin or Baseline rule ever matches a source outside the pod CIDR. Such a flow is decided by the
 * NetworkPolicy layer alone: by the union of the allows of the NetworkPolicies that isolate the pod, or by
 * the Kubernetes default (allow) when none does. microseg's verdict for it is a first match over the rules
 * that apply to the pod (categories, then the NetworkPolicy layer, baseline, default rule), which depends
 * on the pod only through which rule subjects and NetworkPolicies select it. So the pods of a namespace are
 * split into classes by those selectors (each class a disjunction of label selectors, negations written
 * with NotIn / DoesNotExist), the verdict of each class is computed on elementary address ranges × ports,
 * and each class that must not admit everything gets an isolating NetworkPolicy whose ipBlock rules admit
 * exactly what microseg admits.
 *
 * Isolation also changes pod-sourced flows that reach the NetworkPolicy layer (no Admin match, or Pass):
 * they would be denied there instead of going on to Baseline. That is exact only when, for the class,
 * microseg's baseline and default rule decide every pod source alike: then the NetworkPolicy admits every
 * pod (default allow) or none (default drop). A baseline rule with pod peers whose action differs from the
 * default rule makes it inexact, and the export refuses. Pods a user NetworkPolicy already isolates keep
 * their pod-sourced verdicts (our ipBlocks exclude the pod CIDR); there, microseg's categories must not
 * deny an outside source that the user's policy admits (a union cannot take it away), else it refuses.
 *
 * One thing Kubernetes decides on its own: ingress from a pod's own node (kubelet probes, host-network
 * pods) is always admitted, whether the pod is isolated or not, and no standard ClusterNetworkPolicy
 * ingress peer selects nodes. When microseg would drop such a flow the export refuses unless `podsOnly`
 * accepts it. Flavor `antrea` runs the same check alone (`nodesOnly`): Antrea admits that traffic ahead of
 * every policy too.
 *
 * NetworkPolicies are namespaced: the classes are built for the namespaces microseg knows (Namespace
 * objects and the namespaces of workloads) and must be exported again when a namespace is added.
 */

/**
 * The node addresses (`ip/32`) an ingress rule's sources match, for the node check of flavors that write the
 * other rules themselves: every node for any source; else the nodes its IP peers (`cidr`, or `cidr!e1,e2` as
 * flavor antrea encodes an except) hold, or, when the sources are negated, the nodes they do not hold. Pod
 * peers never match a node.
 */
export function nodeSources(peers: Selection, negated: boolean, nodeIps: readonly string[]): string[] {
  if (peers.any) return negated ? [] : nodeIps.map((ip) => `${ip}/32`);
  const holds = (text: string, ip: string): boolean => {
    const [cidr, rest] = text.split('!') as [string, string | undefined];
    const inside = (c: string) => {
      const x = parseCidr(c);
      const a = parseCidr(ip);
      return !!x && !!a && x.v === a.v && x.lo <= a.lo && a.hi <= x.hi;
    };
    return inside(cidr) && !(rest ? rest.split(',') : []).some(inside);
  };
  return nodeIps.filter((ip) => peers.cidrs.some((c) => holds(c, ip)) !== negated).map((ip) => `${ip}/32`);
}

/** One ingress rule's part that matches sources outside the pod CIDR, in evaluation order. */
export interface ExternalIngressRule {
  readonly construct: string;
  readonly category: Category;
  readonly action: 'allow' | 'drop' | 'pass';
  /** The pods the rule applies to (its effective appliedTo ∩ its destinations). */
  readonly subjects: readonly PodSel[];
  /** Source CIDRs (VMs, IP blocks, egress IPs; `0.0.0.0/0` and `::/0` for any source). */
  readonly cidrs: readonly string[];
  readonly services: readonly Service[] | undefined;
}

/** A baseline ingress rule with pod sources, in evaluation order. */
export interface PodBaselineRule {
  readonly construct: string;
  readonly subjects: readonly PodSel[];
  readonly action: 'allow' | 'drop' | 'pass';
  /** True when it matches every pod source on every port (any source, or all pods, and no services). */
  readonly everyPod: boolean;
}

export interface ExternalIngressInput {
  readonly cluster: string;
  readonly rules: readonly ExternalIngressRule[];
  readonly podBaseline: readonly PodBaselineRule[];
  readonly podsOnly: boolean;
  /**
   * Only check ingress from the nodes (for a flavor that writes the other rules itself): no NetworkPolicies,
   * and no refusals but the node one. `rules` then need to hold only the rules' node addresses.
   */
  readonly nodesOnly?: boolean;
  /** Why the target admits ingress from a pod's own node, for the refusal (default: Kubernetes' reason). */
  readonly nodeAdmission?: string;
}

const KUBERNETES_NODE_ADMISSION = "Kubernetes always admits traffic from a pod's own node (kubelet probes, host-network pods) and no standard ClusterNetworkPolicy ingress peer selects nodes";

export interface ExternalIngressOutput {
  readonly manifests: Record<string, unknown>[];
  readonly refusals: Refusal[];
}

type Req = { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] };
type Interval = [number, number];
type PortProto = 'tcp' | 'udp' | 'sctp';
/**
 * A service atom: a port range of one protocol, a named port of one protocol (resolved on the destination
 * pod, so it stands apart from the numbers), or a protocol without ports.
 */
type SvcAtom = { proto: PortProto; lo: number; hi: number } | { proto: PortProto; name: string } | { proto: 'icmp' | 'icmpv6' | 'other' };
const isPortless = (a: SvcAtom) => a.proto === 'icmp' || a.proto === 'icmpv6' || a.proto === 'other';
type IpAtom = { v: 4; lo: number; hi: number } | { v: 6 };

const MAX_SELECTORS_PER_NAMESPACE = 10;
const MAX_TERMS_PER_NAMESPACE = 256;
const V4_MAX = 2 ** 32 - 1;

function requirements(s: LabelSelector): Req[] {
  return [
    ...Object.entries(s.matchLabels ?? {}).map(([key, v]): Req => ({ key, operator: 'In', values: [v] })),
    ...(s.matchExpressions ?? []).map((e): Req => ({ key: e.key, operator: e.operator as Req['operator'], ...(e.values ? { values: [...e.values].sort() } : {}) })),
  ];
}

function negate(r: Req): Req {
  const operator = ({ In: 'NotIn', NotIn: 'In', Exists: 'DoesNotExist', DoesNotExist: 'Exists' } as const)[r.operator];
  return { key: r.key, operator, ...(r.values ? { values: r.values } : {}) };
}

const reqKey = (r: Req) => `${r.key}\u0000${r.operator}\u0000${(r.values ?? []).join('\u0001')}`;

/** Whether some label set satisfies every requirement (per key: In sets, NotIn sets, Exists). */
function satisfiable(reqs: readonly Req[]): boolean {
  const byKey = new Map<string, Req[]>();
  for (const r of reqs) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
  for (const rs of byKey.values()) {
    let allowed: Set<string> | undefined;
    const forbidden = new Set<string>();
    let exists = false;
    let absent = false;
    for (const r of rs) {
      if (r.operator === 'In') {
        exists = true;
        const vals = new Set(r.values ?? []);
        allowed = allowed ? new Set([...allowed].filter((v) => vals.has(v))) : vals;
      } else if (r.operator === 'NotIn') (r.values ?? []).forEach((v) => forbidden.add(v));
      else if (r.operator === 'Exists') exists = true;
      else absent = true;
    }
    if (exists && absent) return false;
    if (allowed && [...allowed].every((v) => forbidden.has(v))) return false;
  }
  return true;
}

/** Drops requirements another one implies (a NotIn or Exists beside an In on the same key). */
function simplify(reqs: readonly Req[]): Req[] {
  const ins = reqs.filter((r) => r.operator === 'In');
  return reqs.filter((r) => {
    if (r.operator === 'Exists') return !ins.some((i) => i.key === r.key);
    if (r.operator !== 'NotIn') return true;
    return !ins.some((i) => i.key === r.key && (i.values ?? []).every((v) => !(r.values ?? []).includes(v)));
  });
}

/** A label selector from requirements: single-value In as matchLabels, the rest as matchExpressions. */
function selectorOf(reqs: readonly Req[]): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: Req[] = [];
  for (const r of [...reqs].sort((a, b) => (reqKey(a) < reqKey(b) ? -1 : 1))) {
    if (r.operator === 'In' && r.values?.length === 1 && matchLabels[r.key] === undefined) matchLabels[r.key] = r.values[0]!;
    else matchExpressions.push(r);
  }
  return { ...(Object.keys(matchLabels).length ? { matchLabels } : {}), ...(matchExpressions.length ? { matchExpressions } : {}) };
}

function v4Interval(cidr: string): Interval | undefined {
  const c = parseCidr(cidr);
  return c && c.v === 4 ? [c.lo, c.hi] : undefined;
}

function mergeIntervals(list: readonly Interval[]): Interval[] {
  const sorted = [...list].sort((a, b) => a[0] - b[0]);
  const out: Interval[] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** ipBlock peers for a set of IPv4 intervals: plain CIDRs, or 0.0.0.0/0 with except when that is shorter. */
function ipBlocks(intervals: readonly Interval[]): Record<string, unknown>[] {
  const merged = mergeIntervals(intervals);
  const direct = merged.flatMap(([lo, hi]) => rangeCidrs(lo, hi));
  const holes: Interval[] = [];
  let next = 0;
  for (const [lo, hi] of merged) {
    if (lo > next) holes.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= V4_MAX) holes.push([next, V4_MAX]);
  const except = holes.flatMap(([lo, hi]) => rangeCidrs(lo, hi));
  if (except.length + 1 < direct.length) return [{ ipBlock: { cidr: '0.0.0.0/0', except } }];
  return direct.map((cidr) => ({ ipBlock: { cidr } }));
}

interface CompiledRule {
  readonly source: ExternalIngressRule;
  readonly v4: Interval[];
  readonly v6: boolean;
  readonly svc: (a: SvcAtom) => boolean;
  /** Protocols whose ports the rule names, and protocols it limits to port numbers. */
  readonly named: ReadonlySet<string>;
  /** The named ports it names, as `protocol/name`. */
  readonly names: ReadonlySet<string>;
  readonly numbered: ReadonlySet<string>;
  /** Per subject: index of its pod selector in the namespace's table, when its namespace selector matches. */
  subjectIdx: number[];
}

/** A service list as a predicate on atoms, with its port bounds and named ports per protocol. */
function portRanges(services: readonly Service[] | undefined): { matches: (a: SvcAtom) => boolean; bounds: Map<string, number[]>; names: Map<PortProto, Set<string>>; named: Set<string>; numbered: Set<string> } {
  const bounds = new Map<string, number[]>();
  const names = new Map<PortProto, Set<string>>();
  const named = new Set<string>();
  const numbered = new Set<string>();
  if (!services?.length) return { matches: () => true, bounds, names, named, numbered };
  const parts: ((a: SvcAtom) => boolean)[] = [];
  for (const s of services) {
    const protos: SvcAtom['proto'][] = s.protocol === 'any' ? (s.ports?.length ? ['tcp', 'udp', 'sctp'] : ['tcp', 'udp', 'sctp', 'icmp', 'icmpv6', 'other']) : [s.protocol];
    if (!s.ports?.length) {
      parts.push((a) => protos.includes(a.proto));
      continue;
    }
    for (const port of s.ports) {
      const m = typeof port === 'string' ? /^(\d+)-(\d+)$/.exec(port) : null;
      const num = typeof port === 'number' ? port : /^\d+$/.test(port) ? Number(port) : undefined;
      if (num === undefined && !m) {
        const name = String(port);
        if (s.protocol === 'any') throw new Refused(`named port ${name} with protocol any in a rule with sources outside the cluster: a NetworkPolicy port names one protocol`);
        const p = s.protocol as PortProto;
        names.set(p, (names.get(p) ?? new Set()).add(name));
        named.add(p);
        parts.push((a) => a.proto === p && 'name' in a && a.name === name);
        continue;
      }
      const lo = m ? Number(m[1]) : num!;
      const hi = m ? Number(m[2]) : num!;
      for (const p of protos) {
        numbered.add(p);
        bounds.set(p, [...(bounds.get(p) ?? []), lo, hi + 1]);
        parts.push((a) => a.proto === p && 'lo' in a && a.lo >= lo && a.hi <= hi);
      }
    }
  }
  return { matches: (a) => parts.some((f) => f(a)), bounds, names, named, numbered };
}

/** NetworkPolicy ports for a set of service atoms; undefined = every port and protocol. */
function npPorts(atoms: readonly SvcAtom[], all: readonly SvcAtom[]): Record<string, unknown>[] | undefined {
  if (atoms.length === all.length) return undefined;
  if (atoms.some(isPortless)) throw new Refused('ICMP or other non-port protocols from outside the cluster, but not every protocol: NetworkPolicy ports name TCP, UDP and SCTP only');
  const out: Record<string, unknown>[] = [];
  for (const proto of ['tcp', 'udp', 'sctp'] as const) {
    const ranges = mergeIntervals(atoms.flatMap((a) => (a.proto === proto && 'lo' in a ? [[a.lo, a.hi] as Interval] : [])));
    for (const [lo, hi] of ranges) out.push({ protocol: proto.toUpperCase(), port: lo, ...(hi > lo ? { endPort: hi } : {}) });
    // A named port adds nothing where every number of its protocol is admitted.
    if (ranges.length === 1 && ranges[0]![0] === 1 && ranges[0]![1] === 65535) continue;
    for (const a of atoms) if (a.proto === proto && 'name' in a) out.push({ protocol: proto.toUpperCase(), port: a.name });
  }
  return out;
}

export function externalIngressPolicies(world: World, input: ExternalIngressInput): ExternalIngressOutput {
  const { cluster } = input;
  const refusals: Refusal[] = [];
  const manifests: Record<string, unknown>[] = [];
  const clusterSpec = world.get('KubernetesCluster', cluster)!;
  const pod = v4Interval(clusterSpec.podCidr);
  const defaultAction = world.defaultAction;
  const refuse = (construct: string, reason: string) => {
    if (!refusals.some((r) => r.construct === construct && r.reason === reason)) refusals.push({ construct, reason });
  };

  // Source address atoms: IPv4 cut at every rule's CIDR and every node IP, outside the pod CIDR; IPv6 whole.
  const compiled: CompiledRule[] = [];
  const v4Cuts = new Set<number>([0, V4_MAX + 1]);
  const svcBounds = new Map<string, Set<number>>([
    ['tcp', new Set([1, 65536])],
    ['udp', new Set([1, 65536])],
    ['sctp', new Set([1, 65536])],
  ]);
  const portNames = new Map<PortProto, Set<string>>();
  if (pod) [pod[0], pod[1] + 1].forEach((n) => v4Cuts.add(n));
  const nodes = clusterSpec.nodes.map((n) => ({ name: n.name, ip: v4Interval(`${n.ip}/32`) }));
  for (const n of nodes) if (n.ip) [n.ip[0], n.ip[1] + 1].forEach((x) => v4Cuts.add(x));
  for (const r of input.rules) {
    try {
      if (!pod && !input.nodesOnly) throw new Refused(`pod CIDR ${clusterSpec.podCidr} is not IPv4: sources outside it are not exported`);
      const v4: Interval[] = [];
      let v6 = false;
      for (const c of r.cidrs) {
        const parsed = parseCidr(c);
        if (parsed?.v === 6) {
          if (parsed.lo !== 0n || parsed.hi !== (1n << 128n) - 1n) throw new Refused(`IPv6 source ${c}: only ::/0 (any source) is exported`);
          v6 = true;
          continue;
        }
        const iv = v4Interval(c);
        if (!iv) continue;
        v4.push(iv);
        [iv[0], iv[1] + 1].forEach((x) => v4Cuts.add(x));
      }
      const ports = portRanges(r.services);
      for (const [p, b] of ports.bounds) b.forEach((x) => svcBounds.get(p)!.add(x));
      for (const [p, ns] of ports.names) ns.forEach((n) => (portNames.get(p) ?? portNames.set(p, new Set()).get(p)!).add(n));
      compiled.push({ source: r, v4, v6, svc: ports.matches, named: ports.named, numbered: ports.numbered, names: new Set([...ports.names].flatMap(([p, ns]) => [...ns].map((n) => `${p}/${n}`))), subjectIdx: [] });
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      refuse(r.construct, input.nodesOnly ? `checking ingress from the nodes: ${err.reason}` : err.reason);
    }
  }
  const cuts = [...v4Cuts].sort((a, b) => a - b);
  const ipAtoms: IpAtom[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const lo = cuts[i]!;
    const hi = cuts[i + 1]! - 1;
    if (pod && lo >= pod[0] && hi <= pod[1]) continue; // pods are ClusterNetworkPolicy's business
    ipAtoms.push({ v: 4, lo, hi });
  }
  ipAtoms.push({ v: 6 });
  const svcAtoms: SvcAtom[] = [];
  for (const proto of ['tcp', 'udp', 'sctp'] as const) {
    const b = [...svcBounds.get(proto)!].sort((x, y) => x - y);
    for (let i = 0; i + 1 < b.length; i++) if (b[i]! >= 1 && b[i]! <= 65535) svcAtoms.push({ proto, lo: b[i]!, hi: Math.min(b[i + 1]! - 1, 65535) });
    for (const name of [...(portNames.get(proto) ?? [])].sort()) svcAtoms.push({ proto, name });
  }
  svcAtoms.push({ proto: 'icmp' }, { proto: 'icmpv6' }, { proto: 'other' });
  const ipIn = (r: CompiledRule, a: IpAtom) => (a.v === 6 ? r.v6 : r.v4.some(([lo, hi]) => a.lo >= lo && a.hi <= hi));
  const isNode = (a: IpAtom) => a.v === 4 && nodes.some((n) => n.ip && n.ip[0] === a.lo && n.ip[1] === a.hi);

  // The user's NetworkPolicies that isolate ingress, and whether they admit sources outside the pod CIDR.
  const userNps = world
    .names('KubernetesNetworkPolicy')
    .sort()
    .map((n) => world.get('KubernetesNetworkPolicy', n)!)
    .filter((np) => np.cluster === cluster && policyTypesOf(np).ingress)
    .map((np) => ({
      namespace: np.namespace,
      podSelector: np.podSelector as LabelSelector,
      admitsOutside: (np.ingress ?? []).some((rule) => !rule.from?.length || rule.from.some((p) => p.ipBlock !== undefined)),
      name: `${np.namespace}/${np.name}`,
    }));

  // Namespaces microseg knows in this cluster, with their labels (the name label is implied).
  const namespaces = new Map<string, Record<string, string>>();
  for (const n of world.names('Namespace')) {
    const ns = world.get('Namespace', n)!;
    if (ns.cluster === cluster) namespaces.set(ns.name!, { ...(ns.labels ?? {}), [NAME_LABEL]: ns.name! });
  }
  for (const n of world.names('Workload')) {
    const w = world.get('Workload', n)!;
    if (w.cluster === cluster && !namespaces.has(w.namespace)) namespaces.set(w.namespace, { [NAME_LABEL]: w.namespace });
  }

  const nodeDrops: string[] = [];
  for (const ns of [...namespaces.keys()].sort()) {
    const nsLabels = namespaces.get(ns)!;
    // The distinct pod selectors that matter in this namespace.
    const table: LabelSelector[] = [];
    const keys = new Map<string, number>();
    const idx = (s: LabelSelector) => {
      const k = JSON.stringify(selectorOf(requirements(s)));
      if (!keys.has(k)) {
        keys.set(k, table.length);
        table.push(s);
      }
      return keys.get(k)!;
    };
    const inNs = (subjects: readonly PodSel[]) => subjects.filter((s) => matchesLabels(s.namespaceSelector, nsLabels)).map((s) => idx(s.podSelector));
    for (const r of compiled) r.subjectIdx = inNs(r.source.subjects);
    const baselineIdx = input.podBaseline.map((b) => ({ ...b, idx: inNs(b.subjects) }));
    const userIdx = userNps.filter((u) => u.namespace === ns).map((u) => ({ ...u, idx: idx(u.podSelector) }));
    const construct = `pods of namespace ${ns}`;
    if (table.length > MAX_SELECTORS_PER_NAMESPACE) {
      if (input.nodesOnly) refuse(`ingress from the nodes of cluster ${cluster}`, `${table.length} different rule subjects and NetworkPolicies select pods of namespace ${ns}: more than ${MAX_SELECTORS_PER_NAMESPACE} is too many classes to check what microseg decides for the nodes; accept that with --pods-only`);
      else refuse(construct, `${table.length} different rule subjects and NetworkPolicies select them: more than ${MAX_SELECTORS_PER_NAMESPACE} is too many classes to write as NetworkPolicies`);
      continue;
    }
    const reqs = table.map(requirements);
    // Classes: which selectors select the pod. Each class is a union of terms (conjunctions of requirements).
    const byOutput = new Map<string, { ingress: Record<string, unknown>[]; terms: Req[][] }>();
    let termCount = 0;
    for (let mask = 0; mask < 1 << table.length; mask++) {
      const inClass = (i: number) => (mask & (1 << i)) !== 0;
      let terms: Req[][] = [table.flatMap((_s, i) => (inClass(i) ? reqs[i]! : []))];
      for (let j = 0; j < table.length && terms.length; j++) {
        if (inClass(j)) continue;
        terms = terms.flatMap((t) => reqs[j]!.map((r) => [...t, negate(r)])).filter(satisfiable);
      }
      terms = terms.filter(satisfiable).map(simplify);
      if (!terms.length) continue;
      const rules = compiled.filter((r) => r.subjectIdx.some(inClass));
      const user = userIdx.filter((u) => inClass(u.idx));
      const userIsolated = user.length > 0;
      // microseg's ingress decision for one outside source atom and service atom (`ownNode`: the source is
      // the pod's node, which the NetworkPolicy layer admits).
      const admin = rules.filter((r) => r.source.category !== 'baseline');
      const baseline = rules.filter((r) => r.source.category === 'baseline');
      const decide = (a: IpAtom, s: SvcAtom, ownNode: boolean): { action: 'allow' | 'drop'; by: string } => {
        // Categories, first match; a pass before application continues at application, a pass in
        // application continues at the NetworkPolicy layer.
        let atApplication = false;
        for (const r of admin) {
          if (atApplication && r.source.category !== 'application') continue;
          if (!ipIn(r, a) || !r.svc(s)) continue;
          if (r.source.action !== 'pass') return { action: r.source.action, by: r.source.construct };
          if (r.source.category === 'application') break;
          atApplication = true;
        }
        if (userIsolated) return { action: ownNode ? 'allow' : 'drop', by: `NetworkPolicy ${user[0]!.name}` };
        for (const r of baseline) {
          if (!ipIn(r, a) || !r.svc(s)) continue;
          if (r.source.action === 'pass') break;
          return { action: r.source.action, by: r.source.construct };
        }
        return { action: defaultAction, by: 'the default rule' };
      };
      const describe = () => JSON.stringify(selectorOf(terms[0]!));
      // Named ports only where a rule of this class names them (elsewhere a name is just one of the numbers).
      const classSvcAtoms = svcAtoms.filter((a) => !('name' in a) || rules.some((r) => r.names.has(`${a.proto}/${a.name}`)));
      // Ingress from the pod's own node: Kubernetes always admits it.
      if (!input.podsOnly) {
        const drop = ipAtoms.filter(isNode).flatMap((a) => classSvcAtoms.map((s) => decide(a, s, true))).find((d) => d.action === 'drop');
        if (drop && nodeDrops.length < 3) nodeDrops.push(`pods ${describe()} in ${ns} (${drop.by})`);
      }
      if (input.nodesOnly) continue;
      // What the class admits from outside, per address atom.
      const admitted = new Map<string, { atoms: IpAtom[]; svcs: SvcAtom[] }>();
      let everything = true;
      for (const a of ipAtoms) {
        const svcs = classSvcAtoms.filter((s) => decide(a, s, false).action === 'allow');
        if (svcs.length !== classSvcAtoms.length) everything = false;
        if (!svcs.length) continue;
        const k = JSON.stringify(svcs);
        const g = admitted.get(k) ?? { atoms: [], svcs };
        g.atoms.push(a);
        admitted.set(k, g);
      }
      let podOutcome: 'allow' | 'drop' = defaultAction;
      try {
        // A named port is exact beside the numbers of its protocol only when no rule of the class limits
        // that protocol to numbers (then every number not named decides alike), and a number is never
        // admitted where the name on that number is not (a NetworkPolicy union would admit it by number).
        for (const p of ['tcp', 'udp', 'sctp'] as const) {
          if (!rules.some((r) => r.named.has(p))) continue;
          const numbered = rules.find((r) => r.numbered.has(p));
          if (numbered) throw new Refused(`named ports and port numbers of ${p} in rules deciding outside sources for the same pods (${numbered.source.construct}): which number a name stands for is known on the pod only`);
          for (const a of ipAtoms) {
            const byNumber = classSvcAtoms.find((x) => x.proto === p && 'lo' in x)!;
            if (decide(a, byNumber, false).action !== 'allow') continue;
            const denied = classSvcAtoms.find((x) => x.proto === p && 'name' in x && decide(a, x, false).action !== 'allow');
            if (denied) throw new Refused(`${p} port ${(denied as { name: string }).name} is dropped where every other ${p} port is admitted: a NetworkPolicy cannot take a named port out of an allow`);
          }
        }
        if (userIsolated) {
          if (admin.length && user.some((u) => u.admitsOutside))
            throw new Refused(`NetworkPolicy ${user.find((u) => u.admitsOutside)!.name} admits sources outside the cluster and microseg rules decide such sources for the same pods first: a NetworkPolicy union cannot take an admitted source away`);
          if (!admitted.size) continue; // the user's isolation already drops every outside source
        } else {
          if (everything) continue; // not isolated: Kubernetes admits every outside source, as microseg does
          // Pod sources that reach the NetworkPolicy layer would be decided there: exact when baseline and
          // the default rule decide every pod source alike (then the policy admits all pods or none).
          const applying = baselineIdx.filter((x) => x.idx.some(inClass));
          const effective = (a: 'allow' | 'drop' | 'pass') => (a === 'pass' ? defaultAction : a);
          const decisive = applying.findIndex((x) => x.everyPod);
          podOutcome = decisive < 0 ? defaultAction : effective(applying[decisive]!.action);
          const odd = applying.slice(0, decisive < 0 ? undefined : decisive).find((x) => effective(x.action) !== podOutcome);
          if (odd) throw new Refused(`isolating these pods for their outside sources would decide their pod sources in the NetworkPolicy layer, but ${odd.construct} (baseline) decides some pod sources differently from the others`);
        }
        const ingress: Record<string, unknown>[] = [];
        for (const g of [...admitted.values()]) {
          const from = [...ipBlocks(g.atoms.filter((a): a is IpAtom & { v: 4 } => a.v === 4).map((a) => [a.lo, a.hi])), ...(g.atoms.some((a) => a.v === 6) ? [{ ipBlock: { cidr: '::/0' } }] : [])];
          const ports = npPorts(g.svcs, classSvcAtoms);
          ingress.push({ from, ...(ports ? { ports } : {}) });
        }
        // Pod sources reaching the NetworkPolicy layer keep microseg's default rule (baseline has no say).
        if (!userIsolated && podOutcome === 'allow') ingress.push({ from: [{ namespaceSelector: {} }] });
        const k = JSON.stringify(ingress);
        const o = byOutput.get(k) ?? { ingress, terms: [] };
        o.terms.push(...terms);
        byOutput.set(k, o);
        termCount += terms.length;
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        refuse(`${construct} selected by ${describe()}`, err.reason);
      }
    }
    if (termCount > MAX_TERMS_PER_NAMESPACE) {
      refuse(construct, `${termCount} pod classes: more than ${MAX_TERMS_PER_NAMESPACE} NetworkPolicies for one namespace`);
      continue;
    }
    let n = 0;
    for (const { ingress, terms } of byOutput.values()) {
      for (const t of mergeTerms(terms)) {
        manifests.push({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: `microseg-ingress-${n++}`, namespace: ns, labels: { 'app.kubernetes.io/managed-by': 'microseg' } },
          spec: { podSelector: selectorOf(t), policyTypes: ['Ingress'], ingress },
        });
      }
    }
  }
  if (nodeDrops.length)
    refuse(
      `ingress from the nodes of cluster ${cluster}`,
      `${input.nodeAdmission ?? KUBERNETES_NODE_ADMISSION}, but microseg drops it for ${nodeDrops.join('; ')}; accept that with --pods-only`,
    );
  return { manifests, refusals };
}

/** Merges terms that differ in one requirement and its negation (same pods, fewer NetworkPolicies). */
function mergeTerms(terms: readonly Req[][]): Req[][] {
  let list = terms.map((t) => [...new Map(t.map((r) => [reqKey(r), r])).values()]);
  for (let changed = true; changed; ) {
    changed = false;
    outer: for (let i = 0; i < list.length; i++)
      for (let j = i + 1; j < list.length; j++) {
        const a = new Map(list[i]!.map((r) => [reqKey(r), r]));
        const b = new Map(list[j]!.map((r) => [reqKey(r), r]));
        if (a.size !== b.size) continue;
        const onlyA = [...a.keys()].filter((k) => !b.has(k));
        const onlyB = [...b.keys()].filter((k) => !a.has(k));
        if (onlyA.length === 1 && onlyB.length === 1 && reqKey(negate(a.get(onlyA[0]!)!)) === onlyB[0]) {
          const merged = [...a.values()].filter((r) => reqKey(r) !== onlyA[0]);
          list = [...list.filter((_t, k) => k !== i && k !== j), merged];
          changed = true;
          break outer;
        }
      }
  }
  // Also drop a term another term contains (a subset of requirements selects a superset of pods).
  return list.filter((t, i) => !list.some((u, j) => j !== i && u.length < t.length && u.every((r) => t.some((x) => reqKey(x) === reqKey(r)))));
}
