import type { JsonValue, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, createContextValues, type Interceptor, type ServiceImplSpec, type UnaryResponse } from "@connectrpc/connect";
import { inputError } from "../domain/errors.js";
import { unaryInvoker, type InProcessCall } from "../rpc/invoke-unary.js";
import { jsonWriter } from "../rpc/json-writer.js";
import { sendJson } from "../server/json-response.js";
import type { PlainRequest, PlainResponse, PlainRoute } from "../server/listener.js";
import { nodeHeaders, webHeaders } from "../server/web-headers.js";
import { noneMatch, parseEntityTags, strongRevisions, type EntityTag } from "./entity-tags.js";
import { errorAnswer, httpError, type ErrorAnswer } from "./error-body.js";
import type { FieldPath, HttpRoute } from "./http-routes.js";
import { expandPath } from "./path-template.js";
import { routeTable, type PathMatch } from "./route-table.js";
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

// Field names as in the proto (tenant_id, create_time), like the original API; input takes either form.
const jsonOut = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

/** Decodes a REST call's request message (see serve); the chain calls it after auth. */
const requestDecoderKey = createContextKey<(() => object) | undefined>(undefined, { description: "dynroute REST request decoder" });
const decodeInterceptor: Interceptor = (next) => (call) => next({ ...call, message: call.contextValues.get(requestDecoderKey)!() } as typeof call);

/** What serving a route needs, made once per route. */
interface RouteServer {
  route: HttpRoute;
  invoke: (call: InProcessCall) => Promise<UnaryResponse>;
  writeJson: (message: Message | undefined) => string;
}

/**
 * Serves every google.api.http binding of the given services as plain JSON
 * over HTTP, through the same interceptors as Connect and gRPC calls. Answers
 * false for paths no binding matches.
 */
