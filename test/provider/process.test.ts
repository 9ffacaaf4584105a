/**
 * The provider as the engine runs it: the `pulumi-resource-microseg` plugin binary (the built dist/),
 * spawned with an engine address. Nothing but the port may reach stdout, whatever RPCs run, and SIGINT
 * (what the engine's Close sends) must end it cleanly, exit code 0. How fast it exits is not asserted here
 * (a shared machine makes any bound flaky); a hang fails on the test timeout.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Empty } from 'google-protobuf/google/protobuf/empty_pb';
import { Struct } from 'google-protobuf/google/protobuf/struct_pb';
import * as engineGrpc from '@pulumi/pulumi/proto/engine_grpc_pb';
import * as enginePb from '@pulumi/pulumi/proto/engine_pb';
import * as providerGrpc from '@pulumi/pulumi/proto/provider_grpc_pb';
import * as providerPb from '@pulumi/pulumi/proto/provider_pb';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'provider', 'bin', 'pulumi-resource-microseg');
const struct = (o: object) => Struct.fromJavaScript(o as Parameters<typeof Struct.fromJavaScript>[0]);

let engine: grpc.Server;
let engineAddress: string;
const logs: string[] = [];
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'microseg-process-'));
  engine = new grpc.Server();
  engine.addService(engineGrpc.EngineService, {
    log: (c: grpc.ServerUnaryCall<enginePb.LogRequest, Empty>, cb: grpc.sendUnaryData<Empty>) => {
      logs.push(c.request.getMessage());
      cb(null, new Empty());
    },
  } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((res, rej) => engine.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  engineAddress = `127.0.0.1:${port}`;
});

afterAll(() => {
  engine.forceShutdown();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Plugin {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns the plugin as the engine does (`[flags] <engine address>`) and waits for its port line. */
async function startPlugin(options: { engine?: string; env?: Record<string, string> } = {}): Promise<Plugin> {
  const child = spawn(BIN, ['--logtostderr', '-v=9', options.engine ?? engineAddress], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MICROSEG_DATA_DIR: dataDir, ...options.env } });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => reject(new Error(`plugin exited before printing its port; stderr: ${err}`)));
  });
  return { child, port, stdout: () => out, stderr: () => err, exited };
}

function client(port: number): providerGrpc.ResourceProviderClient {
  return new providerGrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function rpc<Req, Res>(c: providerGrpc.ResourceProviderClient, method: (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => method.call(c, req, new grpc.Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res))));
}

async function stopWithSigint(p: Plugin): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  p.child.kill('SIGINT');
  return p.exited;
}

test('nothing but the port reaches stdout through a full resource lifecycle, and SIGINT exits 0', async () => {
  const p = await startPlugin();
  const c = client(p.port);
  const URN = 'urn:pulumi:dev::proj::microseg:index:VirtualMachine::vm';
  const TYPE = 'microseg:index:VirtualMachine';
  try {
    const hs = new providerPb.ProviderHandshakeRequest();
    hs.setEngineAddress(engineAddress);
    await rpc(c, c.handshake, hs);
    await rpc(c, c.getSchema, new providerPb.GetSchemaRequest());
    const cc = new providerPb.CheckRequest();
    cc.setNews(struct({ environment: 'process-test', defaultAction: 'drop' }));
    await rpc(c, c.checkConfig, cc);
    const conf = new providerPb.ConfigureRequest();
    conf.setArgs(struct({ environment: 'process-test' }));
    await rpc(c, c.configure, conf);

    const check = new providerPb.CheckRequest();
    check.setUrn(URN);
    check.setType(TYPE);
    check.setName('vm');
    check.setNews(struct({ interfaces: [{ ip: '10.0.0.300' }] }));
    const bad = await rpc(c, c.check, check);
    expect(bad.getFailuresList().map((f) => [f.getProperty(), f.getReason()])).toEqual([['', expect.stringMatching(/^interfaces\[0\]\.ip: "10\.0\.0\.300" is not an IP address/)]]);
    check.setNews(struct({ name: 'vm', interfaces: [{ ip: '10.0.0.3' }] }));
    const checked = await rpc(c, c.check, check);

    for (const preview of [true, false]) {
      const create = new providerPb.CreateRequest();
      create.setUrn(URN);
      create.setType(TYPE);
      create.setProperties(checked.getInputs());
      create.setPreview(preview);
      await rpc(c, c.create, create);
    }
    const read = new providerPb.ReadRequest();
    read.setUrn(URN);
    read.setType(TYPE);
    read.setId('vm');
    expect((await rpc(c, c.read, read)).getId()).toBe('vm');
    // A user error travels as a gRPC error, not as output.
    const dangling = new providerPb.CreateRequest();
    dangling.setUrn('urn:pulumi:dev::proj::microseg:index:SecurityGroup::g');
    dangling.setType('microseg:index:SecurityGroup');
    dangling.setProperties(struct({ name: 'g', groups: ['missing'] }));
    await expect(rpc(c, c.create, dangling)).rejects.toMatchObject({ details: expect.stringContaining('missing') });
    const del = new providerPb.DeleteRequest();
    del.setUrn(URN);
    del.setType(TYPE);
    del.setId('vm');
    await rpc(c, c.delete, del);
    await rpc(c, c.cancel, new Empty());
  } finally {
    c.close();
  }
  const stop = await stopWithSigint(p);
  expect(p.stdout()).toBe(`${p.port}\n`);
  expect(stop).toEqual({ code: 0, signal: null });
});

