import { PropertyMap } from './values';

/** Who asks, and until when: passed with every operation that writes or waits. */
export interface OperationContext {
  /**
   * The writer, recorded as the object's owner: the Pulumi resource URN (which names the stack). A create
   * that finds an object owned by the same URN adopts it (a crashed `up` converges); another owner refuses.
   */
  readonly owner?: string;
  /** Aborted by the engine's Cancel or when the resource's customTimeout passes; the reason is the error. */
  readonly signal?: AbortSignal;
  /** The operation's customTimeouts in seconds (absent or 0: none set), for waits of its own (waitForRealization). */
  readonly timeoutSeconds?: number;
  /**
   * The preview a plan belongs to: planned changes are seen by later calls of the same session only. A
   * provider process is one session; the team-mode server serves many (one per client provider).
   */
  readonly session?: string;
  /** Spec paths whose values are secret (Pulumi secrets), for a write: stored encrypted, never in plain text. */
  readonly secretPaths?: readonly string[];
}

/** What the provider needs of the enforcement backend (the bundled in-process one, later a remote one). */
export interface Backend {
  /** Outputs the backend would compute for `spec`, without writing anything (preview); refuses what `put` would. */
  plan(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update', context?: OperationContext): Promise<BackendResult>;
  /** Creates or updates the object and returns its computed outputs. */
  put(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update', context?: OperationContext): Promise<BackendResult>;
  /** The live object, or undefined when it does not exist; `secretPaths` are the spec paths stored as secrets. */
  get(kind: string, name: string, context?: OperationContext): Promise<{ spec: PropertyMap; outputs: PropertyMap; owner?: string; secretPaths?: readonly string[] } | undefined>;
  /**
   * Refuses (BackendError) a create of an object that exists and is not owned by `context.owner`; used in
   * preview when the spec still has unknowns and cannot be planned, so the refusal never waits for `up`.
   */
  assertCreatable(kind: string, name: string, context?: OperationContext): Promise<void>;
  /** Records `owner` as the object's owner (import); the object must exist. */
  claim(kind: string, name: string, owner: string): Promise<void>;
  /** Deletes the object; deleting one that is already gone succeeds. */
  delete(kind: string, name: string, context?: OperationContext): Promise<void>;
  /** Runs a function (traceflow, getEffectiveRules, ...). */
  invoke(fn: string, args: PropertyMap): Promise<PropertyMap>;
  close(): void;
}

export interface BackendResult {
  outputs: PropertyMap;
  /** Messages the user should see in `pulumi preview`/`up` (priority ties, policy impact). */
  warnings: string[];
  infos?: string[];
  /**
   * Set by `put` when the object was written but did not come up healthy (for example a broken
   * ConnectivityAssertion): the provider reports ErrorResourceInitFailed, so the engine records the
   * object with these reasons, fails the update and retries it on the next one.
   */
  initErrors?: string[];
}

/**
 * Why a backend refused: lets the HTTP server pick a status and the remote client decide whether a retry
 * is safe. `invalid` is the default (a user error in the spec).
 */
export type BackendErrorReason = 'invalid' | 'conflict' | 'not-found' | 'in-use' | 'unauthenticated' | 'forbidden' | 'unavailable';

/** A user error from the backend: reported as a clear failure, never as a crash. */
export class BackendError extends Error {
  constructor(
    message: string,
    readonly problems: readonly { path: string; message: string }[] = [],
    readonly reason: BackendErrorReason = 'invalid',
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

/**
 * A well-formed change refused because it would break a ConnectivityAssertion that holds (or because the
 * assertion being written does not hold): the change was evaluated and the outcome is a failure, which
 * the CLI reports as exit 1, not as bad input.
 */
export class AssertionBrokenError extends BackendError {
  override name = 'AssertionBrokenError';
}
