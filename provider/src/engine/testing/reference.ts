import type { SpecOf } from '../../model';
import { formatIp, parseCidr, parseIp, type Ip } from '../ip';

/**
 * A deliberately naive evaluator written straight from product.md points 1–6: no indexes, no caches,
 * no shared code with the engine's matching (only IP parsing). It is the oracle of the property-based
 * test and the baseline of the benchmark. Load balancers and egress IPs are out of its scope.
 *
 * It reads the objects as the user wrote them (no model parsing): the defaults the documentation states
 * are applied here, on its own, so that a wrong default in the model shows up as a disagreement.
 */
export interface ReferenceInput {
  readonly defaultAction: 'allow' | 'drop';
  /** Objects as written by the user (or already normalised: the documented defaults are idempotent). */
  readonly specs: readonly { readonly kind: string; readonly name: string; readonly spec: unknown }[];
  /**
   * Allocated pods per workload identity. When absent the reference allocates them itself the way the
   * documentation describes a fresh allocation: workloads in the order given, each replica the lowest
   * free host address of the cluster's pod CIDR, replica i on node i modulo the node count.
   */
  readonly pods?: Readonly<Record<string, readonly { readonly name: string; readonly ip: string; readonly node: string }[]>>;
}

/** Documented defaults (docs/reference), applied to one raw object. */
function withDefaults(kind: string, raw: unknown): unknown {
  const o = { ...(raw as Record<string, unknown>) };
  const rule = (r: Record<string, unknown>) => ({
    direction: 'inout',
    sourcesExcluded: false,
    destinationsExcluded: false,
    logged: false,
    disabled: false,
    ...r,
    ...(Array.isArray(r.services) ? { services: (r.services as Record<string, unknown>[]).map((x) => ({ protocol: 'any', ...x })) } : {}),
  });
  switch (kind) {
    case 'KubernetesCluster':
      return { networkMode: 'overlay', ...o };
    case 'Workload':
      return { replicas: 1, ...o, ...(Array.isArray(o.ports) ? { ports: (o.ports as Record<string, unknown>[]).map((x) => ({ protocol: 'tcp', ...x })) } : {}) };
    case 'FirewallPolicy':
      return { category: 'application', priority: 1000, enforcement: 'enforce', ...o, ...(Array.isArray(o.rules) ? { rules: (o.rules as Record<string, unknown>[]).map(rule) } : {}) };
    case 'FirewallRule':
      return { priority: 1000, ...rule(o) };
    case 'QuarantinePolicy':
      return Array.isArray(o.forensicServices) ? { ...o, forensicServices: (o.forensicServices as Record<string, unknown>[]).map((x) => ({ protocol: 'any', ...x })) } : o;
    default:
      return o;
  }
}

type PodOut = { name: string; ip: string; node: string };

/** A fresh allocation, as documented (see ReferenceInput.pods). */
function allocatePods(clusters: readonly (readonly [string, SpecOf['KubernetesCluster']])[], workloads: readonly (readonly [string, SpecOf['Workload']])[]): Record<string, PodOut[]> {
  const next = new Map<string, bigint>();
  const out: Record<string, PodOut[]> = {};
  for (const [key, w] of workloads) {
    const cl = clusters.find(([n]) => n === w.cluster)?.[1];
    const cidr = cl ? parseCidr(cl.podCidr) : undefined;
    if (!cl || !cidr) continue;
    // Network address skipped (and broadcast, never reached at test sizes).
    let n = next.get(w.cluster) ?? BigInt(cidr.lo) + 1n;
    out[key] = [];
    for (let i = 0; i < w.replicas; i++, n++) out[key].push({ name: `${w.name}-${i}`, ip: formatIp(cidr.v, cidr.v === 4 ? Number(n) : n), node: cl.nodes[i % cl.nodes.length]!.name });
    next.set(w.cluster, n);
  }
  return out;
}

interface RefEndpoint {
  kind: 'pod' | 'vm';
  owner: string;
  ip: string;
  labels: Record<string, string>;
  cluster?: string;
  namespace?: string;
  node?: string;
  ports?: { name: string; port: number; protocol: string }[];
}

