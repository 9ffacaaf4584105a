import { parseCidr, parseIp } from '../../provider/src/engine/ip';

/**
 * A small evaluator of exported Calico objects, written from Calico's documented policy semantics
 * (docs.tigera.io, Calico Open Source 3.32: the tier, policy and selector reference pages), so
 * the calico flavor's verdicts can be compared with microseg's: tiers by `order`; in a tier the policies
 * that apply to the endpoint (namespaceSelector + selector, `types`) by `order` then name, their rules in
 * order, first match decides (Allow, Deny) or leaves the tier (Pass); a tier that applies and matches
 * nothing ends in its defaultAction; staged policies never decide; after the last tier a pod's namespace
 * profile allows and a HostEndpoint without profiles denies. Kubernetes NetworkPolicies are policies of
 * Calico's own `default` tier (order 1,000,000, defaultAction Deny, as Calico's tiered-policy page states; each becomes one
 * policy of order 1000 selecting its pods, with allow rules). It covers the selector grammar and the fields
 * the exporter writes, and refuses anything else, so a test cannot pass by ignoring a field.
 */

type Labels = Readonly<Record<string, string>>;
export interface CalicoEndpoint {
  readonly ip: string;
  readonly kind: 'pod' | 'host';
  /** Pod labels, or the HostEndpoint's labels. */
  readonly labels: Labels;
  readonly namespace?: string;
  readonly namespaceLabels?: Labels;
  readonly namedPorts?: ReadonlyMap<string, { readonly port: number; readonly protocol: string }>;
}
type Entity = { nets?: string[]; notNets?: string[]; selector?: string; notSelector?: string; namespaceSelector?: string; ports?: (number | string)[] };
type Rule = { action: string; protocol?: string; source?: Entity; destination?: Entity };
type Policy = { name: string; staged: boolean; tier: string; order: number; selector: string; namespaceSelector?: string; types: string[]; ingress?: Rule[]; egress?: Rule[]; np?: NetworkPolicy };

