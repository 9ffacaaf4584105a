import fc from 'fast-check';
import { buildWorld, objects, worldArb } from '../support/random-world';
import { allFlows, applyAll, describeMismatches, externalHosts, probeAll, probePorts, requireRootAndNft } from './differential';
import { Lab } from './lab';

/**
 * Generated worlds against the kernel: a cluster (overlay or flat) with a few workloads, a few VMs, an
 * optional egress IP and load balancer, and random tiered policies (every action including pass and
 * reject, every direction, negated peers, CIDRs with exceptions, named ports, ICMP, staged policies).
 * Each world is built in namespaces and every flow must get traceflow's verdict. Bounded: a few worlds,
 * no shrinking (each run builds a lab); the seed is printed on failure.
 */
jest.setTimeout(300_000);

const RUNS = Number(process.env.MICROSEG_KERNEL_RUNS ?? 5);
const SEED = Number(process.env.MICROSEG_KERNEL_SEED ?? Date.now() % 1_000_000);

beforeAll(() => requireRootAndNft());

test(`generated topologies get traceflow's verdicts in the kernel (${RUNS} worlds, seed ${SEED})`, async () => {
  let probes = 0;
  await fc.assert(
    fc.asyncProperty(worldArb, async (spec) => {
      const world = buildWorld(spec);
      const ports = probePorts(world);
      const lab = await Lab.build(world, { externals: externalHosts(world), tcpPorts: ports.tcp, udpPorts: ports.udp });
      try {
        await applyAll(world, lab);
        const { outcomes, mismatches } = await probeAll(world, lab, allFlows(world, lab, ports), { timeoutMs: 1200 });
        probes += outcomes.length;
        if (mismatches.length)
          throw new Error(`seed ${SEED}: ${mismatches.length} of ${outcomes.length} flows disagree with traceflow in world\n${JSON.stringify(objects(spec))}\n${await describeMismatches(lab, mismatches)}`);
      } finally {
        await lab.destroy();
      }
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );
  expect(probes).toBeGreaterThan(0);
});
