import type { World } from '../../engine';
import type { KubernetesExport, Refusal } from './flavor';
import { networkPolicyManifest, type NetworkPolicyManifest } from './networkpolicy';
import { orderedPolicyRules } from './policy-rules';
import { ALL_PODS, intersect, isEmptySelector, nameAllocator, overlaps, Refused, selectorsFor, type PodSel, type Selection, type Service } from './selection';

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
 * What the standard ClusterNetworkPolicy cannot express is refused with the construct and the reason,
 * never exported with a different verdict: reject, staged policies, negated peers, ICMP, ingress from
 * IP blocks and VMs, peers in other clusters, static workload members, a pass from emergency,
 * infrastructure or environment while application rules exist (microseg continues at application, a
 * ClusterNetworkPolicy Pass skips the whole Admin tier), a pass in baseline with a dropping default rule,
 * more than 1001 priorities per tier. Ingress from "any source" (and the default rule's drop) needs
 * `podsOnly`: standard ingress peers select pods only, so traffic from outside the cluster would not be
 * matched; with `podsOnly` the export says so and selects every pod.
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
    if (dir === 'ingress') {
      if (sel.any) {
        if (!options.podsOnly) throw new Refused('ingress from any source: ClusterNetworkPolicy ingress peers select pods only, so traffic from outside the cluster would not be matched (accept that with --pods-only)');
        return [{ namespaces: {} }];
      }
      if (sel.cidrs.length) throw new Refused(`ingress from IP addresses (${sel.cidrs.slice(0, 3).join(', ')}${sel.cidrs.length > 3 ? ', ...' : ''}): ClusterNetworkPolicy v1alpha2 (standard) has no networks peer for ingress`);
    }
    const out: Record<string, unknown>[] = sel.pods.map((p) => (isEmptySelector(p.namespaceSelector) && isEmptySelector(p.podSelector) && sel.any ? { namespaces: {} } : { pods: { namespaceSelector: p.namespaceSelector, podSelector: p.podSelector } }));
    if (dir === 'egress' && sel.any) return [{ networks: ['0.0.0.0/0', '::/0'] }];
    for (let i = 0; i < sel.cidrs.length; i += 25) out.push({ networks: [...new Set(sel.cidrs.slice(i, i + 25))] });
    if (out.length === 0) throw new Refused(`${construct} selects nothing in cluster ${cluster}`);
    if (out.length > 25) throw new Refused(`${out.length} peers: a ClusterNetworkPolicy rule holds at most 25`);
    return out;
  };

  // Rules in evaluation order, from the specs (the compiled order gives the policy order).
  const ordered = orderedPolicyRules(world);
  const hasApplication = ordered.some((p) => p.category === 'application' && !p.staged && p.rules.length > 0);
  const priorities = { Admin: 0, Baseline: 0 };
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
          const peers = peerList(sel.peers(dir === 'ingress' ? r.sources : r.destinations), dir, construct);
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
    const construct = 'default rule: drop';
    if (!options.podsOnly) refusals.push({ construct, reason: 'the Kubernetes default allows; a Baseline deny from every source cannot match ingress from outside the cluster (ClusterNetworkPolicy ingress peers select pods only); accept that with --pods-only' });
    else if (priorities.Baseline > 1000) refusals.push({ construct, reason: 'more than 1001 ordered rules in tier Baseline' });
    else {
      manifests.push(cnp('microseg-default-deny-ingress', 'Baseline', priorities.Baseline, ALL_PODS, 'ingress', { name: 'default', action: 'Deny', from: [{ namespaces: {} }] }));
      manifests.push(cnp('microseg-default-deny-egress', 'Baseline', priorities.Baseline, ALL_PODS, 'egress', { name: 'default', action: 'Deny', to: [{ networks: ['0.0.0.0/0', '::/0'] }] }));
    }
  }
  const nps: NetworkPolicyManifest[] = world
    .names('KubernetesNetworkPolicy')
    .sort()
    .map((n) => world.get('KubernetesNetworkPolicy', n)!)
    .filter((np) => np.cluster === cluster)
    .map(networkPolicyManifest);
  manifests.push(...(nps as unknown as Record<string, unknown>[]));
  return { manifests, refusals };
}

