import fc from 'fast-check';
import { changedElements, NetlinkNft, NftCli, NftError } from '../../provider/src/agent';
import { enforcementPoints, type World } from '../../provider/src/engine';
import { realizePoints, renderText, type AddrKey, type Chain, type NamedSet, type Rule, type Table, type Verdict } from '../../provider/src/realize/nftables';
import { buildWorld, worldArb } from '../support/random-world';
import { vcciWorld } from '../support/vcci-world';
import { requireRootAndNft } from './differential';
import { writerBinary } from './kernel-nft';
import { sh } from './lab';

/**
 * microseg-nft (tools/nft-writer) against nft itself, in network namespaces: the same compiled table
 * applied with `nft -f` text in one namespace and through the writer in another must leave the kernel in
 * the same state, as `nft -a list table` prints it and as `nft --debug=netlink list table` prints the
 * kernel's own objects (expressions, registers, set flags, every element). Element updates through the
 * writer must leave exactly what applying the new table directly leaves, and a refused batch nothing.
 */
jest.setTimeout(600_000);

const SEED = Number(process.env.MICROSEG_KERNEL_SEED ?? Date.now() % 1_000_000);
const RUNS = Number(process.env.MICROSEG_KERNEL_RUNS ?? 6);
const PREFIX = `mnw${process.pid % 10000}-`;
const NS = { nft: `${PREFIX}nft`, writer: `${PREFIX}nl`, direct: `${PREFIX}nl2` };
let viaNft: NftCli;
let writer: NetlinkNft;
let direct: NetlinkNft;

beforeAll(async () => {
  requireRootAndNft();
  for (const ns of Object.values(NS)) await sh('ip', ['netns', 'add', ns]);
  viaNft = new NftCli({ command: ['ip', 'netns', 'exec', NS.nft, 'nft'] });
  writer = new NetlinkNft({ binary: writerBinary(), prefix: ['ip', 'netns', 'exec', NS.writer] });
  direct = new NetlinkNft({ binary: writerBinary(), prefix: ['ip', 'netns', 'exec', NS.direct] });
});

afterAll(async () => {
  writer?.close();
  direct?.close();
  for (const ns of Object.values(NS)) await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
});

/**
 * What the kernel holds for a table, twice: nft's listing with handles (the table's own handle is
 * per namespace), and the kernel objects as nft receives them. nft's bulk load adds an interval-end
 * element at key 0 before a set's first interval when that does not start at 0 (a left-over of its
 * segment tree that lookups do not need); the writer sends only each interval's own start and end, so
 * that end element at 0 is left out of the comparison (no interval can end at 0: its end element is hi+1).
 * A hash map (the rule map) lists its elements in the order of a hash the kernel seeds at random per
 * set, so each set's element lines are compared sorted (every element, key and data, still compared).
 */
