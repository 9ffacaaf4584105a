import Ajv, { type ValidateFunction } from 'ajv';
import * as ipaddr from 'ipaddr.js';

/**
 * microseg's statement, as JSON Schemas, of the Antrea objects the `antrea` export flavor emits
 * (crd.antrea.io/v1beta1 ClusterNetworkPolicy, ClusterGroup, Egress, ExternalIPPool), written by hand from
 * Antrea's public documentation: docs/antrea-network-policy.md (ClusterNetworkPolicy, tiers, priorities,
 * ClusterGroup, rule fields, ICMP), docs/egress.md (Egress, ExternalIPPool) and the crd.antrea.io/v1beta1
 * API types they describe, as of Antrea v2.x. They are not Antrea's CRD files: no package registry reachable
 * here serves those, and repository snapshots may not be committed, so the export is checked against these.
 *
 * Stricter than the apiserver on purpose, as `kubectl apply --validate=strict` would be and then some:
 * - every object and nested object declares its fields and `additionalProperties: false`. Only the API
 *   fields microseg's exporter may use are declared (fqdn, toServices, l7Protocols, serviceAccount,
 *   nodeSelector peers, logLabel, egressIPs, bandwidth, subnetInfo … are API fields it never emits, so
 *   their appearance fails like an unknown field);
 * - required: metadata.name, spec; priority and tier of a policy (Antrea defaults the tier to
 *   application; microseg always names it), action of a rule, appliedTo of an Egress, ipRanges and
 *   nodeSelector of an ExternalIPPool, cidr of an ipBlock, key and operator of a selector requirement;
 * - enums: action Allow/Drop/Reject/Pass, protocol TCP/UDP/SCTP, the six static tier names (microseg
 *   creates no Tier), selector operators In/NotIn/Exists/DoesNotExist;
 * - ranges: priority 1–10000, port and endPort 1–65535, icmpType/icmpCode 0–255;
 * - formats: object names DNS-1123 subdomains (≤ 253), label keys and values as Kubernetes validates them,
 *   named ports IANA service names, ipBlock cidr/except and ClusterGroup ipBlocks CIDRs, egressIP and
 *   ipRange start/end IP addresses; ingress rules carry `from` only, egress rules `to` only.
 * The admission rules of Antrea's webhook that need no cluster (tiers exist, no Pass in baseline, unique
 * rule names, appliedTo in the spec or every rule, group peers alone and existing, except inside the CIDR,
 * endPort after a numeric port, one criterion kind per ClusterGroup, one level of childGroups) are checked
 * over a whole export by the tests themselves (test/unit/kubernetes/export-antrea.test.ts).
 */

export const ANTREA_API_VERSION = 'crd.antrea.io/v1beta1';
export const ANTREA_STATIC_TIERS = ['emergency', 'securityops', 'networkops', 'platform', 'application', 'baseline'] as const;

type Schema = Record<string, unknown>;

const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** A label key: an optional DNS subdomain prefix and `/`, then a name of ≤ 63 alphanumerics, `-`, `_`, `.`. */
const LABEL_KEY = '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
const LABEL_VALUE = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';

const obj = (properties: Record<string, Schema>, required: string[] = [], extra: Schema = {}): Schema => ({ type: 'object', properties, required, additionalProperties: false, ...extra });
const name: Schema = { type: 'string', minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN };
const labels: Schema = { type: 'object', propertyNames: { maxLength: 316, pattern: LABEL_KEY }, additionalProperties: { type: 'string', maxLength: 63, pattern: LABEL_VALUE } };
const selector: Schema = obj({
  matchLabels: labels,
  matchExpressions: {
    type: 'array',
    items: obj({ key: { type: 'string', maxLength: 316, pattern: LABEL_KEY }, operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: { type: 'array', items: { type: 'string', maxLength: 63, pattern: LABEL_VALUE } } }, ['key', 'operator']),
  },
});
const cidr: Schema = { type: 'string', format: 'cidr' };
const ipBlock: Schema = obj({ cidr, except: { type: 'array', minItems: 1, items: cidr } }, ['cidr']);
const port: Schema = { type: 'integer', minimum: 1, maximum: 65535 };
const namedPort: Schema = { type: 'string', minLength: 1, maxLength: 15, pattern: '^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$' };
const appliedTo: Schema = obj({ podSelector: selector, namespaceSelector: selector, group: name }, [], { minProperties: 1 });
const peer: Schema = obj({ podSelector: selector, namespaceSelector: selector, ipBlock, group: name }, [], { minProperties: 1 });
const icmpField: Schema = { type: 'integer', minimum: 0, maximum: 255 };

