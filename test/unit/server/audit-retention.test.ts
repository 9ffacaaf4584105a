/**
 * The server's audit decorator: every audited write hands its records to the store in the write's own
 * batch, and the retention is applied in the transaction of an audited write at most once a minute per
 * environment (pruning counts rows; it must not cost every write).
 */
import { AuditingStore, requestContext } from '../../../provider/src/server/audit';
import { MemoryStore } from '../../../provider/src/store';

test('the audit retention is applied on the first audited write of an environment, then at most once a minute', async () => {
  let now = Date.UTC(2026, 0, 1);
  const inner = new MemoryStore(() => new Date(now));
  const store = new AuditingStore(inner, { maxCount: 2 }, () => now);
  const write = (name: string) => requestContext.run({ actor: 'token:t', role: 'security-admin' }, () => store.apply('dev', [{ op: 'put', kind: 'Group', name, spec: {} }]));
  const names = async () => (await inner.audit('dev')).map((r) => r.name);
  for (const n of ['a', 'b', 'c']) await write(n);
  // The first write pruned (nothing to drop yet); the next two within the minute did not.
  expect(await names()).toEqual(['a', 'b', 'c']);
  now += 59_000;
  await write('d');
  expect(await names()).toEqual(['a', 'b', 'c', 'd']);
  now += 1_000;
  await write('e');
  expect(await names()).toEqual(['d', 'e']);
});

test('a write outside a request is not audited, and a refused audited write leaves no record', async () => {
  const inner = new MemoryStore();
  const store = new AuditingStore(inner);
  await store.apply('dev', [{ op: 'put', kind: 'Group', name: 'a', spec: {} }]);
  expect(await inner.audit('dev')).toEqual([]);
  await expect(requestContext.run({ actor: 'token:t', role: 'security-admin' }, () => store.apply('dev', [{ op: 'put', kind: 'Group', name: 'b', spec: {}, references: [{ kind: 'Group', name: 'missing' }] }]))).rejects.toThrow();
  expect(await inner.audit('dev')).toEqual([]);
});
