import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FunctionDefinition, ResourceDefinition, resourceToken } from '../model/define';
import { unknownKeys } from '../model/unknown-keys';
import { Backend, BackendError } from './backend';
import { DetailedDiff, diffInputs } from './diff';
import { PropertyMap, PropertyValue, containsUnknowns, formatPath, isObject, isUnknown, rewrapSecrets, secretRedactor, unwrap } from './values';

/** A problem with one property, reported to the engine as a CheckFailure. */
export interface CheckFailure {
  property: string;
  reason: string;
}

/**
 * A create or update that was written but failed to initialise (pulumirpc.ErrorResourceInitFailed): the
 * object exists with these outputs, and the engine keeps it in the state as a partial failure.
 */
export class ResourceInitError extends Error {
  constructor(
    readonly id: string,
    readonly properties: PropertyMap,
    readonly inputs: PropertyMap,
    readonly reasons: readonly string[],
  ) {
    super(reasons.join('; '));
    this.name = 'ResourceInitError';
  }
}

export interface CheckResult {
  inputs: PropertyMap;
  failures: CheckFailure[];
}

export interface DiffResult extends DetailedDiff {
  changed: boolean;
  deleteBeforeReplace: boolean;
}

/** How the engine asks for autonaming (pulumirpc.CheckRequest.AutonamingOptions). */
export interface Autonaming {
  proposedName: string;
  mode: 'propose' | 'enforce' | 'disable';
}

export interface Logger {
  log(severity: 'debug' | 'info' | 'warning' | 'error', message: string, urn?: string): void;
}

/** Opens the backend for a checked provider configuration; `stack` is the Pulumi stack the engine runs. */
export type BackendFactory<C> = (config: C, context: { stack?: string }) => Backend;

/** The stack named by a Pulumi URN (`urn:pulumi:<stack>::<project>::...`). */
export function stackOfUrn(urn: string | undefined): string | undefined {
  const m = /^urn:pulumi:([^:]+)::/.exec(urn ?? '');
  return m ? m[1] : undefined;
}

/** Thrown when the engine cancels an operation, or its customTimeout passes, before it could start. */
export class OperationAbortedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperationAbortedError';
  }
}

export interface ProviderCoreOptions<C> {
  version: string;
  resources: readonly ResourceDefinition[];
  functions: readonly FunctionDefinition[];
  config: z.ZodObject;
  /** Semantic checks beyond the zod schema (the engine's per-object validation). */
  validate?: (kind: string, spec: PropertyMap) => { path: string; message: string }[];
  /** Backend identity (store key, resource id) of a checked spec. */
  identity?: (kind: string, spec: PropertyMap) => string;
  openBackend: BackendFactory<C>;
  schema: () => string;
  logger?: Logger;
}

/**
 * The provider's behaviour, independent of gRPC: every method takes and returns plain property maps
 * (with Pulumi's secret wrappers and unknown sentinels), so it can be tested without a server.
 */
export class ProviderCore<C = Record<string, unknown>> {
  private readonly byToken = new Map<string, ResourceDefinition>();
  private readonly fnByToken = new Map<string, FunctionDefinition>();
  private backend: Backend | undefined;
  private configured: C | undefined;
  /** The stack the engine runs (from Configure's provider URN, else the first resource URN). */
  private stack: string | undefined;
  /** Aborted by Cancel; replaced afterwards, so an engine that keeps using the provider is not refused. */
  private cancellation = new AbortController();
  logger: Logger;

  constructor(private readonly opts: ProviderCoreOptions<C>) {
    for (const r of opts.resources) this.byToken.set(resourceToken(r.name), r);
    for (const f of opts.functions) this.fnByToken.set(resourceToken(f.name), f);
    this.logger = opts.logger ?? { log: () => undefined };
  }

  get version(): string {
    return this.opts.version;
  }

  getSchema(): string {
    return this.opts.schema();
  }

