/**
 * Protocol points beyond grpc-contract.test.ts, over real gRPC with a fake engine Log server: all seven
 * unknown sentinels in Check and Diff, secrets through Create/Update/Read, `old_inputs` in Diff,
 * preview Create with unknowns, and ErrorResourceInitFailed for a partially failed create.
 * Plus Check of the real microseg resources with unknowns (semantic validation must not judge them).
 */
import * as grpc from '@grpc/grpc-js';
import { unaryCaller } from './grpc-call';
import { Empty } from 'google-protobuf/google/protobuf/empty_pb';
import { Struct } from 'google-protobuf/google/protobuf/struct_pb';
import * as engineGrpc from '@pulumi/pulumi/proto/engine_grpc_pb';
import * as providerGrpc from '@pulumi/pulumi/proto/provider_grpc_pb';
import * as providerPb from '@pulumi/pulumi/proto/provider_pb';
import * as statusPb from '@pulumi/pulumi/proto/status_pb';
import { z } from 'zod';
import { defineResource, resourceToken } from '../../provider/src/model/define';
import { Backend, BackendResult } from '../../provider/src/provider/backend';
import { ProviderCore } from '../../provider/src/provider/core';
import { serve } from '../../provider/src/provider/grpc-server';
import { createProviderCore } from '../../provider/src/provider/main';
import { PropertyMap, SECRET_SIG, SIG_KEY, UNKNOWN, UNKNOWN_SENTINELS } from '../../provider/src/provider/values';

const Widget = defineResource({
  name: 'Widget',
  description: 'A test resource.',
  inputs: z.object({
    name: z.string().optional(),
    size: z.number().int().min(1),
    zone: z.string().default('a'),
    token: z.string().optional(),
    enabled: z.boolean().default(true),
    tags: z.array(z.object({ name: z.string(), value: z.string() })).optional(),
    meta: z.object({ owner: z.string().optional() }).optional(),
  }),
  outputs: z.object({ serial: z.number(), fingerprint: z.string() }),
  replaceOnChanges: ['zone'],
  secrets: ['token'],
});

const TOKEN = resourceToken('Widget');
const URN = 'urn:pulumi:dev::proj::microseg:index:Widget::w1';
const SENTINELS = [...UNKNOWN_SENTINELS];
const secret = (value: unknown) => ({ [SIG_KEY]: SECRET_SIG, value });

/** In-memory backend recording calls; `initErrors` simulates a write that lands but does not come up healthy. */
class MemoryBackend implements Backend {
  readonly objects = new Map<string, PropertyMap>();
  readonly calls: string[] = [];
  initErrors: string[] | undefined;
  private serial = 0;
  async plan(kind: string, name: string): Promise<BackendResult> {
    this.calls.push(`plan ${kind}/${name}`);
    return { outputs: { serial: UNKNOWN, fingerprint: 'planned' }, warnings: [] };
  }
  async put(kind: string, name: string, spec: PropertyMap): Promise<BackendResult> {
    this.calls.push(`put ${kind}/${name}`);
    this.objects.set(`${kind}/${name}`, spec);
    return { outputs: { serial: ++this.serial, fingerprint: `f${this.serial}` }, warnings: [], ...(this.initErrors ? { initErrors: this.initErrors } : {}) };
  }
  async get(kind: string, name: string) {
    const spec = this.objects.get(`${kind}/${name}`);
    return spec ? { spec, outputs: { serial: 7, fingerprint: 'f7' } } : undefined;
  }
  async claim(kind: string, name: string, owner: string) {
    this.calls.push(`claim ${kind}/${name} ${owner}`);
  }
  async assertCreatable() {}
  async delete(kind: string, name: string) {
    this.objects.delete(`${kind}/${name}`);
  }
  async invoke() {
    return {};
  }
  close() {}
}

let engine: grpc.Server;
let server: grpc.Server;
let client: providerGrpc.ResourceProviderClient;
let backend: MemoryBackend;

const struct = (o: object) => Struct.fromJavaScript(o as Parameters<typeof Struct.fromJavaScript>[0]);
const js = (s: Struct | undefined) => (s?.toJavaScript() ?? {}) as PropertyMap;

const call = unaryCaller(() => client);

