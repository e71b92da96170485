import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, type Interceptor, type ServiceImplSpec } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import type { Logger } from "pino";
import { httpError } from "../gateway/error-body.js";
import { connectUnary, type ConnectUnaryServer } from "./connect-unary.js";
import { decodeInterceptor, deferParsing } from "./deferred-parse.js";
import { sendJson } from "./json-response.js";
import type { PlainRoute, RequestHandler } from "./listener.js";

export interface RpcHandlerOptions {
  services: readonly ServiceImplSpec[];
  /** Run on every call before its request message is looked at: logging, error mapping, auth. */
  callInterceptors: Interceptor[];
  /** Run once the request message is known to be well-formed: validation. */
  messageInterceptors: Interceptor[];
  maxBodyBytes: number;
  logger: Logger;
  /** Paths that are not RPCs, tried in order. */
  otherRoutes: readonly PlainRoute[];
}

const compressions = [compressionGzip, compressionBrotli];

/**
 * Connect, gRPC and gRPC-Web for every service; other paths go to otherRoutes, else a JSON 404.
 * connectNodeAdapter's dispatch, with each unary handler wrapped so its request message is decoded
 * after authentication, as the REST gateway does (see deferParsing).
 */
export function createRpcHandler(opts: RpcHandlerOptions): RequestHandler {
  const interceptors = [...opts.callInterceptors, decodeInterceptor(), ...opts.messageInterceptors];
  const router = createConnectRouter({ interceptors, readMaxBytes: opts.maxBodyBytes, acceptCompression: compressions });
  const unary = new Map<DescMethod, ConnectUnaryServer>();
  for (const { methods } of opts.services) {
    for (const spec of Object.values(methods)) {
      router.rpc(spec.method, spec.impl);
      if (spec.kind === "unary") unary.set(spec.method, connectUnary(spec, { interceptors, readMaxBytes: opts.maxBodyBytes, compressions }));
    }
  }
  const paths = new Map<string, { handler: UniversalHandler; unary: ConnectUnaryServer | undefined }>();
  for (const handler of router.handlers) paths.set(handler.requestPath, { handler: deferParsing(handler, opts.maxBodyBytes, compressions), unary: unary.get(handler.method) });

  return (req, res) => {
    const route = paths.get((req.url ?? "").split("?", 1)[0]!);
    if (!route) {
      firstHandled(opts.otherRoutes, req, res).then(
        (handled) => handled || sendJson(req, res, 404, httpError(404, Code.NotFound, "no such route").body),
        (err: unknown) => {
          opts.logger.error({ err, path: req.url }, "route failed");
          sendJson(req, res, 500, httpError(500, Code.Internal, "internal error").body);
        },
      );
      return;
    }
    const { handler } = route;
    // connect's own handler, for what connectUnary leaves to it (with the body it read, if it did).
    const toConnect = (body?: AsyncIterable<Uint8Array>) => {
      const uReq = universalRequestFromNodeRequest(req as never, res as never, undefined, undefined);
      handler(body ? { ...uReq, body } : uReq)
        .then((uRes) => universalResponseToNodeResponse(uRes, res as never))
        .catch((reason: unknown) => {
          // The client went away (aborted); anything else is a bug worth a log line.
          if (ConnectError.from(reason).code !== Code.Aborted) opts.logger.error({ err: reason, procedure: handler.requestPath }, "rpc handler failed");
        });
    };
    if (!route.unary?.(req, res, toConnect)) toConnect();
  };
}

async function firstHandled(routes: readonly PlainRoute[], ...args: Parameters<PlainRoute>): Promise<boolean> {
  for (const route of routes) if (await route(...args)) return true;
  return false;
}
