import type { World } from '../../provider/src/engine';
import { allFlows, applyAll, describeMismatches, externalHosts, probeAll, probePorts, requireRootAndNft } from './differential';
import { Lab } from './lab';
import { vcciWorld } from '../support/vcci-world';

/**
 * The kernel is the oracle: every flow of the flagship example (examples/vcci-app), between every pair of
 * hosts and to the load balancer's VIP, over every port a rule names, UDP and ICMP echo, is sent as real
 * packets through namespaces carrying each endpoint's compiled ruleset, and must get traceflow's verdict:
 * allow = delivered, drop = silence, reject = RST or ICMP unreachable.
 */
jest.setTimeout(240_000);

let world: World;
let lab: Lab | undefined;

beforeAll(async () => {
  requireRootAndNft();
  world = await vcciWorld();
  const ports = probePorts(world);
  lab = await Lab.build(world, { externals: externalHosts(world), tcpPorts: ports.tcp, udpPorts: ports.udp });
  await applyAll(world, lab);
});

afterAll(async () => {
  await lab?.destroy();
});

test('every flow of examples/vcci-app gets traceflow verdict in the kernel', async () => {
  const flows = allFlows(world, lab!, probePorts(world));
  const { outcomes, mismatches } = await probeAll(world, lab!, flows);
  const count = (k: string) => outcomes.filter((o) => o.observed === k).length;
  // The example must exercise every verdict, or agreement would prove little.
  expect({ open: count('open') > 0, timeout: count('timeout') > 0 }).toEqual({ open: true, timeout: true });
  if (mismatches.length) throw new Error(`${mismatches.length} of ${outcomes.length} flows disagree with traceflow:\n${await describeMismatches(lab!, mismatches)}`);
});