  /**
   * Validates provider configuration. Stack config arrives as strings (`"true"`, `"8443"`), so values
   * are coerced to the schema's type before validation.
   */
  checkConfig(news: PropertyMap): CheckResult {
    const { value, secrets } = unwrap(news);
    const plain = isObject(value) ? { ...value } : {};
    delete plain.version;
    const shape = this.opts.config.shape as Record<string, z.ZodType>;
    const failures: CheckFailure[] = [];
    for (const key of Object.keys(plain)) {
      if (!(key in shape)) failures.push({ property: key, reason: `unknown configuration key "${key}"; expected one of ${Object.keys(shape).join(', ')}` });
    }
    const coerced: PropertyMap = {};
    for (const [k, v] of Object.entries(plain)) coerced[k] = isUnknown(v) ? v : coerceConfigValue(shape[k], v);
    if (!containsUnknowns(coerced)) {
      const known = Object.fromEntries(Object.entries(coerced).filter(([k]) => k in shape));
      const parsed = this.opts.config.safeParse(known);
      if (!parsed.success) failures.push(...zodFailures(parsed.error));
    }
    return { inputs: rewrapSecrets(coerced, secrets), failures };
  }

  /** Stores the configuration and opens the backend it names; `urn` (the provider's) names the stack. */
  configure(args: PropertyMap, context: { urn?: string } = {}): void {
    this.stack = stackOfUrn(context.urn) ?? this.stack;
    const { value } = unwrap(args);
    const shape = this.opts.config.shape as Record<string, z.ZodType>;
    const plain = isObject(value) ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'version').map(([k, v]) => [k, coerceConfigValue(shape[k], v)])) : {};
    const parsed = this.opts.config.safeParse(plain);
    if (!parsed.success) {
      throw new BackendError(`invalid provider configuration: ${zodFailures(parsed.error).map((f) => `${f.property}: ${f.reason}`).join('; ')}`);
    }
    this.backend?.close();
    this.configured = parsed.data as C;
    this.backend = undefined;
  }

  /** True when a change of provider configuration moves the provider to another store or environment. */
  diffConfig(olds: PropertyMap, news: PropertyMap, replaceKeys: readonly string[], context: { urn?: string } = {}): DiffResult {
    const o = stripVersion(unwrap(olds).value);
    const n = stripVersion(unwrap(news).value);
    // The environment defaults to the stack name: writing down that same name (or removing it) moves
    // nothing, and must not replace the provider and with it every resource.
    const stack = stackOfUrn(context.urn);
    if (stack !== undefined && 'environment' in this.opts.config.shape) {
      o.environment ??= stack;
      n.environment ??= stack;
    }
    const d = diffInputs(o, n, { replaceOnChanges: replaceKeys });
    return { ...d, changed: d.diffs.length > 0, deleteBeforeReplace: false };
  }

  private def(token: string): ResourceDefinition {
    const def = this.byToken.get(token);
    if (!def) throw new BackendError(`unknown resource type ${token}; this provider serves ${[...this.byToken.keys()].join(', ')}`);
    return def;
  }

  private openBackend(urn?: string): Backend {
    if (!this.backend) {
      if (!this.configured) this.configure({});
      this.stack ??= stackOfUrn(urn);
      this.backend = this.opts.openBackend(this.configured as C, this.stack !== undefined ? { stack: this.stack } : {});
    }
    return this.backend;
  }

  /**
   * Stops work in flight: operations still waiting for their turn fail with "cancelled"; the one running
   * finishes its (single, atomic) store write. Later operations run normally.
   */
  cancel(): void {
    const c = this.cancellation;
    this.cancellation = new AbortController();
    c.abort(new OperationAbortedError('the operation was cancelled by the Pulumi engine before it started; nothing was written'));
  }

  /**
   * Runs `fn` with a signal aborted by Cancel or after `timeoutSeconds` (the resource's customTimeouts;
   * 0 or absent = no limit of our own). The timer is always cleared.
   */
  private async withDeadline<T>(what: string, timeoutSeconds: number | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const cancel = this.cancellation.signal;
    if (!timeoutSeconds || timeoutSeconds <= 0 || !Number.isFinite(timeoutSeconds)) return fn(cancel);
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new OperationAbortedError(`${what} timed out after ${timeoutSeconds} s (customTimeouts) while waiting for other operations on the store; nothing was written, retry or raise the timeout`)),
      timeoutSeconds * 1000,
    );
    try {
      return await fn(AbortSignal.any([cancel, deadline.signal]));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Validates inputs and applies deterministic defaults; unknown values (preview) are not judged. */
  check(req: { token: string; name: string; olds: PropertyMap; news: PropertyMap; randomSeed?: Uint8Array; autonaming?: Autonaming }): CheckResult {
    const def = this.def(req.token);
    const { value, secrets } = unwrap(req.news);
    const news: PropertyMap = isObject(value) ? { ...value } : {};
    const nameKey = def.nameProperty ?? 'name';
    if (news[nameKey] === undefined || news[nameKey] === null) {
      const old = unwrap(req.olds).value;
      const oldName = isObject(old) ? old[nameKey] : undefined;
      if (typeof oldName === 'string') news[nameKey] = oldName;
      else if (req.autonaming && req.autonaming.mode !== 'disable') news[nameKey] = req.autonaming.proposedName;
      else news[nameKey] = autoname(req.name, req.randomSeed);
    }
    const unknownPaths = collectUnknownPaths(news);
    // A value unknown in preview (all seven sentinels) is never judged, by zod or by semantic checks.
    const known = (f: CheckFailure) => !unknownPaths.some((u) => f.property === u || f.property.startsWith(`${u}.`) || f.property.startsWith(`${u}[`));
    const parsed = def.inputs.safeParse(news);
    const failures: CheckFailure[] = [];
    let inputs: PropertyMap = news;
    if (parsed.success) {
      inputs = parsed.data as PropertyMap;
      // The schemas strip unknown keys; a misspelt property must not silently change policy.
      for (const u of unknownKeys(news, inputs)) failures.push({ property: formatPath(u), reason: `unknown property "${String(u[u.length - 1])}" of ${def.name}` });
      if (this.opts.validate) {
        for (const p of this.opts.validate(def.name, inputs)) failures.push({ property: p.path, reason: p.message });
      }
    } else {
      failures.push(...zodFailures(parsed.error));
    }
    const redact = secretRedactor(news, secrets);
    const shown = failures.filter(known).map((f) => ({ property: f.property, reason: redact(f.reason) }));
    return { inputs: rewrapSecrets(inputs, secrets), failures: shown };
  }

  /** Property-level diff of old inputs against new inputs. */
  diff(req: { token: string; oldInputs: PropertyMap; oldState: PropertyMap; news: PropertyMap; ignoreChanges: readonly string[] }): DiffResult {
    const def = this.def(req.token);
    const oldInputsSource = Object.keys(req.oldInputs).length > 0 ? req.oldInputs : pickInputs(def, req.oldState);
    const olds = unwrap(oldInputsSource).value as PropertyMap;
    const news = unwrap(req.news).value as PropertyMap;
    const replaceOnChanges = [def.nameProperty ?? 'name', ...(def.replaceOnChanges ?? [])];
    const d = diffInputs(olds, news, { replaceOnChanges, ignoreChanges: req.ignoreChanges });
    // A replacement that keeps the backend identity must delete first, or the new object would
    // collide with the old one in the store.
    const deleteBeforeReplace = d.replaces.length > 0 && this.identity(def, olds) === this.identity(def, news);
    return { ...d, changed: d.diffs.length > 0, deleteBeforeReplace };
  }

  private identity(def: ResourceDefinition, spec: PropertyMap): string {
    if (this.opts.identity) return this.opts.identity(def.name, spec);
    return String(spec[def.nameProperty ?? 'name'] ?? '');
  }

  /**
   * Creates the object; in preview nothing is written and computed outputs the backend cannot know stay
   * unknown. An object this URN wrote before a crash is adopted; one owned by anyone else is refused.
   */
  async create(req: { token: string; urn?: string; properties: PropertyMap; preview: boolean; timeout?: number }): Promise<{ id: string; properties: PropertyMap }> {
    return this.withDeadline('create', req.timeout, (signal) => this.write(req.token, req.urn, req.properties, req.preview, 'create', signal, undefined, req.timeout));
  }

  async update(req: { token: string; urn?: string; id: string; news: PropertyMap; preview: boolean; timeout?: number }): Promise<{ id: string; properties: PropertyMap }> {
    return this.withDeadline('update', req.timeout, (signal) => this.write(req.token, req.urn, req.news, req.preview, 'update', signal, req.id, req.timeout));
  }

  /**
   * `existingId` (update): the object keeps the id it has. Ids only change by replacement, so it equals
   * the identity of the spec, except for objects created under an older id scheme (a FirewallRule stored
   * as `name` before rule names were scoped to `policy/name`), which keep working under their old id.
   */
  private async write(token: string, urn: string | undefined, props: PropertyMap, preview: boolean, mode: 'create' | 'update', signal: AbortSignal, existingId?: string, timeoutSeconds?: number): Promise<{ id: string; properties: PropertyMap }> {
    const def = this.def(token);
    const { value, secrets } = unwrap(props);
    const spec = value as PropertyMap;
    const id = existingId ? existingId : containsUnknowns(spec[def.nameProperty ?? 'name']) ? '' : this.identity(def, spec);
    if (preview && containsUnknowns(spec)) {
      // A name collision is known even when other inputs are not: refuse it now, not at `up`.
      if (mode === 'create' && id !== '') await this.openBackend(urn).assertCreatable(def.name, id, { ...(urn ? { owner: urn } : {}), signal });
      // Outputs that depend on unknown inputs cannot be computed yet.
      const computed = Object.fromEntries(Object.keys(def.outputs.shape).map((k) => [k, '04da6b54-80e4-46f7-96ec-b56ff0331ba9' as PropertyValue]));
      return { id: '', properties: rewrapSecrets({ ...spec, ...computed }, secrets) };
    }
    const backend = this.openBackend(urn);
    const context = { ...(urn ? { owner: urn } : {}), signal, ...(timeoutSeconds ? { timeoutSeconds } : {}) };
    const redact = secretRedactor(spec, secretPaths(def, secrets));
    let result;
    try {
      result = preview ? await backend.plan(def.name, id, spec, mode, context) : await backend.put(def.name, id, spec, mode, { ...context, secretPaths: secretPaths(def, secrets) });
    } catch (err) {
      if (err instanceof BackendError) throw new BackendError(redact(err.message), err.problems.map((p) => ({ path: p.path, message: redact(p.message) })));
      throw err;
    }
    for (const w of result.warnings) this.logger.log('warning', redact(w), urn);
    for (const i of result.infos ?? []) this.logger.log('info', redact(i), urn);
    const properties = rewrapSecrets({ ...spec, ...result.outputs }, secretPaths(def, secrets));
    if (!preview && result.initErrors && result.initErrors.length > 0) {
      throw new ResourceInitError(id, properties, rewrapSecrets(spec, secretPaths(def, secrets)), result.initErrors.map(redact));
    }
    return { id: preview ? '' : id, properties };
  }

  /**
   * Reads the live object; an empty id tells the engine it is gone. A read with neither state nor inputs
   * is an import (`pulumi import`, the import option): the importing resource becomes the owner.
   */
  async read(req: { token: string; urn?: string; id: string; inputs: PropertyMap; state: PropertyMap; timeout?: number }): Promise<{ id: string; inputs: PropertyMap; properties: PropertyMap }> {
    const def = this.def(req.token);
    const backend = this.openBackend(req.urn);
    const live = await this.withDeadline('read', req.timeout, (signal) => backend.get(def.name, req.id, { signal }));
    if (!live) return { id: '', inputs: {}, properties: {} };
    const importing = Object.keys(req.state).length === 0 && Object.keys(req.inputs).length === 0;
    if (importing && req.urn && live.owner !== req.urn) await backend.claim(def.name, req.id, req.urn);
    // Paths stored as secrets count too: an import (no inputs or state yet) still marks them secret.
    const secrets = [...unwrap(req.inputs).secrets, ...unwrap(req.state).secrets, ...(live.secretPaths ?? [])];
    const inputs = rewrapSecrets(live.spec, secretPaths(def, secrets));
    return { id: req.id, inputs, properties: rewrapSecrets({ ...live.spec, ...live.outputs }, secretPaths(def, secrets)) };
  }

  async delete(req: { token: string; urn?: string; id: string; timeout?: number }): Promise<void> {
    const def = this.def(req.token);
    const backend = this.openBackend(req.urn);
    await this.withDeadline('delete', req.timeout, (signal) => backend.delete(def.name, req.id, { signal }));
  }

  async invoke(req: { token: string; args: PropertyMap }): Promise<{ result: PropertyMap; failures: CheckFailure[] }> {
    const fn = this.fnByToken.get(req.token);
    if (!fn) throw new BackendError(`unknown function ${req.token}; this provider serves ${[...this.fnByToken.keys()].join(', ')}`);
    const args = unwrap(req.args).value as PropertyMap;
    const parsed = fn.inputs.safeParse(args);
    if (!parsed.success) return { result: {}, failures: zodFailures(parsed.error) };
    return { result: await this.openBackend().invoke(fn.name, parsed.data as PropertyMap), failures: [] };
  }

  close(): void {
    this.cancel();
    this.backend?.close();
    this.backend = undefined;
  }
}

