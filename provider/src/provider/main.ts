import { functions, identityOf, isKind, providerConfig, ProviderConfig, resources } from '../model';
import { microsegSchemaJson } from '../schema';
import { version } from '../version';
import { engineValidator, openEmbeddedBackend, PROVIDER_WAIT_FOR_USERS_MS, resolveEnvironment } from '../backend';
import { RemoteBackend } from '../backend/remote';
import { BackendError } from './backend';
import { ProviderCore } from './core';
import { serve } from './grpc-server';
import { watchEngine } from './engine-watch';
import { PropertyMap } from './values';

/** Builds the provider core wired to the bundled in-process backend, or to a team-mode server when microseg:endpoint is set. */
export function createProviderCore(): ProviderCore<ProviderConfig> {
  let schema: string | undefined;
  return new ProviderCore<ProviderConfig>({
    version,
    resources,
    functions,
    config: providerConfig,
    schema: () => (schema ??= microsegSchemaJson()),
    identity: (kind, spec) => (isKind(kind) ? identityOf(kind, spec as { name?: string }) : String(spec.name ?? '')),
    validate: (kind, spec: PropertyMap) => engineValidator.validate(kind, spec).map(({ path, message }) => ({ path, message })),
    openBackend: (config, context) => {
      // Refused rather than ignored: a user who asked to wait must not get an `up` that silently does not.
      if (config.endpoint && config.waitForRealization) throw new BackendError('microseg:waitForRealization works with the embedded store only for now; unset it, or unset microseg:endpoint');
      return config.endpoint
        ? new RemoteBackend({
            endpoint: config.endpoint,
            token: config.token,
            caCert: config.caCert,
            environment: resolveEnvironment(config, context.stack),
            waitForUsersMs: PROVIDER_WAIT_FOR_USERS_MS,
            ...(config.defaultAction !== undefined ? { defaultAction: config.defaultAction } : {}),
          })
        : openEmbeddedBackend(config, context);
    },
  });
}

/**
 * Entry point of `pulumi-resource-microseg`. The engine passes `[flags...] <engineAddress>`; the first
 * and only line on stdout must be the port. The process ends on SIGINT/SIGTERM (the engine's Close) and
 * when the engine itself is gone (see engine-watch.ts): a `kill -9` of `pulumi` leaves no provider behind.
 */
export async function main(argv: string[]): Promise<void> {
  const positional = argv.filter((a) => !a.startsWith('-'));
  const engineAddress = positional[positional.length - 1];
  const core = createProviderCore();
  // Signal handlers go in before the port is printed: the engine may signal as soon as it reads it.
  let stop: (() => void) | undefined;
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    stop?.();
    setTimeout(() => process.exit(0), 50).unref();
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  const { port, server, logger } = await serve(core as ProviderCore<unknown>, { engineAddress });
  const interval = Number(process.env.MICROSEG_ENGINE_CHECK_MS);
  const watch = engineAddress ? watchEngine(engineAddress, () => {
    process.stderr.write(`pulumi-resource-microseg: the Pulumi engine at ${engineAddress} is gone; exiting\n`);
    shutdown();
  }, Number.isFinite(interval) && interval > 0 ? { intervalMs: interval } : {}) : undefined;
  stop = () => {
    watch?.stop();
    server.tryShutdown(() => undefined);
    core.close();
    logger.close();
  };
  if (stopping) stop();
  process.stdout.write(`${port}\n`);
}

if (require.main === module) {
  // Anything a library prints must not corrupt the port line.
  console.log = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(' ')}\n`);
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`pulumi-resource-microseg: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