beforeAll(async () => {
  engine = new grpc.Server();
  engine.addService(engineGrpc.EngineService, { log: (_c: unknown, cb: grpc.sendUnaryData<Empty>) => cb(null, new Empty()) } as unknown as grpc.UntypedServiceImplementation);
  const enginePort = await new Promise<number>((res, rej) => engine.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  backend = new MemoryBackend();
  const core = new ProviderCore<Record<string, unknown>>({
    version: '1.0.0',
    resources: [Widget],
    functions: [],
    config: z.object({}),
    schema: () => '{}',
    openBackend: () => backend,
  });
  const started = await serve(core as ProviderCore<unknown>, { engineAddress: `127.0.0.1:${enginePort}` });
  server = started.server;
  client = new providerGrpc.ResourceProviderClient(`127.0.0.1:${started.port}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client.close();
  server.forceShutdown();
  engine.forceShutdown();
});

beforeEach(() => {
  backend.objects.clear();
  backend.calls.length = 0;
  backend.initErrors = undefined;
});

function checkReq(news: object, olds: object = {}): providerPb.CheckRequest {
  const r = new providerPb.CheckRequest();
  r.setUrn(URN);
  r.setType(TOKEN);
  r.setName('w1');
  r.setNews(struct(news));
  r.setOlds(struct(olds));
  r.setRandomseed(new Uint8Array([9, 9, 9]));
  return r;
}

function diffReq(o: { oldInputs?: object; olds: object; news: object }): providerPb.DiffRequest {
  const r = new providerPb.DiffRequest();
  r.setUrn(URN);
  r.setType(TOKEN);
  r.setId('w');
  if (o.oldInputs) r.setOldInputs(struct(o.oldInputs));
  r.setOlds(struct(o.olds));
  r.setNews(struct(o.news));
  return r;
}

function createReq(properties: object, preview = false): providerPb.CreateRequest {
  const r = new providerPb.CreateRequest();
  r.setUrn(URN);
  r.setType(TOKEN);
  r.setProperties(struct(properties));
  r.setPreview(preview);
  return r;
}

function detailed(res: providerPb.DiffResponse): Record<string, number> {
  return Object.fromEntries(res.getDetaileddiffMap().getEntryList().map(([k, v]) => [k, (v as unknown as [number, boolean])[0]]));
}

/** The proto's detailed-diff invariants (provider.proto L776–816). */
function expectDiffInvariants(res: providerPb.DiffResponse): void {
  const diffs = res.getDiffsList();
  const paths = res.getDetaileddiffMap().getEntryList().map(([k]) => k);
  const top = (p: string) => /^[A-Za-z_][A-Za-z0-9_]*/.exec(p)?.[0] ?? p;
  for (const d of diffs) expect(paths.some((p) => top(p) === d)).toBe(true);
  for (const p of paths) expect(diffs).toContain(top(p));
  expect(new Set(diffs).size).toBe(diffs.length);
  for (const r of res.getReplacesList()) expect(diffs).toContain(r);
}

describe('all seven unknown sentinels', () => {
  test.each(SENTINELS)('Check does not judge %s, at the top level or nested', async (u) => {
    for (const news of [{ size: u }, { size: 1, tags: u }, { size: 1, tags: [{ name: 't', value: u }] }, { size: 1, meta: u }, { size: 1, enabled: u }, { size: u, zone: u, tags: [u] }]) {
      const res = await call(client.check, checkReq(news));
      expect(res.getFailuresList().map((f) => `${f.getProperty()}: ${f.getReason()}`)).toEqual([]);
    }
  });

  test.each(SENTINELS)('Check keeps %s in the returned inputs, unchanged', async (u) => {
    const res = await call(client.check, checkReq({ size: u, tags: [{ name: 't', value: u }] }));
    expect(js(res.getInputs())).toMatchObject({ size: u, tags: [{ name: 't', value: u }] });
  });

  test.each(SENTINELS)('Check still reports real failures next to %s', async (u) => {
    const res = await call(client.check, checkReq({ size: u, zone: 5 }));
    expect(res.getFailuresList().map((f) => f.getProperty())).toEqual(['zone']);
  });

  test.each(SENTINELS)('Diff counts %s as a change of exactly that path', async (u) => {
    const old = { name: 'w', size: 1, zone: 'a', tags: [{ name: 't', value: 'x' }] };
    const top = await call(client.diff, diffReq({ oldInputs: old, olds: old, news: { ...old, size: u } }));
    expect(top.getChanges()).toBe(providerPb.DiffResponse.DiffChanges.DIFF_SOME);
    expect(detailed(top)).toEqual({ size: providerPb.PropertyDiff.Kind.UPDATE });
    expectDiffInvariants(top);
    const nested = await call(client.diff, diffReq({ oldInputs: old, olds: old, news: { ...old, tags: [{ name: 't', value: u }] } }));
    expect(detailed(nested)).toEqual({ 'tags[0].value': providerPb.PropertyDiff.Kind.UPDATE });
    expectDiffInvariants(nested);
    const whole = await call(client.diff, diffReq({ oldInputs: old, olds: old, news: { ...old, tags: u } }));
    expect(detailed(whole)).toEqual({ tags: providerPb.PropertyDiff.Kind.UPDATE });
  });

  test.each(SENTINELS)('Diff of %s in an immutable property is a replacement', async (u) => {
    const old = { name: 'w', size: 1, zone: 'a' };
    const res = await call(client.diff, diffReq({ oldInputs: old, olds: old, news: { ...old, zone: u } }));
    expect(res.getReplacesList()).toEqual(['zone']);
    expect(detailed(res)).toEqual({ zone: providerPb.PropertyDiff.Kind.UPDATE_REPLACE });
    expectDiffInvariants(res);
  });

  test.each(SENTINELS)('Create in preview with %s returns unknown computed outputs, no id, and writes nothing', async (u) => {
    const res = await call(client.create, createReq({ name: 'p', size: u, zone: 'a' }, true));
    expect(res.getId()).toBe('');
    const props = js(res.getProperties());
    expect(props).toMatchObject({ name: 'p', size: u, zone: 'a' });
    expect(UNKNOWN_SENTINELS.has(props.serial as string)).toBe(true);
    expect(UNKNOWN_SENTINELS.has(props.fingerprint as string)).toBe(true);
    expect(backend.objects.size).toBe(0);
    expect(backend.calls.filter((c) => c.startsWith('put'))).toEqual([]);
  });
});

describe('preview', () => {
  test('Create in preview with known inputs plans without writing and returns no id', async () => {
    const res = await call(client.create, createReq({ name: 'p', size: 1, zone: 'a' }, true));
    expect(res.getId()).toBe('');
    expect(js(res.getProperties())).toMatchObject({ name: 'p', serial: UNKNOWN, fingerprint: 'planned' });
    expect(backend.calls).toEqual(['plan Widget/p']);
  });

  test('Update in preview writes nothing', async () => {
    const r = new providerPb.UpdateRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setId('p');
    r.setOlds(struct({ name: 'p', size: 1, zone: 'a', serial: 1, fingerprint: 'f1' }));
    r.setNews(struct({ name: 'p', size: 2, zone: 'a' }));
    r.setPreview(true);
    const res = await call(client.update, r);
    expect(js(res.getProperties())).toMatchObject({ size: 2 });
    expect(backend.objects.size).toBe(0);
  });
});

describe('secrets', () => {
  test('a secret input stays secret in Create outputs, top-level and nested', async () => {
    const res = await call(client.create, createReq({ name: 's1', size: secret(3), zone: 'a', tags: [{ name: 't', value: secret('v') }] }));
    const props = js(res.getProperties());
    expect(props.size).toEqual(secret(3));
    expect(props.tags).toEqual([{ name: 't', value: secret('v') }]);
    // The backend gets plain values.
    expect(backend.objects.get('Widget/s1')).toMatchObject({ size: 3, tags: [{ name: 't', value: 'v' }] });
  });

  test('a schema-secret property is secret in outputs even when the program sent it plain', async () => {
    const res = await call(client.create, createReq({ name: 's2', size: 1, zone: 'a', token: 'plain' }));
    expect(js(res.getProperties()).token).toEqual(secret('plain'));
  });

  test('a whole secret object stays secret', async () => {
    const res = await call(client.create, createReq({ name: 's3', size: 1, zone: 'a', meta: secret({ owner: 'me' }) }));
    expect(js(res.getProperties()).meta).toEqual(secret({ owner: 'me' }));
  });

  test('Update keeps secret inputs secret in its outputs', async () => {
    const r = new providerPb.UpdateRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setId('s4');
    r.setOlds(struct({ name: 's4', size: 1, zone: 'a', serial: 1, fingerprint: 'f1' }));
    r.setNews(struct({ name: 's4', size: secret(2), zone: 'a', token: secret('t') }));
    const props = js((await call(client.update, r)).getProperties());
    expect(props.size).toEqual(secret(2));
    expect(props.token).toEqual(secret('t'));
  });

  test('Read (refresh) keeps secret inputs and state secret in both inputs and outputs', async () => {
    await call(client.create, createReq({ name: 's5', size: 4, zone: 'a', token: 'tok' }));
    const r = new providerPb.ReadRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setId('s5');
    r.setInputs(struct({ name: 's5', size: secret(4), zone: 'a', token: secret('tok') }));
    r.setProperties(struct({ name: 's5', size: secret(4), zone: 'a', token: secret('tok'), serial: 1, fingerprint: 'f1' }));
    const res = await call(client.read, r);
    expect(js(res.getInputs())).toMatchObject({ size: secret(4), token: secret('tok') });
    expect(js(res.getProperties())).toMatchObject({ size: secret(4), token: secret('tok') });
  });

  test('Read by id alone (import) marks schema-secret properties secret', async () => {
    await call(client.create, createReq({ name: 's6', size: 1, zone: 'a', token: 'tok' }));
    const r = new providerPb.ReadRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setId('s6');
    const res = await call(client.read, r);
    expect(js(res.getInputs()).token).toEqual(secret('tok'));
    expect(js(res.getProperties()).token).toEqual(secret('tok'));
  });

  test('Diff sees through secret wrappers: same value is no change, a new value is one path', async () => {
    const old = { name: 'w', size: 1, zone: 'a', token: 'a' };
    const same = await call(client.diff, diffReq({ oldInputs: { ...old, token: secret('a') }, olds: old, news: { ...old, token: secret('a') } }));
    expect(same.getChanges()).toBe(providerPb.DiffResponse.DiffChanges.DIFF_NONE);
    const changed = await call(client.diff, diffReq({ oldInputs: { ...old, token: secret('a') }, olds: old, news: { ...old, token: secret('b') } }));
    expect(detailed(changed)).toEqual({ token: providerPb.PropertyDiff.Kind.UPDATE });
  });
});

describe('old_inputs', () => {
  test('Diff compares old inputs, not old outputs, with the new inputs', async () => {
    // Outputs carry computed fields and a backend-normalised value; old inputs are what the user wrote.
    const oldInputs = { name: 'w', size: 2, zone: 'a' };
    const olds = { name: 'w', size: 3, zone: 'a', serial: 5, fingerprint: 'f5' };
    const res = await call(client.diff, diffReq({ oldInputs, olds, news: { name: 'w', size: 2, zone: 'a' } }));
    expect(res.getChanges()).toBe(providerPb.DiffResponse.DiffChanges.DIFF_NONE);
    const changed = await call(client.diff, diffReq({ oldInputs, olds, news: { name: 'w', size: 3, zone: 'a' } }));
    expect(detailed(changed)).toEqual({ size: providerPb.PropertyDiff.Kind.UPDATE });
    expect(changed.getDetaileddiffMap().get('size')!.getInputdiff()).toBe(true);
  });

  test('without old_inputs (older engines) only the input keys of the old state are compared', async () => {
    const res = await call(client.diff, diffReq({ olds: { name: 'w', size: 2, zone: 'a', serial: 5, fingerprint: 'f5' }, news: { name: 'w', size: 2, zone: 'a' } }));
    expect(res.getChanges()).toBe(providerPb.DiffResponse.DiffChanges.DIFF_NONE);
  });
});

describe('ErrorResourceInitFailed', () => {
  test('a create that lands but fails to initialise reports the id, outputs and reasons', async () => {
    backend.initErrors = ['the object was written but is not healthy'];
    const err = await call(client.create, createReq({ name: 'half', size: 1, zone: 'a', token: secret('t') })).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err).toBeDefined();
    expect(err!.code).toBe(grpc.status.UNKNOWN);
    const bin = err!.metadata.get('grpc-status-details-bin')[0] as Buffer;
    expect(bin).toBeDefined();
    const status = statusPb.Status.deserializeBinary(new Uint8Array(bin));
    const any = status.getDetailsList()[0];
    expect(any.getTypeUrl()).toMatch(/pulumirpc\.ErrorResourceInitFailed$/);
    const detail = providerPb.ErrorResourceInitFailed.deserializeBinary(any.getValue_asU8());
    expect(detail.getId()).toBe('half');
    expect(detail.getReasonsList()).toEqual(['the object was written but is not healthy']);
    expect(js(detail.getProperties())).toMatchObject({ name: 'half', serial: expect.any(Number), token: secret('t') });
    expect(js(detail.getInputs())).toMatchObject({ name: 'half', size: 1 });
    expect(backend.objects.has('Widget/half')).toBe(true);
  });

  test('an update that fails to initialise reports the same way', async () => {
    backend.initErrors = ['still not healthy'];
    const r = new providerPb.UpdateRequest();
    r.setUrn(URN);
    r.setType(TOKEN);
    r.setId('half');
    r.setOlds(struct({ name: 'half', size: 1, zone: 'a' }));
    r.setNews(struct({ name: 'half', size: 2, zone: 'a' }));
    const err = await call(client.update, r).then(() => undefined, (e: grpc.ServiceError) => e);
    const status = statusPb.Status.deserializeBinary(new Uint8Array(err!.metadata.get('grpc-status-details-bin')[0] as Buffer));
    const detail = providerPb.ErrorResourceInitFailed.deserializeBinary(status.getDetailsList()[0].getValue_asU8());
    expect(detail.getId()).toBe('half');
    expect(detail.getReasonsList()).toEqual(['still not healthy']);
  });

  test('in preview, init errors are not failures', async () => {
    backend.initErrors = ['not healthy'];
    await expect(call(client.create, createReq({ name: 'p', size: 1, zone: 'a' }, true))).resolves.toBeDefined();
  });
});

describe('the real microseg resources with unknowns (preview)', () => {
  const core = createProviderCore();
  const check = (kind: string, news: PropertyMap) => core.check({ token: resourceToken(kind), name: 'x', olds: {}, news, randomSeed: new Uint8Array([1]) });

  test.each(SENTINELS)('semantic checks (IPs, CIDRs, one-of fields) do not judge %s', (u) => {
    expect(check('VirtualMachine', { name: 'vm', interfaces: [{ ip: u }] }).failures).toEqual([]);
    expect(check('KubernetesCluster', { name: 'c', podCidr: u, serviceCidr: '10.96.0.0/12', nodes: [{ name: 'n', ip: u }] }).failures).toEqual([]);
    expect(check('SecurityGroup', { name: 'g', ipBlocks: [{ cidr: u, except: [u] }] }).failures).toEqual([]);
    expect(check('FirewallPolicy', { name: 'p', rules: [{ name: 'r', action: 'allow', sources: [{ group: u }], destinations: [{ cidr: u }] }] }).failures).toEqual([]);
    expect(check('EgressIp', { name: 'e', cluster: u, ip: u, podSelector: {} }).failures).toEqual([]);
    expect(check('LoadBalancer', { name: 'l', vip: u, listeners: [{ port: 80 }], pool: { group: u } }).failures).toEqual([]);
    expect(check('ConnectivityAssertion', { name: 'a', from: u, to: u, port: 80, expect: 'allow' }).failures).toEqual([]);
  });

  test('a real problem next to an unknown is still reported with its path', () => {
    const r = check('VirtualMachine', { name: 'vm', interfaces: [{ ip: UNKNOWN }, { ip: '10.0.0.300' }] });
    expect(r.failures.map((f) => f.property)).toEqual(['interfaces[1].ip']);
  });

  test('a whole unknown list is not judged', () => {
    expect(check('VirtualMachine', { name: 'vm', interfaces: '6a19a0b0-7e62-4c92-b797-7f8e31da9cc2' }).failures).toEqual([]);
  });
});
