import { droppedFlowsOf, FlowCollector, parseConntrack } from '../../../provider/src/agent';
import { World } from '../../../provider/src/engine';
import type { FlowRule } from '../../../provider/src/realize/nftables';
import type { FlowRecord } from '../../../provider/src/store';
import { aggregateFlows, parseSince, rulesNeverHit } from '../../../provider/src/visibility/flows';

// A line as `conntrack -L -o extended,id` prints it (with nf_conntrack_acct on).
const CT_LINE =
  'ipv4     2 tcp      6 118 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080 packets=6 bytes=344 src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000 packets=4 bytes=226 [ASSURED] mark=305419896 use=1 id=2718281828';

describe('flow records: reading the kernel', () => {
  test('a conntrack line gives the original tuple, the mark and the counters of both directions', () => {
    expect(parseConntrack(`${CT_LINE}\nconntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n`)).toEqual([
      { id: '2718281828', protocol: 'tcp', src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 8080, mark: 305419896, packets: 10, bytes: 570 },
    ]);
  });

  test('the elements of a dropped-flow set, as `nft -j list table` shows them', () => {
    const listing = {
      nftables: [
        { table: { family: 'inet', name: 't', handle: 7 } },
        { set: { name: 'fd_in_1', elem: [{ elem: { val: { concat: ['10.0.0.9', '10.0.0.2', 'tcp', 9090] }, expires: 590, counter: { packets: 2, bytes: 120 } } }] } },
        { set: { name: 'other', elem: [{ elem: { val: { concat: ['1.1.1.1', '2.2.2.2', 'udp', 53] } } }] } },
      ],
    };
    const sets = new Map<string, FlowRule>([['fd_in_1', { direction: 'in', rule: 'default', verdict: 'drop' }]]);
    expect(droppedFlowsOf(listing, sets)).toEqual([{ set: 'fd_in_1', src: '10.0.0.9', dst: '10.0.0.2', protocol: 'tcp', dport: 9090, packets: 2, bytes: 120 }]);
  });

  test('the collector reports a record when it is new or its counters changed, with the rule its mark names', () => {
    const c = new FlowCollector(() => new Date('2026-01-01T00:00:00Z'));
    const point = { point: 'vm:s#0', ip: '10.0.0.2', marks: new Map<number, FlowRule>([[305419896, { direction: 'in', rule: 'app/web', verdict: 'allow' }]]), flowSets: new Map(), listings: [] };
    const [entry] = parseConntrack(CT_LINE);
    const world = new World({ defaultAction: 'drop' });
    const pass = (entries: Parameters<FlowCollector['collect']>[2]) => {
      const records = c.collect(world, [point], entries);
      c.delivered();
      return records;
    };
    const first = pass([entry!]);
    expect(first.map((r) => [r.point, r.direction, r.verdict, r.rule, r.sourceIp, r.sourcePort, r.destinationPort, r.packets])).toEqual([['vm:s#0', 'in', 'allow', 'app/web', '10.0.0.1', 40000, 8080, 10]]);
    expect(pass([entry!])).toEqual([]);
    expect(pass([{ ...entry!, packets: 12 }]).map((r) => r.packets)).toEqual([12]);
    // A connection whose mark names no rule of this point, or whose destination is another address, is not this point's.
    expect(pass([{ ...entry!, mark: 1 }, { ...entry!, dst: '10.0.0.3' }])).toEqual([]);
  });

  test('records whose delivery failed are reported again at the next pass', () => {
    const c = new FlowCollector(() => new Date('2026-01-01T00:00:00Z'));
    const point = { point: 'vm:s#0', ip: '10.0.0.2', marks: new Map<number, FlowRule>([[305419896, { direction: 'in', rule: 'app/web', verdict: 'allow' }]]), flowSets: new Map(), listings: [] };
    const [entry] = parseConntrack(CT_LINE);
    const world = new World({ defaultAction: 'drop' });
    expect(c.collect(world, [point], [entry!])).toHaveLength(1);
    // The sink threw: no delivered(). The same reading is still news.
    expect(c.collect(world, [point], [entry!]).map((r) => r.packets)).toEqual([10]);
    c.delivered();
    expect(c.collect(world, [point], [entry!])).toEqual([]);
  });
});

describe('flow records: the behaviour view', () => {
  const world = new World({ defaultAction: 'drop' });
  for (const [kind, name, spec] of [
    ['VirtualMachine', 'web', { name: 'web', interfaces: [{ ip: '10.0.0.1' }] }],
    ['VirtualMachine', 'db', { name: 'db', interfaces: [{ ip: '10.0.0.2' }] }],
    ['SecurityGroup', 'front', { name: 'front', vms: ['web'] }],
    ['FirewallPolicy', 'app', { name: 'app', category: 'application', priority: 1, rules: [{ name: 'web-db', action: 'allow', sources: [{ group: 'front' }], services: [{ protocol: 'tcp', ports: [5432] }] }, { name: 'unused', action: 'drop' }] }],
  ] as const)
    world.upsert(kind, name, spec as never);
  const rec = (id: string, extra: Partial<FlowRecord>): FlowRecord => ({
    id,
    point: 'vm:db#0',
    direction: 'in',
    protocol: 'tcp',
    sourceIp: '10.0.0.1',
    destinationIp: '10.0.0.2',
    destinationPort: 5432,
    verdict: 'allow',
    rule: 'app/web-db',
    firstSeen: '2026-01-01T00:00:00.000Z',
    lastSeen: '2026-01-01T00:00:01.000Z',
    packets: 5,
    bytes: 500,
    ...extra,
  });

  test('records aggregate by workload/VM and by group: flows, packets and the deciding rules per service and verdict', () => {
    const records = [rec('a', {}), rec('b', { lastSeen: '2026-01-01T00:00:09.000Z' }), rec('c', { destinationPort: 22, verdict: 'drop', rule: 'default', packets: 1, bytes: 60 })];
    expect(aggregateFlows(world, records, 'workload').map((a) => [a.source, a.destination, `${a.protocol}/${a.port}`, a.verdict, a.flows, a.packets, a.rules, a.lastSeen])).toEqual([
      ['vm:web', 'vm:db', 'tcp/5432', 'allow', 2, 10, ['app/web-db'], '2026-01-01T00:00:09.000Z'],
      ['vm:web', 'vm:db', 'tcp/22', 'drop', 1, 1, ['default'], '2026-01-01T00:00:01.000Z'],
    ]);
    // db is in no group: it keeps its VM name.
    expect(aggregateFlows(world, records, 'group').map((a) => `${a.source} → ${a.destination}`)).toEqual(['group:front → vm:db', 'group:front → vm:db']);
  });

  test('rules never hit are the enforced rules without a record in the window', () => {
    expect(rulesNeverHit(world, [rec('a', {})]).map((r) => r.id)).toEqual(['app/unused']);
  });

  test('--since takes a duration back from now or an ISO time, and nothing else', () => {
    const now = new Date('2026-01-02T00:00:00Z');
    expect([parseSince('90s', now), parseSince('24h', now), parseSince('2026-01-01T12:00:00Z', now), parseSince('yesterday', now)]).toEqual([
      '2026-01-01T23:58:30.000Z',
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T12:00:00.000Z',
      undefined,
    ]);
  });
});
