import { stringify } from 'yaml';
import { connectivityMatrix, effectiveRules, Problem, traceflow, validateSpec, World } from '../engine';
import { getKubernetesManifests, type Flavor } from '../export/kubernetes';
import { isKind, Kind, kinds, ProviderConfig, SpecOf } from '../model';
import { AssertionBrokenError, Backend, BackendError, BackendResult, OperationContext } from '../provider/backend';
import { PropertyMap } from '../provider/values';
import { BackendService, ConflictError, InUseError, InvalidError, NotFoundError, SecretBox, ServiceError, SETTINGS_KIND, Validator } from '../service';
import { openSqliteStore, secretKeySource, Store, StoredObject, StoreError } from '../store';
import { checkAssertions, compare, describeBroken, describeImpact, snapshot } from './impact';
import { describeUnrealized, pointRealization, readStatuses, REALIZED_KINDS, realizationOf, realizationOutputs, revisionOf, affectedPoints, type PointRealization } from './realization';
import { deleteWaitingForUsers, InUseBackendError } from './in-use';
import { referencesOf } from './references';

/** The engine's validation and reference extraction, as the service layer consumes them. */
export const engineValidator: Validator = {
  validate: (kind, spec) => (isKind(kind) ? validateSpec(kind, spec).problems.filter((p) => p.severity !== 'warning').map(({ code, path, message }) => ({ code, path, message })) : [{ code: 'unknown-kind', path: '', message: `unknown kind ${kind}` }]),
  references: (kind, spec) => referencesOf(kind, spec),
};

export interface EmbeddedBackendOptions {
  /** The store; opened from `dataDir` (or MICROSEG_DATA_DIR, or ~/.microseg) when absent. */
  store?: Store;
  dataDir?: string;
  environment: string;
  /**
   * The default rule's action when the caller sets it (provider config, CLI flag): stored with the
   * environment on the first write. Absent: the environment's stored setting, else `drop`.
   */
  defaultAction?: 'allow' | 'drop';
  /** Whether a configured default action is stored with the environment (default true; the CLI's flag is not). */
  storeDefaultAction?: boolean;
  /** Owner recorded on writes whose context names none (the CLI: `microseg-cli:<user>`). */
  owner?: string;
  /**
   * For the Pulumi provider: how long a delete refused because other objects still use the object waits
   * for them to go. Users that refer to it by a literal name (`group: g1`, not `${g1.name}`) carry no
   * dependency, so Pulumi deletes both at once; waiting lets their deletes land first. Absent: no wait.
   */
  waitForUsersMs?: number;
  /**
   * Whether a put of a VirtualMachine or FirewallPolicy waits until every enforcement point it affects
   * reports the new revision realized (provider config `waitForRealization`); see waitRealized.
   */
  waitForRealization?: boolean;
  /** How often the stored realization statuses are read while waiting (default 250 ms; the store has no push). */
  realizationPollMs?: number;
}

/** How long waitForRealization waits when the operation has no customTimeouts. */
export const DEFAULT_REALIZATION_TIMEOUT_S = 300;

/** How an owner reads in messages: the stack and resource of a URN, or the owner string itself. */
export function describeOwner(owner: string | undefined): string {
  if (owner === undefined) return 'no recorded owner (written before owners were recorded)';
  if (owner.startsWith('urn:pulumi:')) {
    const [stack, project, qualifiedType, ...name] = owner.slice('urn:pulumi:'.length).split('::');
    if (name.length > 0) return `resource "${name.join('::')}" (${qualifiedType.split('$').pop()}) of stack "${stack}" in project "${project}"`;
  }
  if (owner.startsWith('microseg-cli')) return `the microseg CLI (${owner})`;
  return owner;
}


/**
 * The bundled in-process enforcement backend: the durable store (through the service layer) plus the
 * engine's world, kept in step with the store's change log so that writes from other processes (the
 * CLI, another stack of the same environment) are seen before every operation.
 *
 * Preview never writes: planned changes go into a copy of the world (`planned`), so later resources of
 * the same preview see earlier ones, as they will after `up`.
 */
export class EmbeddedBackend implements Backend {
  private store: Store | undefined;
  private service: BackendService | undefined;
  private world: World;
  /** Preview worlds by session: one per provider process (a remote backend serves many at once). */
  private readonly planned = new Map<string, World>();
  private seq = 0;
  private loaded = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Whether the configured default action is known to be stored with the environment. */
  private settingsStored = false;

