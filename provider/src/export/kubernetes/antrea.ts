import type { World } from '../../engine';
import { formatIp, parseCidr, parseRange } from '../../engine/ip';
import { cidrsMayOverlap, podSelsMayOverlap, servicesMayOverlap } from './antrea-overlap';
import { externalIngressPolicies, nodeSources, type ExternalIngressRule } from './external-ingress';
import type { KubernetesExport, Refusal } from './flavor';
import { clusterNetworkPolicyManifests } from './networkpolicy';
import { orderedPolicyRules, type Category, type OrderedPolicy, type RuleSpec } from './policy-rules';
import { intersect, isEmptySelector, nameAllocator, Refused, selectorsFor, type Peer, type PodSel, type Selection, type Service } from './selection';

/**
 * Flavor `antrea` of the export (pure): Antrea-native objects of group `crd.antrea.io/v1beta1`
 * (ClusterNetworkPolicy, ClusterGroup, Egress, ExternalIPPool) and the cluster's NetworkPolicies.
 *
 * Tiers: the categories go to Antrea's static tiers, which every Antrea cluster has, read-only and in the
 * same order as microseg's layers (emergency → securityops → platform → application → K8s NetworkPolicy →
 * baseline); no Tier object is created (custom tiers must sit below priority 250, so they could not
 * hold baseline, and their priorities are unique and immutable cluster-wide, so ours could collide).
 * One ClusterNetworkPolicy per policy, priority 1, 2, … in evaluation order inside its tier; its rules
 * keep their order in `ingress` and `egress` (ingress and egress are evaluated on different sides, so
 * splitting an inout rule keeps the order of each side). Each rule carries its own appliedTo: the rule's
 * effective appliedTo ∩ its destinations (ingress) or sources (egress).
 *
 * SecurityGroups used as peers become ClusterGroups (one level of childGroups where a group unites
 * several selectors or IP blocks); VMs and egress IPs become ipBlocks (/32, /128) as the pods see them;
 * IP blocks keep their `except`; negated IP peers become the whole address family with them as `except`
 * (negated pod selectors are refused). EgressIps become Egress objects (with an ExternalIPPool for a pool). `pass` from application is Antrea's
 * Pass (K8s NetworkPolicies, then baseline, as in microseg); from emergency, infrastructure or
 * environment it is exported only where no application rule can match the same flows (an Antrea Pass
 * skips the application tier too); in baseline it is the default rule's action (Antrea rejects Pass
 * there, microseg goes on to the default rule). Staged policies are refused: an Antrea-native rule
 * always decides (`enableLogging` only logs the decision), so there is no count-but-do-not-decide form.
 *
 * Antrea admits ingress from a pod's own node (kubelet probes, host-network pods) ahead of every policy,
 * as Kubernetes does: where microseg drops it the export refuses unless `podsOnly` accepts that (the same
 * check as flavor `kubernetes`, external-ingress.ts, fed with the node addresses each ingress rule matches).
 */

/** microseg category → Antrea static tier (the NetworkPolicy layer, `kubernetes`, is exported as NetworkPolicies). */
const TIERS: Record<Exclude<Category, 'kubernetes'>, string> = { emergency: 'emergency', infrastructure: 'securityops', environment: 'platform', application: 'application', baseline: 'baseline' };
const API = 'crd.antrea.io/v1beta1';
const MANAGED = { 'app.kubernetes.io/managed-by': 'microseg' };
/** Antrea supports 150 unique rule-level priorities in the baseline tier (docs/antrea-network-policy.md). */
const BASELINE_RULE_PRIORITIES = 150;

type Obj = Record<string, unknown>;
interface IpBlock {
  cidr: string;
  except?: string[];
}

/** IP blocks travel through the flavor-neutral selection as opaque strings `cidr!e1,e2`. */
const encodeBlock = (cidr: string, except: readonly string[] | undefined): string => (except?.length ? `${cidr}!${except.join(',')}` : cidr);

