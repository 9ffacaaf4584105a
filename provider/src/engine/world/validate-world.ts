import type { Kind, SpecOf } from '../../model';
import { cidrContains, cidrWithin, parseIp, type Cidr, type Ip } from '../ip';
import type { Problem } from '../problems';
import { referencesOf } from '../references';
import type { ClusterState, ResolvedRef } from '../types';
import type { WorldParts } from './parts';
import { objectsOf } from './specs';

/*
 * World-level validation: what no single object's schema can check (references, cycles, address
 * collisions, named ports, rule mixes), and the warnings (priority ties, appliedTo groups that apply nowhere).
 */

/**
 * World-level problems: unknown references, nested-group cycles, inline and standalone rules mixed,
 * duplicate standalone rule names, address exhaustion and duplicates. Warnings (priority ties) included.
 */
export function validateWorld(w: WorldParts, resolve: (ref: string) => ResolvedRef | { problem: Problem }, warnings: () => readonly Problem[]): Problem[] {
  const out: Problem[] = [];
  // Unknown references, object by object, from the one definition of what refers to what.
  for (const { kind, name, spec } of objectsOf(w.specs)) {
    for (const r of referencesOf(kind, spec)) {
      if (!w.specs[r.kind].has(r.name)) out.push({ code: 'unknown-reference', path: r.path, message: `${r.kind} "${r.name}" does not exist; expected the name of a declared ${r.kind}`, object: { kind, name } });
    }
  }
  out.push(...groupCycles(w));
  const standaloneByPolicy = new Map<string, Map<string, string>>();
  for (const [n, r] of w.specs.FirewallRule) {
    let names = standaloneByPolicy.get(r.policy);
    if (!names) standaloneByPolicy.set(r.policy, (names = new Map()));
    const prev = names.get(r.name!);
    if (prev !== undefined) out.push({ code: 'duplicate-rule-name', path: 'name', message: `rule name "${r.name}" is already used in policy "${r.policy}" by FirewallRule "${prev}"; rule names must be unique in a policy`, object: { kind: 'FirewallRule', name: n } });
    else names.set(r.name!, n);
  }
  for (const [n, p] of w.specs.FirewallPolicy) {
    const standalone = standaloneByPolicy.get(n);
    if (p.rules?.length && standalone?.size) {
      out.push({
        code: 'mixed-rules',
        path: 'rules',
        message: `policy "${n}" has ${p.rules.length} inline rule(s) and ${standalone.size} FirewallRule resource(s) (${[...standalone.values()].join(', ')}); a policy uses inline rules or FirewallRule resources, never both`,
        object: { kind: 'FirewallPolicy', name: n },
      });
      // Also on each standalone rule, so that adding one to a policy with inline rules is refused too
      // (it would otherwise be stored and never enforced).
      for (const r of standalone.values())
        out.push({
          code: 'mixed-rules',
          path: 'policy',
          message: `policy "${n}" has ${p.rules.length} inline rule(s); a standalone FirewallRule on it would never be enforced. Move the rule into the policy's rules, or remove the inline rules (a policy uses inline rules or FirewallRule resources, never both)`,
          object: { kind: 'FirewallRule', name: r },
        });
    }
  }
  for (const [n, a] of w.specs.ConnectivityAssertion) {
    for (const f of ['from', 'to'] as const) {
      const r = resolve(a[f]);
      if ('problem' in r) out.push({ ...r.problem, path: f, object: { kind: 'ConnectivityAssertion', name: n } });
    }
  }
  out.push(...w.allocationProblems.values());
  out.push(...addressCollisions(w));
  out.push(...portProblems(w));
  out.push(...warnings());
  return out;
}

/**
 * Addresses two objects would both claim: duplicate VM interface IPs, VM IPs and egress IPs inside a pod
 * CIDR (the pod allocator would hand them out again), VIPs equal to another object's IP, overlapping pod
 * CIDRs of two clusters, and a service CIDR overlapping a pod CIDR. Each collision is reported on both
 * objects, naming the other, so whichever write introduced it is refused.
 */