  constructor(private readonly options: EmbeddedBackendOptions) {
    this.world = new World({ defaultAction: options.defaultAction ?? 'drop' });
    this.store = options.store;
  }

  get environment(): string {
    return this.options.environment;
  }

  /** The default rule's action in effect (configured, else stored with the environment, else drop). */
  async defaultAction(): Promise<'allow' | 'drop'> {
    return (await this.currentWorld()).defaultVerdict;
  }

  /**
   * Serialises operations: Pulumi runs up to 16 resource operations at once against one provider. An
   * operation whose signal aborts (Cancel, customTimeout) while it still waits for its turn never starts;
   * one that has started finishes, since each store write is one short transaction and stopping between
   * the store and the world would leave them apart.
   */
  private exclusive<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let started = false;
    const run = () => {
      signal?.throwIfAborted();
      started = true;
      return fn();
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    if (!signal) return next;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        if (!started) reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      next.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  private async open(): Promise<BackendService> {
    if (!this.service) {
      this.store ??= await openSqliteStore({ dataDir: this.options.dataDir });
      const dataDir = (this.store as { dataDir?: string }).dataDir;
      this.service = new BackendService({
        store: this.store,
        environment: this.options.environment,
        validator: engineValidator,
        secrets: new SecretBox(secretKeySource(dataDir)),
        ...(this.options.owner ? { owner: this.options.owner } : {}),
      });
    }
    return this.service;
  }

  /** Follows the environment's stored default action unless the caller configured one. */
  private async adoptStoredSettings(service: BackendService): Promise<void> {
    const stored = (await service.settings()).defaultAction;
    if (this.options.defaultAction !== undefined) {
      this.settingsStored = stored === this.options.defaultAction;
      return;
    }
    const action = stored ?? 'drop';
    if (action !== this.world.defaultVerdict) {
      this.world = this.world.clone({ defaultAction: action });
      this.planned.clear();
    }
  }

  /** Stores the configured default action with the environment before the first write that follows it. */
  private async storeSettings(service: BackendService, owner: string | undefined): Promise<void> {
    if (this.options.defaultAction === undefined || this.options.storeDefaultAction === false || this.settingsStored) return;
    // Another process (a second stack, a server replica) may store them at the same moment: re-read and merge.
    for (let attempt = 1; ; attempt++) {
      try {
        await service.putSettings({ defaultAction: this.options.defaultAction }, owner !== undefined ? { owner } : {});
        break;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 5) throw err;
      }
    }
    this.settingsStored = true;
  }

  /** The object's current owner, for the create checks. */
  private async ownership(service: BackendService, kind: Kind, name: string, context: OperationContext | undefined): Promise<'absent' | 'same' | string | undefined> {
    const stored = await service.find(kind, name);
    if (!stored) return 'absent';
    if (context?.owner !== undefined && stored.owner === context.owner) return 'same';
    return stored.owner;
  }

  private refuseOwned(kind: Kind, name: string, owner: string | undefined): never {
    throw new BackendError(
      `${kind} "${name}" already exists in environment "${this.options.environment}" and is managed by ${describeOwner(owner)}; ` +
        `choose another name, or adopt it into this stack with \`pulumi import microseg:index:${kind} <resource name> ${name}\` (or the import resource option)`,
      [],
      'conflict',
    );
  }

  /** Brings the world up to date with the store: a full load first, then the change log since. */
  private async sync(): Promise<BackendService> {
    const service = await this.open();
    if (!this.loaded) {
      // The seq first: anything written while we list is replayed (idempotently) by the next sync.
      this.seq = await service.lastSeq();
      const objects = await service.list();
      const order = new Map(kinds.map((k, i) => [k, i]));
      objects.sort((a, b) => (order.get(a.kind as Kind) ?? 99) - (order.get(b.kind as Kind) ?? 99));
      for (const o of objects) this.applyStored(o);
      await this.adoptStoredSettings(service);
      this.loaded = true;
      return service;
    }
    const changes = await service.changes({ afterSeq: this.seq });
    if (changes.length === 0) return service;
    for (const c of changes) {
      if (c.kind === SETTINGS_KIND) await this.adoptStoredSettings(service);
      // Entries of other kinds (settings, realization status written by agents, team mode's audit records) are passed over, never re-read.
      if (!isKind(c.kind)) {
        this.seq = c.seq;
        continue;
      }
      if (c.op === 'delete') this.world.remove(c.kind, c.name);
      else {
        const o = await service.find(c.kind, c.name);
        if (o) this.applyStored(o);
        else this.world.remove(c.kind, c.name);
      }
      this.seq = c.seq;
    }
    this.planned.clear();
    return service;
  }

