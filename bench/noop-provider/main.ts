/**
 * `pulumi-resource-microsegnoop`: the benchmark's baseline. A provider on the same stack as microseg's
 * (Node 22, @grpc/grpc-js, the same generated pulumirpc stubs) that accepts everything and stores
 * nothing: Check echoes the inputs, Diff compares old and new inputs as JSON, Create returns the
 * inputs with the resource name as id. What microseg costs on top of it is validation, the
 * property-level diff, the store and the enforcement engine.
 */
import * as grpc from '@grpc/grpc-js';
import { Empty } from 'google-protobuf/google/protobuf/empty_pb';
import { Struct } from 'google-protobuf/google/protobuf/struct_pb';
import * as pluginPb from '@pulumi/pulumi/proto/plugin_pb';
import * as providerGrpc from '@pulumi/pulumi/proto/provider_grpc_pb';
import * as providerPb from '@pulumi/pulumi/proto/provider_pb';

type Handler<Req, Res> = grpc.handleUnaryCall<Req, Res>;

function ok<Req, Res>(fn: (req: Req) => Res): Handler<Req, Res> {
  return (call, cb) => {
    try {
      cb(null, fn(call.request));
    } catch (err) {
      cb({ code: grpc.status.UNKNOWN, details: String(err) } as grpc.ServiceError, null);
    }
  };
}

function unimplemented<Req, Res>(): Handler<Req, Res> {
  return (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented' } as grpc.ServiceError, null);
}

const nameOf = (urn: string) => urn.split('::').pop() ?? urn;

const service: providerGrpc.IResourceProviderServer = {
  handshake: ok(() => {
    const res = new providerPb.ProviderHandshakeResponse();
    res.setAcceptSecrets(true);
    res.setAcceptResources(true);
    return res;
  }),
  parameterize: unimplemented(),
  getSchema: ok(() => {
    const res = new providerPb.GetSchemaResponse();
    res.setSchema(JSON.stringify({ name: 'microsegnoop', version: '0.0.1' }));
    return res;
  }),
  checkConfig: ok((req: providerPb.CheckRequest) => {
    const res = new providerPb.CheckResponse();
    res.setInputs(req.getNews());
    return res;
  }),
  diffConfig: ok(() => {
    const res = new providerPb.DiffResponse();
    res.setChanges(providerPb.DiffResponse.DiffChanges.DIFF_NONE);
    return res;
  }),
  configure: ok(() => {
    const res = new providerPb.ConfigureResponse();
    res.setAcceptsecrets(true);
    res.setAcceptresources(true);
    res.setSupportspreview(true);
    return res;
  }),
  invoke: ok(() => {
    const res = new providerPb.InvokeResponse();
    res.setReturn(new Struct());
    return res;
  }),
  call: unimplemented(),
  check: ok((req: providerPb.CheckRequest) => {
    const res = new providerPb.CheckResponse();
    res.setInputs(req.getNews());
    return res;
  }),
  diff: ok((req: providerPb.DiffRequest) => {
    const olds = JSON.stringify((req.getOldInputs() ?? req.getOlds())?.toJavaScript() ?? {});
    const news = JSON.stringify(req.getNews()?.toJavaScript() ?? {});
    const res = new providerPb.DiffResponse();
    res.setChanges(olds === news ? providerPb.DiffResponse.DiffChanges.DIFF_NONE : providerPb.DiffResponse.DiffChanges.DIFF_SOME);
    return res;
  }),
  create: ok((req: providerPb.CreateRequest) => {
    const res = new providerPb.CreateResponse();
    res.setId(req.getPreview() ? '' : nameOf(req.getUrn()));
    res.setProperties(req.getProperties());
    return res;
  }),
  read: ok((req: providerPb.ReadRequest) => {
    const res = new providerPb.ReadResponse();
    res.setId(req.getId());
    res.setProperties(req.getProperties());
    res.setInputs(req.getInputs());
    return res;
  }),
  list: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'not implemented' }),
  update: ok((req: providerPb.UpdateRequest) => {
    const res = new providerPb.UpdateResponse();
    res.setProperties(req.getNews());
    return res;
  }),
  delete: ok(() => new Empty()),
  construct: unimplemented(),
  cancel: ok(() => new Empty()),
  getPluginInfo: ok(() => {
    const info = new pluginPb.PluginInfo();
    info.setVersion('0.0.1');
    return info;
  }),
  attach: ok(() => new Empty()),
  getMapping: ok(() => new providerPb.GetMappingResponse()),
  getMappings: ok(() => new providerPb.GetMappingsResponse()),
};

function main(): void {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 400 * 1024 * 1024 });
  server.addService(providerGrpc.ResourceProviderService, service as unknown as grpc.UntypedServiceImplementation);
  const shutdown = () => {
    server.forceShutdown();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      process.stderr.write(`microsegnoop: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${port}\n`);
  });
}

if (require.main === module) main();
