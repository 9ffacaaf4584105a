import * as path from 'node:path';
import { elementsWire, findNftWriter } from '../../../provider/src/agent/netlink';
import type { NamedSet } from '../../../provider/src/realize/nftables';

/** The agent's side of microseg-nft (the kernel side: test/kernel/netlink-writer.test.ts). */

test('the writer is MICROSEG_NFT_WRITER when set, none when it says nft, else the one setup builds into .tools/bin', () => {
  expect(findNftWriter({ MICROSEG_NFT_WRITER: '/opt/microseg-nft' })).toBe('/opt/microseg-nft');
  expect(findNftWriter({ MICROSEG_NFT_WRITER: 'nft' })).toBeUndefined();
  expect(findNftWriter({ MICROSEG_NFT_WRITER: '' })).toBeUndefined();
  expect(findNftWriter({})).toBe(path.resolve(__dirname, '..', '..', '..', '.tools', 'bin', 'microseg-nft'));
});

test('elements travel as one compact string per set: hexadecimal addresses and rule numbers, decimal ports, verdict codes', () => {
  const sets: NamedSet[] = [
    { kind: 'set', name: 's', v: 4, elements: [{ v: 4, lo: 0x0a000001n, hi: 0x0a0000ffn }, { v: 4, lo: 0n, hi: 0n }] },
    { kind: 'addr-map', name: 'm', v: 6, elements: [{ addr: { v: 6, lo: 0x20010db8n << 96n, hi: (1n << 128n) - 1n }, rule: 0xcb391423 }, { addr: { v: 6, lo: 1n, hi: 1n }, rule: 0 }] },
    { kind: 'rule-map', name: 'r', elements: [{ rule: 0xcb391423, verdict: { kind: 'goto', target: 'r_in_1' } }, { rule: 0, verdict: { kind: 'drop' } }, { rule: 0xffffffff, verdict: { kind: 'accept' } }] },
    { kind: 'port-map', name: 'p', elements: [{ lo: 22, hi: 22, verdict: { kind: 'accept' } }, { lo: 80, hi: 90, verdict: { kind: 'goto', target: 'c0' } }] },
    { kind: 'service-set', name: 'x', v: 4, elements: [{ addr: { v: 4, lo: 1n, hi: 2n }, service: { protocol: 'udp', lo: 53, hi: 53 } }] },
    { kind: 'flow-set', name: 'f', v: 4, timeout: 600, size: 65536, elements: [] },
  ];
  expect(sets.map((s) => elementsWire(s))).toEqual([
    'a000001 a0000ff,0 0',
    '20010db8000000000000000000000000 ffffffffffffffffffffffffffffffff cb391423,1 1 0',
    'cb391423 g:r_in_1,0 d,ffffffff a',
    '22 22 a,80 90 g:c0',
    '1 2 udp 53 53',
    '',
  ]);
  // An update sends only the changed elements.
  expect(elementsWire(sets[3]!, [1])).toBe('80 90 g:c0');
  expect(elementsWire(sets[2]!, [2, 0])).toBe('ffffffff a,cb391423 g:r_in_1');
});
