/**
 * Secret inputs (Pulumi `secret()` / YAML `fn::secret`) never appear in the provider's messages (Check
 * failures, backend refusals and logged warnings quote offending values, so those values are redacted),
 * and are stored encrypted.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resourceToken } from '../../provider/src/model/define';
import { createProviderCore } from '../../provider/src/provider/main';
import { PropertyValue, SECRET_SIG, SIG_KEY, secretRedactor } from '../../provider/src/provider/values';
import { SECRET_MARKER } from '../../provider/src/service';
import { openSqliteStore, SECRET_KEY_FILE } from '../../provider/src/store';

const secret = (value: PropertyValue): PropertyValue => ({ [SIG_KEY]: SECRET_SIG, value });
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function core() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-secrets-'));
  dirs.push(dataDir);
  const c = createProviderCore();
  c.configure({ dataDir, environment: 'secrets' });
  return c;
}

test('a Check failure about a secret value names the property but not the value', () => {
  const c = core();
  const r = c.check({ token: resourceToken('VirtualMachine'), name: 'vm', olds: {}, news: { name: 'vm', interfaces: [{ ip: secret('LEAKME-not-an-ip') }] } });
  expect(r.failures).toEqual([{ property: 'interfaces[0].ip', reason: '"[secret]" is not an IP address; expected e.g. 10.0.0.1 or fd00::1' }]);
  expect(JSON.stringify(r.failures)).not.toContain('LEAKME');
  c.close();
});

test('a backend refusal that quotes a secret value redacts it', async () => {
  const c = core();
  const token = resourceToken('VirtualMachine');
  await c.create({ token, properties: { name: 'a', interfaces: [{ ip: '192.0.2.77' }] }, preview: false });
  const err = await c.create({ token, properties: { name: 'b', interfaces: [{ ip: secret('192.0.2.77') }] }, preview: false }).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(Error);
  expect(err?.message).toContain('is used twice');
  expect(err?.message).not.toContain('192.0.2.77');
  c.close();
});

test('redaction replaces whole values only', () => {
  const redact = secretRedactor({ ip: '10.0.0.1' }, ['ip']);
  expect(redact('IP 10.0.0.1 collides with 10.0.0.10 and "10.0.0.1"')).toBe('IP [secret] collides with 10.0.0.10 and "[secret]"');
});

describe('secret values at rest', () => {
  test('are stored encrypted, read back plain and still marked secret, with an owner-only key file', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-secrets-'));
    dirs.push(dataDir);
    const c = createProviderCore();
    c.configure({ dataDir, environment: 'secrets' });
    const token = resourceToken('VirtualMachine');
    await c.create({ token, properties: { name: 'hidden', interfaces: [{ ip: secret('192.0.2.99') }], labels: { role: 'db' } }, preview: false });
    c.close();

    // The raw store holds ciphertext only.
    const store = await openSqliteStore({ dataDir });
    const raw = await store.get('secrets', 'VirtualMachine', 'hidden');
    await store.close();
    expect(JSON.stringify(raw?.spec)).not.toContain('192.0.2.99');
    expect(raw?.spec.interfaces).toEqual([{ ip: { [SECRET_MARKER]: expect.stringMatching(/^v1:/) } }]);
    expect(raw?.spec.labels).toEqual({ role: 'db' });
    expect((fs.statSync(path.join(dataDir, SECRET_KEY_FILE)).mode & 0o777).toString(8)).toBe('600');

    // The provider reads the plain value, marked secret even without prior state (import).
    const again = createProviderCore();
    again.configure({ dataDir, environment: 'secrets' });
    const read = await again.read({ token, id: 'hidden', inputs: {}, state: {} });
    expect(read.inputs.interfaces).toEqual([{ ip: secret('192.0.2.99') }]);
    // The engine evaluates the plain value.
    const t = await again.invoke({ token: resourceToken('traceflow'), args: { source: '198.51.100.1', destination: 'vm:hidden', protocol: 'tcp', port: 22 } });
    expect(JSON.stringify(t.result)).toContain('192.0.2.99');
    again.close();
  });

  test('a store without its key is a clear error, not a silent loss', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-secrets-'));
    dirs.push(dataDir);
    const c = createProviderCore();
    c.configure({ dataDir, environment: 'secrets' });
    await c.create({ token: resourceToken('VirtualMachine'), properties: { name: 'hidden', interfaces: [{ ip: secret('192.0.2.98') }] }, preview: false });
    c.close();
    fs.rmSync(path.join(dataDir, SECRET_KEY_FILE));
    const again = createProviderCore();
    again.configure({ dataDir, environment: 'secrets' });
    await expect(again.read({ token: resourceToken('VirtualMachine'), id: 'hidden', inputs: {}, state: {} })).rejects.toThrow(/VirtualMachine "hidden": a stored secret value cannot be decrypted: no secret key/);
    again.close();
  });
});
