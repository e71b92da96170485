import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ServiceImpl } from "@connectrpc/connect";
import { MappingService } from "../../gen/dynroute/v1/mapping_pb.js";
import type { RequestHandler } from "./listener.js";

export interface RpcHandlerOptions {
  mappingService: ServiceImpl<typeof MappingService>;
  interceptors: Interceptor[];
  maxBodyBytes: number;
}

/** Connect, gRPC and gRPC-Web for every service; anything else is a JSON 404. */
export function createRpcHandler(opts: RpcHandlerOptions): RequestHandler {
  return connectNodeAdapter({
    routes: (router) => router.service(MappingService, opts.mappingService),
    interceptors: opts.interceptors,
    readMaxBytes: opts.maxBodyBytes,
    fallback(_req, res) {
      const body = JSON.stringify({ code: "not_found", message: "no such route" });
      res.writeHead(404, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
      res.end(body);
    },
  }) as RequestHandler;
}
