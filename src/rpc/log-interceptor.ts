import { randomUUID } from "node:crypto";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { principalKey, requestIdKey } from "../auth/principal.js";

const REQUEST_ID = "x-request-id";
const clientRequestId = /^[\w.:-]{1,128}$/;
// The line's own fields name no credential (the logger's redact paths: token, tokens, *.authorization,
// *.x-api-key), so its lines skip redaction, which cost more than the rest of the line (measured).
const NO_REDACTION = { redact: { paths: [] } };

/**
 * Logs one line per call with its request id (the client's X-Request-Id when
 * it sent a sane one), procedure, outcome and duration, and echoes the id.
 * Must run outermost, after errors have become ConnectErrors.
 */
export function logInterceptor(logger: Logger): Interceptor {
  // The fields a procedure's lines share, serialised once as child bindings, per procedure and HTTP method.
  const lines = new Map<DescMethod, Map<string, Logger>>();
  const lineLogger = (method: DescMethod, requestMethod: string) => {
    let byVerb = lines.get(method);
    if (!byVerb) lines.set(method, (byVerb = new Map()));
    let found = byVerb.get(requestMethod);
    if (!found) byVerb.set(requestMethod, (found = logger.child({ procedure: procedureOf(method), method: requestMethod }, NO_REDACTION)));
    return found;
  };
  return (next) => async (req) => {
    const started = performance.now();
    const given = req.header.get(REQUEST_ID);
    const requestId = given && clientRequestId.test(given) ? given : randomUUID();
    req.contextValues.set(requestIdKey, requestId);
    // REST calls reach the same procedure under their own path; log it too.
    const path = pathOf(req.url);
    const logged = path === procedureOf(req.method) ? undefined : path;
    try {
      const res = await next(req);
      res.header.set(REQUEST_ID, requestId);
      lineLogger(req.method, req.requestMethod).info({ requestId, path: logged, key: req.contextValues.get(principalKey)?.keyId, code: "ok", ms: elapsed(started) }, "rpc");
      return res;
    } catch (err) {
      const ce = ConnectError.from(err);
      ce.metadata.set(REQUEST_ID, requestId);
      const line = { requestId, path: logged, key: req.contextValues.get(principalKey)?.keyId, code: Code[ce.code], ms: elapsed(started) };
      if (ce.code === Code.Internal || ce.code === Code.Unknown) {
        logger.error({ ...line, procedure: procedureOf(req.method), method: req.requestMethod, err: ce.cause ?? ce }, "rpc failed");
      } else lineLogger(req.method, req.requestMethod).info({ ...line, message: ce.rawMessage }, "rpc");
      throw ce;
    }
  };
}

const procedures = new WeakMap<DescMethod, string>();
function procedureOf(method: DescMethod): string {
  let found = procedures.get(method);
  if (found === undefined) procedures.set(method, (found = `/${method.parent.typeName}/${method.name}`));
  return found;
}

/** The path of a full URL (Connect, gRPC) or of a path-and-query (REST), without parsing a URL on every call. */
function pathOf(url: string): string {
  const start = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const end = url.indexOf("?", start);
  return url.slice(start, end < 0 ? undefined : end);
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 100) / 100;
