import type { Kind } from '../../model';
import { traceflow, type FlowView } from '../traceflow';
import type { WorldParts } from './parts';

/**
 * Computed outputs of an object (the `outputs` of its resource definition). A ConnectivityAssertion's
 * outputs are a traceflow through `flows` (the World itself), which is why this lives outside World.
 */
export function outputsOf(w: WorldParts, flows: FlowView, kind: Kind, name: string): Record<string, unknown> {
  switch (kind) {
    case 'Workload':
      return { pods: (w.inventory.pods.get(name) ?? []).map((p) => ({ ...p })) };
    case 'EgressIp':
      return { allocatedIp: w.addressing.egress.get(name)?.ip?.s ?? '' };
    case 'LoadBalancer':
      return { allocatedVip: w.addressing.lbs.get(name)?.vip?.s ?? '', memberCount: w.addressing.lbMembers(name).length };
    case 'SecurityGroup': {
      const m = w.groups.members(name);
      return { members: m.members, memberCount: m.members.length };
    }
    case 'PodSelector': {
      const s = w.specs.PodSelector.get(name);
      return { memberCount: s ? w.membership.podSelectorAtom(s).members.size : 0 };
    }
    case 'KubernetesNetworkPolicy': {
      w.policies.compile();
      return { podCount: w.policies.netpols.get(name)?.subject.members.size ?? 0 };
    }
    case 'ConnectivityAssertion': {
      const a = w.specs.ConnectivityAssertion.get(name);
      if (!a) return {};
      const t = traceflow(flows, { source: a.from, destination: a.to, protocol: a.protocol, port: a.port });
      if ('problem' in t) return { verdict: 'drop', decidingRule: t.problem.message, passed: false };
      return { verdict: t.verdict, decidingRule: t.decidingPolicy === 'default' ? 'default' : `${t.decidingPolicy}/${t.decidingRule}`, passed: (t.verdict === 'allow') === (a.expect === 'allow') };
    }
    default:
      return {};
  }
}