function addressCollisions(w: WorldParts): Problem[] {
  const out: Problem[] = [];
  type Obj = { kind: Kind; name: string; path: string };
  const pair = (code: string, a: Obj, b: Obj, message: string) => {
    const other = (o: Obj) => `${o.kind} "${o.name}" (${o.path})`;
    out.push({ code, path: a.path, message: `${message}: ${a.kind} "${a.name}" collides with ${other(b)}; expected distinct addresses`, object: { kind: a.kind, name: a.name } });
    out.push({ code, path: b.path, message: `${message}: ${b.kind} "${b.name}" collides with ${other(a)}; expected distinct addresses`, object: { kind: b.kind, name: b.name } });
  };
  const clusters = [...w.inventory.clusters.entries()];
  // Pod CIDRs between clusters (service CIDRs are cluster-local and may repeat), and each cluster's own
  // service CIDR against its pod CIDR.
  for (let i = 0; i < clusters.length; i++) {
    const [an, a] = clusters[i]!;
    if (a.podCidr && a.serviceCidr && overlaps(a.podCidr, a.serviceCidr))
      out.push({ code: 'address-collision', path: 'serviceCidr', message: `service CIDR ${a.serviceCidr.s} overlaps pod CIDR ${a.podCidr.s} of the same cluster; expected disjoint ranges (services would shadow pods)`, object: { kind: 'KubernetesCluster', name: an } });
    for (let j = i + 1; j < clusters.length; j++) {
      const [bn, b] = clusters[j]!;
      const A = (path: string): Obj => ({ kind: 'KubernetesCluster', name: an, path });
      const B = (path: string): Obj => ({ kind: 'KubernetesCluster', name: bn, path });
      if (a.podCidr && b.podCidr && overlaps(a.podCidr, b.podCidr)) pair('address-collision', A('podCidr'), B('podCidr'), `pod CIDRs ${a.podCidr.s} and ${b.podCidr.s} overlap, so pods of both clusters could get the same IP`);
    }
  }
  const inPodCidr = (ip: Ip): [string, ClusterState] | undefined => clusters.find(([, c]) => c.podCidr !== undefined && cidrContains(c.podCidr, ip));
  // VM interfaces: duplicates, and inside a pod CIDR.
  const vmIps = new Map<string, Obj>();
  for (const [vm, eps] of w.inventory.vmEndpoints) {
    for (const ep of eps) {
      const me: Obj = { kind: 'VirtualMachine', name: vm, path: `interfaces[${ep.name.slice(ep.name.lastIndexOf('#') + 1)}].ip` };
      const prev = vmIps.get(ep.ip.s);
      if (prev) pair('duplicate-ip', prev, me, `IP ${ep.ip.s} is used twice`);
      else vmIps.set(ep.ip.s, me);
      const c = inPodCidr(ep.ip);
      if (c) pair('address-collision', me, { kind: 'KubernetesCluster', name: c[0], path: 'podCidr' }, `IP ${ep.ip.s} is inside pod CIDR ${c[1].podCidr!.s}, from which pods are allocated`);
    }
  }
  // Egress IPs: inside a pod CIDR, or equal to a VM IP.
  const egressIps = new Map<string, Obj>();
  for (const [n, e] of w.addressing.egress) {
    if (!e.ip) continue;
    const me: Obj = { kind: 'EgressIp', name: n, path: e.spec.ip !== undefined ? 'ip' : 'pool' };
    const c = inPodCidr(e.ip);
    if (c) pair('address-collision', me, { kind: 'KubernetesCluster', name: c[0], path: 'podCidr' }, `egress IP ${e.ip.s} is inside pod CIDR ${c[1].podCidr!.s}, so a pod could be allocated the same IP`);
    const vm = vmIps.get(e.ip.s);
    if (vm) pair('address-collision', me, vm, `egress IP ${e.ip.s} is also a VM interface IP`);
    const prev = egressIps.get(e.ip.s);
    if (prev) pair('duplicate-ip', prev, me, `egress IP ${e.ip.s} is used twice`);
    else egressIps.set(e.ip.s, me);
  }
  // VIPs: equal to a VM, pod, node or egress IP, or to another VIP.
  const vipOwners = new Map<string, Obj>();
  for (const [n, lb] of w.addressing.lbs) {
    if (!lb.vip) continue;
    const me: Obj = { kind: 'LoadBalancer', name: n, path: lb.spec.vip !== undefined ? 'vip' : 'vipPool' };
    const ep = w.inventory.byIp.get(lb.vip.s);
    if (ep) pair('address-collision', me, ep.kind === 'pod' ? { kind: 'Workload', name: ep.owner, path: 'pods' } : vmIps.get(lb.vip.s)!, `VIP ${lb.vip.s} is also the IP of ${ep.kind === 'pod' ? 'pod' : 'VM interface'} ${ep.name}`);
    else {
      const c = inPodCidr(lb.vip);
      if (c) pair('address-collision', me, { kind: 'KubernetesCluster', name: c[0], path: 'podCidr' }, `VIP ${lb.vip.s} is inside pod CIDR ${c[1].podCidr!.s}, so a pod could be allocated the same IP`);
    }
    const eg = egressIps.get(lb.vip.s);
    if (eg) pair('address-collision', me, eg, `VIP ${lb.vip.s} is also an egress IP`);
    for (const [cn, c] of clusters) {
      const node = c.spec.nodes.findIndex((x) => x.ip === lb.vip!.s || parseIp(x.ip)?.s === lb.vip!.s);
      if (node >= 0) pair('address-collision', me, { kind: 'KubernetesCluster', name: cn, path: `nodes[${node}].ip` }, `VIP ${lb.vip.s} is also the IP of node ${c.spec.nodes[node]!.name}`);
    }
    const prev = vipOwners.get(lb.vip.s);
    if (prev) pair('duplicate-ip', prev, me, `VIP ${lb.vip.s} is used twice`);
    else vipOwners.set(lb.vip.s, me);
  }
  return out;
}

