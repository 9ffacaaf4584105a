import * as grpc from '@grpc/grpc-js';
import { Any } from 'google-protobuf/google/protobuf/any_pb';
import { Empty } from 'google-protobuf/google/protobuf/empty_pb';
import { Struct } from 'google-protobuf/google/protobuf/struct_pb';
import * as engineGrpc from '@pulumi/pulumi/proto/engine_grpc_pb';
import * as enginePb from '@pulumi/pulumi/proto/engine_pb';
import * as pluginPb from '@pulumi/pulumi/proto/plugin_pb';
import * as providerGrpc from '@pulumi/pulumi/proto/provider_grpc_pb';
import * as providerPb from '@pulumi/pulumi/proto/provider_pb';
import * as statusPb from '@pulumi/pulumi/proto/status_pb';
import { BackendError } from './backend';
import { Autonaming, CheckResult, DiffResult, Logger, OperationAbortedError, ProviderCore, ResourceInitError } from './core';
import { PropertyMap } from './values';

type Callback<T> = grpc.sendUnaryData<T>;

const SEVERITY = {
  debug: enginePb.LogSeverity.DEBUG,
  info: enginePb.LogSeverity.INFO,
  warning: enginePb.LogSeverity.WARNING,
  error: enginePb.LogSeverity.ERROR,
} as const;

/** Sends provider messages to the engine's Log RPC, so they show up in `pulumi preview` and `up`. */
export class EngineLogger implements Logger {
  private client: engineGrpc.EngineClient | undefined;

  connect(address: string): void {
    if (!address || this.client) return;
    this.client = new engineGrpc.EngineClient(address, grpc.credentials.createInsecure());
  }

  log(severity: 'debug' | 'info' | 'warning' | 'error', message: string, urn?: string): void {
    if (!this.client) {
      process.stderr.write(`[${severity}] ${message}\n`);
      return;
    }
    const req = new enginePb.LogRequest();
    req.setSeverity(SEVERITY[severity]);
    req.setMessage(message);
    if (urn) req.setUrn(urn);
    this.client.log(req, () => undefined);
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}

function toMap(s: Struct | undefined): PropertyMap {
  return (s?.toJavaScript() ?? {}) as PropertyMap;
}

function toStruct(m: PropertyMap): Struct {
  return Struct.fromJavaScript(m as Parameters<typeof Struct.fromJavaScript>[0]);
}

/**
 * A partial failure as the engine expects it: code UNKNOWN with a google.rpc.Status in the
 * `grpc-status-details-bin` trailer whose detail is pulumirpc.ErrorResourceInitFailed.
 */
function initFailed(err: ResourceInitError): grpc.ServiceError {
  const detail = new providerPb.ErrorResourceInitFailed();
  detail.setId(err.id);
  detail.setProperties(toStruct(err.properties));
  detail.setInputs(toStruct(err.inputs));
  detail.setReasonsList([...err.reasons]);
  const any = new Any();
  any.pack(detail.serializeBinary(), 'pulumirpc.ErrorResourceInitFailed');
  const status = new statusPb.Status();
  status.setCode(grpc.status.UNKNOWN);
  status.setMessage(err.message);
  status.addDetails(any);
  const metadata = new grpc.Metadata();
  metadata.add('grpc-status-details-bin', Buffer.from(status.serializeBinary()));
  return { code: grpc.status.UNKNOWN, details: err.message, message: err.message, metadata } as grpc.ServiceError;
}

/** Maps a thrown error to a gRPC status; user errors carry their message, nothing else leaks. */
function fail<T>(cb: Callback<T>, err: unknown): void {
  if (err instanceof ResourceInitError) {
    const e = initFailed(err);
    cb(e, null, e.metadata);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  // An aborted operation is not a crash: the engine shows its message like a user error's.
  const code = err instanceof BackendError || err instanceof OperationAbortedError ? grpc.status.INVALID_ARGUMENT : grpc.status.UNKNOWN;
  cb({ code, details: message, message } as grpc.ServiceError, null);
}

function unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res): grpc.handleUnaryCall<Req, Res> {
  return (call, cb) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then((res) => cb(null, res), (err: unknown) => fail(cb, err));
  };
}