type Sel = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined;
type PodSel = SpecOf['PodSelector'];
type Rule = SpecOf['FirewallRule'];

export interface ReferenceResult {
  verdict: 'allow' | 'drop' | 'reject';
  policy: string;
  rule: string;
  /** The source address as it arrives at the destination (after SNAT), for allowed flows. */
  deliveredFrom?: string;
}

interface Reading {
  byKind: Map<string, (readonly [string, unknown])[]>;
  eps: RefEndpoint[];
}
const readings = new WeakMap<ReferenceInput, Reading>();

/**
 * The input partitioned by kind with the documented defaults applied, and its endpoints. Read once per
 * input (a property run evaluates thousands of flows on one input); without the partition every selector
 * test re-filtered the whole estate and one verdict at benchmark scale took minutes. Every lookup during
 * evaluation is still a linear scan.
 */
function read(input: ReferenceInput): Reading {
  let r = readings.get(input);
  if (r) return r;
  const byKind = new Map<string, (readonly [string, unknown])[]>();
  for (const s of input.specs) {
    let l = byKind.get(s.kind);
    if (!l) byKind.set(s.kind, (l = []));
    l.push([s.name, withDefaults(s.kind, s.spec)]);
  }
  const of = <K extends keyof SpecOf>(kind: K) => (byKind.get(kind) ?? []) as unknown as readonly (readonly [string, SpecOf[K]])[];
  const eps: RefEndpoint[] = [];
  for (const [name, vm] of of('VirtualMachine')) for (const i of vm.interfaces) eps.push({ kind: 'vm', owner: name, ip: i.ip, labels: vm.labels ?? {} });
  const pods = input.pods ?? allocatePods(of('KubernetesCluster'), of('Workload'));
  for (const [key, w] of of('Workload'))
    for (const p of pods[key] ?? []) eps.push({ kind: 'pod', owner: key, ip: p.ip, labels: w.labels ?? {}, cluster: w.cluster, namespace: w.namespace, node: p.node, ports: w.ports });
  r = { byKind, eps };
  readings.set(input, r);
  return r;
}

