import { z } from 'zod';
import { FunctionDefinition, PACKAGE_NAME, ResourceDefinition, resourceToken } from '../model/define';

/** A JSON Schema node as zod emits it (the subset microseg's models use). */
interface JsonSchema {
  type?: string | string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: (string | number)[];
  const?: string | number | boolean;
  default?: unknown;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
}

/** A Pulumi schema type or property spec. */
export interface PulumiPropertySpec {
  type?: string;
  $ref?: string;
  items?: PulumiPropertySpec;
  additionalProperties?: PulumiPropertySpec;
  oneOf?: PulumiPropertySpec[];
  description?: string;
  default?: string | number | boolean;
  replaceOnChanges?: boolean;
  secret?: boolean;
  willReplaceOnChanges?: boolean;
}

export interface PulumiObjectSpec {
  type: 'object';
  description?: string;
  properties: Record<string, PulumiPropertySpec>;
  required?: string[];
}

export interface PulumiPackageSpec {
  name: string;
  displayName: string;
  version?: string;
  /** Where `pulumi` downloads the plugin when it is not installed (set at package time; absent in the repo). */
  pluginDownloadURL?: string;
  description: string;
  keywords: string[];
  homepage: string;
  license: string;
  repository: string;
  publisher: string;
  meta: { moduleFormat: string };
  config: { variables: Record<string, PulumiPropertySpec>; defaults?: string[] };
  provider: { description: string; properties: Record<string, PulumiPropertySpec>; inputProperties: Record<string, PulumiPropertySpec> };
  types: Record<string, PulumiObjectSpec>;
  resources: Record<string, PulumiObjectSpec & { inputProperties: Record<string, PulumiPropertySpec>; requiredInputs?: string[] }>;
  functions: Record<string, { description: string; inputs: PulumiObjectSpec; outputs: PulumiObjectSpec }>;
  language: Record<string, unknown>;
}

/** Converts zod's JSON Schema into Pulumi property specs, collecting named object types. */
class Converter {
  readonly types: Record<string, PulumiObjectSpec> = {};

  constructor(private readonly owner: string) {}

  property(s: JsonSchema, hint: string, defs: Record<string, JsonSchema>): PulumiPropertySpec {
    const spec = this.shape(s, hint, defs);
    if (s.description && !spec.description) spec.description = s.description;
    if (s.default !== undefined && (typeof s.default === 'string' || typeof s.default === 'number' || typeof s.default === 'boolean')) {
      spec.default = s.default;
    }
    return spec;
  }

  private shape(s: JsonSchema, hint: string, defs: Record<string, JsonSchema>): PulumiPropertySpec {
    if (s.$ref) {
      const id = s.$ref.replace('#/$defs/', '');
      this.namedType(id, defs[id] ?? {}, defs);
      return { $ref: `#/types/${resourceToken(id)}` };
    }
    const alts = s.anyOf ?? s.oneOf;
    if (alts) {
      const nonNull = alts.filter((a) => a.type !== 'null');
      if (nonNull.length === 1) return this.shape(nonNull[0], hint, defs);
      return { oneOf: nonNull.map((a, i) => this.shape(a, `${hint}${i}`, defs)) };
    }
    if (s.enum || s.const !== undefined) {
      const values = s.enum ?? [s.const as string | number];
      const type = typeof values[0] === 'number' ? 'number' : 'string';
      const allowed = values.map((v) => `\`${String(v)}\``).join(', ');
      return { type, description: s.description ? `${s.description} One of ${allowed}.` : `One of ${allowed}.` };
    }
    const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
    switch (type) {
      case 'string':
      case 'boolean':
        return { type };
      case 'integer':
        return { type: 'integer' };
      case 'number':
        return { type: 'number' };
      case 'array':
        return { type: 'array', items: s.items ? this.shape(s.items, hint, defs) : { $ref: 'pulumi.json#/Any' } };
      case 'object':
        if (s.properties && Object.keys(s.properties).length > 0) {
          const name = `${this.owner}${hint.charAt(0).toUpperCase()}${hint.slice(1)}`;
          this.namedType(name, s, defs);
          return { $ref: `#/types/${resourceToken(name)}` };
        }
        if (s.additionalProperties && typeof s.additionalProperties === 'object') {
          return { type: 'object', additionalProperties: this.shape(s.additionalProperties, hint, defs) };
        }
        return { $ref: 'pulumi.json#/Any' };
      default:
        return { $ref: 'pulumi.json#/Any' };
    }
  }

  private namedType(id: string, s: JsonSchema, defs: Record<string, JsonSchema>): void {
    const token = resourceToken(id);
    if (this.types[token]) return;
    const obj: PulumiObjectSpec = { type: 'object', properties: {} };
    this.types[token] = obj; // registered first so recursive types terminate
    if (s.description) obj.description = s.description;
    for (const [k, v] of Object.entries(s.properties ?? {})) obj.properties[k] = this.property(v, `${id}${k}`, defs);
    if (s.required?.length) obj.required = [...s.required].sort();
  }

