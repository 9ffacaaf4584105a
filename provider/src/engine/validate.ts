import type { z } from 'zod';
import { definitionsByKind, isKind, type Kind, type SpecOf } from '../model';
import type { labelSelector, peer as peerSchema, podSelectorSpec, service } from '../model/common';
import type { networkPolicyPeer, networkPolicyPort } from '../model/kubernetes';
import { cidrWithin, parseCidr, parseIp, parseRange } from './ip';
import { renderPath, type Problem } from './problems';

export type ValidationResult<K extends Kind> =
  | { readonly ok: true; readonly value: SpecOf[K]; readonly problems: readonly Problem[] }
  | { readonly ok: false; readonly problems: readonly Problem[] };

type Path = readonly (string | number)[];

/** Kubernetes IANA_SVC_NAME: 1-15 lowercase alphanumerics or '-', at least one letter, no leading/trailing '-'. */
const NAMED_PORT = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

/** Kubernetes DNS-1123 label (namespace names): 1-63 lowercase alphanumerics or '-', alphanumeric at both ends. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Kubernetes DNS-1123 subdomain (label-key prefixes): dot-separated DNS-1123 labels, at most 253 characters. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kubernetes qualified name (the name part of a label key): 1-63 alphanumerics, '-', '_' or '.', alphanumeric at both ends. */
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Why Kubernetes would reject a namespace name, or undefined when it is valid. */
export function namespaceNameProblem(name: string): string | undefined {
  if (name.length > 63 || !DNS1123_LABEL.test(name)) return `namespace name "${name}" is invalid; Kubernetes expects a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit (e.g. team-a)`;
  return undefined;
}

/** Why Kubernetes would reject a label key (`[prefix/]name`), or undefined when it is valid. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const expected = "Kubernetes expects an optional DNS-subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (e.g. app or example.com/tier)";
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return `label key "${key}" has an invalid prefix; ${expected}`;
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) return `label key "${key}" is invalid; ${expected}`;
  return undefined;
}

/**
 * Validates one object's inputs: the zod schema (defaults applied) and per-object semantic checks
 * (CIDRs, port ranges, selector operators, one-of peers, duplicate rule names...). References to other
 * objects are checked by the world (see `World.validate`). Returns every problem; never throws.
 */
export function validateSpec<K extends Kind>(kind: K, input: unknown): ValidationResult<K>;
export function validateSpec(kind: string, input: unknown): ValidationResult<Kind>;
export function validateSpec(kind: string, input: unknown): ValidationResult<Kind> {
  if (!isKind(kind)) return { ok: false, problems: [{ code: 'unknown-kind', path: '', message: `unknown resource kind "${kind}"; expected one of ${Object.keys(definitionsByKind).join(', ')}` }] };
  const parsed = definitionsByKind[kind].inputs.safeParse(input);
  if (!parsed.success) {
    return { ok: false, problems: parsed.error.issues.map((i) => ({ code: `schema-${i.code}`, path: renderPath(i.path), message: describeIssue(i) })) };
  }
  const problems: Problem[] = [];
  semanticChecks(kind, parsed.data as SpecOf[Kind], problems);
  return problems.some((p) => p.severity !== 'warning') ? { ok: false, problems } : { ok: true, value: parsed.data as SpecOf[Kind], problems };
}

function describeIssue(i: z.core.$ZodIssue): string {
  // zod 4 messages of enums and literals already list what is expected; add the options only where a
  // message does not, so they are never listed twice.
  if (i.code === 'invalid_value' && !/expected/i.test(i.message)) return `${i.message} (expected one of ${i.values.map((v) => JSON.stringify(v)).join(', ')})`;
  return i.message;
}