  /** Stored specs were validated and normalised (defaults applied) by the engine when written. */
  private applyStored(o: StoredObject): void {
    if (isKind(o.kind)) this.world.restore(o.kind, o.name, o.spec as SpecOf[Kind], o.status);
  }

  /**
   * Upserts into a world and returns the object's outputs, its warnings and the change's policy impact.
   * On validation errors, or when the change breaks a ConnectivityAssertion that held before, the world
   * is restored and a user error says why.
   */
  private stage(world: World, kind: Kind, name: string, spec: PropertyMap): BackendResult {
    const previous = world.get(kind, name);
    const previousOutputs = previous ? world.outputsOf(kind, name) : undefined;
    const restore = () => {
      if (previous) world.upsert(kind, name, previous, previousOutputs);
      else world.remove(kind, name);
    };
    const own = (p: Problem) => !p.object || (p.object.kind === kind && p.object.name === name);
    const isAssertion = kind === 'ConnectivityAssertion';
    const heldBefore = new Set(checkAssertions(world).filter((a) => a.passed).map((a) => a.name));
    // An inventory change only changes flows from and to itself; a policy change may change any flow.
    const focus = kind === 'Workload' ? `workload:${name}` : kind === 'VirtualMachine' ? `vm:${name}` : undefined;
    // Without any policy every flow meets the default rule, before and after an inventory change.
    const policyKinds: readonly Kind[] = ['FirewallPolicy', 'FirewallRule', 'QuarantinePolicy', 'KubernetesNetworkPolicy'];
    const policiesMatter = policyKinds.includes(kind) || policyKinds.some((k) => world.names(k).length > 0);
    const before = isAssertion || !policiesMatter ? undefined : snapshot(world, undefined, focus, [spec]);

    const specProblems = world.upsert(kind, name, spec, previousOutputs);
    const validation = world.validate();
    const problems = [...specProblems.filter((p) => p.severity !== 'warning'), ...validation.filter((p) => own(p) && p.severity !== 'warning')];
    if (problems.length > 0) {
      restore();
      throw new BackendError(
        `${kind} "${name}" is invalid: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`,
        problems.map((p) => ({ path: p.path, message: p.message })),
      );
    }
    const infos: string[] = [];
    if (before) {
      const after = snapshot(world, before);
      const line = describeImpact(`${kind} "${name}"`, compare(before, after), after.truncated);
      if (line) infos.push(line);
    }
    const broken = checkAssertions(world, isAssertion ? [name] : undefined).filter((a) => !a.passed && (isAssertion || heldBefore.has(a.name)));
    if (broken.length > 0) {
      restore();
      const what = isAssertion ? broken.map((a) => a.message).join('; ') : `this change of ${kind} "${name}" breaks ${describeBroken(broken)}`;
      throw new AssertionBrokenError(`${what}${infos.length ? `. ${infos.join('. ')}` : ''}`);
    }
    // validate() includes the world's warnings (priority ties, appliedTo that selects nothing).
    const warnings = [...specProblems, ...validation].filter((p) => p.severity === 'warning' && own(p)).map((p) => p.message);
    return { outputs: world.outputsOf(kind, name) as PropertyMap, warnings: [...new Set(warnings)], infos };
  }

  /** `context.session` keeps one preview's planned changes apart from another's (the server passes the client's). */
  plan(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update' = 'update', context?: OperationContext): Promise<BackendResult> {
    return this.exclusive(async () => {
      const service = await this.sync();
      const k = asKind(kind);
      if (mode === 'create') {
        // Refused in preview already: `up` would refuse it, and preview must not look safer than the truth.
        const owner = await this.ownership(service, k, name, context);
        if (owner !== 'absent' && owner !== 'same') this.refuseOwned(k, name, owner);
      }
      const session = context?.session ?? '';
      let planned = this.planned.get(session);
      if (!planned) {
        // Bounded: an abandoned preview must not keep a world copy forever.
        if (this.planned.size >= MAX_PLAN_SESSIONS) this.planned.delete(this.planned.keys().next().value as string);
        planned = this.world.clone();
        this.planned.set(session, planned);
      }
      return this.stage(planned, k, name, spec);
    }, context?.signal);
  }