  object(schema: z.ZodObject, io: 'input' | 'output'): { properties: Record<string, PulumiPropertySpec>; required: string[] } {
    const js = z.toJSONSchema(schema, { io, unrepresentable: 'any', reused: 'inline' }) as JsonSchema;
    const defs = js.$defs ?? {};
    const properties: Record<string, PulumiPropertySpec> = {};
    for (const [k, v] of Object.entries(js.properties ?? {})) properties[k] = this.property(v, k, defs);
    return { properties, required: [...(js.required ?? [])].sort() };
  }
}

export interface SchemaSources {
  version: string;
  pluginDownloadURL?: string;
  resources: readonly ResourceDefinition[];
  functions: readonly FunctionDefinition[];
  providerConfig: z.ZodObject;
  /** Configuration keys marked secret. */
  providerConfigSecrets?: readonly string[];
  providerDescription: string;
}

/** Builds the Pulumi package schema from the model's single definitions. */
export function buildPulumiSchema(src: SchemaSources): PulumiPackageSpec {
  const types: Record<string, PulumiObjectSpec> = {};
  const merge = (c: Converter) => Object.assign(types, c.types);

  const configConv = new Converter('Provider');
  const config = configConv.object(src.providerConfig, 'input');
  for (const key of src.providerConfigSecrets ?? []) if (config.properties[key]) config.properties[key].secret = true;
  merge(configConv);

  const resources: PulumiPackageSpec['resources'] = {};
  for (const def of [...src.resources].sort((a, b) => a.name.localeCompare(b.name))) {
    const conv = new Converter(def.name);
    const inputs = conv.object(def.inputs, 'input');
    const outputs = conv.object(def.outputs, 'output');
    const inOut = conv.object(def.inputs, 'output');
    merge(conv);
    for (const key of def.replaceOnChanges ?? []) {
      if (inputs.properties[key]) inputs.properties[key].replaceOnChanges = true;
      if (inOut.properties[key]) inOut.properties[key].replaceOnChanges = true;
    }
    for (const key of def.secrets ?? []) {
      for (const props of [inputs.properties, outputs.properties, inOut.properties]) if (props[key]) props[key].secret = true;
    }
    resources[resourceToken(def.name)] = {
      type: 'object',
      description: def.description,
      properties: { ...inOut.properties, ...outputs.properties },
      required: [...new Set([...inputs.required, ...outputs.required, ...(def.nameProperty ? [def.nameProperty] : [])])].sort(),
      inputProperties: inputs.properties,
      requiredInputs: inputs.required,
    };
  }

  const functions: PulumiPackageSpec['functions'] = {};
  for (const def of [...src.functions].sort((a, b) => a.name.localeCompare(b.name))) {
    const conv = new Converter(def.name.charAt(0).toUpperCase() + def.name.slice(1));
    const inputs = conv.object(def.inputs, 'input');
    const outputs = conv.object(def.outputs, 'output');
    merge(conv);
    functions[resourceToken(def.name)] = {
      description: def.description,
      inputs: { type: 'object', properties: inputs.properties, ...(inputs.required.length ? { required: inputs.required } : {}) },
      outputs: { type: 'object', properties: outputs.properties, ...(outputs.required.length ? { required: outputs.required } : {}) },
    };
  }

  return {
    name: PACKAGE_NAME,
    displayName: 'microseg',
    version: src.version,
    ...(src.pluginDownloadURL ? { pluginDownloadURL: src.pluginDownloadURL } : {}),
    description: 'Zero-trust micro-segmentation for virtual machines and Kubernetes pods: one policy model for both worlds.',
    keywords: ['pulumi', 'microseg', 'category/network', 'kind/native', 'firewall', 'micro-segmentation'],
    homepage: 'https://github.com/microseg/microseg',
    license: 'Apache-2.0',
    repository: 'https://github.com/microseg/microseg',
    publisher: 'microseg',
    meta: { moduleFormat: '(.*)' },
    config: { variables: config.properties },
    provider: { description: src.providerDescription, properties: config.properties, inputProperties: config.properties },
    types: Object.fromEntries(Object.entries(types).sort(([a], [b]) => a.localeCompare(b))),
    resources,
    functions,
    language: {
      // No @pulumi/pulumi / pulumi requirement here: the generators then require their own minimum for the code
      // they emit (^3.142.0 for nodejs, >=3.231.0,<4.0.0 for python at pkg v3.259.0). TypeScript and @types/node
      // are the SDK's build tools (devDependencies), at the versions this repository builds it with.
      nodejs: {
        packageName: '@microseg/pulumi',
        packageDescription: 'microseg: micro-segmentation for VMs and pods, as code.',
        typescriptVersion: '^5.9.3',
        devDependencies: { '@types/node': '^22' },
        respectSchemaVersion: true,
      },
      python: { packageName: 'pulumi_microseg', pyproject: { enabled: true }, respectSchemaVersion: true },
      go: { importBasePath: 'github.com/microseg/microseg/sdk/go/microseg', generateResourceContainerTypes: true, respectSchemaVersion: true },
    },
  };
}
