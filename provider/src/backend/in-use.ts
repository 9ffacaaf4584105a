import { BackendError, type OperationContext } from '../provider/backend';

/** A delete refused because other objects still reference the object; its problems name the users. */
export class InUseBackendError extends BackendError {
  constructor(message: string, problems: readonly { path: string; message: string }[]) {
    super(message, problems, 'in-use');
    this.name = 'InUseBackendError';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Deletes with `once`, waiting up to `waitMs` while the delete is refused because other objects still use
 * the object. Users that refer to it by a literal name (`group: g1`, not `${g1.name}`) carry no dependency,
 * so Pulumi deletes both at once; waiting lets their deletes land first. The provider waits this way on
 * both backends (in process, and as the client of `microseg serve`, whose own deletes never wait).
 */
export async function deleteWaitingForUsers(once: () => Promise<void>, kind: string, name: string, waitMs: number, context?: OperationContext): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await once();
    } catch (err) {
      if (!(err instanceof InUseBackendError)) throw err;
      if (Date.now() >= deadline || context?.signal?.aborted) {
        if (waitMs === 0) throw err;
        const one = err.problems.length === 1;
        throw new BackendError(
          `${err.message}. If ${one ? 'that object is' : 'those objects are'} managed in the same Pulumi program and name${one ? 's' : ''} ${kind} "${name}" literally (e.g. \`group: ${name}\`), refer to the resource instead (\`\${<resource>.name}\` in YAML, \`<resource>.name\` in code): Pulumi then knows the dependency and deletes the users first`,
        );
      }
      await sleep(250);
    }
  }
}
