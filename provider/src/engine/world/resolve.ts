import { parseIp } from '../ip';
import type { Problem } from '../problems';
import type { Endpoint, ResolvedRef } from '../types';
import type { WorldParts } from './parts';

/**
 * Resolves an endpoint reference, the same forms everywhere (CLI, expectations, ConnectivityAssertion):
 * an IP; `vm:NAME` (its first interface) or `vm:NAME#i` (interface i, as outputs name it);
 * `workload:CLUSTER/NS/NAME` or `NS/NAME` (its first pod; the namespace/name must be unique across
 * clusters); `pod:CLUSTER/NS/POD`; `lb:NAME`; or the same without prefix, tried as a VM, workload, pod,
 * then load balancer.
 */
export function resolveRef(w: Pick<WorldParts, 'inventory' | 'addressing' | 'membership'>, ref: string): ResolvedRef | { problem: Problem } {
  const ip = parseIp(ref);
  if (ip) {
    const lb = w.addressing.vips.get(ip.s);
    if (lb) return { ip, lb: lb.name };
    return { ip, ep: w.inventory.byIp.get(ip.s) };
  }
  const colon = ref.indexOf(':');
  const prefix = colon > 0 ? ref.slice(0, colon) : '';
  const known = prefix === 'vm' || prefix === 'workload' || prefix === 'lb' || prefix === 'pod';
  const rest = known ? ref.slice(colon + 1) : ref;
  const fail = (message: string) => ({ problem: { code: 'unknown-endpoint', path: '', message } });
  if (prefix === '' || prefix === 'vm') {
    const hash = /^(.*)#(\d+)$/.exec(rest);
    const vm = hash ? hash[1]! : rest;
    const eps = w.inventory.vmEndpoints.get(vm);
    if (eps?.length) {
      if (!hash) return { ip: eps[0]!.ip, ep: eps[0] };
      const ep = eps[Number(hash[2])];
      if (ep) return { ip: ep.ip, ep };
      return fail(`VM "${vm}" has ${eps.length} interface(s) (${vm}#0${eps.length > 1 ? `..${vm}#${eps.length - 1}` : ''}); "${ref}" names none of them`);
    }
  }
  if (prefix === '' || prefix === 'workload') {
    const eps = w.inventory.podEndpoints.get(rest) ?? workloadByNamespaceName(w.inventory.podEndpoints, rest, ref);
    if (eps && 'problem' in eps) return eps;
    if (eps?.length) return { ip: eps[0]!.ip, ep: eps[0] };
  }
  if (prefix === '' || prefix === 'pod') {
    for (const ep of w.membership.podsInNamespace(rest.split('/')[1] ?? '')) if (ep.name === rest) return { ip: ep.ip, ep };
  }
  if (prefix === '' || prefix === 'lb') {
    const lb = w.addressing.lbs.get(rest);
    if (lb?.vip) return { ip: lb.vip, lb: lb.name };
  }
  return fail(
    `"${ref}" is not an IP, nor a VM, a workload with pods, a pod or a load balancer; expected an IP or vm:NAME, vm:NAME#INTERFACE, workload:CLUSTER/NAMESPACE/NAME, NAMESPACE/NAME, pod:CLUSTER/NAMESPACE/POD or lb:NAME`,
  );
}

/** The pods of the workload `NS/NAME` in whichever cluster has it; a problem when several do. */
function workloadByNamespaceName(podEndpoints: ReadonlyMap<string, readonly Endpoint[]>, rest: string, ref: string): readonly Endpoint[] | { problem: Problem } | undefined {
  const parts = rest.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  const suffix = `/${rest}`;
  const matches = [...podEndpoints.keys()].filter((k) => k.endsWith(suffix) && k.split('/').length === 3);
  if (matches.length > 1) return { problem: { code: 'ambiguous-endpoint', path: '', message: `"${ref}" names a workload in several clusters (${matches.join(', ')}); expected CLUSTER/NAMESPACE/NAME` } };
  return matches.length === 1 ? podEndpoints.get(matches[0]!) : undefined;
}