/** The block as Antrea validates it: exceptions strictly inside the CIDR; undefined when nothing is left. */
function decodeBlock(text: string): IpBlock | undefined {
  const [cidr, rest] = text.split('!') as [string, string | undefined];
  const c = parseCidr(cidr);
  const except: string[] = [];
  for (const e of rest ? rest.split(',') : []) {
    const x = parseCidr(e);
    if (!c || !x || x.v !== c.v || !cidrsMayOverlap(cidr, e)) continue; // excludes nothing of the block
    if (x.lo <= c.lo && x.hi >= c.hi) return undefined; // excludes the whole block
    except.push(x.s);
  }
  return { cidr: c ? c.s : cidr, ...(except.length ? { except } : {}) };
}

const selectorObject = (p: PodSel): Obj =>
  isEmptySelector(p.podSelector) ? { namespaceSelector: p.namespaceSelector } : { podSelector: p.podSelector, ...(isEmptySelector(p.namespaceSelector) ? {} : { namespaceSelector: p.namespaceSelector }) };

export function antreaExport(world: World, options: { cluster: string; podsOnly?: boolean }): KubernetesExport {
  const { cluster } = options;
  const refusals: Refusal[] = [];
  const clusterSpec = world.get('KubernetesCluster', cluster);
  if (!clusterSpec) return { manifests: [], refusals: [{ construct: `cluster ${cluster}`, reason: 'no such KubernetesCluster' }] };
  const podFamily = parseCidr(clusterSpec.podCidr)?.v ?? 4;
  const sel = selectorsFor(world, cluster, { api: 'Antrea', blockCidrs: (cidr, except) => [encodeBlock(cidr, except)] });

  // ClusterGroups, created on first use; children before parents (a parent needs them to exist).
  const groupName = nameAllocator();
  const groups = new Map<string, string | undefined>();
  const groupObjects: Obj[] = [];
  const clusterGroup = (name: string, spec: Obj): Obj => ({ apiVersion: API, kind: 'ClusterGroup', metadata: { name, labels: MANAGED }, spec });
  /** The ClusterGroup of a SecurityGroup, or undefined when the group holds nothing in this cluster. */
  const groupRef = (g: string): string | undefined => {
    if (groups.has(g)) return groups.get(g);
    const s = sel.group(g);
    const blocks = s.cidrs.map(decodeBlock).filter((b): b is IpBlock => !!b);
    const leaves: Obj[] = [...s.pods.map(selectorObject), ...(blocks.length ? [{ ipBlocks: blocks }] : [])];
    let ref: string | undefined;
    if (leaves.length === 1) groupObjects.push(clusterGroup((ref = groupName(g)), leaves[0]!));
    else if (leaves.length > 1) {
      ref = groupName(g);
      const children = leaves.map((leaf, i) => {
        const child = groupName(`${ref}-${'ipBlocks' in leaf ? 'ips' : `pods-${i}`}`);
        groupObjects.push(clusterGroup(child, leaf));
        return child;
      });
      groupObjects.push(clusterGroup(ref, { childGroups: children }));
    }
    groups.set(g, ref);
    return ref;
  };

  /** Antrea peers for a microseg peer list: undefined = every peer; [] = nothing matches. */
  const antreaPeers = (list: readonly Peer[] | undefined): Obj[] | undefined => {
    if (!list?.length) return undefined;
    sel.peers(list); // refusals (workloads, pods of other clusters) before anything is created
    const out: Obj[] = [];
    for (const p of list) {
      if (p.group !== undefined) {
        const ref = groupRef(p.group);
        if (ref) out.push({ group: ref });
        continue;
      }
      const s = sel.peers([p]);
      out.push(...s.pods.map(selectorObject));
      for (const c of s.cidrs) {
        const b = decodeBlock(c);
        if (b) out.push({ ipBlock: b });
      }
    }
    return out;
  };

  /**
   * The peers NOT in a list, where the list holds IP peers only (VMs, IP blocks, egress IPs): per address
   * family, the whole family with those CIDRs as `except` (pods are matched by address, as in microseg).
   */
  const complementPeers = (list: readonly Peer[]): Obj[] => {
    const s = sel.peers(list);
    if (s.pods.length) throw new Refused('negated peers select pods: Antrea-native peers cannot negate a label selector (only IP peers can be negated, as ipBlock except)');
    if (s.cidrs.some((c) => c.includes('!'))) throw new Refused('negated IP blocks with except: their complement is no single ipBlock with except');
    const out: Obj[] = [];
    for (const [all, v] of [['0.0.0.0/0', 4], ['::/0', 6]] as const) {
      const except = [...new Set(s.cidrs.map((c) => parseCidr(c)).filter((c) => c?.v === v).map((c) => c!.s))];
      if (except.some((c) => c === all)) continue; // the family is excluded whole
      out.push({ ipBlock: { cidr: all, ...(except.length ? { except } : {}) } });
    }
    return out;
  };

  /** ports/protocols of a rule: {} = every flow; undefined = no flow of this cluster's pods. */
  const antreaServices = (services: readonly Service[] | undefined): { ports?: Obj[]; protocols?: Obj[] } | undefined => {
    if (!services?.length) return {};
    const ports: Obj[] = [];
    const protocols: Obj[] = [];
    for (const s of services) {
      if (s.protocol === 'icmp' || s.protocol === 'icmpv6') {
        // Antrea's icmp is ICMPv6 for IPv6 peers; this cluster's pods have addresses of one family only.
        if ((s.protocol === 'icmp') !== (podFamily === 4)) continue;
        protocols.push({ icmp: { ...(s.icmpType !== undefined ? { icmpType: s.icmpType } : {}), ...(s.icmpCode !== undefined ? { icmpCode: s.icmpCode } : {}) } });
        continue;
      }
      if (s.protocol === 'any' && !s.ports?.length) return {};
      const protos = s.protocol === 'any' ? ['TCP', 'UDP', 'SCTP'] : [s.protocol.toUpperCase()];
      if (!s.ports?.length) {
        ports.push({ protocol: protos[0] });
        continue;
      }
      for (const port of s.ports) {
        const m = typeof port === 'string' ? /^(\d+)-(\d+)$/.exec(port) : null;
        const range = m ? (Number(m[1]) === Number(m[2]) ? { port: Number(m[1]) } : { port: Number(m[1]), endPort: Number(m[2]) }) : { port: typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port };
        for (const protocol of protos) ports.push({ protocol, ...range });
      }
    }
    if (!ports.length && !protocols.length) return undefined;
    return { ...(ports.length ? { ports } : {}), ...(protocols.length ? { protocols } : {}) };
  };

  const policyAppliedTo = (p: OrderedPolicy): PodSel[] => (p.quarantine ? [{ namespaceSelector: {}, podSelector: p.quarantineSelector ?? {} }] : sel.appliedTo(p.appliedTo));

  /** Where (subjects) and with whom (peers) a rule matches in one direction; undefined when nowhere. */
  interface Side {
    readonly dir: 'ingress' | 'egress';
    readonly subjects: PodSel[];
    readonly peers: Selection;
    /** The rule's peers on this side are negated (sourcesExcluded for ingress, destinationsExcluded for egress). */
    readonly peersNegated: boolean;
  }
  const sides = (p: OrderedPolicy, r: RuleSpec): Side[] => {
    const applied = intersect(policyAppliedTo(p), sel.appliedTo(r.appliedTo));
    const out: Side[] = [];
    for (const dir of ['ingress', 'egress'] as const) {
      if ((dir === 'ingress' && r.direction === 'out') || (dir === 'egress' && r.direction === 'in')) continue;
      const ownField = dir === 'ingress' ? 'destinations' : 'sources';
      const own = sel.peers(r[ownField]);
      const ownNegated = dir === 'ingress' ? r.destinationsExcluded : r.sourcesExcluded;
      if (ownNegated && own.any) continue; // "not anything": no endpoint
      if (ownNegated && own.pods.length) throw new Refused(`negated ${ownField} select pods: an Antrea appliedTo cannot negate a label selector (only IP peers can be negated)`);
      // An in rule applies where the destination is one of its destinations (by IP too): IP peers that
      // could hold pod IPs of this cluster cannot become a label appliedTo.
      if (!own.any && own.cidrs.some((c) => cidrsMayOverlap(c.split('!')[0]!, clusterSpec.podCidr)))
        throw new Refused(`${ownField} hold IP blocks overlapping the pod CIDR ${clusterSpec.podCidr}: the rule would apply to pods by address, which an Antrea appliedTo cannot select`);
      // Negated IP peers outside the pod CIDR exclude no pod: the rule applies to all of applied.
      const subjects = ownNegated ? applied : intersect(applied, own.pods);
      const peerNegated = dir === 'ingress' ? r.sourcesExcluded : r.destinationsExcluded;
      const peers = sel.peers(dir === 'ingress' ? r.sources : r.destinations);
      if (peerNegated && peers.any) continue;
      // A negated peer list is everything but IP blocks: for the overlap tests, "anything".
      if (subjects.length) out.push({ dir, subjects, peers: peerNegated ? { any: true, pods: [], cidrs: [] } : peers, peersNegated: peerNegated });
    }
    return out;
  };
  const peersMayOverlap = (a: Selection, b: Selection): boolean => {
    if (a.any || b.any) return true;
    if (podSelsMayOverlap(a.pods, b.pods)) return true;
    const ca = a.cidrs.map((c) => c.split('!')[0]!);
    const cb = b.cidrs.map((c) => c.split('!')[0]!);
    const podCidr = clusterSpec.podCidr;
    return ca.some((x) => cb.some((y) => cidrsMayOverlap(x, y))) || (a.pods.length > 0 && cb.some((y) => cidrsMayOverlap(y, podCidr))) || (b.pods.length > 0 && ca.some((x) => cidrsMayOverlap(x, podCidr)));
  };

  const ordered = orderedPolicyRules(world);
  // The application rules a pass from an earlier category must not skip (an Antrea Pass skips them).
  const applicationSides: { construct: string; side: Side; services: readonly Service[] | undefined }[] = [];
  for (const p of ordered.filter((x) => x.category === 'application' && !x.staged))
    for (const r of p.rules.filter((x) => !x.disabled)) {
      try {
        for (const side of sides(p, r)) applicationSides.push({ construct: `${p.name}/${r.name}`, side, services: r.services });
      } catch (err) {
        if (!(err instanceof Refused)) throw err; // refused on its own below
      }
    }

  // Ingress rules in evaluation order with the node addresses their sources match, for the node check.
  const nodeIps = clusterSpec.nodes.map((n) => n.ip);
  const nodeRules: ExternalIngressRule[] = [];

  const policyName = nameAllocator();
  const priorities: Record<string, number> = {};
  const policies: Obj[] = [];
  let baselineRulePriorities = 0;
  const acnp = (name: string, tier: string, ingress: Obj[], egress: Obj[]): Obj | undefined => {
    const priority = (priorities[tier] ?? 0) + 1;
    if (priority > 10000) throw new Refused(`more than 10000 policies in tier ${tier}: Antrea policy priorities are 1-10000`);
    if (tier === 'baseline') {
      baselineRulePriorities += Math.max(ingress.length, egress.length);
      if (baselineRulePriorities > BASELINE_RULE_PRIORITIES) throw new Refused(`more than ${BASELINE_RULE_PRIORITIES} rule priorities in tier baseline: Antrea supports ${BASELINE_RULE_PRIORITIES} there`);
    }
    priorities[tier] = priority;
    return { apiVersion: API, kind: 'ClusterNetworkPolicy', metadata: { name: policyName(name), labels: MANAGED }, spec: { tier, priority, ...(ingress.length ? { ingress } : {}), ...(egress.length ? { egress } : {}) } };
  };

  for (const p of ordered) {
    const kind = p.quarantine ? 'QuarantinePolicy' : 'FirewallPolicy';
    if (p.staged) {
      refusals.push({ construct: `${kind} ${p.name}: enforcement staged`, reason: 'an Antrea-native rule always decides (enableLogging only logs its decision): there is no audit-only form that keeps the verdicts' });
      continue;
    }
    if (p.category === 'kubernetes') continue;
    const tier = TIERS[p.category];
    const ingress: Obj[] = [];
    const egress: Obj[] = [];
    const ruleName = nameAllocator();
    for (const r of p.rules) {
      if (r.disabled) continue;
      const construct = `${kind} ${p.name}/${r.name}`;
      try {
        const rules = sides(p, r);
        let action: string = { allow: 'Allow', drop: 'Drop', reject: 'Reject', pass: 'Pass' }[r.action];
        if (r.action === 'pass' && p.category === 'baseline') action = world.defaultAction === 'allow' ? 'Allow' : 'Drop'; // microseg: on to the default rule
        else if (r.action === 'pass' && p.category !== 'application')
          for (const side of rules) {
            const hit = applicationSides.find((a) => a.side.dir === side.dir && podSelsMayOverlap(a.side.subjects, side.subjects) && peersMayOverlap(a.side.peers, side.peers) && servicesMayOverlap(a.services, r.services));
            if (hit)
              throw new Refused(
                `pass in ${p.category}: microseg continues at the application category, an Antrea Pass skips every tier down to the K8s NetworkPolicies, and application rule ${hit.construct} may match the same ${side.dir} flows`,
              );
          }
        const services = antreaServices(r.services);
        if (!services) continue; // no flow of this cluster's pods matches the rule
        for (const side of rules) {
          const list = side.dir === 'ingress' ? r.sources : r.destinations;
          const peers = side.peersNegated ? complementPeers(list!) : antreaPeers(list);
          if (peers && peers.length === 0) continue; // the peers hold nothing: the rule matches no flow
          const name = ruleName(r.direction === 'inout' ? `${r.name}-${side.dir === 'ingress' ? 'in' : 'out'}` : r.name!);
          const rule: Obj = {
            name,
            action,
            appliedTo: subjectsAppliedTo(p, r, side),
            ...(peers ? { [side.dir === 'ingress' ? 'from' : 'to']: peers } : {}),
            ...structuredClone(services), // one copy per rule: shared objects would print as YAML anchors
            ...(r.logged ? { enableLogging: true } : {}),
          };
          (side.dir === 'ingress' ? ingress : egress).push(rule);
          if (side.dir === 'ingress') {
            const cidrs = nodeSources(side.peersNegated ? sel.peers(list) : side.peers, side.peersNegated, nodeIps);
            if (cidrs.length) nodeRules.push({ construct, category: p.category, action: r.action === 'reject' ? 'drop' : r.action, subjects: side.subjects, cidrs, services: r.services });
          }
        }
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        refusals.push({ construct, reason: err.reason });
      }
    }
    if (!ingress.length && !egress.length) continue;
    try {
      policies.push(acnp(p.name, tier, ingress, egress)!);
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      refusals.push({ construct: `${kind} ${p.name}`, reason: err.reason });
    }
  }

  /** appliedTo of one rule side: the ClusterGroup when the subjects are exactly one pod-only group, else selectors. */
  function subjectsAppliedTo(p: OrderedPolicy, r: RuleSpec, side: Side): Obj[] {
    const own = side.dir === 'ingress' ? r.destinations : r.sources;
    // The groups whose intersection the subjects are ('-' for anything else); one group, possibly repeated, is referenced.
    const candidates = new Set([...(p.quarantine ? ['-'] : (p.appliedTo ?? [])), ...(r.appliedTo ?? []), ...(own ?? []).map((x) => (x.group !== undefined ? x.group : '-'))]);
    if (candidates.size === 1 && !candidates.has('-')) {
      const [only] = candidates;
      const g = sel.group(only!);
      if (g.cidrs.length === 0 && g.pods.length > 0) {
        const ref = groupRef(only!);
        if (ref) return [{ group: ref }];
      }
    }
    return side.subjects.map(selectorObject);
  }

  if (world.defaultAction === 'drop') {
    try {
      const all = [{ namespaceSelector: {} }];
      policies.push(acnp('microseg-default-deny', 'baseline', [{ name: 'default-in', action: 'Drop', appliedTo: all }], [{ name: 'default-out', action: 'Drop', appliedTo: all }])!);
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      refusals.push({ construct: 'default rule: drop', reason: err.reason });
    }
  }

  // EgressIps as Egress objects. Antrea picks an Egress at random for a pod several select, microseg
  // the first by name: EgressIps that may select one pod are refused.
  const egresses: Obj[] = [];
  const egressName = nameAllocator();
  // An EgressIp allocated from a pool: its pool as an ExternalIPPool (one per distinct pool), so Antrea
  // assigns the address to a node and moves it on failure. The whole range, as start-end: a CIDR ipRange
  // would lose its first (and, IPv4, last) address, which microseg may have allocated.
  const ipPools = new Map<string, Obj>();
  const ipPool = (pool: string): string | undefined => {
    const r = parseRange(pool);
    if (!r) return undefined;
    if (!ipPools.has(pool))
      ipPools.set(pool, {
        apiVersion: API,
        kind: 'ExternalIPPool',
        metadata: { name: egressName(`microseg-pool-${pool}`), labels: MANAGED },
        spec: { ipRanges: [{ start: formatIp(r.v, r.lo), end: formatIp(r.v, r.hi) }], nodeSelector: {} },
      });
    return (ipPools.get(pool)!.metadata as { name: string }).name;
  };
  const egressSels: { name: string; sel: PodSel }[] = [];
  for (const name of world.names('EgressIp').sort()) {
    const e = world.get('EgressIp', name)!;
    if (e.cluster !== cluster) continue;
    const construct = `EgressIp ${name}`;
    const ip = world.outputsOf('EgressIp', name).allocatedIp ?? e.ip;
    const podSel = sel.podSelOf({ ...e.podSelector, cluster });
    if (typeof ip !== 'string' || !ip || !podSel) {
      refusals.push({ construct, reason: 'no egress IP allocated yet' });
      continue;
    }
    const clash = egressSels.find((x) => podSelsMayOverlap([x.sel], [podSel]));
    if (clash) {
      refusals.push({ construct, reason: `it may select pods that EgressIp ${clash.name} selects too: microseg applies the first by name, Antrea picks one of several Egresses at random` });
      continue;
    }
    egressSels.push({ name, sel: podSel });
    const pool = e.ip === undefined && e.pool !== undefined ? ipPool(e.pool) : undefined;
    egresses.push({
      apiVersion: API,
      kind: 'Egress',
      metadata: { name: egressName(name), labels: MANAGED },
      spec: { appliedTo: { podSelector: podSel.podSelector, ...(isEmptySelector(podSel.namespaceSelector) ? {} : { namespaceSelector: podSel.namespaceSelector }) }, egressIP: ip, ...(pool ? { externalIPPool: pool } : {}) },
    });
  }

  const nps = clusterNetworkPolicyManifests(world, cluster).map((np) => np as unknown as Obj);
  if (!options.podsOnly) {
    const nodes = externalIngressPolicies(world, {
      cluster,
      rules: nodeRules,
      podBaseline: [],
      podsOnly: false,
      nodesOnly: true,
      nodeAdmission: "Antrea admits traffic from a pod's own node (kubelet probes, host-network pods) ahead of every policy",
    });
    refusals.push(...nodes.refusals);
  }
  return { manifests: [...groupObjects, ...ipPools.values(), ...egresses, ...policies, ...nps], refusals };
}