// ---- Kubernetes NetworkPolicies (networking.k8s.io/v1), as Calico's default tier holds them -------------
type LabelSelector = { matchLabels?: Labels; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
type NpPeer = { podSelector?: LabelSelector; namespaceSelector?: LabelSelector; ipBlock?: { cidr: string; except?: string[] } };
type NpPort = { protocol?: string; port?: number | string; endPort?: number };
type NpRule = { from?: NpPeer[]; to?: NpPeer[]; ports?: NpPort[] };
type NetworkPolicy = { namespace: string; podSelector: LabelSelector; policyTypes?: string[]; ingress?: NpRule[]; egress?: NpRule[] };

function labelSelectorMatches(sel: LabelSelector, labels: Labels): boolean {
  return (
    Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (sel.matchExpressions ?? []).every((e) => {
      const v = labels[e.key];
      if (e.operator === 'In') return v !== undefined && (e.values ?? []).includes(v);
      if (e.operator === 'NotIn') return v === undefined || !(e.values ?? []).includes(v);
      if (e.operator === 'Exists') return v !== undefined;
      if (e.operator === 'DoesNotExist') return v === undefined;
      throw new Error(`operator ${e.operator}`);
    })
  );
}

// ---- selectors ----------------------------------------------------------------------------------------
type Sel = (labels: Labels) => boolean;
const cache = new Map<string, Sel>();
export function parseSelector(text: string): Sel {
  const hit = cache.get(text);
  if (hit) return hit;
  const tokens = text.match(/'[^']*'|\|\||&&|==|!=|[(){},!]|[A-Za-z0-9_./-]+/g) ?? [];
  if (tokens.join('').replace(/\s/g, '') !== text.replace(/\s/g, '')) throw new Error(`selector: cannot tokenize ${text}`);
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const take = (t?: string): string => {
    const x = tokens[i++];
    if (x === undefined || (t !== undefined && x !== t)) throw new Error(`selector ${text}: expected ${t ?? 'a token'} at ${i - 1}, got ${x}`);
    return x;
  };
  const str = (): string => {
    const s = take();
    if (!/^'.*'$/.test(s)) throw new Error(`selector ${text}: expected a string, got ${s}`);
    return s.slice(1, -1);
  };
  const set = (): Set<string> => {
    take('{');
    const out = new Set<string>();
    while (peek() !== '}') {
      out.add(str());
      if (peek() === ',') take(',');
    }
    take('}');
    return out;
  };
  const or = (): Sel => {
    const parts = [and()];
    while (peek() === '||') {
      take('||');
      parts.push(and());
    }
    return (l) => parts.some((p) => p(l));
  };
  const and = (): Sel => {
    const parts = [unary()];
    while (peek() === '&&') {
      take('&&');
      parts.push(unary());
    }
    return (l) => parts.every((p) => p(l));
  };
  const unary = (): Sel => {
    const t = take();
    if (t === '!') {
      const inner = unary();
      return (l) => !inner(l);
    }
    if (t === '(') {
      const inner = or();
      take(')');
      return inner;
    }
    if (t === 'all') {
      take('(');
      take(')');
      return () => true;
    }
    if (t === 'has') {
      take('(');
      const k = take();
      take(')');
      return (l) => Object.prototype.hasOwnProperty.call(l, k);
    }
    const op = take();
    if (op === '==') {
      const v = str();
      return (l) => l[t] === v;
    }
    if (op === '!=') {
      const v = str();
      return (l) => l[t] !== v;
    }
    if (op === 'in') {
      const s = set();
      return (l) => l[t] !== undefined && s.has(l[t]!);
    }
    if (op === 'not') {
      take('in');
      const s = set();
      return (l) => l[t] === undefined || !s.has(l[t]!);
    }
    throw new Error(`selector ${text}: unknown operator ${op}`);
  };
  const sel = or();
  if (i !== tokens.length) throw new Error(`selector ${text}: trailing ${tokens.slice(i).join(' ')}`);
  cache.set(text, sel);
  return sel;
}

function inCidr(ip: string, cidr: string): boolean {
  const a = parseIp(ip);
  const c = parseCidr(cidr);
  if (!a || !c || a.v !== c.v) return false;
  if (a.v === 4) return a.n >= (c as { lo: number }).lo && a.n <= (c as { hi: number }).hi;
  throw new Error('IPv6 is not covered by this evaluator');
}

// ---- the model ----------------------------------------------------------------------------------------
export class CalicoModel {
  private readonly tiers: { name: string; order: number; defaultAction: string }[] = [];
  private readonly policies: Policy[] = [];
  private readonly sets: { labels: Labels; nets: string[] }[] = [];
  private readonly hosts: CalicoEndpoint[] = [];

  constructor(
    manifests: readonly Record<string, unknown>[],
    private readonly pods: readonly CalicoEndpoint[],
  ) {
    let defaultTier = false;
    for (const m of manifests) {
      const meta = m.metadata as { name: string; labels?: Labels };
      const spec = m.spec as Record<string, unknown>;
      if (m.kind === 'Tier') this.tiers.push({ name: meta.name, order: spec.order as number, defaultAction: (spec.defaultAction as string | undefined) ?? 'Deny' });
      else if (m.kind === 'GlobalNetworkPolicy' || m.kind === 'StagedGlobalNetworkPolicy') {
        const known = new Set(['tier', 'order', 'selector', 'namespaceSelector', 'types', 'ingress', 'egress']);
        for (const k of Object.keys(spec)) if (!known.has(k)) throw new Error(`${meta.name}: field ${k} not covered by this evaluator`);
        this.policies.push({ name: meta.name, staged: m.kind !== 'GlobalNetworkPolicy', ...(spec as Omit<Policy, 'name' | 'staged'>) });
      } else if (m.kind === 'NetworkPolicy' && m.apiVersion === 'networking.k8s.io/v1') {
        const np = { namespace: (meta as { namespace?: string }).namespace!, ...(spec as Omit<NetworkPolicy, 'namespace'>) };
        // policyTypes defaulting (the apiserver's): Ingress, plus Egress when egress rules are given.
        const types = np.policyTypes?.length ? np.policyTypes : ['Ingress', ...(np.egress?.length ? ['Egress'] : [])];
        this.policies.push({ name: `knp.default.${meta.name}`, staged: false, tier: 'default', order: 1000, selector: 'all()', types, np });
        defaultTier = true;
      } else if (m.kind === 'GlobalNetworkSet') this.sets.push({ labels: meta.labels ?? {}, nets: (spec.nets as string[]) ?? [] });
      else if (m.kind === 'HostEndpoint') for (const ip of spec.expectedIPs as string[]) this.hosts.push({ ip, kind: 'host', labels: meta.labels ?? {} });
      else throw new Error(`${String(m.kind)} is not covered by this evaluator`);
    }
    if (defaultTier) this.tiers.push({ name: 'default', order: 1_000_000, defaultAction: 'Deny' }); // Calico creates it
    this.tiers.sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : 1));
    this.policies.sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : 1));
  }

  /** The endpoint of an address, as Calico knows it (pods, then HostEndpoints). */
  endpointOf(ip: string): CalicoEndpoint | undefined {
    return this.pods.find((p) => p.ip === ip) ?? this.hosts.find((h) => h.ip === ip);
  }

  /** The labels selectors see: a pod's labels plus its namespace under `projectcalico.org/namespace` and `pcns.`. */
  private static view(ep: CalicoEndpoint): Labels {
    if (ep.kind === 'host') return ep.labels;
    const ns = Object.fromEntries(Object.entries(ep.namespaceLabels ?? {}).map(([k, v]) => [`pcns.${k}`, v]));
    return { ...ep.labels, ...ns, 'pcns.projectcalico.org/name': ep.namespace!, 'projectcalico.org/namespace': ep.namespace! };
  }

  private static appliesTo(p: Policy, ep: CalicoEndpoint): boolean {
    if (p.np) return ep.kind === 'pod' && ep.namespace === p.np.namespace && labelSelectorMatches(p.np.podSelector, ep.labels);
    return CalicoModel.selects(p.namespaceSelector, p.selector, ep);
  }

  /** A NetworkPolicy rule: peers (pods by labels in the policy's or selected namespaces, ipBlock) and ports. */
  private npRuleMatches(np: NetworkPolicy, r: NpRule, peerIp: string, dstIp: string, protocol: string, port: number | undefined, dir: 'ingress' | 'egress'): boolean {
    const peers = dir === 'ingress' ? r.from : r.to;
    const peerOk =
      !peers?.length ||
      peers.some((p) => {
        if (p.ipBlock) return inCidr(peerIp, p.ipBlock.cidr) && !(p.ipBlock.except ?? []).some((e) => inCidr(peerIp, e));
        const ep = this.pods.find((x) => x.ip === peerIp);
        if (!ep) return false;
        const nsOk = p.namespaceSelector ? labelSelectorMatches(p.namespaceSelector, ep.namespaceLabels ?? {}) : ep.namespace === np.namespace;
        return nsOk && (!p.podSelector || labelSelectorMatches(p.podSelector, ep.labels));
      });
    const portOk =
      !r.ports?.length ||
      r.ports.some((p) => {
        if ((p.protocol ?? 'TCP').toUpperCase() !== protocol) return false;
        if (p.port === undefined) return true;
        if (typeof p.port === 'number') return port !== undefined && port >= p.port && port <= (p.endPort ?? p.port);
        const np2 = this.endpointOf(dstIp)?.namedPorts?.get(p.port);
        return !!np2 && np2.protocol.toUpperCase() === protocol && np2.port === port;
      });
    return peerOk && portOk;
  }

  private static selects(namespaceSelector: string | undefined, selector: string | undefined, ep: CalicoEndpoint): boolean {
    if (namespaceSelector !== undefined && (ep.kind !== 'pod' || !parseSelector(namespaceSelector)(ep.namespaceLabels ?? {}))) return false;
    return selector === undefined || parseSelector(selector)(CalicoModel.view(ep));
  }

  /** Whether an address matches the selector part of an entity (endpoints with that IP, network sets holding it). */
  private selectorMatches(namespaceSelector: string | undefined, selector: string, ip: string): boolean {
    const ep = this.endpointOf(ip);
    if (ep && CalicoModel.selects(namespaceSelector, selector, ep)) return true;
    if (namespaceSelector !== undefined) return false;
    const sel = parseSelector(selector);
    return this.sets.some((s) => s.nets.some((n) => inCidr(ip, n)) && sel(s.labels));
  }

  private entityMatches(e: Entity | undefined, ip: string, port: number | undefined, protocol: string, destination: boolean): boolean {
    if (!e) return true;
    if (e.nets && !e.nets.some((n) => inCidr(ip, n))) return false;
    if (e.notNets && e.notNets.some((n) => inCidr(ip, n))) return false;
    if ((e.selector !== undefined || e.namespaceSelector !== undefined) && !this.selectorMatches(e.namespaceSelector, e.selector ?? 'all()', ip)) return false;
    if (e.notSelector !== undefined && this.selectorMatches(undefined, e.notSelector, ip)) return false;
    if (e.ports) {
      if (!destination) throw new Error('source ports are not covered by this evaluator');
      const ok = e.ports.some((p) => {
        if (typeof p === 'number') return port === p;
        const m = /^(\d+):(\d+)$/.exec(p);
        if (m) return port !== undefined && port >= Number(m[1]) && port <= Number(m[2]);
        // A named port matches the endpoints (of the entity's selector) that declare it, at its number.
        const np = this.endpointOf(ip)?.namedPorts?.get(p);
        return !!np && np.protocol.toUpperCase() === protocol && np.port === port;
      });
      if (!ok) return false;
    }
    return true;
  }

  /** Calico's verdict for one endpoint and direction: `local` is the endpoint, `peer` the other address. */
  verdict(local: CalicoEndpoint, dir: 'ingress' | 'egress', peer: string, protocol: string, port: number | undefined): 'allow' | 'deny' {
    const type = dir === 'ingress' ? 'Ingress' : 'Egress';
    const [src, dst] = dir === 'ingress' ? [peer, local.ip] : [local.ip, peer];
    const proto = protocol.toUpperCase();
    for (const tier of this.tiers) {
      const applying = this.policies.filter((p) => p.tier === tier.name && p.types.includes(type) && CalicoModel.appliesTo(p, local));
      if (applying.length === 0) continue; // a tier without a policy for the endpoint is skipped
      let passed = false;
      for (const p of applying) {
        if (p.np) {
          if (((dir === 'ingress' ? p.np.ingress : p.np.egress) ?? []).some((r) => this.npRuleMatches(p.np!, r, peer, dst, proto, port, dir))) return 'allow';
          continue;
        }
        const rule = (dir === 'ingress' ? p.ingress : p.egress)?.find(
          (r) => (r.protocol === undefined || r.protocol.toUpperCase() === proto) && this.entityMatches(r.source, src, port, proto, false) && this.entityMatches(r.destination, dst, port, proto, true),
        );
        if (!rule || p.staged) continue; // staged policies are counted, never enforced
        if (rule.action === 'Allow') return 'allow';
        if (rule.action === 'Deny') return 'deny';
        if (rule.action === 'Pass') {
          passed = true;
          break;
        }
        throw new Error(`action ${rule.action} is not covered by this evaluator`);
      }
      if (!passed && applying.some((p) => !p.staged) && tier.defaultAction !== 'Pass') return 'deny';
    }
    return local.kind === 'pod' ? 'allow' : 'deny'; // the namespace profile allows; a HostEndpoint has none
  }
}
