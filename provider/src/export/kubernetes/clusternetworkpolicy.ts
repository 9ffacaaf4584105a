import type { World } from '../../engine';
import { externalIngressPolicies, type ExternalIngressRule, type PodBaselineRule } from './external-ingress';
import type { KubernetesExport, Refusal } from './flavor';
import { clusterNetworkPolicyManifests } from './networkpolicy';
import { orderedPolicyRules } from './policy-rules';
import { ALL_PODS, intersect, isEmptySelector, nameAllocator, overlaps, Refused, selectorsFor, type Peer, type PodSel, type Selection, type Service } from './selection';

/**
 * Flavor `kubernetes` of the export (pure):
 * ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`, standard channel) and NetworkPolicy.
 *
 * Mapping: emergency, infrastructure, environment and application → tier Admin; baseline and the default
 * rule → tier Baseline; KubernetesNetworkPolicies → NetworkPolicy objects (the layer between the tiers,
 * as in microseg). Each rule and direction becomes one ClusterNetworkPolicy whose subject is the rule's
 * effective appliedTo ∩ its destinations (ingress) or sources (egress), with a priority that keeps the
 * evaluation order (a rule's priority is its position in the tier; equal priorities are never needed).
 *
 * Ingress from sources outside the pod CIDR (VMs, IP blocks, any source) has no standard ClusterNetworkPolicy
 * peer, so no Admin or Baseline rule matches it and Kubernetes decides it in the NetworkPolicy layer alone:
 * external-ingress.ts writes NetworkPolicies that isolate the pods microseg does not open to everything and
 * admit exactly what microseg admits, or refuses where isolation would change a pod-sourced verdict.
 *
 * What the standard ClusterNetworkPolicy cannot express is refused with the construct and the reason,
 * never exported with a different verdict: reject, staged policies, negated peers, ICMP, ingress sources
 * that are IP blocks overlapping the pod CIDR, peers in other clusters, static workload members, a pass
 * from emergency, infrastructure or environment while application rules exist (microseg continues at
 * application, a ClusterNetworkPolicy Pass skips the whole Admin tier), a pass in baseline with a dropping
 * default rule, more than 1001 priorities per tier. Ingress from a pod's own node, which Kubernetes always
 * admits, is refused where microseg drops it unless `podsOnly` accepts that.
 */