function semanticChecks(kind: Kind, spec: SpecOf[Kind], out: Problem[]): void {
  const p = (code: string, path: Path, message: string) => out.push({ code, path: renderPath(path), message });
  switch (kind) {
    case 'VirtualMachine': {
      const s = spec as SpecOf['VirtualMachine'];
      s.interfaces.forEach((itf, i) => checkIp(itf.ip, ['interfaces', i, 'ip'], p));
      checkLabels(s.labels, ['labels'], p);
      break;
    }
    case 'KubernetesCluster': {
      const s = spec as SpecOf['KubernetesCluster'];
      checkCidr(s.podCidr, ['podCidr'], p);
      checkCidr(s.serviceCidr, ['serviceCidr'], p);
      const names = new Set<string>();
      s.nodes.forEach((n, i) => {
        checkIp(n.ip, ['nodes', i, 'ip'], p);
        if (names.has(n.name)) p('duplicate-name', ['nodes', i, 'name'], `node name "${n.name}" is used twice; node names must be unique`);
        names.add(n.name);
      });
      break;
    }
    case 'Workload': {
      const s = spec as SpecOf['Workload'];
      checkNamespaceName(s.namespace, ['namespace'], p);
      checkLabels(s.labels, ['labels'], p);
      const names = new Set<string>();
      (s.ports ?? []).forEach((np, i) => {
        if (!NAMED_PORT.test(np.name)) p('invalid-port-name', ['ports', i, 'name'], `port name "${np.name}" is invalid; expected 1-15 lowercase letters, digits or '-', with at least one letter`);
        if (names.has(np.name)) p('duplicate-name', ['ports', i, 'name'], `port name "${np.name}" is used twice; port names must be unique in a workload`);
        names.add(np.name);
        checkPortNumber(np.port, ['ports', i, 'port'], p);
      });
      break;
    }
    case 'PodSelector':
      checkPodSelector(spec as SpecOf['PodSelector'], [], p);
      break;
    case 'SecurityGroup': {
      const s = spec as SpecOf['SecurityGroup'];
      (s.vmSelectors ?? []).forEach((sel, i) => checkLabelSelector(sel, ['vmSelectors', i], p));
      (s.podSelectors ?? []).forEach((sel, i) => checkPodSelector(sel, ['podSelectors', i], p));
      (s.ipBlocks ?? []).forEach((b, i) => checkIpBlock(b.cidr, b.except, ['ipBlocks', i], p));
      if (s.name !== undefined && (s.groups ?? []).includes(s.name)) p('group-cycle', ['groups'], `group "${s.name}" contains itself; nested groups must not form a cycle`);
      break;
    }
    case 'FirewallPolicy': {
      const s = spec as SpecOf['FirewallPolicy'];
      const seen = new Map<string, number>();
      (s.rules ?? []).forEach((r, i) => {
        const prev = seen.get(r.name);
        if (prev !== undefined) p('duplicate-rule-name', ['rules', i, 'name'], `rule name "${r.name}" is already used by rules[${prev}]; rule names must be unique in a policy`);
        else seen.set(r.name, i);
        checkRule(r, ['rules', i], p);
      });
      break;
    }
    case 'FirewallRule':
      checkRule(spec as SpecOf['FirewallRule'], [], p);
      break;
    case 'EgressIp': {
      const s = spec as SpecOf['EgressIp'];
      if ((s.ip === undefined) === (s.pool === undefined)) p('ip-or-pool', s.ip === undefined ? ['ip'] : ['pool'], s.ip === undefined ? 'neither ip nor pool is set; expected exactly one of them' : 'both ip and pool are set; expected exactly one of them');
      if (s.ip !== undefined) checkIp(s.ip, ['ip'], p);
      if (s.pool !== undefined) checkPool(s.pool, ['pool'], p);
      checkPodSelector(s.podSelector, ['podSelector'], p);
      break;
    }
    case 'LoadBalancer': {
      const s = spec as SpecOf['LoadBalancer'];
      if ((s.vip === undefined) === (s.vipPool === undefined)) p('ip-or-pool', s.vip === undefined ? ['vip'] : ['vipPool'], s.vip === undefined ? 'neither vip nor vipPool is set; expected exactly one of them' : 'both vip and vipPool are set; expected exactly one of them');
      if (s.vip !== undefined) checkIp(s.vip, ['vip'], p);
      if (s.vipPool !== undefined) checkPool(s.vipPool, ['vipPool'], p);
      const set = [s.pool.group, s.pool.podSelector, s.pool.podSelectorRef].filter((x) => x !== undefined).length;
      if (set !== 1) p('one-of', ['pool'], `pool sets ${set} of group, podSelector, podSelectorRef; expected exactly one`);
      if (s.pool.podSelector) checkPodSelector(s.pool.podSelector, ['pool', 'podSelector'], p);
      const seen = new Set<string>();
      s.listeners.forEach((l, i) => {
        checkPortNumber(l.port, ['listeners', i, 'port'], p);
        if (l.protocol === 'icmp' || l.protocol === 'icmpv6') p('invalid-protocol', ['listeners', i, 'protocol'], `listener protocol "${l.protocol}" has no ports; expected tcp, udp or sctp`);
        const k = `${l.protocol}/${l.port}`;
        if (seen.has(k)) p('duplicate-listener', ['listeners', i], `listener ${k} is declared twice`);
        seen.add(k);
        if (typeof l.targetPort === 'number') checkPortNumber(l.targetPort, ['listeners', i, 'targetPort'], p);
        else if (l.targetPort !== undefined && !NAMED_PORT.test(l.targetPort)) p('invalid-port-name', ['listeners', i, 'targetPort'], `target port "${l.targetPort}" is neither a number nor a valid port name`);
      });
      break;
    }
    case 'QuarantinePolicy': {
      const s = spec as SpecOf['QuarantinePolicy'];
      checkLabelSelector(s.selector, ['selector'], p);
      if (!s.selector.matchLabels && !(s.selector.matchExpressions ?? []).length) p('empty-selector', ['selector'], 'the quarantine selector is empty and would isolate every workload; expected at least one label requirement');
      (s.forensicServices ?? []).forEach((sv, i) => checkService(sv, ['forensicServices', i], p));
      break;
    }
    case 'ConnectivityAssertion': {
      const s = spec as SpecOf['ConnectivityAssertion'];
      const ported = s.protocol === 'tcp' || s.protocol === 'udp' || s.protocol === 'sctp';
      if (ported && s.port === undefined) p('missing-port', ['port'], `protocol ${s.protocol} needs a port; none was given`);
      if (!ported && s.port !== undefined) p('port-without-ports', ['port'], `protocol ${s.protocol} has no ports, but port ${s.port} is set; remove port or use tcp, udp or sctp`);
      break;
    }
    case 'KubernetesNetworkPolicy':
      checkNetworkPolicy(spec as SpecOf['KubernetesNetworkPolicy'], p);
      break;
    case 'Namespace': {
      const s = spec as SpecOf['Namespace'];
      if (s.name !== undefined) checkNamespaceName(s.name, ['name'], p);
      checkLabels(s.labels, ['labels'], p);
      break;
    }
  }
}