  async put(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update', context?: OperationContext): Promise<BackendResult> {
    const written = await this.putOnce(kind, name, spec, mode, context);
    if (!REALIZED_KINDS.includes(kind)) return written.result;
    const { result, points, revision } = written;
    let now = await this.pointsNow(points, revision);
    if (this.options.waitForRealization) {
      // Outside the queue: other operations (and their waits) go on while this one waits for the agents.
      const waited = await this.waitRealized(points, revision, context);
      now = waited.points;
      if (waited.failure) return { ...result, outputs: { ...result.outputs, ...realizationOutputs(kind, now) }, initErrors: [...(result.initErrors ?? []), `${kind} "${name}" was written (revision ${revision}) but ${waited.failure}`] };
    }
    return { ...result, outputs: { ...result.outputs, ...realizationOutputs(kind, now) } };
  }

  private async pointsNow(points: readonly string[], revision: number): Promise<PointRealization[]> {
    const statuses = await readStatuses(this.store!, this.options.environment);
    return points.map((p) => pointRealization(p, statuses.get(p), revision));
  }

  /**
   * Polls the stored statuses until every point reports `revision` realized. Gives up early when every
   * point has answered for this revision and some refused it (an agent retries only on the next change
   * or its interval), and at the customTimeout (default DEFAULT_REALIZATION_TIMEOUT_S) or Cancel.
   */
  private async waitRealized(points: readonly string[], revision: number, context?: OperationContext): Promise<{ points: PointRealization[]; failure?: string }> {
    const timeoutS = context?.timeoutSeconds && context.timeoutSeconds > 0 ? context.timeoutSeconds : DEFAULT_REALIZATION_TIMEOUT_S;
    const own = new AbortController();
    const timer = setTimeout(() => own.abort(), timeoutS * 1000);
    const signal = context?.signal ? AbortSignal.any([context.signal, own.signal]) : own.signal;
    const pollMs = this.options.realizationPollMs ?? 250;
    try {
      for (;;) {
        const now = await this.pointsNow(points, revision);
        if (now.every((p) => p.state === 'realized')) return { points: now };
        if (now.every((p) => p.state === 'realized' || p.state === 'error')) return { points: now, failure: `the kernel refused it: ${describeUnrealized(now)}` };
        if (signal.aborted) {
          const why = own.signal.aborted || context?.signal?.reason instanceof Error && /timed out/.test(context.signal.reason.message) ? `within ${timeoutS} s (waitForRealization; raise customTimeouts to wait longer)` : 'before the Pulumi engine cancelled the operation';
          return { points: now, failure: `${describeUnrealized(now)} ${why}; is \`microseg agent\` running for them? \`microseg realization\` shows every point` };
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            signal.removeEventListener('abort', done);
            resolve();
          };
          const t = setTimeout(done, pollMs);
          signal.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private putOnce(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update', context?: OperationContext): Promise<{ result: BackendResult; points: string[]; revision: number }> {
    return this.exclusive(async () => {
      const service = await this.sync();
      const k = asKind(kind);
      const previous = this.world.get(k, name);
      const previousOutputs = previous ? this.world.outputsOf(k, name) : undefined;
      if (mode === 'create' && previous !== undefined) {
        // The same resource (URN) wrote it before a crash: adopt it, so a rerun of `up` converges. Anyone
        // else's object is refused: adopting it silently would let two stacks manage one object.
        const owner = await this.ownership(service, k, name, context);
        if (owner !== 'absent' && owner !== 'same') this.refuseOwned(k, name, owner);
      }
      await this.storeSettings(service, context?.owner);
      const result = this.stage(this.world, k, name, spec);
      const restore = () => {
        if (previous) this.world.upsert(k, name, previous, previousOutputs);
        else this.world.remove(k, name);
      };
      try {
        const exists = previous !== undefined || (await service.find(k, name)) !== undefined;
        // The engine's normalised spec (defaults applied) is what is stored, so start-up can trust it.
        const normalised = (this.world.get(k, name) ?? spec) as PropertyMap;
        const owner = context?.owner !== undefined ? { owner: context.owner } : {};
        const secrets = context?.secretPaths !== undefined ? { secretPaths: context.secretPaths } : {};
        if (mode === 'create' && !exists) await service.create(k, name, normalised, { status: result.outputs, ...owner, ...secrets });
        else await service.update(k, name, normalised, { status: result.outputs, ...owner, ...secrets });
      } catch (err) {
        restore();
        throw userError(err);
      }
      this.planned.clear();
      // The revision the agents must reach: this write's own log entry (not lastSeq, which agents' status
      // reports keep moving and which the desired state they observe never reaches).
      return { result, points: affectedPoints(this.world, k, name), revision: await revisionOf(this.store!, this.options.environment, k, name) };
    }, context?.signal);
  }

  get(kind: string, name: string, context?: OperationContext): Promise<{ spec: PropertyMap; outputs: PropertyMap; owner?: string; secretPaths?: readonly string[] } | undefined> {
    return this.exclusive(async () => {
      const service = await this.sync();
      const o = await service.find(kind, name);
      if (!o) return undefined;
      let outputs = (o.status ?? {}) as PropertyMap;
      if (REALIZED_KINDS.includes(kind)) {
        // Observed, not stored with the object: a refresh shows what the agents report now.
        const statuses = await readStatuses(this.store!, this.options.environment);
        const revision = await revisionOf(this.store!, this.options.environment, kind, name);
        outputs = { ...outputs, ...realizationOutputs(kind, realizationOf(this.world, kind, name, statuses, revision)) } as PropertyMap;
      }
      return { spec: o.spec as PropertyMap, outputs, ...(o.owner !== undefined ? { owner: o.owner } : {}), ...(o.secretPaths ? { secretPaths: o.secretPaths } : {}) };
    }, context?.signal);
  }

  assertCreatable(kind: string, name: string, context?: OperationContext): Promise<void> {
    return this.exclusive(async () => {
      const service = await this.sync();
      const k = asKind(kind);
      const owner = await this.ownership(service, k, name, context);
      if (owner !== 'absent' && owner !== 'same') this.refuseOwned(k, name, owner);
    }, context?.signal);
  }

  claim(kind: string, name: string, owner: string): Promise<void> {
    return this.exclusive(async () => {
      const service = await this.sync();
      try {
        await service.setOwner(kind, name, owner);
      } catch (err) {
        throw userError(err);
      }
    });
  }

  delete(kind: string, name: string, context?: OperationContext): Promise<void> {
    return deleteWaitingForUsers(() => this.deleteOnce(kind, name, context), kind, name, this.options.waitForUsersMs ?? 0, context);
  }

  private deleteOnce(kind: string, name: string, context?: OperationContext): Promise<void> {
    return this.exclusive(async () => {
      const service = await this.sync();
      if (isKind(kind) && kind !== 'ConnectivityAssertion' && this.world.names('ConnectivityAssertion').length > 0 && this.world.get(kind, name) !== undefined) {
        // Deletions are not sent during preview, so this is the first moment they can be checked.
        const held = new Set(checkAssertions(this.world).filter((a) => a.passed).map((a) => a.name));
        const after = this.world.clone();
        after.remove(kind, name);
        const broken = checkAssertions(after).filter((a) => !a.passed && held.has(a.name));
        if (broken.length > 0) throw new AssertionBrokenError(`deleting ${kind} "${name}" breaks ${describeBroken(broken)}`);
      }
      try {
        await service.delete(kind, name);
      } catch (err) {
        if (err instanceof NotFoundError) return;
        if (err instanceof InUseError) throw new InUseBackendError(err.message, err.users.map((u) => ({ path: '', message: `${u.kind} "${u.name}"` })));
        throw userError(err);
      }
      if (isKind(kind)) this.world.remove(kind, name);
      this.planned.clear();
      // The settings belong to the environment's objects: `pulumi destroy` of the last stack leaves nothing.
      if (this.world.objects()[Symbol.iterator]().next().done) {
        await service.clearSettings();
        this.settingsStored = false;
      }
    }, context?.signal);
  }

  /** Forgets a preview session's planned world (a one-off impact query). */
  dropPlan(session: string): void {
    this.planned.delete(session);
  }

  invoke(fn: string, args: PropertyMap, session = ''): Promise<PropertyMap> {
    return this.exclusive(async () => {
      await this.sync();
      return runFunction(this.planned.get(session) ?? this.world, fn, args);
    });
  }

  /** The world as applied (for the CLI). */
  async currentWorld(): Promise<World> {
    return this.exclusive(async () => {
      await this.sync();
      return this.world;
    });
  }

  close(): void {
    void this.store?.close();
    this.store = undefined;
    this.service = undefined;
  }
}

const MAX_PLAN_SESSIONS = 64;

function asKind(kind: string): Kind {
  if (!isKind(kind)) throw new BackendError(`unknown kind ${kind}`);
  return kind;
}

/** Turns service and store errors into user errors with their message; anything else stays a crash. */
function userError(err: unknown): unknown {
  if (err instanceof InvalidError) return new BackendError(err.message, err.problems.map((p) => ({ path: p.path, message: p.message })));
  if (err instanceof ServiceError) {
    const reason = err.code === 'Conflict' ? 'conflict' : err.code === 'NotFound' ? 'not-found' : err.code === 'InUse' ? 'in-use' : 'invalid';
    return new BackendError(err.message, [], reason);
  }
  // A store that cannot be reached is a retryable outage (the server answers 503), not a user error.
  if (err instanceof StoreError && err.code === 'UNAVAILABLE') return err;
  if (err instanceof StoreError) return new BackendError(err.message);
  return err;
}

/** Runs one of the model's functions on a world. */
export function runFunction(world: World, fn: string, args: PropertyMap): PropertyMap {
  const fail = (p: { message: string }) => {
    throw new BackendError(p.message);
  };
  switch (fn) {
    case 'traceflow': {
      const t = traceflow(world, args as unknown as Parameters<typeof traceflow>[1]);
      if ('problem' in t) return fail(t.problem);
      return JSON.parse(JSON.stringify({ verdict: t.verdict, decidingPolicy: t.decidingPolicy, decidingRule: t.decidingRule, observations: t.observations })) as PropertyMap;
    }
    case 'getEffectiveRules': {
      const r = effectiveRules(world, String(args.target));
      if ('problem' in r) return fail(r.problem);
      return JSON.parse(JSON.stringify({ rules: r })) as PropertyMap;
    }
    case 'getGroupMembers': {
      if (!world.get('SecurityGroup', String(args.group))) return fail({ message: `SecurityGroup "${String(args.group)}" does not exist` });
      const m = world.groupMembers(String(args.group));
      return { members: m.members, ipBlocks: m.ipBlocks, count: m.members.length };
    }
    case 'getConnectivityMatrix': {
      const groups = args.groups as string[];
      for (const g of groups) if (!world.get('SecurityGroup', g)) return fail({ message: `SecurityGroup "${g}" does not exist` });
      return JSON.parse(JSON.stringify({ cells: connectivityMatrix(world, groups, args.protocol as 'tcp', args.port as number | undefined) })) as PropertyMap;
    }
    case 'getKubernetesManifests': {
      const r = getKubernetesManifests(world, { cluster: String(args.cluster), flavor: (args.flavor as Flavor | undefined) ?? 'kubernetes', podsOnly: args.podsOnly === true, hostEndpoints: args.hostEndpoints === true });
      if (r.refusals.length) return fail({ message: `export refused: ${r.refusals.map((x) => `${x.construct}: ${x.reason}`).join('; ')}` });
      return JSON.parse(JSON.stringify({ manifests: r.manifests, yaml: r.manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n') })) as PropertyMap;
    }
    default:
      return fail({ message: `unknown function ${fn}` });
  }
}

/** The environment a provider uses: its `environment` config, else the Pulumi stack name, else `default`. */
export function resolveEnvironment(config: Pick<ProviderConfig, 'environment'>, stack: string | undefined): string {
  return config.environment ?? stack ?? 'default';
}

/** How long the provider's deletes wait for the users of an object to be deleted (see waitForUsersMs). */
export const PROVIDER_WAIT_FOR_USERS_MS = 10_000;

/** Opens the bundled backend for a provider configuration; `stack` names the default environment. */
export function openEmbeddedBackend(config: ProviderConfig, context: { stack?: string } = {}): EmbeddedBackend {
  return new EmbeddedBackend({
    dataDir: config.dataDir,
    environment: resolveEnvironment(config, context.stack),
    ...(config.defaultAction !== undefined ? { defaultAction: config.defaultAction } : {}),
    waitForUsersMs: PROVIDER_WAIT_FOR_USERS_MS,
    ...(config.waitForRealization ? { waitForRealization: true } : {}),
  });
}