/** Verdict and deciding rule (`default/default`, or `none/none` when no side is managed). */
export function referenceVerdict(input: ReferenceInput, flow: { source: string; destination: string; protocol: string; port?: number }): ReferenceResult {
  const { byKind, eps } = read(input);
  const of = <K extends keyof SpecOf>(kind: K) => (byKind.get(kind) ?? []) as unknown as readonly (readonly [string, SpecOf[K]])[];
  const find = (ref: string): { ip: string; ep?: RefEndpoint } => {
    if (parseIp(ref)) return { ip: ref, ep: eps.find((e) => e.ip === ref) };
    const e = eps.find((x) => x.owner === ref)!;
    return { ip: e.ip, ep: e };
  };
  const selMatch = (sel: Sel, labels: Record<string, string>): boolean => {
    for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) if (labels[k] !== v) return false;
    for (const e of sel?.matchExpressions ?? []) {
      const has = k(labels, e.key);
      if (e.operator === 'In' && !(has && (e.values ?? []).includes(labels[e.key]!))) return false;
      if (e.operator === 'NotIn' && has && (e.values ?? []).includes(labels[e.key]!)) return false;
      if (e.operator === 'Exists' && !has) return false;
      if (e.operator === 'DoesNotExist' && has) return false;
    }
    return true;
  };
  const nsLabels = (cluster: string, ns: string) => ({ ...(of('Namespace').find(([, n]) => n.cluster === cluster && n.name === ns)?.[1].labels ?? {}), 'kubernetes.io/metadata.name': ns });
  const podSelMatch = (s: PodSel | Omit<PodSel, 'name'>, ep: RefEndpoint | undefined): boolean =>
    !!ep && ep.kind === 'pod' &&
    (s.cluster === undefined || s.cluster === ep.cluster) &&
    (s.namespaces === undefined || s.namespaces.includes(ep.namespace!)) &&
    (s.namespaceSelector === undefined || selMatch(s.namespaceSelector, nsLabels(ep.cluster!, ep.namespace!))) &&
    selMatch(s.podSelector, ep.labels);
  const inBlock = (cidr: string, except: readonly string[] | undefined, ip: string): boolean => {
    const c = parseCidr(cidr);
    const a = parseIp(ip)!;
    const within = (x: ReturnType<typeof parseCidr>) => !!x && x.v === a.v && a.n >= x.lo && a.n <= x.hi;
    return within(c) && !(except ?? []).some((e) => within(parseCidr(e)));
  };
  // Group membership for appliedTo: selectors and static members only (never IP blocks).
  const groupSelects = (g: string, ep: RefEndpoint, seen: string[] = []): boolean => {
    const spec = of('SecurityGroup').find(([n]) => n === g)?.[1];
    if (!spec || seen.includes(g)) return false;
    if (ep.kind === 'vm' && (spec.vmSelectors ?? []).some((s) => selMatch(s, ep.labels))) return true;
    if ((spec.podSelectors ?? []).some((s) => podSelMatch(s, ep))) return true;
    if ((spec.podSelectorRefs ?? []).some((r) => { const s = of('PodSelector').find(([n]) => n === r)?.[1]; return s !== undefined && podSelMatch(s, ep); })) return true;
    if (ep.kind === 'vm' && (spec.vms ?? []).includes(ep.owner)) return true;
    if (ep.kind === 'pod' && (spec.workloads ?? []).includes(ep.owner)) return true;
    return (spec.groups ?? []).some((c) => groupSelects(c, ep, [...seen, g]));
  };
  const groupHasIp = (g: string, ip: string, seen: string[] = []): boolean => {
    const spec = of('SecurityGroup').find(([n]) => n === g)?.[1];
    if (!spec || seen.includes(g)) return false;
    if ((spec.ipBlocks ?? []).some((b) => inBlock(b.cidr, b.except, ip))) return true;
    return (spec.groups ?? []).some((c) => groupHasIp(c, ip, [...seen, g]));
  };
  type Addr = { ip: string; ep?: RefEndpoint };
  const peerMatch = (p: NonNullable<Rule['sources']>[number], a: Addr): boolean => {
    if (p.group !== undefined) return (a.ep !== undefined && groupSelects(p.group, a.ep)) || groupHasIp(p.group, a.ip);
    if (p.podSelector) return podSelMatch(p.podSelector, a.ep);
    if (p.podSelectorRef !== undefined) { const s = of('PodSelector').find(([n]) => n === p.podSelectorRef)?.[1]; return s !== undefined && podSelMatch(s, a.ep); }
    if (p.vmSelector) return a.ep?.kind === 'vm' && selMatch(p.vmSelector, a.ep.labels);
    if (p.vm !== undefined) return a.ep?.kind === 'vm' && a.ep.owner === p.vm;
    if (p.workload !== undefined) return a.ep?.kind === 'pod' && a.ep.owner === p.workload;
    if (p.cidr !== undefined) return inBlock(p.cidr, p.except, a.ip);
    return false;
  };
  const side = (peers: Rule['sources'], negated: boolean, a: Addr): boolean => {
    if (!peers || peers.length === 0) return !negated;
    return peers.some((p) => peerMatch(p, a)) !== negated;
  };
  const serviceMatch = (r: Rule, dst: Addr): boolean => {
    if (!r.services || r.services.length === 0) return true;
    return r.services.some((s) => {
      if (s.protocol !== 'any' && s.protocol !== flow.protocol) return false;
      if (!s.ports || s.ports.length === 0) return true;
      if (flow.port === undefined) return false;
      return s.ports.some((p) => {
        if (typeof p === 'number') return p === flow.port;
        const m = /^(\d+)-(\d+)$/.exec(p);
        if (m) return flow.port! >= Number(m[1]) && flow.port! <= Number(m[2]);
        if (/^\d+$/.test(p)) return Number(p) === flow.port;
        return (dst.ep?.ports ?? []).some((np) => np.name === p && np.port === flow.port && np.protocol === flow.protocol);
      });
    });
  };

  // Every enforced policy with its rules, as (category, order key, rules, appliedTo test).
  const catRank: Record<string, number> = { emergency: 0, infrastructure: 1, environment: 2, application: 3, baseline: 5 };
  type P = { name: string; cat: string; q: boolean; prio: number; rules: { r: Rule; applies: (ep: RefEndpoint) => boolean }[] };
  const policies: P[] = [];
  for (const [name, p] of of('FirewallPolicy')) {
    if (p.enforcement === 'staged') continue;
    const rules: Rule[] = p.rules?.length
      ? p.rules.map((r) => ({ ...r, policy: name, priority: 0 }))
      : of('FirewallRule').filter(([, r]) => r.policy === name).map(([, r]) => r).sort((a, b) => a.priority - b.priority || (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
    const inAll = (groups: readonly string[] | undefined, ep: RefEndpoint) => !groups || groups.length === 0 || groups.some((g) => groupSelects(g, ep));
    policies.push({ name, cat: p.category, q: false, prio: p.priority, rules: rules.map((r) => ({ r, applies: (ep: RefEndpoint) => inAll(p.appliedTo, ep) && inAll(r.appliedTo, ep) })) });
  }
  for (const [name, q] of of('QuarantinePolicy')) {
    const quarantined = (ep: RefEndpoint) => selMatch(q.selector, ep.labels);
    const base = { policy: name, priority: 0, sourcesExcluded: false, destinationsExcluded: false, logged: true, disabled: false } as const;
    const rules: Rule[] = [];
    if (q.forensicGroup !== undefined) rules.push({ ...base, name: 'forensic-in', action: 'allow', direction: 'in', sources: [{ group: q.forensicGroup }], services: q.forensicServices });
    rules.push({ ...base, name: 'isolate-in', action: 'drop', direction: 'in' }, { ...base, name: 'isolate-out', action: 'drop', direction: 'out' });
    policies.push({ name, cat: 'emergency', q: true, prio: 0, rules: rules.map((r) => ({ r, applies: quarantined })) });
  }
  policies.sort((a, b) => catRank[a.cat]! - catRank[b.cat]! || Number(b.q) - Number(a.q) || a.prio - b.prio || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Kubernetes NetworkPolicies, straight from the API reference: the policies of the pod's namespace
  // whose podSelector selects it and whose (inferred) policyTypes include the direction isolate it; then
  // only a rule of one of them admits (union), or the pod's own node for ingress.
  type NetPol = SpecOf['KubernetesNetworkPolicy'];
  type NpPeer = NonNullable<NonNullable<NetPol['ingress']>[number]['from']>[number];
  type NpPort = NonNullable<NonNullable<NetPol['ingress']>[number]['ports']>[number];
  const isolates = (np: NetPol, dir: 'in' | 'out'): boolean =>
    np.policyTypes?.length ? np.policyTypes.includes(dir === 'in' ? 'Ingress' : 'Egress') : dir === 'in' || (np.egress ?? []).length > 0;
  const npPeerMatch = (np: NetPol, p: NpPeer, a: Addr): boolean => {
    if (p.ipBlock) return inBlock(p.ipBlock.cidr, p.ipBlock.except, a.ip);
    const ep = a.ep;
    if (!ep || ep.kind !== 'pod' || ep.cluster !== np.cluster) return false;
    const nsOk = p.namespaceSelector ? selMatch(p.namespaceSelector, nsLabels(ep.cluster, ep.namespace!)) : ep.namespace === np.namespace;
    return nsOk && selMatch(p.podSelector, ep.labels);
  };
  const npPortMatch = (p: NpPort, dst: Addr): boolean => {
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    if (proto !== flow.protocol || flow.port === undefined) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'number') return flow.port >= p.port && flow.port <= (p.endPort ?? p.port);
    return (dst.ep?.ports ?? []).some((np) => np.name === p.port && np.protocol === proto && np.port === flow.port);
  };
  const networkPolicies = (at: RefEndpoint, dir: 'in' | 'out', src: Addr, dst: Addr): ReferenceResult | undefined => {
    if (at.kind !== 'pod') return undefined;
    const selecting = of('KubernetesNetworkPolicy')
      .filter(([, np]) => np.cluster === at.cluster && np.namespace === at.namespace && selMatch(np.podSelector, at.labels) && isolates(np, dir))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (selecting.length === 0) return undefined;
    for (const [key, np] of selecting) {
      const rules = dir === 'in' ? (np.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })) : (np.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        const peerOk = !r.peers?.length || r.peers.some((p) => npPeerMatch(np, p, dir === 'in' ? src : dst));
        const portOk = !r.ports?.length || r.ports.some((p) => npPortMatch(p, dst));
        if (peerOk && portOk) return { verdict: 'allow', policy: key, rule: `${dir === 'in' ? 'ingress' : 'egress'}[${i}]` };
      }
    }
    const first = selecting[0]![0];
    if (dir === 'in') {
      const node = of('KubernetesCluster').find(([n]) => n === at.cluster)?.[1].nodes.find((n) => n.name === at.node);
      if (node && parseIp(node.ip)?.s === parseIp(src.ip)?.s) return { verdict: 'allow', policy: first, rule: 'from-node' };
    }
    return { verdict: 'drop', policy: first, rule: `${dir === 'in' ? 'ingress' : 'egress'}-isolation` };
  };

  // One layer of FirewallPolicies: a decision, or undefined when it ends without one (no match, or a pass
  // that leaves it). In the first layer a pass before application skips to the application category.
  const layer = (ps: readonly P[], at: RefEndpoint, dir: 'in' | 'out', src: Addr, dst: Addr): ReferenceResult | undefined => {
    let skipUntilApplication = false;
    for (const p of ps) {
      if (skipUntilApplication && p.cat !== 'application') continue;
      for (const { r, applies } of p.rules) {
        if (r.disabled || !applies(at)) continue;
        if (r.direction !== 'inout' && r.direction !== dir) continue;
        if (!side(r.sources, r.sourcesExcluded, src) || !side(r.destinations, r.destinationsExcluded, dst) || !serviceMatch(r, dst)) continue;
        if (r.action === 'pass') {
          if (p.cat === 'application' || p.cat === 'baseline') return undefined;
          skipUntilApplication = true;
          break;
        }
        return { verdict: r.action, policy: p.name, rule: r.name! };
      }
    }
    return undefined;
  };
  // emergency → application, NetworkPolicies, baseline, default rule.
  const evaluate = (at: RefEndpoint, dir: 'in' | 'out', src: Addr, dst: Addr): ReferenceResult =>
    layer(policies.filter((p) => p.cat !== 'baseline'), at, dir, src, dst) ??
    networkPolicies(at, dir, src, dst) ??
    layer(policies.filter((p) => p.cat === 'baseline'), at, dir, src, dst) ?? { verdict: input.defaultAction, policy: 'default', rule: 'default' };
  // pass leaves the whole current category: later policies of the same category are skipped too.
  let src: Addr = find(flow.source);
  const dst: Addr = find(flow.destination);
  let last: ReferenceResult = { verdict: 'allow', policy: 'none', rule: 'none' };
  if (src.ep) {
    last = evaluate(src.ep, 'out', src, dst);
    if (last.verdict !== 'allow') return last;
    if (src.ep.kind === 'pod') {
      const cl = of('KubernetesCluster').find(([n]) => n === src.ep!.cluster)?.[1];
      const sameCluster = dst.ep?.kind === 'pod' && dst.ep.cluster === src.ep.cluster;
      const inCidr = cl && (inBlock(cl.podCidr, [], dst.ip) || inBlock(cl.serviceCidr, [], dst.ip));
      if (cl && !sameCluster && !inCidr && cl.networkMode === 'overlay') src = { ip: cl.nodes.find((n) => n.name === src.ep!.node)!.ip };
    }
  }
  if (dst.ep) {
    last = evaluate(dst.ep, 'in', src, dst);
  }
  return last.verdict === 'allow' ? { ...last, deliveredFrom: src.ip } : last;
}

function k(labels: Record<string, string>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(labels, key);
}

export type { Ip };