/**
 * Named ports that can never resolve: a load-balancer targetPort no pool member declares, and a rule
 * whose named port meets a group destination made only of VM interfaces (VMs have no named ports).
 */
function portProblems(w: WorldParts): Problem[] {
  const out: Problem[] = [];
  for (const [n, lb] of w.addressing.lbs) {
    const named = lb.spec.listeners.map((l, i) => ({ l, i })).filter((x) => typeof x.l.targetPort === 'string');
    if (named.length === 0) continue;
    const members = w.addressing.lbMembers(n);
    for (const { l, i } of named) {
      const port = l.targetPort as string;
      if (members.length === 0) {
        out.push({ code: 'unresolved-port', path: `listeners[${i}].targetPort`, severity: 'warning', message: `target port "${port}" cannot be checked: the pool has no members yet`, object: { kind: 'LoadBalancer', name: n } });
        continue;
      }
      if (!members.some((m) => m.namedPorts?.has(port)))
        out.push({
          code: 'unknown-port',
          path: `listeners[${i}].targetPort`,
          message: `target port "${port}" is not a named port of any pool member (${members.slice(0, 3).map((m) => m.name).join(', ')}${members.length > 3 ? ', ...' : ''}); expected a port name their workloads declare, or a port number`,
          object: { kind: 'LoadBalancer', name: n },
        });
    }
  }
  const check = (kind: 'FirewallPolicy' | 'FirewallRule', name: string, prefix: string, r: SpecOf['FirewallRule'] | NonNullable<SpecOf['FirewallPolicy']['rules']>[number]) => {
    if (r.destinationsExcluded) return;
    const port = (r.services ?? []).flatMap((sv) => sv.ports ?? []).find((x) => typeof x === 'string' && !/^\d+(-\d+)?$/.test(x));
    if (port === undefined) return;
    (r.destinations ?? []).forEach((d, i) => {
      if (d.group === undefined) return;
      const g = w.groups.group(d.group);
      if (!g || g.blocks.length || g.ips.size) return;
      let members = 0;
      for (const a of g.atoms)
        for (const id of a.members) {
          if (w.membership.endpoints.get(id)?.kind === 'pod') return;
          members++;
        }
      if (members === 0) return;
      out.push({ code: 'named-port-on-vm', path: `${prefix}destinations[${i}]`, message: `named port "${String(port)}" is used against group "${d.group}", whose members are all VM interfaces; VMs have no named ports, so use port numbers`, object: { kind, name } });
    });
  };
  for (const [n, p] of w.specs.FirewallPolicy) (p.rules ?? []).forEach((r, i) => check('FirewallPolicy', n, `rules[${i}].`, r));
  for (const [n, r] of w.specs.FirewallRule) check('FirewallRule', n, '', r);
  return out;
}