export function clusterNetworkPolicyExport(world: World, options: { cluster: string; podsOnly?: boolean }): KubernetesExport {
  const { cluster } = options;
  const refusals: Refusal[] = [];
  const manifests: Record<string, unknown>[] = [];
  const clusterSpec = world.get('KubernetesCluster', cluster);
  if (!clusterSpec) return { manifests, refusals: [{ construct: `cluster ${cluster}`, reason: 'no such KubernetesCluster' }] };

  const sel = selectorsFor(world, cluster, { api: 'ClusterNetworkPolicy' });
  const protocols = (services: readonly Service[] | undefined): Record<string, unknown>[] | undefined => {
    if (!services?.length) return undefined;
    const out: Record<string, unknown>[] = [];
    for (const s of services) {
      if (s.protocol === 'icmp' || s.protocol === 'icmpv6') throw new Refused(`protocol ${s.protocol}: ClusterNetworkPolicy matches TCP, UDP and SCTP ports only`);
      const protos = s.protocol === 'any' ? ['tcp', 'udp', 'sctp'] : [s.protocol];
      if (!s.ports?.length) {
        if (s.protocol === 'any') return undefined; // every protocol and port: no protocols field
        out.push({ [s.protocol]: { destinationPort: { range: { start: 1, end: 65535 } } } });
        continue;
      }
      for (const port of s.ports) {
        const m = typeof port === 'string' ? /^(\d+)-(\d+)$/.exec(port) : null;
        const num = typeof port === 'number' ? port : /^\d+$/.test(port) ? Number(port) : undefined;
        if (num === undefined && !m) {
          out.push({ destinationNamedPort: port });
          continue;
        }
        const dp = m ? (Number(m[1]) === Number(m[2]) ? { number: Number(m[1]) } : { range: { start: Number(m[1]), end: Number(m[2]) } }) : { number: num };
        for (const p of protos) out.push({ [p]: { destinationPort: dp } });
      }
    }
    if (out.length > 25) throw new Refused(`${out.length} port entries: a ClusterNetworkPolicy rule holds at most 25`);
    return out;
  };
  const cnpName = nameAllocator();
  const cnp = (name: string, tier: 'Admin' | 'Baseline', priority: number, subject: PodSel, dir: 'ingress' | 'egress', rule: Record<string, unknown>): Record<string, unknown> => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name: cnpName(name), labels: { 'app.kubernetes.io/managed-by': 'microseg' } },
    spec: {
      tier,
      priority,
      subject: isEmptySelector(subject.namespaceSelector) && isEmptySelector(subject.podSelector) ? { namespaces: {} } : { pods: { namespaceSelector: subject.namespaceSelector, podSelector: subject.podSelector } },
      [dir]: [rule],
    },
  });
  const peerList = (sel: Selection, dir: 'ingress' | 'egress', construct: string): Record<string, unknown>[] => {
    // Ingress: the pod part only (sources outside the pod CIDR go to external-ingress.ts).
    if (dir === 'ingress' && sel.any) return [{ namespaces: {} }];
    const out: Record<string, unknown>[] = sel.pods.map((p) => (isEmptySelector(p.namespaceSelector) && isEmptySelector(p.podSelector) && sel.any ? { namespaces: {} } : { pods: { namespaceSelector: p.namespaceSelector, podSelector: p.podSelector } }));
    if (dir === 'egress' && sel.any) return [{ networks: ['0.0.0.0/0', '::/0'] }];
    for (let i = 0; i < sel.cidrs.length; i += 25) out.push({ networks: [...new Set(sel.cidrs.slice(i, i + 25))] });
    if (out.length === 0) throw new Refused(`${construct} selects nothing in cluster ${cluster}`);
    if (out.length > 25) throw new Refused(`${out.length} peers: a ClusterNetworkPolicy rule holds at most 25`);
    return out;
  };

  // Rules in evaluation order, from the specs (the compiled order gives the policy order).
  // Other clusters whose pods keep their addresses when they leave (flat mode): a pod peer that names no
  // cluster selects them too in microseg.
  const flatNeighbours = world.names('KubernetesCluster').filter((n) => n !== cluster && world.get('KubernetesCluster', n)!.networkMode === 'flat');
  const ordered = orderedPolicyRules(world);
  const hasApplication = ordered.some((p) => p.category === 'application' && !p.staged && p.rules.length > 0);
  const priorities = { Admin: 0, Baseline: 0 };
  const external: ExternalIngressRule[] = [];
  const podBaseline: PodBaselineRule[] = [];
  for (const p of ordered) {
    const tier = p.category === 'baseline' ? 'Baseline' : 'Admin';
    if (p.staged) {
      refusals.push({ construct: `FirewallPolicy ${p.name}: enforcement staged`, reason: 'ClusterNetworkPolicy has no staged or audit form' });
      continue;
    }
    const rules = p.rules;
    const policyApplied: PodSel[] = p.quarantine ? [{ namespaceSelector: {}, podSelector: p.quarantineSelector ?? {} }] : sel.appliedTo(p.appliedTo);
    for (const r of rules) {
      if (r.disabled) continue;
      const construct = `${p.quarantine ? 'QuarantinePolicy' : 'FirewallPolicy'} ${p.name}/${r.name}`;
      try {
        if (r.action === 'reject') throw new Refused('action reject: ClusterNetworkPolicy actions are Accept, Deny and Pass');
        if (r.sourcesExcluded || r.destinationsExcluded) throw new Refused('negated peers (sourcesExcluded/destinationsExcluded) have no ClusterNetworkPolicy form');
        if (r.action === 'pass' && tier === 'Admin' && p.category !== 'application' && hasApplication)
          throw new Refused(`pass in ${p.category}: microseg continues at the application category, a ClusterNetworkPolicy Pass skips the rest of the Admin tier (where application rules are)`);
        if (r.action === 'pass' && tier === 'Baseline' && world.defaultAction === 'drop') throw new Refused('pass in baseline with a dropping default rule: a ClusterNetworkPolicy Pass there ends in the Kubernetes default (allow)');
        const applied = intersect(policyApplied, sel.appliedTo(r.appliedTo));
        const action = r.action === 'allow' ? 'Accept' : r.action === 'drop' ? 'Deny' : 'Pass';
        const protos = protocols(r.services);
        const out: Record<string, unknown>[] = [];
        const priority = priorities[tier];
        for (const dir of ['ingress', 'egress'] as const) {
          if ((dir === 'ingress' && r.direction === 'out') || (dir === 'egress' && r.direction === 'in')) continue;
          const own = sel.peers(dir === 'ingress' ? r.destinations : r.sources);
          // An in rule applies where the destination is one of its destinations (by IP too): IP peers that
          // could hold pod IPs of this cluster cannot become a label subject.
          const podCidr = clusterSpec.podCidr;
          if (!own.any && own.cidrs.some((c) => overlaps(c, podCidr))) throw new Refused(`${dir === 'ingress' ? 'destinations' : 'sources'} hold IP blocks overlapping the pod CIDR ${podCidr}: the rule would apply to pods by address, which a ClusterNetworkPolicy subject cannot select`);
          const subjects = intersect(applied, own.pods);
          if (subjects.length === 0) continue;
          let peerSel = sel.peers(dir === 'ingress' ? r.sources : r.destinations);
          const unpinned = flatNeighbours.length && !peerSel.any && peerSel.pods.length ? unpinnedPodPeer(world, dir === 'ingress' ? r.sources : r.destinations) : undefined;
          if (unpinned)
            throw new Refused(`${unpinned} selects pods without naming a cluster, and the pods of ${flatNeighbours.join(', ')} (flat mode) reach this cluster with their own addresses: microseg matches them by labels, Kubernetes peers select this cluster's pods only (name the cluster in the selector)`);
          if (dir === 'ingress') {
            // No standard ingress peer selects an address: sources outside the pod CIDR are realized by
            // NetworkPolicies (external-ingress.ts); sources inside it would be pods matched by address.
            if (!peerSel.any && peerSel.cidrs.some((c) => overlaps(c, podCidr))) throw new Refused(`sources hold IP blocks overlapping the pod CIDR ${podCidr}: ClusterNetworkPolicy ingress peers cannot select pods by address`);
            const outside = peerSel.any ? ['0.0.0.0/0', '::/0'] : peerSel.cidrs;
            if (outside.length) external.push({ construct, category: p.category, action: r.action, subjects, cidrs: outside, services: r.services });
            const everyPod = peerSel.any || (!r.services?.length && peerSel.pods.some((x) => isEmptySelector(x.namespaceSelector) && isEmptySelector(x.podSelector)));
            if (tier === 'Baseline' && peerSel.pods.length) podBaseline.push({ construct, subjects, action: r.action, everyPod: everyPod && !r.services?.length });
            if (!peerSel.pods.length) continue;
            peerSel = { any: peerSel.any, pods: peerSel.pods, cidrs: [] };
          }
          const peers = peerList(peerSel, dir, construct);
          const rule = { name: r.name!.slice(0, 100), action, [dir === 'ingress' ? 'from' : 'to']: peers, ...(protos ? { protocols: protos } : {}) };
          subjects.forEach((s, k) => out.push(cnp(`${p.name}-${r.name}-${dir}${subjects.length > 1 ? `-${k}` : ''}`, tier, priority, s, dir, rule)));
        }
        if (out.length === 0) continue;
        if (priority > 1000) throw new Refused(`more than 1001 ordered rules in tier ${tier}: ClusterNetworkPolicy priorities are 0-1000`);
        priorities[tier]++;
        manifests.push(...out);
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        refusals.push({ construct, reason: err.reason });
      }
    }
  }
  if (world.defaultAction === 'drop') {
    // Pod sources and every destination here; sources outside the cluster by the NetworkPolicies below.
    const construct = 'default rule: drop';
    if (priorities.Baseline > 1000) refusals.push({ construct, reason: 'more than 1001 ordered rules in tier Baseline' });
    else {
      manifests.push(cnp('microseg-default-deny-ingress', 'Baseline', priorities.Baseline, ALL_PODS, 'ingress', { name: 'default', action: 'Deny', from: [{ namespaces: {} }] }));
      manifests.push(cnp('microseg-default-deny-egress', 'Baseline', priorities.Baseline, ALL_PODS, 'egress', { name: 'default', action: 'Deny', to: [{ networks: ['0.0.0.0/0', '::/0'] }] }));
    }
  }
  manifests.push(...(clusterNetworkPolicyManifests(world, cluster) as unknown as Record<string, unknown>[]));
  const outside = externalIngressPolicies(world, { cluster, rules: external, podBaseline, podsOnly: options.podsOnly ?? false });
  manifests.push(...outside.manifests);
  refusals.push(...outside.refusals);
  return { manifests, refusals };
}

/** The first pod selector among the peers (through groups and PodSelector refs) that names no cluster. */
function unpinnedPodPeer(world: World, peers: readonly Peer[] | undefined): string | undefined {
  const inGroup = (name: string, seen: Set<string>): string | undefined => {
    const g = world.get('SecurityGroup', name);
    if (!g || seen.has(name)) return undefined;
    seen.add(name);
    if ((g.podSelectors ?? []).some((s) => s.cluster === undefined)) return `group ${name}`;
    for (const ref of g.podSelectorRefs ?? []) if (world.get('PodSelector', ref)?.cluster === undefined) return `PodSelector ${ref}`;
    for (const c of g.groups ?? []) {
      const found = inGroup(c, seen);
      if (found) return found;
    }
    return undefined;
  };
  for (const p of peers ?? []) {
    if (p.group !== undefined) {
      const found = inGroup(p.group, new Set());
      if (found) return found;
    } else if (p.podSelector && p.podSelector.cluster === undefined) return 'a pod selector peer';
    else if (p.podSelectorRef !== undefined && world.get('PodSelector', p.podSelectorRef)?.cluster === undefined) return `PodSelector ${p.podSelectorRef}`;
  }
  return undefined;
}
