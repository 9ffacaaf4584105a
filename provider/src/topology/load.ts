import { parseDocument, YAMLError } from 'yaml';
import { z } from 'zod';
import { definitionsByKind, flowProtocol, identityOf, isKind, Kind } from '../model';
import { resourceToken } from '../model/define';

/**
 * Topology files: YAML in the shape of a Pulumi YAML program (`resources:` name → `{type, properties}`,
 * `${name}` and `${name.property}` references) plus `expectations:`. Property names are those of the
 * Pulumi schema: both come from the model's single definitions.
 */

export interface TopologyProblem {
  /** Path inside the file, e.g. `resources.web.properties.rules[0].action`. */
  path: string;
  message: string;
}

export interface TopologyObject {
  /** Key in `resources:`. */
  key: string;
  kind: Kind;
  /** Backend identity (store key). */
  identity: string;
  spec: Record<string, unknown>;
}

export interface Expectation {
  /** Index in `expectations:`, for messages. */
  index: number;
  from: string;
  to: string;
  protocol: z.output<typeof flowProtocol>;
  port?: number;
  expect: 'allow' | 'drop' | 'reject';
  /** `policy/rule` expected to decide, or `default`. */
  rule?: string;
}

export interface Topology {
  objects: TopologyObject[];
  expectations: Expectation[];
  /** Provider configuration given under `config:` (e.g. `microseg:defaultAction: allow`). */
  config: Record<string, unknown>;
}

export type TopologyResult = { ok: true; topology: Topology } | { ok: false; problems: TopologyProblem[] };

const expectationSchema = z
  .object({
    from: z.string().min(1).describe('Source: a resource name of this file or an IP.'),
    to: z.string().min(1).describe('Destination: a resource name of this file or an IP.'),
    protocol: flowProtocol.default('tcp'),
    port: z.number().int().min(0).max(65535).optional(),
    expect: z.enum(['allow', 'drop', 'reject']),
    rule: z.string().optional(),
  })
  .strict();

const fileSchema = z
  .object({
    name: z.string().optional(),
    description: z.string().optional(),
    runtime: z.string().optional(),
    config: z.record(z.string(), z.unknown()).optional(),
    resources: z.record(z.string(), z.object({ type: z.string(), properties: z.record(z.string(), z.unknown()).optional() }).strict()),
    expectations: z.array(z.unknown()).optional(),
  })
  .strict();

function renderPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? String(s) : /^[A-Za-z_][\w]*$/.test(String(s)) ? `.${String(s)}` : `[${JSON.stringify(String(s))}]`;
  }
  return out;
}

const REF = /\$\{([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_.[\]]+))?\}/g;

/** Parses and validates a topology file; every problem is reported at once with its path. */
export function loadTopology(text: string): TopologyResult {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    return { ok: false, problems: doc.errors.map((e: YAMLError) => ({ path: `line ${e.linePos?.[0].line ?? '?'}`, message: e.message })) };
  }
  const parsed = fileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    return { ok: false, problems: parsed.error.issues.map((i) => ({ path: renderPath(i.path) || '(file)', message: i.message })) };
  }
  const file = parsed.data;
  const problems: TopologyProblem[] = [];

  // Pass 1: kinds, defaults and identities, so references can resolve in any order.
  const entries = new Map<string, { kind: Kind; raw: Record<string, unknown> }>();
  for (const [key, res] of Object.entries(file.resources)) {
    const kind = res.type.replace(/^microseg:index:/, '');
    if (!res.type.startsWith('microseg:index:') || !isKind(kind)) {
      problems.push({ path: `resources.${key}.type`, message: `unknown type "${res.type}"; expected one of ${Object.keys(definitionsByKind).map(resourceToken).join(', ')}` });
      continue;
    }
    entries.set(key, { kind, raw: { name: key, ...(res.properties ?? {}) } });
  }
  const resolveRef = (ref: string, prop: string | undefined, path: string): unknown => {
    const target = entries.get(ref);
    if (!target) {
      problems.push({ path, message: `\${${ref}${prop ? `.${prop}` : ''}} refers to no resource of this file; defined: ${[...entries.keys()].join(', ')}` });
      return undefined;
    }
    if (!prop || prop === 'name' || prop === 'id') return identityOf(target.kind, target.raw as { name?: string });
    const value = prop.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), target.raw);
    if (value === undefined) problems.push({ path, message: `\${${ref}.${prop}}: ${ref} has no input property "${prop}" (outputs cannot be referenced in a topology file)` });
    return value;
  };
  const substitute = (v: unknown, path: string): unknown => {
    if (typeof v === 'string') {
      const whole = /^\$\{([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_.[\]]+))?\}$/.exec(v);
      if (whole) return resolveRef(whole[1], whole[2], path);
      return v.replace(REF, (_m, ref: string, prop?: string) => String(resolveRef(ref, prop, path) ?? ''));
    }
    if (Array.isArray(v)) return v.map((e, i) => substitute(e, `${path}[${i}]`));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, substitute(e, `${path}.${k}`)]));
    return v;
  };

  const objects: TopologyObject[] = [];
  for (const [key, { kind, raw }] of entries) {
    const base = `resources.${key}.properties`;
    const spec = substitute(raw, base) as Record<string, unknown>;
    const result = definitionsByKind[kind].inputs.safeParse(spec);
    if (!result.success) {
      for (const i of result.error.issues) problems.push({ path: `${base}${i.path.length ? (typeof i.path[0] === 'number' ? '' : '.') : ''}${renderPath(i.path)}`, message: i.message });
      continue;
    }
    const data = result.data as Record<string, unknown>;
    objects.push({ key, kind, identity: identityOf(kind, data as { name?: string }), spec: data });
  }

  const endpoint = (v: string): string => {
    const target = entries.get(v);
    if (!target) return v;
    const id = identityOf(target.kind, target.raw as { name?: string });
    if (target.kind === 'VirtualMachine') return `vm:${id}`;
    if (target.kind === 'Workload') return `workload:${id}`;
    if (target.kind === 'LoadBalancer') return `lb:${id}`;
    return v;
  };
  const expectations: Expectation[] = [];
  (file.expectations ?? []).forEach((raw, index) => {
    const r = expectationSchema.safeParse(raw);
    if (!r.success) {
      for (const i of r.error.issues) problems.push({ path: `expectations[${index}]${i.path.length ? '.' : ''}${renderPath(i.path)}`, message: i.message });
      return;
    }
    for (const side of ['from', 'to'] as const) {
      const t = entries.get(r.data[side]);
      if (t && !['VirtualMachine', 'Workload', 'LoadBalancer'].includes(t.kind)) {
        problems.push({ path: `expectations[${index}].${side}`, message: `"${r.data[side]}" is a ${t.kind}; expected a VirtualMachine, Workload, LoadBalancer or an IP` });
      }
    }
    expectations.push({ index, ...r.data, from: endpoint(r.data.from), to: endpoint(r.data.to) });
  });

  const config = Object.fromEntries(Object.entries(file.config ?? {}).map(([k, v]) => [k.replace(/^microseg:/, ''), v]));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, topology: { objects, expectations, config } };
}