const rule = (peers: 'from' | 'to'): Schema =>
  obj(
    {
      name: { type: 'string', minLength: 1 },
      action: { type: 'string', enum: ['Allow', 'Drop', 'Reject', 'Pass'] },
      appliedTo: { type: 'array', minItems: 1, items: appliedTo },
      [peers]: { type: 'array', items: peer },
      ports: { type: 'array', minItems: 1, items: obj({ protocol: { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] }, port: { anyOf: [port, namedPort] }, endPort: port }) },
      protocols: { type: 'array', minItems: 1, items: obj({ icmp: obj({ icmpType: icmpField, icmpCode: icmpField }) }, ['icmp']) },
      enableLogging: { type: 'boolean' },
    },
    ['action'],
  );

const root = (kind: string, spec: Schema): Schema =>
  obj({ apiVersion: { type: 'string', const: ANTREA_API_VERSION }, kind: { type: 'string', const: kind }, metadata: obj({ name, labels }, ['name']), spec }, ['apiVersion', 'kind', 'metadata', 'spec']);

export const antreaSchemas: Readonly<Record<'ClusterNetworkPolicy' | 'ClusterGroup' | 'Egress' | 'ExternalIPPool', Schema>> = {
  ClusterNetworkPolicy: root(
    'ClusterNetworkPolicy',
    obj(
      {
        tier: { type: 'string', enum: [...ANTREA_STATIC_TIERS] },
        priority: { type: 'number', minimum: 1, maximum: 10000 },
        appliedTo: { type: 'array', minItems: 1, items: appliedTo },
        ingress: { type: 'array', minItems: 1, items: rule('from') },
        egress: { type: 'array', minItems: 1, items: rule('to') },
      },
      ['tier', 'priority'],
      { anyOf: [{ required: ['ingress'] }, { required: ['egress'] }] },
    ),
  ),
  ClusterGroup: root('ClusterGroup', obj({ podSelector: selector, namespaceSelector: selector, ipBlocks: { type: 'array', minItems: 1, items: ipBlock }, childGroups: { type: 'array', minItems: 1, items: name } }, [], { minProperties: 1 })),
  Egress: root(
    'Egress',
    obj({ appliedTo: obj({ podSelector: selector, namespaceSelector: selector }, [], { minProperties: 1 }), egressIP: { type: 'string', format: 'ip' }, externalIPPool: name }, ['appliedTo'], { anyOf: [{ required: ['egressIP'] }, { required: ['externalIPPool'] }] }),
  ),
  ExternalIPPool: root(
    'ExternalIPPool',
    obj({ ipRanges: { type: 'array', minItems: 1, items: { oneOf: [obj({ cidr }, ['cidr']), obj({ start: { type: 'string', format: 'ip' }, end: { type: 'string', format: 'ip' } }, ['start', 'end'])] } }, nodeSelector: selector }, ['ipRanges', 'nodeSelector']),
  ),
};

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false }) // anyOf: [{ required: [...] }] names properties declared beside it;
ajv.addFormat('ip', (s: string) => ipaddr.isValid(s) && (s.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(s)));
ajv.addFormat('cidr', (s: string) => {
  try {
    ipaddr.parseCIDR(s);
    return s.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(s.split('/')[0]!);
  } catch {
    return false;
  }
});

const validators: Record<string, ValidateFunction> = Object.fromEntries(Object.entries(antreaSchemas).map(([kind, schema]) => [kind, ajv.compile(schema)]));

/** Schema errors of every crd.antrea.io object among `objects` (other API groups are skipped), each prefixed with the object. */
export function antreaSchemaErrors(objects: readonly Record<string, unknown>[]): string[] {
  const out: string[] = [];
  for (const m of objects) {
    if (typeof m.apiVersion !== 'string' || !m.apiVersion.startsWith('crd.antrea.io/')) continue;
    const at = `${String(m.kind)} ${String((m.metadata as { name?: unknown } | undefined)?.name)}`;
    const validate = validators[m.kind as string];
    if (!validate) {
      out.push(`${at}: no schema for this kind`);
      continue;
    }
    if (!validate(m)) out.push(...(validate.errors ?? []).map((e) => `${at}${e.instancePath} ${e.message ?? ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}${e.params && 'allowedValues' in e.params ? ` (${JSON.stringify(e.params.allowedValues)})` : ''}`));
  }
  return out;
}
