import { toJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, type Interceptor, type ServiceImplSpec } from "@connectrpc/connect";
import { inputError } from "../domain/errors.js";
import { invokeUnary, type UnaryImplSpec } from "../rpc/invoke-unary.js";
import { sendJson } from "../server/json-response.js";
import type { PlainRequest, PlainResponse, PlainRoute } from "../server/listener.js";
import { errorAnswer, httpError, type ErrorAnswer } from "./error-body.js";
import type { FieldPath, HttpRoute } from "./http-routes.js";
import { expandPath, matchPath } from "./path-template.js";
import { decodeRequest } from "./request-decoder.js";

export interface RestGatewayOptions {
  /** The bindings to serve (see httpRoutes) and the implementations of their methods. */
  routes: readonly HttpRoute[];
  services: readonly ServiceImplSpec[];
  /** Run on every call before its request is decoded: logging, error mapping, auth. */
  callInterceptors: Interceptor[];
  /** Run once the request message exists: validation. */
  messageInterceptors: Interceptor[];
  maxBodyBytes: number;
}

// REST answers are written only after the handler resolves, and no handler
// watches for cancellation, so one signal that never fires serves every call.
const NEVER_ABORTED = new AbortController().signal;
// Field names as in the proto (tenant_id, create_time), like the original API; input takes either form.
const jsonOut = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

/**
 * Serves every google.api.http binding of the given services as plain JSON
 * over HTTP, through the same interceptors as Connect and gRPC calls. Answers
 * false for paths no binding matches.
 */
export function createRestGateway(opts: RestGatewayOptions): PlainRoute {
  const { routes } = opts;
  const specs = new Map<HttpRoute["method"], UnaryImplSpec>();
  for (const { methods } of opts.services) for (const spec of Object.values(methods)) if (spec.kind === "unary") specs.set(spec.method, spec);

  return async (req, res) => {
    // Split by hand: URL parsing costs more than the rest of routing (measured), and routes want the raw path.
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const url = { pathname: q < 0 ? target : target.slice(0, q), searchParams: new URLSearchParams(q < 0 ? "" : target.slice(q + 1)), target };
    let matches: Array<{ route: HttpRoute; vars: Map<string, string> }>;
    try {
      matches = routes.flatMap((route) => {
        const vars = matchPath(route.template, url.pathname);
        return vars ? [{ route, vars }] : [];
      });
    } catch {
      send(req, res, httpError(400, Code.InvalidArgument, "the path has malformed percent-encoding"));
      return true;
    }
    if (matches.length === 0) return false;

    const allowed = [...new Set(matches.flatMap(({ route }) => (route.httpMethod === "GET" ? ["GET", "HEAD"] : [route.httpMethod])))];
    const method = req.method ?? "GET";
    if (method === "OPTIONS") {
      res.writeHead(204, { allow: [...allowed, "OPTIONS"].join(", ") });
      res.end();
      return true;
    }
    const match = matches.find(({ route }) => route.httpMethod === (method === "HEAD" ? "GET" : method));
    if (!match) {
      send(req, res, httpError(405, Code.Unimplemented, `${method} is not allowed here; use ${allowed.join(", ")}`, { allow: [...allowed, "OPTIONS"].join(", ") }));
      return true;
    }
    const spec = specs.get(match.route.method);
    if (!spec) return false;

    const answer = await serve(match.route, spec, match.vars, url, req, opts).catch((err: unknown) => errorAnswer(err));
    send(req, res, answer);
    return true;
  };
}

interface RequestTarget {
  pathname: string;
  searchParams: URLSearchParams;
  /** Path and query as the client sent them. */
  target: string;
}

type Answer = ErrorAnswer | { status: number; headers: Headers; body: JsonValue | undefined };

async function serve(route: HttpRoute, spec: UnaryImplSpec, vars: Map<string, string>, url: RequestTarget, req: PlainRequest, opts: RestGatewayOptions): Promise<Answer> {
  let rawBody: string | undefined;
  if (route.body) {
    const type = req.headers["content-type"];
    if (type !== undefined && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
      return httpError(415, Code.InvalidArgument, `content type ${type} is not supported; send Content-Type: application/json`);
    }
    const body = await readBody(req, opts.maxBodyBytes);
    if (body === "too large") {
      return httpError(413, Code.ResourceExhausted, `the request body is larger than ${opts.maxBodyBytes} bytes`, { connection: "close" });
    }
    rawBody = body.length === 0 ? undefined : body.toString("utf8");
  }
  const ifMatch = route.ifMatchField ? req.headers["if-match"] : undefined;

  // Decoding runs after auth, so callers without a token learn nothing about the request's shape.
  const decode: Interceptor = (next) => (call) =>
    next({
      ...call,
      message: decodeRequest(route, { vars, query: url.searchParams, body: parseJson(rawBody), ifMatch: revisionFromIfMatch(ifMatch) }),
    } as typeof call);

  const header = new Headers();
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !name.startsWith(":")) header.set(name, Array.isArray(value) ? value.join(", ") : value);
  let res;
  try {
    res = await invokeUnary(spec, [...opts.callInterceptors, decode, ...opts.messageInterceptors], {
      protocolName: "rest",
      requestMethod: req.method ?? "GET",
      url: url.target,
      header,
      signal: NEVER_ABORTED,
    });
  } catch (err) {
    return errorAnswer(err, ifMatch !== undefined && ifMatch !== "*");
  }

  const headers = res.header;
  const etag = route.etagField && `"${String(valueAt(res.message, route.etagField))}"`;
  if (etag) headers.set("etag", etag);
  if (route.httpMethod === "GET" && etag && req.headers["if-none-match"]?.split(/\s*,\s*/).some((t) => t === etag || t === `W/${etag}` || t === "*")) {
    return { status: 304, headers, body: undefined };
  }
  if (route.method.output.fields.length === 0) return { status: 204, headers, body: undefined };
  const body = route.responseBody
    ? toJson(route.responseBody.message!, valueAt(res.message, [route.responseBody]) as never, jsonOut)
    : toJson(route.method.output, res.message, jsonOut);
  if (route.createdLocation) {
    const { template, fields } = route.createdLocation;
    const message = res.message;
    headers.set("location", expandPath(template, (variable) => String(valueAt(message, fields.get(variable)!))));
    return { status: 201, headers, body };
  }
  return { status: 200, headers, body };
}

function parseJson(text: string | undefined): JsonValue | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw inputError("body", "json.syntax", `is not valid JSON: ${(err as Error).message}`);
  }
}

/** `"17"` or `W/"17"` → "17"; `*` matches any existing state, so it sets nothing. */
function revisionFromIfMatch(value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === "*") return undefined;
  const m = /^\s*(?:W\/)?"(\d{1,20})"\s*$/.exec(value);
  if (!m) throw inputError("If-Match", "if_match.etag", 'must be one ETag from this API, e.g. "17"');
  return m[1]!;
}

function valueAt(message: object, path: FieldPath): unknown {
  let value: unknown = message;
  for (const field of path) value = (value as Record<string, unknown> | undefined)?.[field.localName];
  return value;
}

async function readBody(req: PlainRequest, limit: number): Promise<Buffer | "too large"> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) return "too large";
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return "too large";
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(req: PlainRequest, res: PlainResponse, answer: Answer): void {
  const headers: Record<string, string> = {};
  answer.headers.forEach((value, name) => (headers[name] = value));
  if (answer.body === undefined) {
    res.writeHead(answer.status, headers);
    res.end();
    return;
  }
  sendJson(req, res, answer.status, answer.body, headers);
}
