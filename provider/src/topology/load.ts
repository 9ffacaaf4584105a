import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { validateSpec } from '../engine';
import { definitionsByKind, flowProtocol, identityOf, isKind, kinds, Kind } from '../model';
import { resourceToken } from '../model/define';
import { unknownKeys } from '../model/unknown-keys';
import { fromManifest, KUBERNETES_TYPES, parsePulumiKubernetesType } from '../kubernetes/manifests';

/**
 * Topology files: YAML in the shape of a Pulumi YAML program (`resources:` name → `{type, properties}`,
 * `${name}` and `${name.property}` references) plus `expectations:`. Property names are those of the
 * Pulumi schema: both come from the model's single definitions, and each object is validated by the
 * same engine validation the provider's Check uses, so a file that loads here also previews cleanly.
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
  /** Validated inputs with defaults applied. */
  spec: Record<string, unknown>;
}

/** What an expectation expects: a verdict, or `deny` (drop or reject). */
export type ExpectedVerdict = 'allow' | 'drop' | 'reject' | 'deny';

export interface Expectation {
  /** Where it was declared: `expectations[3]`, or `resources.KEY` for a ConnectivityAssertion resource. */
  path: string;
  /** Source as the engine resolves it (`vm:NAME`, `workload:CLUSTER/NS/NAME`, `lb:NAME`, an IP...). */
  from: string;
  /** Destination as the engine resolves it. */
  to: string;
  /** Source and destination as written in the file, for output. */
  fromLabel: string;
  toLabel: string;
  protocol: z.output<typeof flowProtocol>;
  port?: number;
  expect: ExpectedVerdict;
  /** `policy/rule` expected to decide, or `default`; policy names are backend names. */
  rule?: string;
  /** `policy/rule`, `default` or `none` (side not managed or not reached) expected at the source firewall. */
  sourceRule?: string;
  /** The same at the destination firewall. */
  destinationRule?: string;
  description?: string;
}

export interface Topology {
  objects: TopologyObject[];
  expectations: Expectation[];
  /** Provider configuration given under `config:` without the `microseg:` prefix (e.g. `defaultAction`). */
  config: Record<string, unknown>;
  /** The default action of the default rule (`config: microseg:defaultAction`, default drop). */
  defaultAction: 'allow' | 'drop';
  /** Non-blocking remarks found while loading (e.g. validation warnings of one object). */
  warnings: TopologyProblem[];
}

export type TopologyResult = { ok: true; topology: Topology } | { ok: false; problems: TopologyProblem[] };

const ENDPOINT_KINDS: readonly Kind[] = ['VirtualMachine', 'Workload', 'LoadBalancer'];

const expectationSchema = z
  .object({
    from: z.string().min(1).describe('Source: a resource name of this file (VM, Workload, LoadBalancer) or an IP.'),
    to: z.string().min(1).describe('Destination: a resource name of this file (VM, Workload, LoadBalancer) or an IP.'),
    protocol: flowProtocol.default('tcp'),
    port: z.number().int().min(0).max(65535).optional(),
    expect: z.enum(['allow', 'drop', 'reject', 'deny']),
    rule: z.string().min(1).optional(),
    sourceRule: z.string().min(1).optional(),
    destinationRule: z.string().min(1).optional(),
    description: z.string().optional(),
  })
  .strict();

const resourceSchema = z
  .object({
    type: z.string(),
    properties: z.record(z.string(), z.unknown()).optional(),
    // Accepted so that a Pulumi YAML program can be tested as is; resource options do not affect policy.
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const fileSchema = z
  .object({
    name: z.string().optional(),
    description: z.string().optional(),
    runtime: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    config: z.record(z.string(), z.unknown()).optional(),
    resources: z.record(z.string(), resourceSchema),
    outputs: z.record(z.string(), z.unknown()).optional(),
    expectations: z.array(z.unknown()).optional(),
  })
  .strict();

/** Renders a path as `resources.web.properties.rules[0].action`; keys that are not identifiers are quoted. */
export function renderPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? String(s) : /^[A-Za-z_][\w-]*$/.test(String(s)) ? `.${String(s)}` : `[${JSON.stringify(String(s))}]`;
  }
  return out;
}

/** Joins a base path and a relative one (`rules[0].action`, `[2]` or empty). */
function joinPath(base: string, rel: string): string {
  if (rel === '') return base;
  if (base === '') return rel;
  return rel.startsWith('[') ? base + rel : `${base}.${rel}`;
}

const REF_BODY = '([A-Za-z0-9_-]+)(?:\\.([A-Za-z0-9_.\\[\\]-]+))?';
const WHOLE_REF = new RegExp(`^\\$\\{${REF_BODY}\\}$`);
const ANY_REF = new RegExp(`\\$\\{${REF_BODY}\\}`, 'g');