function unimplemented<Req, Res>(name: string): grpc.handleUnaryCall<Req, Res> {
  return (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented by microseg` } as grpc.ServiceError, null);
}

/**
 * The engine prints a failure as `property P value V has a problem: R`, looking V up among the top-level
 * inputs: a nested path (`rules[0].services[0].ports[1]`) finds nothing and prints `value {<nil>}`. So a
 * nested failure is sent without a property and with the path leading its reason (`has a problem:
 * rules[0]...: R`); a top-level one keeps its property when the inputs have it.
 */
export function wireFailure(f: { property: string; reason: string }, inputs: Readonly<Record<string, unknown>> = {}): { property: string; reason: string } {
  // A top-level property the inputs lack (a missing required value) prints as `{<nil>}` too.
  const present = /^[A-Za-z_][A-Za-z0-9_]*$/.test(f.property) && inputs[f.property] !== undefined && inputs[f.property] !== null;
  return present || f.property === '' ? f : { property: '', reason: `${f.property}: ${f.reason}` };
}

function checkFailures(failures: CheckResult['failures'], inputs?: Readonly<Record<string, unknown>>): providerPb.CheckFailure[] {
  return failures.map((f) => {
    // Invoke failures (no inputs given) are printed by the engine as `property: reason`, so they keep their path.
    const w = inputs === undefined ? f : wireFailure(f, inputs);
    const cf = new providerPb.CheckFailure();
    cf.setProperty(w.property);
    cf.setReason(w.reason);
    return cf;
  });
}

/** `news`: the inputs as the program sent them, which is where the engine looks the failing value up. */
function checkResponse(r: CheckResult, news: Readonly<Record<string, unknown>>): providerPb.CheckResponse {
  const res = new providerPb.CheckResponse();
  res.setInputs(toStruct(r.inputs));
  res.setFailuresList(checkFailures(r.failures, news));
  return res;
}

function diffResponse(d: DiffResult): providerPb.DiffResponse {
  const res = new providerPb.DiffResponse();
  res.setChanges(d.changed ? providerPb.DiffResponse.DiffChanges.DIFF_SOME : providerPb.DiffResponse.DiffChanges.DIFF_NONE);
  res.setDiffsList(d.diffs);
  res.setReplacesList(d.replaces);
  res.setDeletebeforereplace(d.deleteBeforeReplace);
  res.setHasdetaileddiff(true);
  const map = res.getDetaileddiffMap();
  for (const [path, kind] of Object.entries(d.detailedDiff)) {
    const pd = new providerPb.PropertyDiff();
    pd.setKind(kind as number as providerPb.PropertyDiff.Kind);
    pd.setInputdiff(true);
    map.set(path, pd);
  }
  return res;
}

function autonamingOf(req: providerPb.CheckRequest): Autonaming | undefined {
  const a = req.getAutonaming();
  if (!a) return undefined;
  const modes = ['propose', 'enforce', 'disable'] as const;
  return { proposedName: a.getProposedName(), mode: modes[a.getMode()] ?? 'propose' };
}

/** Our implementation of pulumirpc.ResourceProvider on @grpc/grpc-js, delegating to ProviderCore. */
export function resourceProviderService(core: ProviderCore<unknown>, logger: EngineLogger): providerGrpc.IResourceProviderServer {
  const configReplaceKeys = ['dataDir', 'environment'];
  return {
    handshake: unary((req: providerPb.ProviderHandshakeRequest) => {
      logger.connect(req.getEngineAddress());
      const res = new providerPb.ProviderHandshakeResponse();
      res.setAcceptSecrets(true);
      res.setAcceptResources(true);
      res.setAcceptOutputs(false);
      res.setSupportsAutonamingConfiguration(true);
      return res;
    }),
    parameterize: unimplemented('Parameterize'),
    getSchema: unary(() => {
      const res = new providerPb.GetSchemaResponse();
      res.setSchema(core.getSchema());
      return res;
    }),
    checkConfig: unary((req: providerPb.CheckRequest) => checkResponse(core.checkConfig(toMap(req.getNews())), toMap(req.getNews()))),
    diffConfig: unary((req: providerPb.DiffRequest) => {
      const olds = Object.keys(toMap(req.getOldInputs())).length > 0 ? toMap(req.getOldInputs()) : toMap(req.getOlds());
      return diffResponse(core.diffConfig(olds, toMap(req.getNews()), configReplaceKeys, { urn: req.getUrn() }));
    }),
    configure: unary((req: providerPb.ConfigureRequest) => {
      core.configure(toMap(req.getArgs()), { urn: req.getUrn() });
      const res = new providerPb.ConfigureResponse();
      res.setAcceptsecrets(true);
      res.setSupportspreview(true);
      res.setAcceptresources(true);
      res.setAcceptoutputs(false);
      res.setSupportsAutonamingConfiguration(true);
      return res;
    }),
    invoke: unary(async (req: providerPb.InvokeRequest) => {
      const r = await core.invoke({ token: req.getTok(), args: toMap(req.getArgs()) });
      const res = new providerPb.InvokeResponse();
      res.setReturn(toStruct(r.result));
      res.setFailuresList(checkFailures(r.failures));
      return res;
    }),
    call: unimplemented('Call'),
    check: unary((req: providerPb.CheckRequest) =>
      checkResponse(core.check({
        token: tokenOf(req.getType(), req.getUrn()),
        name: req.getName() || req.getUrn().split('::').pop() || 'resource',
        olds: toMap(req.getOlds()),
        news: toMap(req.getNews()),
        randomSeed: req.getRandomseed_asU8(),
        autonaming: autonamingOf(req),
      }), toMap(req.getNews())),
    ),
    diff: unary((req: providerPb.DiffRequest) =>
      diffResponse(core.diff({
        token: tokenOf(req.getType(), req.getUrn()),
        oldInputs: toMap(req.getOldInputs()),
        oldState: toMap(req.getOlds()),
        news: toMap(req.getNews()),
        ignoreChanges: req.getIgnorechangesList(),
      })),
    ),
    create: unary(async (req: providerPb.CreateRequest) => {
      const r = await core.create({ token: tokenOf(req.getType(), req.getUrn()), urn: req.getUrn(), properties: toMap(req.getProperties()), preview: req.getPreview(), timeout: req.getTimeout() });
      const res = new providerPb.CreateResponse();
      res.setId(r.id);
      res.setProperties(toStruct(r.properties));
      return res;
    }),
    read: unary(async (req: providerPb.ReadRequest) => {
      const r = await core.read({ token: tokenOf(req.getType(), req.getUrn()), urn: req.getUrn(), id: req.getId(), inputs: toMap(req.getInputs()), state: toMap(req.getProperties()), timeout: req.getTimeout() });
      const res = new providerPb.ReadResponse();
      res.setId(r.id);
      // A missing object is an empty id AND no properties: the engine tells "gone" (refresh drops it,
      // `pulumi import` fails with "does not exist") from "found" by the properties being nil.
      if (r.id === '') return res;
      res.setProperties(toStruct(r.properties));
      res.setInputs(toStruct(r.inputs));
      return res;
    }),
    list: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'List is not implemented by microseg' }),
    update: unary(async (req: providerPb.UpdateRequest) => {
      const r = await core.update({ token: tokenOf(req.getType(), req.getUrn()), urn: req.getUrn(), id: req.getId(), news: toMap(req.getNews()), preview: req.getPreview(), timeout: req.getTimeout() });
      const res = new providerPb.UpdateResponse();
      res.setProperties(toStruct(r.properties));
      return res;
    }),
    delete: unary(async (req: providerPb.DeleteRequest) => {
      await core.delete({ token: tokenOf(req.getType(), req.getUrn()), urn: req.getUrn(), id: req.getId(), timeout: req.getTimeout() });
      return new Empty();
    }),
    construct: unimplemented('Construct'),
    // The engine cancels at the end of every operation and on Ctrl-C: operations still queued fail with
    // "cancelled" and write nothing; the running one finishes its atomic write. Acknowledging lets the
    // engine shut us down cleanly.
    cancel: unary(() => {
      core.cancel();
      return new Empty();
    }),
    getPluginInfo: unary(() => {
      const info = new pluginPb.PluginInfo();
      info.setVersion(core.version);
      return info;
    }),
    attach: unary((req: pluginPb.PluginAttach) => {
      logger.connect(req.getAddress());
      return new Empty();
    }),
    getMapping: unary(() => new providerPb.GetMappingResponse()),
    getMappings: unary(() => new providerPb.GetMappingsResponse()),
  };
}

/** The resource type token: from the request, or the last type segment of the URN. */
function tokenOf(type: string, urn: string): string {
  if (type) return type;
  const qualifiedType = urn.split('::')[2] ?? '';
  return qualifiedType.split('$').pop() ?? '';
}

/** Starts the provider's gRPC server on 127.0.0.1 and resolves with the bound port. */
export async function serve(core: ProviderCore<unknown>, opts: { engineAddress?: string; port?: number } = {}): Promise<{ port: number; server: grpc.Server; logger: EngineLogger }> {
  const logger = new EngineLogger();
  if (opts.engineAddress) logger.connect(opts.engineAddress);
  core.logger = logger;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 400 * 1024 * 1024 });
  server.addService(providerGrpc.ResourceProviderService, resourceProviderService(core, logger) as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { port, server, logger };
}
