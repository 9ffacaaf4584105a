import { engineValidator } from '../../provider/src/backend/embedded';
import { EmbeddedBackend } from '../../provider/src/backend';
import { traceflow, validateSpec, type World } from '../../provider/src/engine';
import { BackendService } from '../../provider/src/service';
import type { FlowRecord, Store } from '../../provider/src/store';
import { vcciWorld } from './vcci-world';

/**
 * The flagship example (examples/vcci-app) stored in an environment, with flow records as an agent would
 * report them for a few flows: the store the visibility page's browser tests look at.
 */
export const SEEDED_FLOWS: readonly [string, string, number, number][] = [
  ['workload:vcci/shop/frontend', 'workload:vcci/shop/apigateway', 8080, 4],
  ['workload:vcci/shop/apigateway', 'workload:vcci/shop/backend', 8080, 3],
  ['workload:vcci/shop/backend', 'vm:database', 5432, 2],
  ['workload:vcci/shop/frontend', 'vm:database', 5432, 2],
  ['workload:vcci/shop/frontend', 'workload:vcci/shop/backend', 8080, 1],
];

/** Flow records for SEEDED_FLOWS: the verdict and rule traceflow gives, an hour ago (inside the page's default windows). */
export function flowRecords(world: World): FlowRecord[] {
  const out: FlowRecord[] = [];
  const base = Date.now() - 3600_000;
  for (const [from, to, port, n] of SEEDED_FLOWS) {
    const t = traceflow(world, { source: from, destination: to, protocol: 'tcp', port });
    if ('problem' in t) throw new Error(t.problem.message);
    const decided = [...t.observations].reverse().find((o) => o.policy !== undefined)!;
    const src = t.observations[0]!.sourceIp!;
    const dst = t.observations[t.observations.length - 1]!.destinationIp!;
    for (let i = 0; i < n; i++)
      out.push({
        id: `${from}>${to}:${port}#${i}`,
        point: decided.component === 'source-firewall' ? `x:${from}` : `x:${to}`,
        direction: decided.component === 'source-firewall' ? 'out' : 'in',
        protocol: 'tcp',
        sourceIp: src,
        sourcePort: 40000 + i,
        destinationIp: dst,
        destinationPort: port,
        verdict: t.verdict,
        rule: decided.policy === 'default' ? 'default' : `${decided.policy}/${decided.rule}`,
        firstSeen: new Date(base + i * 1000).toISOString(),
        lastSeen: new Date(base + i * 1000 + 500).toISOString(),
        packets: t.verdict === 'allow' ? 10 : 1,
        bytes: t.verdict === 'allow' ? 1200 : 60,
      });
  }
  return out;
}

/** Stores the example in `environment` and its flow records; returns the stored world and a backend over it. */
export async function seedVcci(store: Store, environment: string): Promise<{ world: World; backend: EmbeddedBackend }> {
  const example = await vcciWorld();
  const service = new BackendService({ store, environment, validator: engineValidator });
  // The world lists objects by kind; the store wants referenced objects first: retry what refers ahead.
  let pending = [...example.objects()];
  for (let round = 0; pending.length && round < 10; round++) {
    const later: typeof pending = [];
    for (const o of pending) {
      const r = validateSpec(o.kind, o.spec);
      if (!r.ok) throw new Error(`${o.kind} ${o.name}: ${JSON.stringify(r.problems)}`);
      await service.create(o.kind, o.name, r.value as Record<string, unknown>).catch((e: Error) => {
        if (!/does not exist/.test(e.message)) throw e;
        later.push(o);
      });
    }
    pending = later;
  }
  if (pending.length) throw new Error(`not stored: ${pending.map((o) => `${o.kind} ${o.name}`).join(', ')}`);
  const backend = new EmbeddedBackend({ store, environment });
  // Pod IPs are allocated in the order objects reach the store: attribute flows with the stored world.
  const world = await backend.currentWorld();
  await store.recordFlows(environment, flowRecords(world));
  return { world, backend };
}
