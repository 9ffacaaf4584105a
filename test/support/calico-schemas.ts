import Ajv, { type ValidateFunction } from 'ajv';
import { parseCidr, parseIp } from '../../provider/src/engine/ip';

/**
 * microseg's own statement of the Calico objects the `calico` export flavor writes (projectcalico.org/v3:
 * Tier, GlobalNetworkPolicy, StagedGlobalNetworkPolicy, GlobalNetworkSet, HostEndpoint), used to validate
 * every exported object in test/unit/kubernetes/calico-*.test.ts.
 *
 * Written by hand from Calico's public API reference documentation, Calico Open Source 3.32
 * (docs.tigera.io/calico/latest/reference/resources/: tier, globalnetworkpolicy, stagedglobalnetworkpolicy,
 * globalnetworkset, hostendpoint; the rule, entity-rule, ICMP and port tables on the policy pages) and
 * docs.tigera.io/calico/latest/network-policy/policy-tiers/tiered-policy (the built-in tiers). It is not
 * Calico's CRD: those files are served by no package registry reachable here, and copies of Calico's
 * repository may not be committed to microseg, so this module is what the tests check against.
 *
 * What it states:
 * - Fields: the fields each resource's reference table defines, and no others (additionalProperties false
 *   everywhere, as `kubectl apply --validate=strict` treats an unknown field as an error). Enterprise-only
 *   fields (e.g. GlobalNetworkSet allowedEgressDomains, Rule http on plain Calico) are left out on purpose:
 *   the export targets Calico Open Source. metadata is narrowed to what microseg writes (name, labels,
 *   annotations).
 * - Required fields: apiVersion, kind, metadata.name, spec; rule action; HostEndpoint node and
 *   interfaceName or expectedIPs.
 * - Enums: rule action Allow | Deny | Log | Pass; types Ingress | Egress; protocol TCP | UDP | ICMP | ICMPv6 |
 *   SCTP | UDPLite or a number 1-255; ipVersion 4 | 6; Tier defaultAction Deny | Pass; staged stagedAction
 *   Set | Delete | Learn | Ignore.
 * - Tiers (tiered-policy page): Calico's own tiers keep their fixed order and default action, kube-admin
 *   1,000 Pass, default 1,000,000 Deny, kube-baseline 10,000,000 Pass; (microseg's statement) a tier order
 *   is a number >= 0.
 * - Names: tiers are DNS labels; policy names are lower-case alphanumerics with `-` and `.`, at most 253
 *   characters (microseg's stricter statement: the docs also allow `_`, which a Kubernetes object name does
 *   not), and, as the docs' tiered examples write them, a policy in a tier other than `default` is named
 *   `<tier>.<name>`.
 * - Ports: an integer 0-65535, a range "min:max" with min <= max, or a named port; ports need a rule
 *   protocol that has ports (TCP, UDP, SCTP, UDPLite). ICMP type 0-254, code 0-255, code only with type,
 *   icmp only with protocol ICMP/ICMPv6.
 * - Nets: valid IPv4/IPv6 CIDRs (or addresses); with ipVersion set they are of that family.
 * - Policies: ingress rules need `Ingress` in types, egress rules `Egress`; doNotTrack and preDNAT not
 *   both, either needs applyOnForward, preDNAT has no egress.
 */

type Obj = Record<string, unknown>;
type Schema = Record<string, unknown>;

export const CALICO_API_VERSION = 'projectcalico.org/v3';

/** Calico's built-in tiers as the tiered-policy page states them (order, defaultAction). */
export const CALICO_BUILTIN_TIERS: Readonly<Record<string, { order: number; defaultAction: 'Pass' | 'Deny' }>> = {
  'kube-admin': { order: 1_000, defaultAction: 'Pass' },
  default: { order: 1_000_000, defaultAction: 'Deny' },
  'kube-baseline': { order: 10_000_000, defaultAction: 'Pass' },
};

const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false });
const str: Schema = { type: 'string' };
const strings: Schema = { type: 'array', items: str };
const stringMap: Schema = { type: 'object', additionalProperties: str };
const cidrs: Schema = { type: 'array', items: { type: 'string', format: 'cidr' } };

