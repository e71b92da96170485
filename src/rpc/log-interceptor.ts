import { randomUUID } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { principalKey, requestIdKey } from "../auth/principal.js";

const REQUEST_ID = "x-request-id";
const clientRequestId = /^[\w.:-]{1,128}$/;

/**
 * Logs one line per call with its request id (the client's X-Request-Id when
 * it sent a sane one), procedure, outcome and duration, and echoes the id.
 * Must run outermost, after errors have become ConnectErrors.
 */
export function logInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const given = req.header.get(REQUEST_ID);
    const requestId = given && clientRequestId.test(given) ? given : randomUUID();
    req.contextValues.set(requestIdKey, requestId);
    const procedure = `/${req.service.typeName}/${req.method.name}`;
    // REST calls reach the same procedure under their own path; log it too.
    const path = pathOf(req.url);
    const fields = { requestId, procedure, method: req.requestMethod, ...(path === procedure ? {} : { path }) };
    try {
      const res = await next(req);
      res.header.set(REQUEST_ID, requestId);
      logger.info({ ...fields, key: req.contextValues.get(principalKey)?.keyId, code: "ok", ms: elapsed(started) }, "rpc");
      return res;
    } catch (err) {
      const ce = ConnectError.from(err);
      ce.metadata.set(REQUEST_ID, requestId);
      const line = { ...fields, key: req.contextValues.get(principalKey)?.keyId, code: Code[ce.code], ms: elapsed(started) };
      if (ce.code === Code.Internal || ce.code === Code.Unknown) logger.error({ ...line, err: ce.cause ?? ce }, "rpc failed");
      else logger.info({ ...line, message: ce.rawMessage }, "rpc");
      throw ce;
    }
  };
}

/** The path of a full URL (Connect, gRPC) or of a path-and-query (REST), without parsing a URL on every call. */
function pathOf(url: string): string {
  const start = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const end = url.indexOf("?", start);
  return url.slice(start, end < 0 ? undefined : end);
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 100) / 100;