function stripVersion(v: PropertyValue): PropertyMap {
  const o = isObject(v) ? { ...v } : {};
  delete o.version;
  return o;
}

function secretPaths(def: ResourceDefinition, fromInputs: string[]): string[] {
  return [...new Set([...fromInputs, ...(def.secrets ?? [])])];
}

function pickInputs(def: ResourceDefinition, state: PropertyMap): PropertyMap {
  const keys = Object.keys(def.inputs.shape);
  return Object.fromEntries(Object.entries(state).filter(([k]) => keys.includes(k)));
}

/** Renders zod issues as CheckFailures with Pulumi property paths. */
export function zodFailures(error: z.ZodError): CheckFailure[] {
  return error.issues.map((issue) => ({ property: formatPath(issue.path), reason: describeIssue(issue) }));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown propert${issue.keys.length > 1 ? 'ies' : 'y'} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message;
}

function collectUnknownPaths(v: PropertyValue, path: (string | number)[] = [], out: string[] = []): string[] {
  if (isUnknown(v)) out.push(formatPath(path));
  else if (Array.isArray(v)) v.forEach((e, i) => collectUnknownPaths(e, [...path, i], out));
  else if (isObject(v)) for (const [k, e] of Object.entries(v)) collectUnknownPaths(e, [...path, k], out);
  return out;
}

/**
 * Stack config values arrive as strings; turn `"true"`, `"42"` and JSON into typed values, but only
 * where the field does not accept the string as it is.
 */
function coerceConfigValue(field: z.ZodType | undefined, v: PropertyValue): PropertyValue {
  if (typeof v !== 'string' || (field && field.safeParse(v).success)) return v;
  const t = v.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.parse(t) as PropertyValue;
    } catch {
      return v;
    }
  }
  return v;
}

/** `<pulumi name>-<8 hex>`, deterministic for a given seed. */
export function autoname(name: string, seed?: Uint8Array): string {
  const h = createHash('sha256');
  h.update(seed && seed.length > 0 ? seed : Buffer.from(name));
  return `${name}-${h.digest('hex').slice(0, 8)}`;
}
