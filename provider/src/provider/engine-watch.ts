import * as grpc from '@grpc/grpc-js';

/**
 * Notices when the Pulumi engine that started this provider is gone (killed with `kill -9`, crashed), so
 * the provider exits instead of lingering. This is what Pulumi's own plugin SDKs do (`provider.Main` and
 * every language host call `rpcutil.Healthcheck`): poll `grpc.health.v1.Health/Check` on the engine
 * address; UNIMPLEMENTED still proves the engine answers, a refused connection means it is gone.
 * Pulumi polls every 5 minutes; we poll every few seconds because a lingering provider holds memory and
 * the store's file handles, and one loopback RPC costs nothing.
 */
export interface EngineWatch {
  stop(): void;
}

export interface EngineWatchOptions {
  /** Between checks (ms). */
  readonly intervalMs?: number;
  /** Consecutive failed checks that mean "gone" (one refused connection can be a hiccup under load). */
  readonly failuresToGone?: number;
}

const HEALTH_CHECK = '/grpc.health.v1.Health/Check';

export function watchEngine(address: string, onGone: () => void, options: EngineWatchOptions = {}): EngineWatch {
  const intervalMs = options.intervalMs ?? 2000;
  const failuresToGone = options.failuresToGone ?? 2;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  let failures = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(check, intervalMs);
    // Never keep the process alive just to watch.
    timer.unref();
  };
  const check = () => {
    // An empty HealthCheckRequest (service "") is zero bytes; the response is not needed.
    client.makeUnaryRequest<Buffer, Buffer>(
      HEALTH_CHECK,
      (b) => b,
      (b) => b,
      Buffer.alloc(0),
      { deadline: Date.now() + Math.max(intervalMs, 1000) },
      (err) => {
        if (stopped) return;
        const alive = !err || err.code === grpc.status.UNIMPLEMENTED || err.code === grpc.status.DEADLINE_EXCEEDED;
        failures = alive ? 0 : failures + 1;
        if (failures >= failuresToGone) {
          stop();
          onGone();
          return;
        }
        schedule();
      },
    );
  };
  const stop = () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    client.close();
  };
  schedule();
  return { stop };
}