/** The networking.k8s.io/v1 validation rules a NetworkPolicy must pass (apiserver ValidateNetworkPolicy). */
function checkNetworkPolicy(s: SpecOf['KubernetesNetworkPolicy'], p: Report): void {
  checkLabelSelector(s.podSelector, ['podSelector'], p);
  const seen = new Set<string>();
  (s.policyTypes ?? []).forEach((t, i) => {
    if (seen.has(t)) p('duplicate-policy-type', ['policyTypes', i], `policy type ${t} is listed twice`);
    seen.add(t);
  });
  const rules = (list: readonly { peers?: readonly z.output<typeof networkPolicyPeer>[]; ports?: readonly z.output<typeof networkPolicyPort>[] }[], path: string, peerField: string) =>
    list.forEach((r, i) => {
      (r.peers ?? []).forEach((peer, j) => {
        const pp = [path, i, peerField, j];
        const selectors = peer.podSelector !== undefined || peer.namespaceSelector !== undefined;
        if (peer.ipBlock !== undefined && selectors) p('one-of', pp, 'the peer sets ipBlock together with podSelector or namespaceSelector; expected ipBlock alone, or selectors');
        if (peer.ipBlock === undefined && !selectors) p('empty-peer', pp, 'the peer sets none of podSelector, namespaceSelector, ipBlock; expected at least one');
        if (peer.podSelector) checkLabelSelector(peer.podSelector, [...pp, 'podSelector'], p);
        if (peer.namespaceSelector) checkLabelSelector(peer.namespaceSelector, [...pp, 'namespaceSelector'], p);
        if (peer.ipBlock) checkIpBlock(peer.ipBlock.cidr, peer.ipBlock.except, [...pp, 'ipBlock'], p);
      });
      (r.ports ?? []).forEach((port, j) => {
        const pp = [path, i, 'ports', j];
        if (typeof port.port === 'number') checkPortNumber(port.port, [...pp, 'port'], p);
        else if (port.port !== undefined && !/^\d+$/.test(port.port) && !NAMED_PORT.test(port.port)) p('invalid-port', [...pp, 'port'], `port "${port.port}" is neither a number nor a valid port name`);
        if (port.endPort !== undefined) {
          if (typeof port.port !== 'number') p('end-port-without-port', [...pp, 'endPort'], 'endPort is set without a numeric port; expected a numeric port as the start of the range');
          else if (port.endPort < port.port || port.endPort > 65535) p('invalid-port-range', [...pp, 'endPort'], `endPort ${port.endPort} is invalid; expected port <= endPort <= 65535`);
        }
      });
    });
  rules((s.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })), 'ingress', 'from');
  rules((s.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports })), 'egress', 'to');
}

