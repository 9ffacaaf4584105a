/**
 * Engine behaviours found while building the CLI, fixed in the engine: each test states what the CLI and
 * the provider rely on.
 */
import { EmbeddedBackend } from '../../../provider/src/backend';
import { validateSpec, World } from '../../../provider/src/engine';
import { MemoryStore } from '../../../provider/src/store';

test('a priority tie is reported for both policies, not only the later one by name', () => {
  const w = new World();
  w.upsert('FirewallPolicy', 'b', { priority: 10, rules: [{ name: 'r', action: 'allow' }] });
  w.upsert('FirewallPolicy', 'a', { priority: 10, rules: [{ name: 'r', action: 'drop' }] });
  const objects = w.warnings().filter((p) => p.code === 'priority-tie').map((p) => p.object?.name);
  expect(objects.sort()).toEqual(['a', 'b']);
});

test('putting the earlier policy of a priority tie warns about the tie', async () => {
  // The backend keeps the warnings of the object being written; "a" sorts first, so before the fix the
  // tie was attached to "b" only and creating "a" said nothing.
  const backend = new EmbeddedBackend({ store: new MemoryStore(), environment: 'test', defaultAction: 'drop' });
  await backend.put('FirewallPolicy', 'b', { name: 'b', category: 'application', priority: 10, rules: [{ name: 'r', action: 'allow' }] }, 'create');
  const r = await backend.put('FirewallPolicy', 'a', { name: 'a', category: 'application', priority: 10, rules: [{ name: 'r', action: 'drop' }] }, 'create');
  expect(r.warnings).toEqual([expect.stringMatching(/^policies "a" and "b" share priority 10 in category application; they are ordered by name \("a" first\)/)]);
});

test('an invalid enum value says what is expected once', () => {
  const r = validateSpec('FirewallPolicy', { name: 'p', rules: [{ name: 'r', action: 'alow' }] });
  expect(r.problems).toEqual([
    { code: 'schema-invalid_value', path: 'rules[0].action', message: 'Invalid option: expected one of "allow"|"drop"|"reject"|"pass"' },
  ]);
});
