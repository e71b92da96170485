import type { Interceptor, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AdminService } from "../../gen/dynroute/v1/admin_pb.js";
import { MappingService } from "../../gen/dynroute/v1/mapping_pb.js";
import type { PlainRequest, PlainResponse, RequestHandler } from "./listener.js";

export interface RpcHandlerOptions {
  mappingService: ServiceImpl<typeof MappingService>;
  adminService: ServiceImpl<typeof AdminService>;
  interceptors: Interceptor[];
  maxBodyBytes: number;
  /** Paths that are not RPCs; answers true when it handled the request. */
  otherRoutes: (req: PlainRequest, res: PlainResponse) => Promise<boolean>;
}

/** Connect, gRPC and gRPC-Web for every service; other paths go to otherRoutes, else a JSON 404. */
export function createRpcHandler(opts: RpcHandlerOptions): RequestHandler {
  return connectNodeAdapter({
    routes: (router) => {
      router.service(MappingService, opts.mappingService);
      router.service(AdminService, opts.adminService);
    },
    interceptors: opts.interceptors,
    readMaxBytes: opts.maxBodyBytes,
    fallback(req, res) {
      opts.otherRoutes(req, res).then(
        (handled) => handled || notFound(res),
        () => notFound(res, 500),
      );
    },
  }) as RequestHandler;
}

function notFound(res: PlainResponse, status = 404): void {
  const body = JSON.stringify(status === 404 ? { code: "not_found", message: "no such route" } : { code: "internal", message: "internal error" });
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