export function createRestGateway(opts: RestGatewayOptions): PlainRoute {
  const lookup = routeTable(opts.routes);
  const interceptors = [...opts.callInterceptors, decodeInterceptor, ...opts.messageInterceptors];
  const invokers = new Map<HttpRoute["method"], RouteServer["invoke"]>();
  for (const { methods } of opts.services) for (const spec of Object.values(methods)) if (spec.kind === "unary") invokers.set(spec.method, unaryInvoker(spec, interceptors));
  const servers = new Map<HttpRoute, RouteServer>();
  for (const route of opts.routes) {
    const invoke = invokers.get(route.method);
    if (invoke) servers.set(route, { route, invoke, writeJson: jsonWriter(route.responseBody ? route.responseBody.message! : route.method.output, jsonOut) });
  }

  return async (req, res) => {
    // Split by hand: URL parsing costs more than the rest of routing (measured), and routes want the raw path.
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const url = { pathname: q < 0 ? target : target.slice(0, q), searchParams: new URLSearchParams(q < 0 ? "" : target.slice(q + 1)), target };
    let found: PathMatch | undefined;
    try {
      found = lookup(url.pathname);
    } catch {
      send(req, res, httpError(400, Code.InvalidArgument, "the path has malformed percent-encoding"));
      return true;
    }
    if (!found) return false;

    const method = req.method ?? "GET";
    if (method === "OPTIONS") {
      res.writeHead(204, { allow: [...found.allowed(), "OPTIONS"].join(", ") });
      res.end();
      return true;
    }
    const match = found.route(method);
    if (!match) {
      const allowed = found.allowed();
      send(req, res, httpError(405, Code.Unimplemented, `${method} is not allowed here; use ${allowed.join(", ")}`, { allow: [...allowed, "OPTIONS"].join(", ") }));
      return true;
    }
    const server = servers.get(match.route);
    if (!server) return false;

    const answer = await serve(server, match.vars, url, req, opts).catch((err: unknown) => errorAnswer(err));
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

/** An error, or a call's answer with its body already written as JSON text (none for 204 and 304). */
type Answer = ErrorAnswer | { status: number; headers: Headers; json: string | undefined };

async function serve({ route, invoke, writeJson }: RouteServer, vars: Map<string, string>, url: RequestTarget, req: PlainRequest, opts: RestGatewayOptions): Promise<Answer> {
  let rawBody: string | undefined;
  let mergePatch = false;
  if (route.body) {
    const type = req.headers["content-type"];
    if (type !== undefined && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
      return httpError(415, Code.InvalidArgument, `content type ${type} is not supported; send Content-Type: application/json`);
    }
    mergePatch = route.httpMethod === "PATCH" && type !== undefined && /^application\/merge-patch\+json\s*(;|$)/i.test(type);
    const body = await readBody(req, opts.maxBodyBytes);
    if (body === "too large") {
      return httpError(413, Code.ResourceExhausted, `the request body is larger than ${opts.maxBodyBytes} bytes`, { connection: "close" });
    }
    rawBody = body.length === 0 ? undefined : body.toString("utf8");
  }
  const conditions = readConditions(route, req.headers);
  const header = webHeaders(req.headers);
  let decoded: object | undefined;
  // Decoding runs after auth, so callers without a token learn nothing about the request's shape.
  const contextValues = createContextValues();
  contextValues.set(requestDecoderKey, () => {
    if (conditions.error) throw conditions.error;
    decoded = decodeRequest(route, { vars, query: url.searchParams, body: parseJson(rawBody), ifMatch: expectedRevision(route, conditions), mergePatch });
    return decoded;
  });
  let res;
  try {
    res = await invoke({ protocolName: "rest", requestMethod: req.method ?? "GET", url: url.target, header, contextValues });
  } catch (err) {
    return failedCall(ConnectError.from(err), route, conditions, decoded);
  }

  const headers = res.header;
  const etag = route.etagField && `"${String(valueAt(res.message, route.etagField))}"`;
  if (etag) headers.set("etag", etag);
  if (etag && conditions.ifNoneMatch !== undefined && !noneMatch(conditions.ifNoneMatch, etag)) return { status: 304, headers, json: undefined };
  if (route.method.output.fields.length === 0) return { status: 204, headers, json: undefined };
  const json = writeJson(route.responseBody ? (valueAt(res.message, [route.responseBody]) as Message | undefined) : res.message);
  if (route.createdLocation) {
    const { template, fields } = route.createdLocation;
    const message = res.message;
    headers.set("location", expandPath(template, (variable) => String(valueAt(message, fields.get(variable)!))));
    return { status: 201, headers, json };
  }
  return { status: 200, headers, json };
}

/**
 * The expected_revision If-Match and If-None-Match make: the newest revision
 * If-Match lists (a mapping's revisions only rise, so of the tags it issued
 * only the newest can be current), or one no mapping has when it lists only
 * tags this API never issued, or when If-None-Match: * asks for a write
 * where nothing exists yet.
 */
function expectedRevision(route: HttpRoute, conditions: Conditions): string | undefined {
  if (conditions.noneExists && route.ifMatchField) return NO_REVISION;
  if (conditions.ifMatch === undefined || conditions.ifMatch === "*") return undefined;
  return conditions.ifMatch.reduce<string>((newest, r) => (BigInt(r) > BigInt(newest) ? r : newest), NO_REVISION);
}

/**
 * The answer to a call that failed. With a precondition (If-Match,
 * If-None-Match, a body revision) FAILED_PRECONDITION is HTTP's 412; per
 * RFC 9110, If-Match: * fails on a missing resource and If-None-Match: * on
 * an existing one.
 */
function failedCall(ce: ConnectError, route: HttpRoute, conditions: Conditions, decoded: object | undefined): ErrorAnswer {
  const precondition = (message: string) => errorAnswer(new ConnectError(message, Code.FailedPrecondition, ce.metadata), true);
  if (ce.code === Code.NotFound && conditions.ifMatch === "*") return precondition(`${ce.rawMessage}; If-Match: * needs an existing one`);
  if (conditions.noneExists && conditions.ifMatch === undefined) {
    if (ce.code === Code.AlreadyExists && route.createdLocation) return precondition(`${ce.rawMessage}; If-None-Match: * creates only what does not exist yet`);
    if (ce.code === Code.FailedPrecondition) return precondition("it exists; If-None-Match: * allows this only where nothing does");
  }
  const bodyRevision = route.ifMatchBodyField && decoded && valueAt(decoded, route.ifMatchBodyField);
  return errorAnswer(ce, conditions.ifMatch !== undefined || conditions.noneExists === true || (typeof bodyRevision === "bigint" && bodyRevision !== 0n));
}

// No mapping has revision 0: the expected revision when If-Match names none this API could have issued.
const NO_REVISION = "0";

interface Conditions {
  /** A malformed header, answered after auth like any other request error. */
  error?: unknown;
  /** `*`, or the revisions If-Match can match (strong comparison). */
  ifMatch?: "*" | string[];
  /** If-None-Match on a GET with an ETag. */
  ifNoneMatch?: "*" | EntityTag[];
  /** If-None-Match: * on a write that creates or changes one resource: only if there is none. */
  noneExists?: boolean;
}

function readConditions(route: HttpRoute, headers: PlainRequest["headers"]): Conditions {
  const ifMatch = route.ifMatchField ? headers["if-match"] : undefined;
  const read = route.httpMethod === "GET";
  const ifNoneMatch = route.etagField && read ? headers["if-none-match"] : undefined;
  const writeIfNoneMatch = !read && (route.ifMatchField || route.createdLocation) ? headers["if-none-match"] : undefined;
  try {
    if (writeIfNoneMatch !== undefined && parseEntityTags(writeIfNoneMatch, "If-None-Match") !== "*") {
      // "Not this revision" cannot be one atomic write here; refusing beats ignoring a condition the client relies on.
      throw inputError("If-None-Match", "if_none_match.write", "on a write takes only *; to write only over a revision you know, send If-Match");
    }
    const tags = ifMatch === undefined ? undefined : parseEntityTags(ifMatch, "If-Match");
    const revisions = tags === undefined || tags === "*" ? tags : strongRevisions(tags);
    return {
      ...(revisions === undefined ? {} : { ifMatch: revisions }),
      ...(ifNoneMatch === undefined ? {} : { ifNoneMatch: parseEntityTags(ifNoneMatch, "If-None-Match") }),
      ...(writeIfNoneMatch === undefined ? {} : { noneExists: true }),
    };
  } catch (error) {
    return { error };
  }
}

function parseJson(text: string | undefined): JsonValue | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw inputError("body", "json.syntax", `is not valid JSON: ${(err as Error).message}`);
  }
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
  const headers = nodeHeaders(answer.headers);
  const json = "json" in answer ? answer.json : JSON.stringify(answer.body);
  if (json === undefined) {
    res.writeHead(answer.status, headers);
    res.end();
    return;
  }
  sendJson(req, res, answer.status, json, headers);
}
