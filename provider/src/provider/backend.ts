import { PropertyMap } from './values';

/** What the provider needs of the enforcement backend (the bundled in-process one, later a remote one). */
export interface Backend {
  /** Outputs the backend would compute for `spec`, without writing anything (preview). */
  plan(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update'): Promise<BackendResult>;
  /** Creates or updates the object and returns its computed outputs. */
  put(kind: string, name: string, spec: PropertyMap, mode: 'create' | 'update'): Promise<BackendResult>;
  /** The live object, or undefined when it does not exist. */
  get(kind: string, name: string): Promise<{ spec: PropertyMap; outputs: PropertyMap } | undefined>;
  /** Deletes the object; deleting one that is already gone succeeds. */
  delete(kind: string, name: string): Promise<void>;
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
