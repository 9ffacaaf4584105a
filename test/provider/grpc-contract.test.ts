/**
 * Contract tests of our pulumirpc.ResourceProvider over real gRPC, with a fake engine that captures
 * Log calls. The backend here is an in-memory stand-in: these tests pin the protocol, not policy.
 */
import * as grpc from '@grpc/grpc-js';
import { unaryCaller } from './grpc-call';
import { Empty } from 'google-protobuf/google/protobuf/empty_pb';
import { Struct } from 'google-protobuf/google/protobuf/struct_pb';
import * as engineGrpc from '@pulumi/pulumi/proto/engine_grpc_pb';
import * as enginePb from '@pulumi/pulumi/proto/engine_pb';
import * as providerGrpc from '@pulumi/pulumi/proto/provider_grpc_pb';
import * as providerPb from '@pulumi/pulumi/proto/provider_pb';
import { z } from 'zod';
import { defineFunction, defineResource } from '../../provider/src/model/define';
import { Backend } from '../../provider/src/provider/backend';
import { ProviderCore } from '../../provider/src/provider/core';
import { serve } from '../../provider/src/provider/grpc-server';
import { PropertyMap, SECRET_SIG, SIG_KEY, UNKNOWN } from '../../provider/src/provider/values';

const Widget = defineResource({
  name: 'Widget',
  description: 'A test resource.',
  inputs: z.object({
    name: z.string().optional(),
    size: z.number().int().min(1).describe('Size.'),
    zone: z.string().default('a'),
    token: z.string().optional(),
    tags: z.array(z.object({ name: z.string(), value: z.string() })).optional(),
  }),
  outputs: z.object({ serial: z.number() }),
  replaceOnChanges: ['zone'],
  secrets: ['token'],
});
const echo = defineFunction({ name: 'echo', description: 'Echo.', inputs: z.object({ say: z.string() }), outputs: z.object({ said: z.string() }) });

class MemoryBackend implements Backend {
  readonly objects = new Map<string, PropertyMap>();
  private serial = 0;
  async plan(): Promise<{ outputs: PropertyMap; warnings: string[] }> {
    return { outputs: { serial: UNKNOWN }, warnings: ['planned'] };
  }
  async put(kind: string, name: string, spec: PropertyMap) {
    this.objects.set(`${kind}/${name}`, spec);
    return { outputs: { serial: ++this.serial }, warnings: [] };
  }
  async get(kind: string, name: string) {
    const spec = this.objects.get(`${kind}/${name}`);
    return spec ? { spec, outputs: { serial: 1 } } : undefined;
  }
  async claim() {}
  async assertCreatable() {}
  async delete(kind: string, name: string) {
    this.objects.delete(`${kind}/${name}`);
  }
  async invoke(_fn: string, args: PropertyMap) {
    return { said: args.say };
  }
  close() {}
}

type LogEntry = { severity: number; message: string; urn: string };
const logs: LogEntry[] = [];
/** Waiters for a log entry; the engine's Log handler wakes them, so a test waits for the entry itself, not a delay. */
const logWaiters: { matches: (e: LogEntry) => boolean; resolve: () => void }[] = [];
function logged(matches: (e: LogEntry) => boolean): Promise<void> {
  if (logs.some(matches)) return Promise.resolve();
  return new Promise((resolve) => logWaiters.push({ matches, resolve }));
}
let engine: grpc.Server;
let engineAddress: string;
let server: grpc.Server;
let client: providerGrpc.ResourceProviderClient;
let backend: MemoryBackend;

const struct = (o: object) => Struct.fromJavaScript(o as Parameters<typeof Struct.fromJavaScript>[0]);
const call = unaryCaller(() => client);

