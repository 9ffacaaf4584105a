import * as grpc from '@grpc/grpc-js';

/** A generated client method, typed by its last overload (request, metadata, options, callback). */
export type UnaryMethod<Req, Res> = (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall;

/** Promise form of a unary call on the client that `client()` returns when the call is made. */
export function unaryCaller(client: () => grpc.Client): <Req, Res>(method: UnaryMethod<Req, Res>, req: Req) => Promise<Res> {
  return (method, req) => new Promise((resolve, reject) => method.call(client(), req, new grpc.Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res))));
}
