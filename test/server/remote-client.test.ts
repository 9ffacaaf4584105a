/**
 * The provider's HTTP client (RemoteBackend) on every failure path. nock stands in for the server where
 * a real one cannot produce the failure on demand; connection refused and TLS use real sockets.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import nock from 'nock';
import { RemoteBackend, type RemoteBackendOptions } from '../../provider/src/backend/remote';
import { BackendError } from '../../provider/src/provider/backend';
import { freePort } from '../support/postgres';

const ENDPOINT = 'http://microseg.test:8080';
const OBJECT = '/v1/environments/dev/objects/VirtualMachine/web-1';
const spec = { name: 'web-1', interfaces: [{ ip: '10.0.0.1' }] };

function client(extra: Partial<RemoteBackendOptions> = {}): RemoteBackend {
  return new RemoteBackend({ endpoint: ENDPOINT, token: 'mseg_aaaaaaaaaaaa_secret', environment: 'dev', defaultAction: 'drop', retryBudgetMs: 2000, backoffMs: 5, timeoutMs: 1000, ...extra });
}

async function failure(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(BackendError);
    return err as BackendError;
  }
  throw new Error('expected a BackendError');
}

const backends: RemoteBackend[] = [];
const track = (b: RemoteBackend) => (backends.push(b), b);

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  for (const b of backends.splice(0)) b.close();
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});
// nock patches Node's own networking modules, which jest shares between the test files of one worker:
// restore them, or every later file in this worker (gRPC to a plugin, HTTP to a server) is intercepted.
afterAll(() => {
  nock.enableNetConnect();
  nock.restore();
});

test('sends the token, the environment, the preview session and the default action', async () => {
  const scope = nock(ENDPOINT, { reqheaders: { authorization: 'Bearer mseg_aaaaaaaaaaaa_secret', 'x-microseg-default-action': 'drop', 'x-microseg-session': /^[0-9a-f-]{36}$/ } })
    .put(OBJECT, { spec, mode: 'create' })
    .reply(201, { outputs: { x: 1 }, warnings: ['w'], infos: ['i'], revision: 1 });
  expect(await track(client()).put('VirtualMachine', 'web-1', spec, 'create')).toEqual({ outputs: { x: 1 }, warnings: ['w'], infos: ['i'] });
  scope.done();
});

test('connection refused: retried within the budget, then a clear error naming the endpoint', async () => {
  nock.enableNetConnect('127.0.0.1');
  const port = await freePort();
  const e = await failure(track(client({ endpoint: `http://127.0.0.1:${port}`, retryBudgetMs: 300 })).get('VirtualMachine', 'web-1'));
  expect(e.reason).toBe('unavailable');
  expect(e.message).toMatch(new RegExp(`cannot connect to the microseg server at http://127.0.0.1:${port} \\(connection refused`));
  expect(e.message).toMatch(/is `microseg serve` running/);
  nock.disableNetConnect();
});

test('connection refused on one replica: the client moves to the next endpoint', async () => {
  nock.enableNetConnect('127.0.0.1');
  const port = await freePort();
  nock(ENDPOINT).get(OBJECT).reply(200, { kind: 'VirtualMachine', name: 'web-1', spec, outputs: {}, revision: 3, createdAt: 't', updatedAt: 't' });
  const live = await track(client({ endpoint: `http://127.0.0.1:${port},${ENDPOINT}` })).get('VirtualMachine', 'web-1');
  expect(live).toEqual({ spec, outputs: {} });
  nock.disableNetConnect();
});

test('a timeout on a read is retried; the next answer is used', async () => {
  nock(ENDPOINT).get(OBJECT).delay(500).reply(200, {}).get(OBJECT).reply(200, { spec, outputs: { a: 1 }, revision: 1 });
  expect(await track(client({ timeoutMs: 100 })).get('VirtualMachine', 'web-1')).toEqual({ spec, outputs: { a: 1 } });
});

test('a server that never answers in time: the error says so after the budget', async () => {
  nock(ENDPOINT).post('/v1/environments/dev/functions/traceflow').times(50).delay(300).reply(200, {});
  const e = await failure(track(client({ timeoutMs: 50, retryBudgetMs: 400 })).invoke('traceflow', { source: 'a', destination: 'b' }));
  expect(e.message).toMatch(/did not answer within 0 s|did not answer/);
  nock.cleanAll();
});

test('5xx then success: a preview is retried with backoff', async () => {
  nock(ENDPOINT)
    .post('/v1/environments/dev/plan/VirtualMachine/web-1')
    .reply(503, { error: { code: 'Unavailable', message: 'PostgreSQL is unavailable' } })
    .post('/v1/environments/dev/plan/VirtualMachine/web-1')
    .reply(502, 'bad gateway')
    .post('/v1/environments/dev/plan/VirtualMachine/web-1')
    .reply(200, { outputs: {}, warnings: [], infos: ['impact'] });
  expect(await track(client()).plan('VirtualMachine', 'web-1', spec, 'create')).toEqual({ outputs: {}, warnings: [], infos: ['impact'] });
});

test('5xx for longer than the budget: unavailable, with the server message', async () => {
  nock(ENDPOINT).get(OBJECT).times(100).reply(503, { error: { code: 'Unavailable', message: 'PostgreSQL at postgres://db/microseg is unavailable' } });
  const e = await failure(track(client({ retryBudgetMs: 100 })).get('VirtualMachine', 'web-1'));
  expect(e.reason).toBe('unavailable');
  expect(e.message).toMatch(/PostgreSQL at postgres:\/\/db\/microseg is unavailable/);
  nock.cleanAll();
});

test('409 conflict is not retried and keeps the server message', async () => {
  nock(ENDPOINT).put(OBJECT).once().reply(409, { error: { code: 'conflict', message: 'VirtualMachine "web-1" already exists in environment "dev"' } });
  const e = await failure(track(client()).put('VirtualMachine', 'web-1', spec, 'create'));
  expect(e.reason).toBe('conflict');
  expect(e.message).toBe('VirtualMachine "web-1" already exists in environment "dev"');
});

test('a create resent after a connection reset, which finds its own object, succeeds once', async () => {
  nock(ENDPOINT)
    .put(OBJECT)
    .replyWithError({ code: 'ECONNRESET', message: 'socket hang up' })
    .put(OBJECT)
    .reply(409, { error: { code: 'conflict', message: 'already exists' } })
    .get(OBJECT)
    .reply(200, { spec: { ...spec, labels: undefined }, outputs: { ok: true }, revision: 1 });
  expect(await track(client()).put('VirtualMachine', 'web-1', spec, 'create')).toEqual({ outputs: { ok: true }, warnings: [], infos: [] });
});

test('a resent create that finds someone else\'s object reports the conflict', async () => {
  nock(ENDPOINT)
    .put(OBJECT)
    .replyWithError({ code: 'ECONNRESET', message: 'socket hang up' })
    .put(OBJECT)
    .reply(409, { error: { code: 'conflict', message: 'already exists' } })
    .get(OBJECT)
    .reply(200, { spec: { ...spec, interfaces: [{ ip: '10.0.0.99' }] }, outputs: {}, revision: 1 });
  expect((await failure(track(client()).put('VirtualMachine', 'web-1', spec, 'create'))).reason).toBe('conflict');
});

test('422 keeps the property paths of the problems', async () => {
  nock(ENDPOINT).put(OBJECT).reply(422, { error: { code: 'invalid', message: 'VirtualMachine "web-1" is invalid: interfaces.0.ip: not an IP', problems: [{ path: 'interfaces.0.ip', message: 'not an IP' }] } });
  const e = await failure(track(client()).put('VirtualMachine', 'web-1', spec, 'update'));
  expect(e.problems).toEqual([{ path: 'interfaces.0.ip', message: 'not an IP' }]);
});

test('401 says the token was refused and how to set one', async () => {
  nock(ENDPOINT).get(OBJECT).reply(401, { error: { code: 'unauthenticated', message: 'the token is unknown, revoked or malformed' } });
  const e = await failure(track(client({ token: undefined })).get('VirtualMachine', 'web-1'));
  expect(e.reason).toBe('unauthenticated');
  expect(e.message).toMatch(/refused the read of VirtualMachine "web-1": the token is unknown, revoked or malformed/);
  expect(e.message).toMatch(/pulumi config set --secret microseg:token/);
});

test('403 names the role and the missing permission', async () => {
  nock(ENDPOINT)
    .put(OBJECT)
    .reply(403, { error: { code: 'forbidden', message: 'role auditor lacks permission objects.create:VirtualMachine: auditor is read-only', role: 'auditor', permission: 'objects.create:VirtualMachine' } });
  const e = await failure(track(client()).put('VirtualMachine', 'web-1', spec, 'create'));
  expect(e.reason).toBe('forbidden');
  expect(e.message).toMatch(/role auditor lacks permission objects.create:VirtualMachine/);
});

test('a malformed body (not JSON, or JSON of the wrong shape) is reported, not half-used', async () => {
  nock(ENDPOINT).post('/v1/environments/dev/plan/VirtualMachine/web-1').reply(200, '<html>proxy login</html>', { 'content-type': 'text/html' });
  expect((await failure(track(client()).plan('VirtualMachine', 'web-1', spec, 'create'))).message).toMatch(/malformed response \(not JSON, HTTP 200\)/);
  nock(ENDPOINT).get(OBJECT).reply(200, { spec: 'nope' });
  expect((await failure(track(client()).get('VirtualMachine', 'web-1'))).message).toMatch(/malformed response \(spec: .*outputs: /);
});

test('a 404 on read means gone; a delete of something already gone succeeds', async () => {
  nock(ENDPOINT).get(OBJECT).reply(404, { error: { code: 'not-found', message: 'gone' } }).delete(OBJECT).reply(404, { error: { code: 'not-found', message: 'gone' } });
  const b = track(client());
  expect(await b.get('VirtualMachine', 'web-1')).toBeUndefined();
  await b.delete('VirtualMachine', 'web-1');
});

describe('TLS', () => {
  let dir: string;
  let server: https.Server;
  let url: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ spec, outputs: {}, revision: 1 }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => nock.enableNetConnect('127.0.0.1'));

  test('an unknown CA fails at once with a message pointing at microseg:caCert', async () => {
    const e = await failure(track(client({ endpoint: url })).get('VirtualMachine', 'web-1'));
    expect(e.message).toMatch(/TLS: the certificate of the microseg server at https:\/\/127.0.0.1:\d+ cannot be verified \(DEPTH_ZERO_SELF_SIGNED_CERT/);
    expect(e.message).toMatch(/set microseg:caCert/);
  });

  test('with microseg:caCert (a path or the PEM text) the same server is trusted', async () => {
    expect(await track(client({ endpoint: url, caCert: path.join(dir, 'cert.pem') })).get('VirtualMachine', 'web-1')).toEqual({ spec, outputs: {} });
    expect(await track(client({ endpoint: url, caCert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') })).get('VirtualMachine', 'web-1')).toEqual({ spec, outputs: {} });
  });
});