/** Splits `interfaces[0].ip` into `['interfaces', 0, 'ip']`. */
function propertySegments(prop: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const part of prop.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) return [prop];
    if (m[1]) out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** `microseg:index:Workload` or the shorthand `microseg:Workload` (as Pulumi YAML allows) → `Workload`. */
function kindOfType(type: string): Kind | undefined {
  const m = /^microseg:(?:index:)?([A-Za-z]+)$/.exec(type);
  return m && isKind(m[1]) ? m[1] : undefined;
}

/** A config value, either plain (`microseg:defaultAction: allow`) or Pulumi-YAML style (`{default: allow}`). */
function configValue(v: unknown): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if ('value' in o) return o.value;
    if ('default' in o) return o.default;
  }
  return v;
}

/**
 * Parses and validates a topology file. Every problem is reported at once with its path in the file;
 * nothing throws for user errors.
 */
export function loadTopology(text: string): TopologyResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const at = lines.linePos(e.pos[0]);
        return { path: `line ${at.line}, column ${at.col}`, message: `YAML syntax: ${e.message.split('\n')[0]}` };
      }),
    };
  }
  const parsed = fileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    return { ok: false, problems: parsed.error.issues.flatMap((i) => issueProblems('', i)) };
  }
  const file = parsed.data;
  const problems: TopologyProblem[] = [];
  const warnings: TopologyProblem[] = [];

  // Pass 1: kinds and names, so references resolve in any order.
  const entries = new Map<string, { kind: Kind; raw: Record<string, unknown> }>();
  const manifests: [string, { apiVersion: string; kind: string }, Record<string, unknown>][] = [];
  for (const [key, res] of Object.entries(file.resources)) {
    const kind = kindOfType(res.type);
    if (!kind) {
      // Kubernetes objects typed as pulumi-kubernetes types them: converted below, once clusters are known.
      const k8s = parsePulumiKubernetesType(res.type);
      if (k8s) {
        manifests.push([key, k8s, res.properties ?? {}]);
        continue;
      }
      problems.push({ path: `resources.${key}.type`, message: `unknown type "${res.type}"; expected one of ${[...kinds.map(resourceToken), ...Object.values(KUBERNETES_TYPES)].join(', ')}` });
      continue;
    }
    // As the provider autonames from the Pulumi resource name, the key is the default backend name.
    entries.set(key, { kind, raw: { name: key, ...(res.properties ?? {}) } });
  }
  // Identities (`cluster/namespace/name` for workloads) are built from possibly referenced fields, so
  // they are resolved lazily, with a guard against references that loop.
  const identities = new Map<string, string | undefined>();
  const resolving = new Set<string>();
  const identity = (key: string): string | undefined => {
    if (identities.has(key)) return identities.get(key);
    const t = entries.get(key);
    if (!t || resolving.has(key)) return undefined;
    resolving.add(key);
    const field = (f: string): string | undefined => {
      const v = substitute(t.raw[f], `resources.${key}.properties.${f}`, []);
      return typeof v === 'string' ? v : undefined;
    };
    const id = identityOf(t.kind, { name: field('name'), cluster: field('cluster'), namespace: field('namespace'), policy: field('policy') });
    resolving.delete(key);
    identities.set(key, id);
    return id;
  };

  const resolveRef = (ref: string, prop: string | undefined, path: string, sink: TopologyProblem[]): unknown => {
    const target = entries.get(ref);
    if (!target) {
      sink.push({ path, message: `\${${ref}${prop ? `.${prop}` : ''}} refers to no resource of this file; defined: ${[...entries.keys()].join(', ') || '(none)'}` });
      return undefined;
    }
    // `${x}` and `${x.id}` are the backend identity, as the provider's resource id is.
    if (!prop || prop === 'id') {
      const id = identity(ref);
      if (id === undefined) sink.push({ path, message: `\${${ref}} cannot be resolved: its name refers back to itself` });
      return id;
    }
    const value = propertySegments(prop).reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined), target.raw);
    if (value === undefined) {
      sink.push({ path, message: `\${${ref}.${prop}}: ${ref} has no input property "${prop}" (outputs such as allocated IPs cannot be referenced in a topology file)` });
      return undefined;
    }
    // The referenced property may itself hold a reference; a chain that comes back is a loop.
    const link = `${ref}.${prop}`;
    if (following.has(link)) {
      sink.push({ path, message: `\${${link}} refers back to itself through other references` });
      return undefined;
    }
    following.add(link);
    try {
      return substitute(value, path, sink);
    } finally {
      following.delete(link);
    }
  };
  const following = new Set<string>();
  const substitute = (v: unknown, path: string, sink: TopologyProblem[]): unknown => {
    if (typeof v === 'string') {
      const whole = WHOLE_REF.exec(v);
      if (whole) return resolveRef(whole[1], whole[2], path, sink);
      return v.replace(ANY_REF, (_m, ref: string, prop?: string) => String(resolveRef(ref, prop, path, sink) ?? ''));
    }
    if (Array.isArray(v)) return v.map((e, i) => substitute(e, `${path}[${i}]`, sink));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, substitute(e, renderPath([path, k]), sink)]));
    return v;
  };

  // Kubernetes objects belong to the cluster named by the annotation microseg.io/cluster, or to the only
  // KubernetesCluster of the file.
  const clusters = [...entries].filter(([, e]) => e.kind === 'KubernetesCluster').map(([k]) => k);
  for (const [key, type, props] of manifests) {
    const meta = (props.metadata ?? {}) as { annotations?: Record<string, unknown> };
    const annotated = meta.annotations?.['microseg.io/cluster'];
    const cluster = typeof annotated === 'string' ? annotated : clusters.length === 1 ? identity(clusters[0]!) : undefined;
    if (cluster === undefined) {
      problems.push({ path: `resources.${key}.properties.metadata.annotations`, message: `the file declares ${clusters.length} KubernetesClusters; annotate the object with microseg.io/cluster: NAME to say which one it belongs to` });
      continue;
    }
    const r = fromManifest({ ...type, ...props }, cluster);
    if ('problem' in r) problems.push({ path: joinPath(`resources.${key}.properties`, r.problem.path), message: r.problem.message });
    else if ('object' in r) entries.set(key, { kind: r.object.kind, raw: r.object.spec });
  }

  // Pass 2: substitute references and validate each object as the provider's Check does.
  const objects: TopologyObject[] = [];
  for (const [key, { kind, raw }] of entries) {
    const base = `resources.${key}.properties`;
    const before = problems.length;
    const spec = substitute(raw, base, problems) as Record<string, unknown>;
    if (problems.length > before) continue;
    const result = validateSpec(kind, spec);
    for (const p of result.problems) (p.severity === 'warning' ? warnings : problems).push({ path: joinPath(base, p.path), message: p.message });
    if (!result.ok) continue;
    const data = result.value as Record<string, unknown>;
    // The model's schemas strip unknown keys (as Pulumi does with extra inputs); in a hand-written file a
    // misspelt property silently changes policy, so it is an error here.
    const unknown = unknownKeys(spec, data);
    for (const u of unknown) {
      const top = u.length === 1 ? `; expected one of ${Object.keys(definitionsByKind[kind].inputs.shape).join(', ')}` : '';
      problems.push({ path: joinPath(base, renderPath(u)), message: `unknown property "${String(u[u.length - 1])}" of ${kind}${top}` });
    }
    if (unknown.length > 0) continue;
    objects.push({ key, kind, identity: identityOf(kind, data as { name?: string }), spec: data });
  }
  const seen = new Map<string, string>();
  for (const o of objects) {
    const id = `${o.kind}/${o.identity}`;
    const prev = seen.get(id);
    if (prev !== undefined) problems.push({ path: `resources.${o.key}.properties.name`, message: `${o.kind} "${o.identity}" is already declared by resource ${prev}; backend names must be unique per kind` });
    else seen.set(id, o.key);
  }

  // Expectations: `from`/`to` name a resource of this file (or `${key}`), else they are passed to the
  // engine as they are (an IP, `vm:NAME`, a pod name...).
  const endpoint = (v: string, path: string): string => {
    // `vm:KEY`, `vm:KEY#i`, `lb:KEY` and `workload:KEY` may name a resource of this file by its key.
    const prefixed = /^(vm|lb|workload):([^#]+)(#\d+)?$/.exec(v);
    if (prefixed) {
      const t = entries.get(prefixed[2]!);
      const kind = { vm: 'VirtualMachine', lb: 'LoadBalancer', workload: 'Workload' }[prefixed[1] as 'vm' | 'lb' | 'workload'];
      return t && t.kind === kind ? `${prefixed[1]}:${identity(prefixed[2]!) ?? prefixed[2]}${prefixed[3] ?? ''}` : v;
    }
    const hashed = /^([^#:]+)#(\d+)$/.exec(v);
    if (hashed && entries.get(hashed[1]!)?.kind === 'VirtualMachine') return `vm:${identity(hashed[1]!) ?? hashed[1]}#${hashed[2]}`;
    const whole = WHOLE_REF.exec(v);
    const key = whole && !whole[2] ? whole[1] : v;
    const target = entries.get(key);
    if (!target) return v;
    if (!ENDPOINT_KINDS.includes(target.kind)) {
      problems.push({ path, message: `"${key}" is a ${target.kind}; expected a VirtualMachine, Workload or LoadBalancer of this file, or an IP` });
      return v;
    }
    const prefix = target.kind === 'VirtualMachine' ? 'vm' : target.kind === 'Workload' ? 'workload' : 'lb';
    return `${prefix}:${identity(key)}`;
  };
  const ruleName = (rule: string): string => {
    // Let `rule:` name the policy by its resource key as well as by its backend name.
    const slash = rule.indexOf('/');
    if (slash < 0) return rule;
    const key = rule.slice(0, slash);
    const t = entries.get(key);
    return t && (t.kind === 'FirewallPolicy' || t.kind === 'QuarantinePolicy') ? `${identity(key)}${rule.slice(slash)}` : rule;
  };
  const expectations: Expectation[] = [];
  (file.expectations ?? []).forEach((raw, index) => {
    const path = `expectations[${index}]`;
    const r = expectationSchema.safeParse(raw);
    if (!r.success) {
      for (const i of r.error.issues) problems.push(...issueProblems(path, i));
      return;
    }
    const e = r.data;
    if (e.rule !== undefined && e.rule !== 'default' && !/^[^/]+\/.+$/.test(e.rule)) {
      problems.push({ path: `${path}.rule`, message: `"${e.rule}" is not a rule reference; expected "policy/rule" or "default"` });
    }
    for (const side of ['sourceRule', 'destinationRule'] as const) {
      const v = e[side];
      if (v !== undefined && v !== 'default' && v !== 'none' && !/^[^/]+\/.+$/.test(v)) {
        problems.push({ path: `${path}.${side}`, message: `"${v}" is not a rule reference; expected "policy/rule", "default" or "none" (that side is not managed or not reached)` });
      }
    }
    if (e.port === undefined && (e.protocol === 'tcp' || e.protocol === 'udp' || e.protocol === 'sctp')) {
      problems.push({ path: `${path}.port`, message: `protocol ${e.protocol} needs a port: the destination port decides which rules match; expected e.g. port: 443` });
    }
    if (e.port !== undefined && (e.protocol === 'icmp' || e.protocol === 'icmpv6')) {
      problems.push({ path: `${path}.port`, message: `a port is meaningless for ${e.protocol}; expected no port` });
    }
    expectations.push({
      path,
      from: endpoint(e.from, `${path}.from`),
      to: endpoint(e.to, `${path}.to`),
      fromLabel: e.from,
      toLabel: e.to,
      protocol: e.protocol,
      ...(e.port !== undefined ? { port: e.port } : {}),
      expect: e.expect,
      ...(e.rule !== undefined ? { rule: ruleName(e.rule) } : {}),
      ...(e.sourceRule !== undefined ? { sourceRule: ruleName(e.sourceRule) } : {}),
      ...(e.destinationRule !== undefined ? { destinationRule: ruleName(e.destinationRule) } : {}),
      ...(e.description !== undefined ? { description: e.description } : {}),
    });
  });
  // ConnectivityAssertion resources are expectations too: the file tests what `pulumi preview` would check.
  for (const o of objects) {
    if (o.kind !== 'ConnectivityAssertion') continue;
    const a = o.spec as { from: string; to: string; protocol: z.output<typeof flowProtocol>; port?: number; expect: 'allow' | 'deny' };
    expectations.push({ path: `resources.${o.key}`, from: a.from, to: a.to, fromLabel: a.from, toLabel: a.to, protocol: a.protocol, ...(a.port !== undefined ? { port: a.port } : {}), expect: a.expect });
  }

  const config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(file.config ?? {})) config[k.replace(/^microseg:/, '')] = configValue(v);
  let defaultAction: 'allow' | 'drop' = 'drop';
  if (config.defaultAction !== undefined) {
    if (config.defaultAction === 'allow' || config.defaultAction === 'drop') defaultAction = config.defaultAction;
    else problems.push({ path: 'config["microseg:defaultAction"]', message: `${JSON.stringify(config.defaultAction)} is not a default action; expected "drop" (zero trust) or "allow"` });
  }

  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, topology: { objects, expectations, config, defaultAction, warnings } };
}

/** Problems of one zod issue of the file structure; an unknown key is reported at its own path. */
function issueProblems(base: string, i: z.core.$ZodIssue): TopologyProblem[] {
  const at = joinPath(base, renderPath(i.path));
  if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ path: joinPath(at, renderPath([k])) || '(file)', message: `unknown key "${k}"` }));
  return [{ path: at || '(file)', message: i.message }];
}