const metadata = obj({ name: { type: 'string', minLength: 1, maxLength: 253 }, labels: stringMap, annotations: stringMap }, ['name']);
const port: Schema = {
  oneOf: [
    { type: 'integer', minimum: 0, maximum: 65535 },
    { type: 'string', format: 'port-range' },
    { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', not: { pattern: '^[0-9]+$' } },
  ],
};
const protocol: Schema = { oneOf: [{ type: 'string', enum: ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite'] }, { type: 'integer', minimum: 1, maximum: 255 }] };
const icmp = obj({ type: { type: 'integer', minimum: 0, maximum: 254 }, code: { type: 'integer', minimum: 0, maximum: 255 } });
const entityRule = obj({
  nets: cidrs,
  notNets: cidrs,
  selector: str,
  notSelector: str,
  namespaceSelector: str,
  ports: { type: 'array', items: port },
  notPorts: { type: 'array', items: port },
  serviceAccounts: obj({ names: strings, selector: str }),
  services: obj({ name: str, namespace: str }, ['name']),
});
const rule = obj(
  {
    metadata: obj({ annotations: stringMap }),
    action: { type: 'string', enum: ['Allow', 'Deny', 'Log', 'Pass'] },
    protocol,
    notProtocol: protocol,
    icmp,
    notICMP: icmp,
    ipVersion: { type: 'integer', enum: [4, 6] },
    source: entityRule,
    destination: entityRule,
  },
  ['action'],
);
const policySpec = (staged: boolean): Schema =>
  obj({
    order: { type: 'number' },
    tier: { type: 'string', minLength: 1 },
    selector: str,
    namespaceSelector: str,
    serviceAccountSelector: str,
    types: { type: 'array', items: { type: 'string', enum: ['Ingress', 'Egress'] }, uniqueItems: true },
    ingress: { type: 'array', items: rule },
    egress: { type: 'array', items: rule },
    doNotTrack: { type: 'boolean' },
    preDNAT: { type: 'boolean' },
    applyOnForward: { type: 'boolean' },
    performanceHints: { type: 'array', items: { type: 'string', enum: ['AssumeNeededOnEveryNode'] } },
    ...(staged ? { stagedAction: { type: 'string', enum: ['Set', 'Delete', 'Learn', 'Ignore'] } } : {}),
  });
const resource = (kind: string, spec: Schema): Schema => obj({ apiVersion: { type: 'string', const: CALICO_API_VERSION }, kind: { type: 'string', const: kind }, metadata, spec }, ['apiVersion', 'kind', 'metadata', 'spec']);

/** The JSON Schema of each kind (draft-07, for ajv). */
export const CALICO_SCHEMAS: Readonly<Record<string, Schema>> = {
  Tier: resource('Tier', obj({ order: { type: 'number', minimum: 0 }, defaultAction: { type: 'string', enum: ['Deny', 'Pass'] } })),
  GlobalNetworkPolicy: resource('GlobalNetworkPolicy', policySpec(false)),
  StagedGlobalNetworkPolicy: resource('StagedGlobalNetworkPolicy', policySpec(true)),
  GlobalNetworkSet: resource('GlobalNetworkSet', obj({ nets: cidrs })),
  HostEndpoint: resource(
    'HostEndpoint',
    obj(
      {
        node: { type: 'string', minLength: 1 },
        interfaceName: str,
        expectedIPs: { type: 'array', items: { type: 'string', format: 'ip' } },
        profiles: strings,
        ports: { type: 'array', items: obj({ name: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 1, maximum: 65535 }, protocol }, ['name', 'port', 'protocol']) },
      },
      ['node'],
    ),
  ),
};

const ajv = new Ajv({ allErrors: true, strict: true });
ajv.addFormat('cidr', (s: string) => parseCidr(s) !== undefined);
ajv.addFormat('ip', (s: string) => parseIp(s) !== undefined);
ajv.addFormat('port-range', (s: string) => {
  const m = /^(\d+):(\d+)$/.exec(s);
  return !!m && Number(m[1]) <= Number(m[2]) && Number(m[2]) <= 65535;
});
const validators: Record<string, ValidateFunction> = Object.fromEntries(Object.entries(CALICO_SCHEMAS).map(([k, s]) => [k, ajv.compile(s)]));

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const POLICY_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PORTED = new Set<unknown>(['TCP', 'UDP', 'SCTP', 'UDPLite', 6, 17, 132, 136]);
const ICMPS = new Set<unknown>(['ICMP', 'ICMPv6', 1, 58]);

/** The rules the reference pages state beyond single fields (run only on objects the schema accepts). */
function semanticErrors(m: Obj, at: string): string[] {
  const out: string[] = [];
  const name = (m.metadata as { name: string }).name;
  const spec = m.spec as Obj;
  switch (m.kind) {
    case 'Tier': {
      if (!DNS_LABEL.test(name) || name.length > 63) out.push(`${at}: a tier name is a DNS label`);
      const builtin = CALICO_BUILTIN_TIERS[name];
      if (builtin && spec.defaultAction !== builtin.defaultAction) out.push(`${at}: tier ${name} has defaultAction ${builtin.defaultAction}`);
      if (builtin && spec.order !== builtin.order) out.push(`${at}: tier ${name} has order ${builtin.order}`);
      break;
    }
    case 'GlobalNetworkPolicy':
    case 'StagedGlobalNetworkPolicy': {
      const tier = (spec.tier as string | undefined) ?? 'default';
      if (!POLICY_NAME.test(name)) out.push(`${at}: a policy name is lower-case alphanumerics, '-' and '.'`);
      if (tier !== 'default' && !name.startsWith(`${tier}.`)) out.push(`${at}: a policy in tier ${tier} is named ${tier}.<name>`);
      const types = (spec.types as string[] | undefined) ?? [];
      if ((spec.ingress as unknown[] | undefined)?.length && spec.types && !types.includes('Ingress')) out.push(`${at}: ingress rules need Ingress in types`);
      if ((spec.egress as unknown[] | undefined)?.length && spec.types && !types.includes('Egress')) out.push(`${at}: egress rules need Egress in types`);
      if (spec.doNotTrack === true && spec.preDNAT === true) out.push(`${at}: doNotTrack and preDNAT are exclusive`);
      if ((spec.doNotTrack === true || spec.preDNAT === true) && spec.applyOnForward !== true) out.push(`${at}: doNotTrack and preDNAT need applyOnForward`);
      if (spec.preDNAT === true && ((spec.egress as unknown[] | undefined)?.length || types.includes('Egress'))) out.push(`${at}: a preDNAT policy has no egress`);
      for (const dir of ['ingress', 'egress'] as const)
        ((spec[dir] as Obj[] | undefined) ?? []).forEach((r, i) => {
          const where = `${at}.spec.${dir}[${i}]`;
          for (const side of ['source', 'destination'] as const) {
            const e = r[side] as Obj | undefined;
            if (!e) continue;
            if (((e.ports as unknown[] | undefined)?.length || (e.notPorts as unknown[] | undefined)?.length) && !PORTED.has(r.protocol)) out.push(`${where}.${side}: ports need protocol TCP, UDP, SCTP or UDPLite`);
            if (r.ipVersion !== undefined)
              for (const n of [...((e.nets as string[] | undefined) ?? []), ...((e.notNets as string[] | undefined) ?? [])])
                if (parseCidr(n)!.v !== r.ipVersion) out.push(`${where}.${side}: ${n} is not IPv${String(r.ipVersion)}`);
          }
          for (const k of ['icmp', 'notICMP'] as const) {
            const ic = r[k] as Obj | undefined;
            if (!ic) continue;
            if (!ICMPS.has(r.protocol)) out.push(`${where}.${k}: needs protocol ICMP or ICMPv6`);
            if (ic.code !== undefined && ic.type === undefined) out.push(`${where}.${k}: code needs type`);
          }
        });
      break;
    }
    case 'GlobalNetworkSet':
    case 'HostEndpoint':
      if (!DNS_SUBDOMAIN.test(name)) out.push(`${at}: the name is a DNS subdomain`);
      if (m.kind === 'HostEndpoint' && !(spec.interfaceName as string | undefined)?.length && !(spec.expectedIPs as unknown[] | undefined)?.length) out.push(`${at}: a HostEndpoint names interfaceName or expectedIPs`);
      break;
  }
  return out;
}

/** Every way one object breaks microseg's statement of the Calico API ([] when it keeps it). */
export function calicoObjectErrors(m: Obj): string[] {
  const validate = validators[m.kind as string];
  const at = String((m.metadata as { name?: unknown } | undefined)?.name ?? '?');
  if (!validate || m.apiVersion !== CALICO_API_VERSION) return [`${at}: no Calico schema for ${String(m.apiVersion)} ${String(m.kind)}`];
  if (!validate(m)) return (validate.errors ?? []).map((e) => `${at}${e.instancePath} ${e.message ?? ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
  return semanticErrors(m, at);
}