test('SIGINT with a client still connected and a call in flight still exits 0', async () => {
  const p = await startPlugin();
  const c = client(p.port);
  const info = rpc(c, c.getPluginInfo, new Empty());
  await info;
  // Keep the channel open (the engine holds its connection until the process is gone).
  const inFlight = rpc(c, c.getSchema, new providerPb.GetSchemaRequest()).catch(() => undefined);
  const stop = await stopWithSigint(p);
  await inFlight;
  c.close();
  expect(p.stdout()).toBe(`${p.port}\n`);
  expect(stop).toEqual({ code: 0, signal: null });
});

// The engine may signal as soon as it has read the port: the handlers must already be in place
// (they used to be installed after the port was printed, and an early SIGTERM killed the process).
test.each(['SIGINT', 'SIGTERM'] as const)('%s right after the port line still exits 0', async (sig) => {
  for (let i = 0; i < 4; i++) {
    const p = await startPlugin();
    p.child.kill(sig);
    const { code, signal } = await p.exited;
    expect({ code, signal, stderr: p.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
  }
});

// `kill -9 pulumi` takes the engine's gRPC server with it; the provider must notice and exit (as Pulumi's
// own plugins do through rpcutil.Healthcheck) instead of lingering with its memory and store handles.
test('the plugin exits 0 on its own when its engine goes away', async () => {
  const doomed = new grpc.Server();
  doomed.addService(engineGrpc.EngineService, { log: (_c: unknown, cb: grpc.sendUnaryData<Empty>) => cb(null, new Empty()) } as unknown as grpc.UntypedServiceImplementation);
  // The health checks the plugin sends are answered UNIMPLEMENTED, as by an engine without the health
  // service (still alive); counting them lets the test wait for checks instead of for time.
  let checks = 0;
  let onCheck: (() => void) | undefined;
  const raw = { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
  doomed.addService({ check: raw } as grpc.ServiceDefinition, {
    check: (_c: unknown, cb: grpc.sendUnaryData<Buffer>) => {
      checks++;
      onCheck?.();
      cb({ code: grpc.status.UNIMPLEMENTED });
    },
  });
  const port = await new Promise<number>((res, rej) => doomed.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const p = await startPlugin({ engine: `127.0.0.1:${port}`, env: { MICROSEG_ENGINE_CHECK_MS: '100' } });
  // Alive while the engine answers: after three answered health checks it still serves calls.
  const c = client(p.port);
  await rpc(c, c.getPluginInfo, new Empty());
  await new Promise<void>((resolve) => {
    onCheck = () => checks >= 3 && resolve();
    onCheck();
  });
  await rpc(c, c.getPluginInfo, new Empty());
  c.close();
  doomed.forceShutdown();
  const { code, signal } = await p.exited;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(p.stderr()).toContain('is gone; exiting');
  expect(p.stdout()).toBe(`${p.port}\n`);
});