/**
 * Nested-group cycles of any length. Each cycle is reported on every group in it (naming the whole
 * cycle), so whichever group's change closed it is refused, whatever order the groups were written in.
 */
function groupCycles(w: WorldParts): Problem[] {
  const out: Problem[] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (n: string): void => {
    state.set(n, 1);
    stack.push(n);
    for (const c of w.specs.SecurityGroup.get(n)?.groups ?? []) {
      if (!w.specs.SecurityGroup.has(c)) continue;
      if (state.get(c) === 1) {
        const members = stack.slice(stack.indexOf(c));
        const text = [...members, c].join(' → ');
        members.forEach((g, i) => {
          const next = members[i + 1] ?? c;
          const idx = (w.specs.SecurityGroup.get(g)?.groups ?? []).indexOf(next);
          const key = `${g}/${idx}`;
          if (reported.has(key)) return;
          reported.add(key);
          out.push({ code: 'group-cycle', path: `groups[${idx}]`, message: `nested groups form a cycle: ${text}; expected nesting without cycles`, object: { kind: 'SecurityGroup', name: g } });
        });
      } else if (!state.has(c)) visit(c);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of w.specs.SecurityGroup.keys()) if (!state.has(n)) visit(n);
  return out;
}

/**
 * appliedTo selects enforcement points (VM interfaces, pods); IP blocks and egress IPs are not, so a
 * group made only of them applies the policy or rule nowhere (as in NSX). Legal, but almost always a
 * mistake (the group was meant as a source or destination), so it is a warning.
 */
export function appliedToWarnings(w: WorldParts): Problem[] {
  const out: Problem[] = [];
  const check = (groups: readonly string[] | undefined, path: string, object: { kind: Kind; name: string }, what: string) =>
    (groups ?? []).forEach((g, i) => {
      const flat = w.groups.group(g);
      if (!flat || flat.atoms.length > 0 || (flat.blocks.length === 0 && flat.ips.size === 0)) return;
      out.push({
        code: 'appliedto-ip-only',
        path: `${path}[${i}]`,
        severity: 'warning',
        message: `appliedTo group "${g}" has only IP blocks or egress IPs, which are not enforcement points, so the ${what} applies to nothing; use it in sources or destinations, or add VM or pod selectors to it`,
        object,
      });
    });
  for (const [n, p] of w.specs.FirewallPolicy) {
    check(p.appliedTo, 'appliedTo', { kind: 'FirewallPolicy', name: n }, 'policy');
    (p.rules ?? []).forEach((r, i) => check(r.appliedTo, `rules[${i}].appliedTo`, { kind: 'FirewallPolicy', name: n }, `rule "${r.name}"`));
  }
  for (const [n, r] of w.specs.FirewallRule) check(r.appliedTo, 'appliedTo', { kind: 'FirewallRule', name: n }, 'rule');
  return out;
}

/** Two CIDRs overlap exactly when one contains the other. */
function overlaps(a: Cidr, b: Cidr): boolean {
  return cidrWithin(a, b) || cidrWithin(b, a);
}