type Report = (code: string, path: Path, message: string) => void;

function checkNamespaceName(name: string, path: Path, p: Report): void {
  const problem = namespaceNameProblem(name);
  if (problem) p('invalid-namespace-name', path, problem);
}

function checkLabels(labels: Readonly<Record<string, string>> | undefined, path: Path, p: Report): void {
  for (const key of Object.keys(labels ?? {})) {
    const problem = labelKeyProblem(key);
    if (problem) p('invalid-label-key', [...path, key], problem);
  }
}

function checkIp(text: string, path: Path, p: Report): void {
  if (!parseIp(text)) p('invalid-ip', path, `"${text}" is not an IP address; expected e.g. 10.0.0.1 or fd00::1`);
}

function checkCidr(text: string, path: Path, p: Report): ReturnType<typeof parseCidr> {
  const c = parseCidr(text);
  if (!c) p('invalid-cidr', path, `"${text}" is not a CIDR; expected an address and prefix length with no host bits set, e.g. 10.0.0.0/8`);
  return c;
}

function checkPool(text: string, path: Path, p: Report): void {
  if (!parseRange(text)) p('invalid-pool', path, `"${text}" is not a CIDR or an address range; expected e.g. 192.0.2.0/28 or 192.0.2.10-192.0.2.20`);
}

function checkIpBlock(cidr: string, except: readonly string[] | undefined, path: Path, p: Report): void {
  const c = checkCidr(cidr, [...path, 'cidr'], p);
  (except ?? []).forEach((e, i) => {
    const x = checkCidr(e, [...path, 'except', i], p);
    if (c && x && !cidrWithin(x, c)) p('except-outside-cidr', [...path, 'except', i], `except "${e}" is not inside "${cidr}"; expected a CIDR within it`);
  });
}

function checkPortNumber(n: number, path: Path, p: Report): void {
  if (n < 1 || n > 65535) p('invalid-port', path, `port ${n} is out of range; expected 1-65535`);
}

function checkLabelSelector(sel: z.output<typeof labelSelector>, path: Path, p: Report): void {
  checkLabels(sel.matchLabels, [...path, 'matchLabels'], p);
  (sel.matchExpressions ?? []).forEach((e, i) => {
    const keyProblem = labelKeyProblem(e.key);
    if (keyProblem) p('invalid-label-key', [...path, 'matchExpressions', i, 'key'], keyProblem);
    const vp = [...path, 'matchExpressions', i, 'values'];
    const n = e.values?.length ?? 0;
    if ((e.operator === 'In' || e.operator === 'NotIn') && n === 0) p('selector-values', vp, `operator ${e.operator} has no values; expected at least one value`);
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && n > 0) p('selector-values', vp, `operator ${e.operator} has ${n} value(s); expected none`);
  });
}

function checkPodSelector(sel: z.output<typeof podSelectorSpec>, path: Path, p: Report): void {
  (sel.namespaces ?? []).forEach((n, i) => checkNamespaceName(n, [...path, 'namespaces', i], p));
  if (sel.namespaceSelector) checkLabelSelector(sel.namespaceSelector, [...path, 'namespaceSelector'], p);
  if (sel.podSelector) checkLabelSelector(sel.podSelector, [...path, 'podSelector'], p);
}