beforeAll(async () => {
  engine = new grpc.Server();
  engine.addService(engineGrpc.EngineService, {
    log: (c: grpc.ServerUnaryCall<enginePb.LogRequest, Empty>, cb: grpc.sendUnaryData<Empty>) => {
      const entry = { severity: c.request.getSeverity(), message: c.request.getMessage(), urn: c.request.getUrn() };
      logs.push(entry);
      for (const w of logWaiters.filter((x) => x.matches(entry))) {
        logWaiters.splice(logWaiters.indexOf(w), 1);
        w.resolve();
      }
      cb(null, new Empty());
    },
  } as unknown as grpc.UntypedServiceImplementation);
  const enginePort = await new Promise<number>((res, rej) => engine.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  engineAddress = `127.0.0.1:${enginePort}`;
  backend = new MemoryBackend();
  const core = new ProviderCore<Record<string, unknown>>({
    version: '9.9.9',
    resources: [Widget],
    functions: [echo],
    config: z.object({ environment: z.string().default('default'), verbose: z.boolean().default(false) }),
    schema: () => '{"name":"test"}',
    openBackend: () => backend,
  });
  const started = await serve(core as ProviderCore<unknown>);
  server = started.server;
  client = new providerGrpc.ResourceProviderClient(`127.0.0.1:${started.port}`, grpc.credentials.createInsecure());
  const hs = new providerPb.ProviderHandshakeRequest();
  hs.setEngineAddress(engineAddress);
  await call(client.handshake, hs);
});

afterAll(() => {
  client.close();
  server.forceShutdown();
  engine.forceShutdown();
});

const TOKEN = 'microseg:index:Widget';
const URN = 'urn:pulumi:dev::proj::microseg:index:Widget::w1';

function checkReq(news: object, olds: object = {}): providerPb.CheckRequest {
  const r = new providerPb.CheckRequest();
  r.setUrn(URN);
  r.setType(TOKEN);
  r.setName('w1');
  r.setNews(struct(news));
  r.setOlds(struct(olds));
  r.setRandomseed(new Uint8Array([1, 2, 3]));
  return r;
}

function diffReq(oldInputs: object, news: object, ignore: string[] = []): providerPb.DiffRequest {
  const r = new providerPb.DiffRequest();
  r.setUrn(URN);
  r.setType(TOKEN);
  r.setId('w');
  r.setOldInputs(struct(oldInputs));
  r.setOlds(struct({ ...oldInputs, serial: 1 }));
  r.setNews(struct(news));
  r.setIgnorechangesList(ignore);
  return r;
}

describe('handshake and configure', () => {
  test('GetPluginInfo reports the provider version', async () => {
    const info = await call(client.getPluginInfo, new Empty());
    expect(info.getVersion()).toBe('9.9.9');
  });

  test('Configure declares preview support and secrets', async () => {
    const r = new providerPb.ConfigureRequest();
    r.setArgs(struct({ environment: 'dev' }));
    const res = await call(client.configure, r);
    expect(res.getSupportspreview()).toBe(true);
    expect(res.getAcceptsecrets()).toBe(true);
  });

  test('CheckConfig coerces stack-config strings to the schema type', async () => {
    const res = await call(client.checkConfig, checkReq({ environment: 'dev', verbose: 'true' }));
    expect(res.getFailuresList()).toHaveLength(0);
    expect(res.getInputs()!.toJavaScript()).toEqual({ environment: 'dev', verbose: true });
  });

  test('CheckConfig names an unknown key', async () => {
    const res = await call(client.checkConfig, checkReq({ envronment: 'dev' }));
    expect(res.getFailuresList().map((f) => f.getProperty())).toContain('envronment');
  });

  test('GetSchema returns the package schema', async () => {
    const res = await call(client.getSchema, new providerPb.GetSchemaRequest());
    expect(JSON.parse(res.getSchema())).toEqual({ name: 'test' });
  });

  test('Cancel is acknowledged', async () => {
    await expect(call(client.cancel, new Empty())).resolves.toBeInstanceOf(Empty);
  });
});

describe('Check', () => {
  test('applies defaults and autonames deterministically from the random seed', async () => {
    const a = (await call(client.check, checkReq({ size: 2 }))).getInputs()!.toJavaScript() as PropertyMap;
    const b = (await call(client.check, checkReq({ size: 2 }))).getInputs()!.toJavaScript() as PropertyMap;
    expect(a.zone).toBe('a');
    expect(a.name).toMatch(/^w1-[0-9a-f]{8}$/);
    expect(b.name).toBe(a.name);
  });

  test('keeps the existing autoname of an update', async () => {
    const res = await call(client.check, checkReq({ size: 2 }, { name: 'w1-keepme00', size: 1 }));
    expect((res.getInputs()!.toJavaScript() as PropertyMap).name).toBe('w1-keepme00');
  });

  test('reports a failure with the property path: top-level as the property, nested ahead of the reason', async () => {
    const res = await call(client.check, checkReq({ size: 0, tags: [{ name: 'a', value: 3 }] }));
    const failures = res.getFailuresList().map((f) => [f.getProperty(), f.getReason()]).sort();
    expect(failures).toEqual([['', expect.stringMatching(/^tags\[0\]\.value: /)], ['size', expect.any(String)]]);
    // The engine prints `property P value V` with V looked up among top-level inputs only; a nested P
    // would print `value {<nil>}`.
    expect(failures.every(([p]) => p === '' || /^[a-z]+$/.test(p!))).toBe(true);
  });

  test('a missing required property leads the reason too (the engine would print its value as {<nil>})', async () => {
    const res = await call(client.check, checkReq({ zone: 'b' }));
    expect(res.getFailuresList().map((f) => [f.getProperty(), f.getReason()])).toEqual([['', expect.stringMatching(/^size: /)]]);
  });

  test('reports a misspelt property instead of dropping it', async () => {
    const res = await call(client.check, checkReq({ size: 2, tags: [{ name: 'a', value: 'b', vaule: 'c' }], sise: 3 }));
    expect(res.getFailuresList().map((f) => [f.getProperty(), f.getReason()]).sort()).toEqual([
      ['', 'tags[0].vaule: unknown property "vaule" of Widget'],
      ['sise', 'unknown property "sise" of Widget'],
    ]);
  });

  test('does not judge unknown values in preview', async () => {
    const res = await call(client.check, checkReq({ size: UNKNOWN }));
    expect(res.getFailuresList()).toHaveLength(0);
  });

  test('keeps a secret input secret', async () => {
    const res = await call(client.check, checkReq({ size: 1, token: { [SIG_KEY]: SECRET_SIG, value: 'hush' } }));
    expect((res.getInputs()!.toJavaScript() as PropertyMap).token).toEqual({ [SIG_KEY]: SECRET_SIG, value: 'hush' });
  });
});

describe('Diff', () => {
  test('no change is DIFF_NONE', async () => {
    const res = await call(client.diff, diffReq({ name: 'w', size: 1, zone: 'a' }, { name: 'w', size: 1, zone: 'a' }));
    expect(res.getChanges()).toBe(providerPb.DiffResponse.DiffChanges.DIFF_NONE);
  });

  test('a change carries a detailed diff with input paths', async () => {
    const res = await call(client.diff, diffReq({ name: 'w', size: 1, zone: 'a', tags: [{ name: 't', value: 'x' }] }, { name: 'w', size: 1, zone: 'a', tags: [{ name: 't', value: 'y' }] }));
    expect(res.getChanges()).toBe(providerPb.DiffResponse.DiffChanges.DIFF_SOME);
    expect(res.getHasdetaileddiff()).toBe(true);
    const map = res.getDetaileddiffMap();
    expect(map.getEntryList().map(([k]) => k)).toEqual(['tags[0].value']);
    expect(map.get('tags[0].value')!.getInputdiff()).toBe(true);
    expect(res.getDiffsList()).toEqual(['tags']);
    expect(res.getReplacesList()).toEqual([]);
  });

  test('an immutable property is replaced, deleting first when the name stays', async () => {
    const res = await call(client.diff, diffReq({ name: 'w', size: 1, zone: 'a' }, { name: 'w', size: 1, zone: 'b' }));
    expect(res.getReplacesList()).toEqual(['zone']);
    expect(res.getDetaileddiffMap().get('zone')!.getKind()).toBe(providerPb.PropertyDiff.Kind.UPDATE_REPLACE);
    expect(res.getDeletebeforereplace()).toBe(true);
  });

  test('ignoreChanges hides an ignored property', async () => {
    const res = await call(client.diff, diffReq({ name: 'w', size: 1 }, { name: 'w', size: 5 }, ['size']));
    expect(res.getChanges()).toBe(providerPb.DiffResponse.DiffChanges.DIFF_NONE);
  });

  test('an unknown value is a change', async () => {
    const res = await call(client.diff, diffReq({ name: 'w', size: 1 }, { name: 'w', size: UNKNOWN }));
    expect(res.getDiffsList()).toEqual(['size']);
  });
});

describe('Create, Read, Update, Delete', () => {
  test('Create in preview writes nothing and logs through the engine', async () => {
    const r = new providerPb.CreateRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setPreview(true);
    r.setProperties(struct({ name: 'p1', size: 1, zone: 'a' }));
    const res = await call(client.create, r);
    expect(res.getId()).toBe('');
    expect(backend.objects.size).toBe(0);
    expect((res.getProperties()!.toJavaScript() as PropertyMap).serial).toBe(UNKNOWN);
    // The log travels to the engine asynchronously: wait for it (the test's timeout bounds the wait).
    await logged((e) => e.message === 'planned');
    expect(logs).toContainEqual({ severity: enginePb.LogSeverity.WARNING, message: 'planned', urn: URN });
  });

  test('Create writes the object and returns its id and outputs, secrets wrapped', async () => {
    const r = new providerPb.CreateRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setProperties(struct({ name: 'c1', size: 1, zone: 'a', token: { [SIG_KEY]: SECRET_SIG, value: 'hush' } }));
    const res = await call(client.create, r);
    expect(res.getId()).toBe('c1');
    const props = res.getProperties()!.toJavaScript() as PropertyMap;
    expect(props.serial).toEqual(expect.any(Number));
    expect(props.token).toEqual({ [SIG_KEY]: SECRET_SIG, value: 'hush' });
    expect(backend.objects.get('Widget/c1')).toMatchObject({ token: 'hush' });
  });

  test('Read by id alone returns inputs, so import works', async () => {
    const r = new providerPb.ReadRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setId('c1');
    const res = await call(client.read, r);
    expect(res.getId()).toBe('c1');
    expect(res.getInputs()!.toJavaScript()).toMatchObject({ name: 'c1', size: 1 });
  });

  test('Read of a vanished object returns an empty id and no properties, so import of it fails', async () => {
    const r = new providerPb.ReadRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setId('gone');
    const res = await call(client.read, r);
    expect(res.getId()).toBe('');
    // The engine treats non-nil properties as "found": `pulumi import` would record a phantom resource.
    expect(res.hasProperties()).toBe(false);
    expect(res.hasInputs()).toBe(false);
  });

  test('Delete of an object that is already gone succeeds', async () => {
    const r = new providerPb.DeleteRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setId('gone');
    await expect(call(client.delete, r)).resolves.toBeInstanceOf(Empty);
  });

  test('Invoke validates arguments and returns the result', async () => {
    const r = new providerPb.InvokeRequest();
    r.setTok('microseg:index:echo');
    r.setArgs(struct({ say: 'hi' }));
    const res = await call(client.invoke, r);
    expect(res.getReturn()!.toJavaScript()).toEqual({ said: 'hi' });
    r.setArgs(struct({}));
    const bad = await call(client.invoke, r);
    expect(bad.getFailuresList().map((f) => f.getProperty())).toEqual(['say']);
  });

  test('an unknown resource type is a clear error', async () => {
    const r = new providerPb.CreateRequest();
    r.setType('microseg:index:Nope');
    r.setUrn('urn:pulumi:dev::proj::microseg:index:Nope::x');
    r.setProperties(struct({}));
    await expect(call(client.create, r)).rejects.toMatchObject({ details: expect.stringContaining('unknown resource type microseg:index:Nope') });
  });
});
