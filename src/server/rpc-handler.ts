import type { Interceptor, ServiceImplSpec } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { sendJson } from "./json-response.js";
import type { PlainRoute, RequestHandler } from "./listener.js";

export interface RpcHandlerOptions {
  services: readonly ServiceImplSpec[];
  interceptors: Interceptor[];
  maxBodyBytes: number;
  /** Paths that are not RPCs, tried in order. */
  otherRoutes: readonly PlainRoute[];
}

/** Connect, gRPC and gRPC-Web for every service; other paths go to otherRoutes, else a JSON 404. */
export function createRpcHandler(opts: RpcHandlerOptions): RequestHandler {
  return connectNodeAdapter({
    routes: (router) => {
      for (const { methods } of opts.services) for (const spec of Object.values(methods)) router.rpc(spec.method, spec.impl);
    },
    interceptors: opts.interceptors,
    readMaxBytes: opts.maxBodyBytes,
    fallback(req, res) {
      firstHandled(opts.otherRoutes, req, res).then(
        (handled) => handled || sendJson(req, res, 404, { code: "not_found", message: "no such route", details: [] }),
        () => sendJson(req, res, 500, { code: "internal", message: "internal error", details: [] }),
      );
    },
  }) as RequestHandler;
}

async function firstHandled(routes: readonly PlainRoute[], ...args: Parameters<PlainRoute>): Promise<boolean> {
  for (const route of routes) if (await route(...args)) return true;
  return false;
}
