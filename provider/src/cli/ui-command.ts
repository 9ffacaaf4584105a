import { startUiServer } from '../ui/server';
import { withStore, type StoreOptions } from './context';
import { CliError, EXIT_OK, type CliIo } from './io';

/** `microseg ui [--port N] [--host 127.0.0.1]`: the visibility page over the embedded store, until interrupted. */
export async function runUi(options: StoreOptions & { port?: string; host?: string }, io: CliIo, signal?: AbortSignal): Promise<number> {
  const port = Number(options.port ?? 8417);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port: "${options.port}" is not a port (0-65535)`);
  return withStore(options, io, async (ctx) => {
    const server = await startUiServer({ store: ctx.store, environment: ctx.environment, world: () => ctx.world() }, { port, host: options.host ?? '127.0.0.1' });
    io.stdout(`microseg ui: environment "${ctx.environment}" at ${server.url} (Ctrl-C stops)\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      signal?.addEventListener('abort', stop);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
    return EXIT_OK;
  });
}
