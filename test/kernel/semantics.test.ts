import { World } from '../../provider/src/engine';
import type { Kind } from '../../provider/src/model';
import { allFlows, applyAll, describeMismatches, probeAll, probePorts, requireRootAndNft, type FlowOutcome } from './differential';
import { Lab, nsExec, nftFile } from './lab';

/**
 * Verdicts a distributed firewall must realize exactly, one small world: reject is seen by the sender as
 * a TCP reset or an ICMP unreachable (at the source's own firewall and at the destination's), pass skips
 * to the application category, staged policies never decide, first match wins inside a category.
 */
jest.setTimeout(120_000);

function world(): World {
  const w = new World({ defaultAction: 'drop' });
  const put = (kind: Kind, name: string, spec: Record<string, unknown>) => {
    const p = w.upsert(kind, name, spec).filter((x) => x.severity !== 'warning');
    if (p.length) throw new Error(JSON.stringify(p));
  };
  put('VirtualMachine', 'client', { interfaces: [{ ip: '192.168.70.10' }], labels: { role: 'client' } });
  put('VirtualMachine', 'server', { interfaces: [{ ip: '192.168.70.20' }], labels: { role: 'server' } });
  put('VirtualMachine', 'other', { interfaces: [{ ip: '192.168.70.30' }], labels: { role: 'other' } });
  put('SecurityGroup', 'client', { vms: ['client'] });
  put('SecurityGroup', 'server', { vms: ['server'] });
  put('SecurityGroup', 'other', { vms: ['other'] });
  // Staged: would drop everything to the server, but only counts.
  put('FirewallPolicy', 'audit', { category: 'emergency', priority: 1, enforcement: 'staged', rules: [{ name: 'drop-all', action: 'drop', destinations: [{ group: 'server' }] }] });
  // Infrastructure: the client's 8443 is rejected at the source, pass for 8080 skips the environment deny.
  put('FirewallPolicy', 'infra', {
    category: 'infrastructure',
    priority: 1,
    rules: [
      { name: 'reject-8443-at-source', action: 'reject', direction: 'out', sources: [{ group: 'client' }], services: [{ protocol: 'tcp', ports: [8443] }, { protocol: 'udp', ports: [8443] }] },
      { name: 'pass-8080', action: 'pass', destinations: [{ group: 'server' }], services: [{ protocol: 'tcp', ports: [8080] }] },
    ],
  });
  put('FirewallPolicy', 'env', { category: 'environment', priority: 1, rules: [{ name: 'deny-server-8000-8100', action: 'drop', destinations: [{ group: 'server' }], services: [{ protocol: 'tcp', ports: ['8000-8100'] }] }] });
  put('FirewallPolicy', 'app', {
    category: 'application',
    priority: 1,
    rules: [
      { name: 'client-to-server', action: 'allow', sources: [{ group: 'client' }], destinations: [{ group: 'server' }], services: [{ protocol: 'tcp', ports: [8080, 9000] }, { protocol: 'udp', ports: [53] }, { protocol: 'icmp', icmpType: 8 }] },
      // Shadowed for 9000 by the rule above (first match), rejects the rest at the server.
      { name: 'reject-rest-at-server', action: 'reject', direction: 'in', destinations: [{ group: 'server' }] },
      { name: 'any-out', action: 'allow', direction: 'out' },
    ],
  });
  return w;
}

let lab: Lab | undefined;
let outcomes: FlowOutcome[] = [];
let mismatches: FlowOutcome[] = [];

beforeAll(async () => {
  requireRootAndNft();
  const w = world();
  const ports = probePorts(w);
  lab = await Lab.build(w, { tcpPorts: ports.tcp, udpPorts: ports.udp });
  await applyAll(w, lab);
  ({ outcomes, mismatches } = await probeAll(w, lab, allFlows(w, lab, ports), { timeoutMs: 1200 }));
});

afterAll(async () => {
  await lab?.destroy();
});

const find = (src: string, dst: string, op: string, port?: number) => outcomes.find((o) => o.src === src && o.dst === dst && o.op === op && o.port === port)?.observed;

test('every flow gets traceflow verdict in the kernel', async () => {
  if (mismatches.length) throw new Error(`${mismatches.length} of ${outcomes.length} flows disagree:\n${await describeMismatches(lab!, mismatches)}`);
});

test('reject at the destination is a TCP reset, an ICMP unreachable for UDP and echo', () => {
  expect([find('192.168.70.30', '192.168.70.20', 'tcp', 9000), find('192.168.70.30', '192.168.70.20', 'udp', 53), find('192.168.70.30', '192.168.70.20', 'icmp')]).toEqual(['reject', 'reject', 'reject']);
});

test('reject at the source firewall is seen by the sending application', () => {
  expect([find('192.168.70.10', '192.168.70.20', 'tcp', 8443), find('192.168.70.10', '192.168.70.20', 'udp', 8443)]).toEqual(['reject', 'reject']);
});

test('pass skips the environment category, and a staged drop does not decide', () => {
  expect({ pass: find('192.168.70.10', '192.168.70.20', 'tcp', 8080), deniedWithoutPass: find('192.168.70.10', '192.168.70.20', 'tcp', 8000), icmp: find('192.168.70.10', '192.168.70.20', 'icmp') }).toEqual({ pass: 'open', deniedWithoutPass: 'timeout', icmp: 'open' });
});

test('a flow conntrack does not track is dropped before classification, though a rule allows it, and counted', async () => {
  // The rule number travels in the connection's mark: without a conntrack entry there is none to carry it.
  const server = lab!.hosts.get('192.168.70.20')!.ns;
  const counter = async () => {
    const listing = await nsExec(server, 'nft', ['list', 'chain', 'inet', 'microseg_server_0', 'input']);
    return Number(/ct state invalid,untracked counter packets (\d+)/.exec(listing)?.[1]);
  };
  const before = await counter();
  expect(await lab!.probe('192.168.70.10', 'tcp', '192.168.70.20', 8080, undefined, 1200)).toMatchObject({ result: 'open' });
  await nftFile(server, 'table inet msnotrack {\n chain pre { type filter hook prerouting priority raw; tcp dport 8080 notrack; }\n}\n');
  try {
    expect((await lab!.probe('192.168.70.10', 'tcp', '192.168.70.20', 8080, undefined, 1200)).result).toBe('timeout');
    expect(await counter()).toBeGreaterThan(before);
  } finally {
    await nsExec(server, 'nft', ['delete', 'table', 'inet', 'msnotrack']);
  }
});
