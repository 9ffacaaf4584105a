/**
 * FirewallRule names are scoped to their policy: the id is `policy/name`, so two policies can both have
 * a rule `allow-dns`. Rules created under a bare-name id by earlier versions keep working under it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedBackend } from '../../provider/src/backend';
import { resourceToken } from '../../provider/src/model/define';
import { createProviderCore } from '../../provider/src/provider/main';
import { openSqliteStore } from '../../provider/src/store';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const RULE = resourceToken('FirewallRule');
const POLICY = resourceToken('FirewallPolicy');

async function setup() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-rule-ids-'));
  dirs.push(dataDir);
  const core = createProviderCore();
  core.configure({ dataDir, environment: 'rules' });
  for (const p of ['team-a', 'team-b']) await core.create({ token: POLICY, properties: { name: p, category: 'application', priority: p === 'team-a' ? 1 : 2, enforcement: 'enforce' }, preview: false });
  return { core, dataDir };
}

test('two policies can each have a rule with the same name; the ids are policy/name', async () => {
  const { core } = await setup();
  const spec = (policy: string) => ({ name: 'allow-dns', policy, action: 'allow', direction: 'inout', priority: 10, services: [{ protocol: 'udp', ports: [53] }], sourcesExcluded: false, destinationsExcluded: false, logged: false, disabled: false });
  const a = await core.create({ token: RULE, properties: spec('team-a'), preview: false });
  const b = await core.create({ token: RULE, properties: spec('team-b'), preview: false });
  expect([a.id, b.id]).toEqual(['team-a/allow-dns', 'team-b/allow-dns']);
  expect((await core.read({ token: RULE, id: 'team-b/allow-dns', inputs: {}, state: {} })).inputs).toMatchObject({ name: 'allow-dns', policy: 'team-b' });
  core.close();
});

test('moving a rule to another policy is a replacement (a new id)', async () => {
  const { core } = await setup();
  const d = core.diff({ token: RULE, oldInputs: { name: 'r', policy: 'team-a', action: 'allow' }, oldState: {}, news: { name: 'r', policy: 'team-b', action: 'allow' }, ignoreChanges: [] });
  expect(d.replaces).toEqual(['policy']);
  expect(d.deleteBeforeReplace).toBe(false);
});

test('a rule stored under a bare name by an earlier version is read, updated and deleted under that id', async () => {
  const { core, dataDir } = await setup();
  // What an earlier version wrote: the store key was the rule name alone.
  const store = await openSqliteStore({ dataDir });
  const legacy = new EmbeddedBackend({ store, environment: 'rules', defaultAction: 'drop' });
  await legacy.put('FirewallRule', 'allow-ssh', { name: 'allow-ssh', policy: 'team-a', action: 'allow', services: [{ protocol: 'tcp', ports: [22] }] }, 'create');
  await store.close();

  const read = await core.read({ token: RULE, id: 'allow-ssh', inputs: {}, state: {} });
  expect(read.id).toBe('allow-ssh');
  expect(read.inputs).toMatchObject({ name: 'allow-ssh', policy: 'team-a' });
  await core.update({ token: RULE, id: 'allow-ssh', news: { ...read.inputs, action: 'drop' }, preview: false });
  expect((await core.read({ token: RULE, id: 'allow-ssh', inputs: {}, state: {} })).inputs).toMatchObject({ action: 'drop' });
  expect((await core.read({ token: RULE, id: 'team-a/allow-ssh', inputs: {}, state: {} })).id).toBe('');
  await core.delete({ token: RULE, id: 'allow-ssh' });
  expect((await core.read({ token: RULE, id: 'allow-ssh', inputs: {}, state: {} })).id).toBe('');
  core.close();
});