function checkService(s: z.output<typeof service>, path: Path, p: Report): void {
  const ported = s.protocol === 'tcp' || s.protocol === 'udp' || s.protocol === 'sctp';
  const icmp = s.protocol === 'icmp' || s.protocol === 'icmpv6';
  // `any` with ports means tcp, udp and sctp on those ports (ICMP has none).
  if (s.ports?.length && !ported && s.protocol !== 'any') p('ports-without-protocol', [...path, 'ports'], `ports are set with protocol "${s.protocol}"; ports need protocol tcp, udp, sctp or any (= tcp, udp and sctp)`);
  if ((s.icmpType !== undefined || s.icmpCode !== undefined) && !icmp) p('icmp-without-protocol', [...path, 'icmpType'], `icmpType/icmpCode are set with protocol "${s.protocol}"; expected protocol icmp or icmpv6`);
  if (s.icmpCode !== undefined && s.icmpType === undefined) p('icmp-code-without-type', [...path, 'icmpCode'], 'icmpCode is set without icmpType; expected both');
  (s.ports ?? []).forEach((port, i) => {
    const pp = [...path, 'ports', i];
    if (typeof port === 'number') return checkPortNumber(port, pp, p);
    const m = /^(\d+)-(\d+)$/.exec(port);
    if (m) {
      const a = Number(m[1]);
      const b = Number(m[2]);
      if (a < 1 || b > 65535 || a > b) p('invalid-port-range', pp, `port range "${port}" is invalid; expected "a-b" with 1 <= a <= b <= 65535`);
      return;
    }
    if (/^\d+$/.test(port)) return checkPortNumber(Number(port), pp, p);
    if (!NAMED_PORT.test(port)) p('invalid-port', pp, `port "${port}" is neither a number, a range "a-b" nor a valid port name`);
  });
}

function checkPeer(peer: z.output<typeof peerSchema>, path: Path, p: Report): void {
  const fields = (['group', 'podSelector', 'podSelectorRef', 'vmSelector', 'vm', 'workload', 'cidr'] as const).filter((f) => peer[f] !== undefined);
  if (fields.length !== 1) p('one-of', path, fields.length === 0 ? 'the peer sets none of group, podSelector, podSelectorRef, vmSelector, vm, workload, cidr; expected exactly one' : `the peer sets ${fields.join(' and ')}; expected exactly one`);
  if (peer.except !== undefined && peer.cidr === undefined) p('except-without-cidr', [...path, 'except'], 'except is set without cidr; expected except only together with cidr');
  if (peer.cidr !== undefined) checkIpBlock(peer.cidr, peer.except, path, p);
  if (peer.podSelector) checkPodSelector(peer.podSelector, [...path, 'podSelector'], p);
  if (peer.vmSelector) checkLabelSelector(peer.vmSelector, [...path, 'vmSelector'], p);
}

function checkRule(r: SpecOf['FirewallRule'] | NonNullable<SpecOf['FirewallPolicy']['rules']>[number], path: Path, p: Report): void {
  (r.sources ?? []).forEach((x, i) => checkPeer(x, [...path, 'sources', i], p));
  (r.destinations ?? []).forEach((x, i) => checkPeer(x, [...path, 'destinations', i], p));
  (r.services ?? []).forEach((x, i) => checkService(x, [...path, 'services', i], p));
  // VMs have no named ports (only workloads declare them), so a named port can never match a VM destination.
  const named = (r.services ?? []).flatMap((sv, i) => (sv.ports ?? []).map((port, j) => ({ port, at: [...path, 'services', i, 'ports', j] })).filter((x) => typeof x.port === 'string' && !/^\d+(-\d+)?$/.test(x.port)));
  const dsts = r.destinations ?? [];
  if (named.length > 0 && !r.destinationsExcluded && dsts.length > 0 && dsts.every((d) => d.vm !== undefined || d.vmSelector !== undefined)) {
    p('named-port-on-vm', named[0]!.at, `named port "${String(named[0]!.port)}" is used against VM destinations only; VMs have no named ports, so the rule could never match: use port numbers`);
  }
  if (r.sourcesExcluded && !(r.sources ?? []).length) p('excluded-without-peers', [...path, 'sourcesExcluded'], 'sourcesExcluded is true but sources is empty, so the rule would match nothing; expected sources to negate');
  if (r.destinationsExcluded && !(r.destinations ?? []).length) p('excluded-without-peers', [...path, 'destinationsExcluded'], 'destinationsExcluded is true but destinations is empty, so the rule would match nothing; expected destinations to negate');
}