async function kernelState(ns: string, table: string): Promise<{ listing: string; objects: string }> {
  const listing = (await sh('ip', ['netns', 'exec', ns, 'nft', '-a', 'list', 'table', 'inet', table])).replace(/^(table inet \S+ \{) # handle \d+$/m, '$1');
  const objects = (await sh('ip', ['netns', 'exec', ns, 'bash', '-c', 'nft --debug=netlink list table inet "$1" 2>&1', '_', table]))
    .replace(/^\telement (?:00000000 )+ : 1 \[end\]\n/gm, '')
    .replace(/(?:^\telement .*\n)+/gm, (lines) => lines.split('\n').slice(0, -1).sort().join('\n') + '\n');
  return { listing, objects };
}

async function expectSameAsNft(table: Table): Promise<void> {
  await viaNft.replaceTable(table);
  await writer.replaceTable(table);
  const [a, b] = await Promise.all([kernelState(NS.nft, table.name), kernelState(NS.writer, table.name)]);
  expect({ table: table.name, ...b }).toEqual({ table: table.name, ...a });
}

function pointsOf(world: World): Table[] {
  return enforcementPoints(world).flatMap((p) => realizePoints(world, p.name)!.map((r) => r.table));
}

const skeleton = (t: Table) => renderText({ ...t, sets: t.sets.map((s) => ({ ...s, elements: [] })) });

/** A's table through the writer, then only the elements that changed to B, against B applied directly. */
async function expectUpdateEqualsDirect(a: Table, b: Table): Promise<number> {
  const changes = changedElements(a, b);
  await writer.replaceTable(a);
  await writer.updateElements(b, changes);
  await direct.replaceTable(b);
  const [updated, fresh] = await Promise.all([kernelState(NS.writer, b.name), kernelState(NS.direct, b.name)]);
  expect({ table: b.name, ...updated }).toEqual({ table: b.name, ...fresh });
  return changes.reduce((n, c) => n + c.removed.length + c.added.length, 0);
}

const v4 = (s: string) => s.split('.').reduce((n, x) => (n << 8n) | BigInt(x), 0n);
const V4_MAX = (1n << 32n) - 1n;
const V6_MAX = (1n << 128n) - 1n;
const key = (v: 4 | 6, lo: bigint, hi = lo): AddrKey => ({ v, lo, hi });

/**
 * One table using every construct the compiler emits (render.ts), for one family: the staged
 * service-set lookup with log, ICMP type and code, reject both ways, dropped-flow sets, ct mark, the port
 * verdict map, address classes (address → rule number → the rule's chain, through the ct mark) on the
 * source and the destination, an open interval reaching the top of the key space and one starting at 0,
 * pass (goto).
 */
function everyConstruct(v: 4 | 6): Table {
  const top = v === 4 ? V4_MAX : V6_MAX;
  const base = v === 4 ? v4('10.1.0.0') : 0x20010db8n << 96n;
  const self = v === 4 ? '10.1.0.1' : '2001:db8::1';
  const sets: NamedSet[] = [
    { kind: 'flow-set', name: 'fd_in_1', v, timeout: 600, size: 65536, elements: [] },
    { kind: 'set', name: 'p_in_1', v, elements: [key(v, 0n, 99n), key(v, base, base + 255n), key(v, base + 256n), key(v, base + 1000n, top)] },
    { kind: 'service-set', name: 's_in_1', v, elements: [{ addr: key(v, base, base + 255n), service: { protocol: 'tcp', lo: 80, hi: 90 } }, { addr: key(v, 0n, top), service: { protocol: 'udp', lo: 53, hi: 53 } }, { addr: key(v, base + 7n), service: { protocol: 'sctp', lo: 0, hi: 65535 } }] },
    // Rule numbers with four distinct bytes (host byte order shows), one of them 0.
    { kind: 'addr-map', name: 'in_app_c0', v, elements: [{ addr: key(v, 0n, base - 1n), rule: 1 }, { addr: key(v, base, base), rule: 0xcb391423 }, { addr: key(v, base + 1n, base + 99n), rule: 0 }, { addr: key(v, base + 100n, top), rule: 0xffffffff }] },
    { kind: 'rule-map', name: 'in_rules', elements: [{ rule: 1, verdict: { kind: 'goto', target: 'r_in_drop' } }, { rule: 0xcb391423, verdict: { kind: 'goto', target: 'r_in_allow' } }, { rule: 0, verdict: { kind: 'drop' } }, { rule: 0xffffffff, verdict: { kind: 'accept' } }] },
    { kind: 'addr-map', name: 'out_c0', v, elements: [{ addr: key(v, base, base + 255n), rule: 0x100 }] },
    { kind: 'rule-map', name: 'out_rules', elements: [{ rule: 0x100, verdict: { kind: 'goto', target: 'r_in_allow' } }] },
    { kind: 'rule-map', name: 'empty_rules', elements: [] },
    { kind: 'port-map', name: 'in_app_tcp', elements: [{ lo: 0, hi: 21, verdict: { kind: 'goto', target: 'in_app_c0' } }, { lo: 22, hi: 22, verdict: { kind: 'accept' } }, { lo: 23, hi: 65535, verdict: { kind: 'goto', target: 'in_app_c0' } }] },
    { kind: 'port-map', name: 'in_app_udp', elements: [{ lo: 53, hi: 53, verdict: { kind: 'goto', target: 'in_app_c0' } }, { lo: 100, hi: 200, verdict: { kind: 'goto', target: 'r_in_reject' } }] },
  ];
  const field = 'saddr' as const;
  const goto = (target: string): Verdict => ({ kind: 'goto', target });
  const chains: Chain[] = [
    {
      name: 'input',
      hook: 'input',
      rules: [
        { match: [{ m: 'ct-state', states: ['established', 'related'] }], verdict: { kind: 'accept' }, comment: 'microseg ruleset 0123abcd' },
        { match: [{ m: 'ifname', dir: 'iif', name: 'lo' }], verdict: { kind: 'accept' } },
        { match: [{ m: 'addr', v, field: 'daddr', op: '!=', addr: self }], verdict: { kind: 'accept' } },
        { match: [{ m: 'nfproto', v: v === 4 ? 6 : 4 }], verdict: { kind: 'accept' } },
        { match: [], verdict: goto('in_app') },
      ],
    },
    {
      name: 'in_app',
      rules: [
        { match: [{ m: 'service-lookup', v, field, set: 's_in_1' }], counter: true, log: 'microseg staged in p/"x" ', comment: 'staged p/x' },
        { match: [{ m: 'addr-set', v, field, set: 'p_in_1' }, { m: 'icmp', v, type: v === 4 ? 8 : 128, code: 0 }], counter: true, comment: 'staged p/y' },
        { match: [{ m: 'l4proto', protocols: ['tcp'] }], vmap: { key: 'dport', map: 'in_app_tcp' } },
        { match: [{ m: 'l4proto', protocols: ['udp'] }], vmap: { key: 'dport', map: 'in_app_udp' } },
        { match: [{ m: 'l4proto', protocols: ['tcp', 'udp', 'sctp'] }], verdict: goto('in_default') },
        { match: [{ m: 'nfproto', v }, { m: 'icmp', v, type: v === 4 ? 8 : 128 }], verdict: goto('r_in_allow') },
        { match: [{ m: 'addr-set', v, field, set: 'p_in_1' }, { m: 'icmp', v, code: 3 }], verdict: goto('r_in_reject') },
        { match: [{ m: 'addr-set', v, field, set: 'p_in_1' }, { m: 'icmp', v }], verdict: goto('r_in_drop') },
        { match: [{ m: 'addr', v, field, op: '==', addr: self }], verdict: goto('in_default') },
        { match: [], verdict: goto('in_default') },
      ],
    },
    { name: 'in_app_c0', rules: [{ match: [], vmap: { key: 'class', v, field, map: 'in_app_c0', rules: 'in_rules' } }, { match: [], verdict: goto('in_default') }] },
    { name: 'in_default', rules: [{ match: [{ m: 'l4proto', protocols: ['tcp', 'udp', 'sctp'] }], recordFlow: { v, set: 'fd_in_1' } }, { match: [], counter: true, verdict: { kind: 'drop' }, comment: 'default' }] },
    { name: 'r_in_allow', rules: [{ match: [], ctMark: 0xcb391423, counter: true, verdict: { kind: 'accept' }, comment: 'shop/allow "quoted" \\ rule' }] },
    {
      name: 'r_in_reject',
      rules: [
        { match: [{ m: 'l4proto', protocols: ['tcp', 'udp', 'sctp'] }], recordFlow: { v, set: 'fd_in_1' } },
        { match: [{ m: 'l4proto', protocols: ['tcp'] }], counter: true, log: 'microseg in p/r ', verdict: { kind: 'reject-tcp' }, comment: 'p/r' },
        { match: [], counter: true, log: 'microseg in p/r ', verdict: { kind: 'reject-icmpx' }, comment: 'p/r' },
      ],
    },
    { name: 'r_in_drop', rules: [{ match: [], counter: true, verdict: { kind: 'drop' }, comment: 'p/d' }] },
    {
      name: 'output',
      hook: 'output',
      rules: [
        { match: [{ m: 'ct-state', states: ['established', 'related'] }], verdict: { kind: 'accept' } },
        { match: [{ m: 'ifname', dir: 'oif', name: 'lo' }], verdict: { kind: 'accept' } },
        // After a match on the same family (one nfproto dependency), with a counter and a comment.
        { match: [{ m: 'addr', v, field: 'saddr', op: '==', addr: self }, { m: 'l4proto', protocols: ['tcp'] }], vmap: { key: 'class', v, field: 'daddr', map: 'out_c0', rules: 'out_rules' }, counter: true, comment: 'out class' },
        { match: [], vmap: { key: 'class', v, field: 'saddr', map: 'out_c0', rules: 'empty_rules' } },
      ],
    },
  ];
  return { family: 'inet', name: `microseg_every_v${v}`, sets, chains };
}

describe('a table through microseg-nft equals the same table through nft -f', () => {
  test.each([4, 6] as const)('every construct the compiler emits, IPv%i', async (v) => {
    await expectSameAsNft(everyConstruct(v));
  });

  test('every enforcement point of examples/vcci-app', async () => {
    const tables = pointsOf(await vcciWorld());
    expect(tables.length).toBeGreaterThan(5);
    for (const t of tables) await expectSameAsNft(t);
  });

  test(`every enforcement point of generated worlds (${RUNS} worlds, seed ${SEED})`, async () => {
    const worlds = fc.sample(worldArb, { seed: SEED, numRuns: RUNS });
    let points = 0;
    for (const [i, spec] of worlds.entries()) {
      for (const t of pointsOf(buildWorld(spec))) {
        try {
          await expectSameAsNft(t);
        } catch (err) {
          throw new Error(`seed ${SEED}, world ${i}: ${(err as Error).message}`);
        }
        points++;
      }
    }
    expect(points).toBeGreaterThan(0);
  });
});

/**
 * Sequences of tables whose maps and set partition the key space into adjacent intervals cut at points
 * from a small pool (so consecutive tables share most boundaries and move a few), with random verdicts
 * (port map) and rule numbers (address classes): intervals starting at 0, reaching the top, adjacent to
 * each other, moving between rules; and a rule map whose numbers come and go and change their verdicts.
 */
function partitionSequences(): Table[][] {
  const targets = ['r_a', 'r_b', 'r_c'];
  // Rule numbers: 0, the top, distinct bytes (host byte order shows).
  const rulePool = [0, 1, 0x100, 0xcb391423, 0xffffffff];
  /** A partition of [0, top] into adjacent runs cut at some of the candidate points, each run with a verdict. */
  const partition = (cuts: bigint[], verdicts: number[]) => {
    const points = [...new Set(cuts)].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    const runs: { lo: bigint; hi: bigint; t: string; rule: number }[] = [];
    let lo = 0n;
    for (const [i, c] of [...points, undefined].entries()) {
      const hi = c === undefined ? -1n : c - 1n;
      const n = verdicts[i % verdicts.length]!;
      runs.push({ lo, hi, t: targets[n % targets.length]!, rule: rulePool[n % rulePool.length]! });
      if (c !== undefined) lo = c;
    }
    return runs;
  };
  const tableOf = (cuts4: bigint[], cuts6: bigint[], ports: number[], verdicts: number[], keep: boolean[], rules: number[]): Table => {
    const r4 = partition(cuts4, verdicts).map((r) => ({ ...r, hi: r.hi < 0n ? V4_MAX : r.hi }));
    const r6 = partition(cuts6, verdicts).map((r) => ({ ...r, hi: r.hi < 0n ? V6_MAX : r.hi }));
    const rp = partition(ports.map(BigInt), verdicts).map((r) => ({ ...r, hi: r.hi < 0n ? 65535n : r.hi }));
    const g = (t: string): Verdict => ({ kind: 'goto', target: t });
    const sets: NamedSet[] = [
      { kind: 'addr-map', name: 'm4', v: 4, elements: r4.map((r) => ({ addr: key(4, r.lo, r.hi), rule: r.rule })) },
      { kind: 'addr-map', name: 'm6', v: 6, elements: r6.map((r) => ({ addr: key(6, r.lo, r.hi), rule: r.rule })) },
      // Each pool number absent (3) or jumping to a target (0-2) or accepted (4).
      { kind: 'rule-map', name: 'rules', elements: rulePool.flatMap((rule, i) => { const n = rules[i]!; return n === 3 ? [] : [{ rule, verdict: n === 4 ? { kind: 'accept' as const } : g(targets[n]!) }]; }) },
      { kind: 'port-map', name: 'mp', elements: rp.map((r) => ({ lo: Number(r.lo), hi: Number(r.hi), verdict: r.t === 'r_c' ? { kind: 'accept' } : g(r.t) })) },
      // A plain set: some of the runs (consecutive kept runs are adjacent intervals).
      { kind: 'set', name: 's4', v: 4, elements: r4.filter((_, i) => keep[i % keep.length]).map((r) => key(4, r.lo, r.hi)) },
    ];
    const rule = (vmap: Rule['vmap']): Rule => ({ match: [], vmap });
    const chains: Chain[] = [
      { name: 'input', hook: 'input', rules: [rule({ key: 'class', v: 4, field: 'saddr', map: 'm4', rules: 'rules' }), rule({ key: 'class', v: 6, field: 'daddr', map: 'm6', rules: 'rules' }), rule({ key: 'dport', map: 'mp' }), { match: [{ m: 'addr-set', v: 4, field: 'daddr', set: 's4' }], verdict: { kind: 'accept' } }] },
      ...targets.map((name) => ({ name, rules: [{ match: [], counter: true, verdict: { kind: 'drop' as const } }] })),
    ];
    return { family: 'inet', name: 'microseg_intervals', sets, chains };
  };
  // Cut points from a small pool, so consecutive tables share most boundaries and move a few.
  const pool4 = [1n, 2n, 100n, v4('10.0.0.0'), v4('10.0.0.1'), v4('10.0.0.2'), v4('10.0.0.3'), v4('10.0.1.0'), V4_MAX - 1n, V4_MAX];
  const pool6 = [1n, 0x20010db8n << 96n, (0x20010db8n << 96n) + 1n, (0x20010db8n << 96n) + 2n, V6_MAX];
  const poolP = [1, 22, 23, 80, 81, 443, 444, 65535];
  const step = fc.record({
    cuts4: fc.subarray(pool4),
    cuts6: fc.subarray(pool6),
    ports: fc.subarray(poolP),
    verdicts: fc.array(fc.nat(2), { minLength: 1, maxLength: 6 }),
    keep: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
    rules: fc.array(fc.nat(4), { minLength: rulePool.length, maxLength: rulePool.length }),
  });
  return fc.sample(fc.array(step, { minLength: 2, maxLength: 6 }), { seed: SEED, numRuns: 12 }).map((seq) => seq.map((x) => tableOf(x.cuts4, x.cuts6, x.ports, x.verdicts, x.keep, x.rules)));
}

describe('element updates through microseg-nft leave what applying the new table directly leaves', () => {
  test('pods added, removed and relabelled in examples/vcci-app, at every point whose elements change', async () => {
    const world = await vcciWorld();
    const before = pointsOf(world);
    const workloads = world.names('Workload');
    const changes: [string, () => void][] = [
      ['a pod added', () => { const s = world.get('Workload', workloads[0]!)!; world.restore('Workload', workloads[0]!, { ...s, replicas: s.replicas + 1 }); }],
      ['a pod removed', () => { const s = world.get('Workload', workloads[1]!)!; world.restore('Workload', workloads[1]!, { ...s, replicas: Math.max(0, s.replicas - 1) }); }],
      ['a pod relabelled', () => { const s = world.get('Workload', workloads[2]!)!; world.restore('Workload', workloads[2]!, { ...s, labels: { ...s.labels, app: 'relabelled' } }); }],
    ];
    let updated = 0;
    let prev = new Map(before.map((t) => [t.name, t] as const));
    for (const [what, change] of changes) {
      change();
      const now = pointsOf(world);
      for (const b of now) {
        const a = prev.get(b.name);
        if (!a || skeleton(a) !== skeleton(b) || !changedElements(a, b).length) continue;
        try {
          updated += (await expectUpdateEqualsDirect(a, b)) > 0 ? 1 : 0;
        } catch (err) {
          throw new Error(`${what}, ${b.name}: ${(err as Error).message}`);
        }
      }
      prev = new Map(now.map((t) => [t.name, t] as const));
    }
    // The changes must reach some point's elements, or this proves nothing.
    expect(updated).toBeGreaterThan(2);
  });

  test(`adjacent intervals, the bottom and the top of the key space: random sequences of partitions (seed ${SEED})`, async () => {
    const sequences = partitionSequences();
    let moved = 0;
    for (const [i, tables] of sequences.entries()) {
      await writer.replaceTable(tables[0]!);
      for (let k = 1; k < tables.length; k++) {
        const [a, b] = [tables[k - 1]!, tables[k]!];
        const changes = changedElements(a, b);
        moved += changes.length;
        try {
          await writer.updateElements(b, changes);
          await direct.replaceTable(b);
          const [updated, fresh] = await Promise.all([kernelState(NS.writer, b.name), kernelState(NS.direct, b.name)]);
          expect(updated).toEqual(fresh);
        } catch (err) {
          throw new Error(`seed ${SEED}, sequence ${i}, step ${k}: ${(err as Error).message}`);
        }
      }
    }
    expect(moved).toBeGreaterThan(0);
  });

  test(`a table nft applied (with its extra interval end at 0) takes the writer's element updates (seed ${SEED})`, async () => {
    // What an agent meets when it starts with the writer after running on the nft fallback (it adopts the
    // table when the ruleset is unchanged, then updates its elements).
    const onNft = new NetlinkNft({ binary: writerBinary(), prefix: ['ip', 'netns', 'exec', NS.nft] });
    try {
      for (const [i, tables] of partitionSequences().entries()) {
        await viaNft.replaceTable(tables[0]!);
        for (let k = 1; k < tables.length; k++) {
          const [a, b] = [tables[k - 1]!, tables[k]!];
          try {
            await onNft.updateElements(b, changedElements(a, b));
            await direct.replaceTable(b);
            const [updated, fresh] = await Promise.all([kernelState(NS.nft, b.name), kernelState(NS.direct, b.name)]);
            expect(updated).toEqual(fresh);
          } catch (err) {
            throw new Error(`seed ${SEED}, sequence ${i}, step ${k}: ${(err as Error).message}`);
          }
        }
      }
    } finally {
      onNft.close();
    }
  });
});

describe('a batch the kernel refuses changes nothing', () => {
  test('a table swap with a rule jumping to a missing chain leaves the previous table, and says why', async () => {
    const good = everyConstruct(4);
    await writer.replaceTable(good);
    const before = await kernelState(NS.writer, good.name);
    const bad: Table = { ...good, chains: good.chains.map((c) => (c.name === 'input' ? { ...c, rules: [...c.rules, { match: [], verdict: { kind: 'goto', target: 'no_such_chain' } }] } : c)) };
    await expect(writer.replaceTable(bad)).rejects.toThrow(/add rule 5 to chain input: No such file or directory/);
    expect(await kernelState(NS.writer, good.name)).toEqual(before);
  });

  test('an element update with one impossible deletion applies none of its additions', async () => {
    const good = everyConstruct(4);
    await writer.replaceTable(good);
    const before = await kernelState(NS.writer, good.name);
    const set = good.sets.find((s) => s.name === 'p_in_1')!;
    const now = { ...set, elements: [...set.elements, key(4, v4('192.0.2.1'))] } as NamedSet;
    const absent = { ...set, elements: [key(4, v4('198.51.100.1'))] } as NamedSet;
    await expect(writer.updateElements(good, [{ old: absent, now, removed: [0], added: [now.elements.length - 1] }])).rejects.toThrow(/delete elements from set p_in_1: No such file or directory/);
    expect(await kernelState(NS.writer, good.name)).toEqual(before);
  });

  test('a writer that is gone is a clear error, and the next request starts a new one', async () => {
    const missing = new NetlinkNft({ binary: '/nonexistent/microseg-nft' });
    await expect(missing.listTable('x')).rejects.toThrow(NftError);
    await expect(missing.listTable('x')).rejects.toThrow(/microseg-nft \(\/nonexistent\/microseg-nft\) could not start|exited/);
    const w = new NetlinkNft({ binary: writerBinary(), prefix: ['ip', 'netns', 'exec', NS.writer] });
    try {
      expect(await w.listTable('microseg_no_such_table')).toBeUndefined();
      w.close();
      expect((await w.listTable(everyConstruct(4).name))?.nftables.length).toBeGreaterThan(1);
    } finally {
      w.close();
    }
  });
});

describe('the listing the agent reads', () => {
  test('rules with their chains, comments and counters, and the dropped-flow elements, as nft -j lists them', async () => {
    const t = everyConstruct(4);
    await writer.replaceTable(t);
    // A dropped flow recorded in the set, as the kernel would add it.
    await sh('ip', ['netns', 'exec', NS.writer, 'nft', 'add element inet microseg_every_v4 fd_in_1 { 10.1.0.9 . 10.1.0.1 . tcp . 8080 }']);
    const mine = (await writer.listTable(t.name))!;
    const nftJson = JSON.parse(await sh('ip', ['netns', 'exec', NS.writer, 'nft', '-j', 'list', 'table', 'inet', t.name])) as { nftables: Record<string, Record<string, unknown>>[] };
    const rulesOf = (l: { nftables: readonly Record<string, unknown>[] }) =>
      l.nftables.filter((o) => o.rule).map((o) => { const r = o.rule as { chain: string; handle: number; comment?: string; expr: { counter?: unknown }[] }; return { chain: r.chain, handle: r.handle, comment: r.comment, counters: r.expr.filter((e) => e.counter).map((e) => e.counter) }; });
    expect(rulesOf(mine)).toEqual(rulesOf(nftJson));
    const flows = (l: { nftables: readonly Record<string, unknown>[] }) => l.nftables.filter((o) => (o.set as { name?: string } | undefined)?.name === 'fd_in_1').map((o) => (o.set as { elem?: unknown[] }).elem);
    expect(flows(mine)).toEqual([[{ elem: { val: { concat: ['10.1.0.9', '10.1.0.1', 'tcp', 8080] }, counter: { packets: 0, bytes: 0 } } }]]);
    expect(flows(nftJson)[0]).toEqual([expect.objectContaining({ elem: expect.objectContaining({ val: { concat: ['10.1.0.9', '10.1.0.1', 'tcp', 8080] }, counter: { packets: 0, bytes: 0 } }) })]);
    const handle = (l: { nftables: readonly Record<string, unknown>[] }) => (l.nftables.find((o) => o.table)!.table as { handle: number }).handle;
    expect(handle(mine)).toBe(handle(nftJson));
  });
});
