import { toBinary } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createContextValues, type Interceptor } from "@connectrpc/connect";
import { compressionNegotiate, validateReadWriteMaxBytes, type Compression } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, contentTypeUnaryJson, contentTypeUnaryProto, contentTypeUnaryRegExp, errorToJsonBytes, trailerMux } from "@connectrpc/connect/protocol-connect";
import type http from "node:http";
import type http2 from "node:http2";
import { unaryInvoker, type UnaryImplSpec } from "../rpc/invoke-unary.js";
import { jsonWriter } from "../rpc/json-writer.js";
import { deferMessage, readUpTo } from "./deferred-parse.js";
import { nodeHeaders, webHeaders } from "./web-headers.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface ConnectUnaryOptions {
  /** The whole chain, as connect's router runs it (decodeInterceptor included). */
  interceptors: Interceptor[];
  readMaxBytes: number;
  /** Response compressions, as offered to connect. */
  compressions: readonly Compression[];
}

/**
 * Serves a call, or answers false for connect's handler to take it; `fallback` hands connect a
 * request whose body this already read (what it read, then the rest).
 */
export type ConnectUnaryServer = (req: NodeRequest, res: NodeResponse, fallback: (body: AsyncIterable<Uint8Array>) => void) => boolean;

const utf8 = new TextEncoder();

/**
 * The Connect protocol's unary calls in their common forms: a POST of an uncompressed JSON or binary
 * message, or a GET with the message in the query (side-effect-free methods), without a timeout.
 * They run through the same interceptors as in connect's handler and get the same answers (status,
 * headers, trailers as `trailer-` headers, error JSON, response compression), without its per-call
 * machinery: connect parses the URL twice, makes three AbortControllers and two DOMExceptions, copies
 * the headers four times and passes one message through async iterables (measured: about a third of
 * a GetMapping's CPU). Anything else (compressed or timed requests, gRPC, gRPC-Web, other methods,
 * an oversized body) is left to connect.
 */
export function connectUnary(spec: UnaryImplSpec, opts: ConnectUnaryOptions): ConnectUnaryServer {
  const { input, output, idempotency } = spec.method;
  const getAllowed = idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
  const { compressMinBytes } = validateReadWriteMaxBytes(opts.readMaxBytes, undefined, undefined);
  const compressions = [...opts.compressions];
  // connect writes JSON answers with protobuf-es's toJsonString and its default options.
  const writeJson = jsonWriter(output);
  const invoke = unaryInvoker(spec, opts.interceptors);

  /** Answers the call whose message `read` yields; undefined: the request went to connect after all. */
  async function serve(req: NodeRequest, res: NodeResponse, read: () => Promise<Uint8Array | undefined>, binary: boolean) {
    let status = 200;
    let header: Headers;
    let body: Uint8Array;
    try {
      const bytes = await read();
      if (bytes === undefined) return;
      const contextValues = createContextValues();
      deferMessage(contextValues, input, bytes, !binary);
      const answer = await invoke({
        protocolName: "connect",
        requestMethod: req.method!,
        url: req.url!,
        header: webHeaders(req.headers),
        contextValues,
      });
      body = binary ? toBinary(output, answer.message) : utf8.encode(writeJson(answer.message));
      answer.header.set("content-type", binary ? contentTypeUnaryProto : contentTypeUnaryJson);
      header = trailerMux(answer.header, answer.trailer);
    } catch (e) {
      const error = e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
      status = codeToHttpStatus(error.code);
      header = new Headers(error.metadata);
      header.set("content-type", contentTypeUnaryJson);
      body = errorToJsonBytes(error, undefined);
    }
    const compression = compressionNegotiate(compressions, null, headerValue(req.headers["accept-encoding"]), "Accept-Encoding").response;
    if (compression && body.byteLength >= compressMinBytes) {
      body = await compression.compress(body);
      header.set("content-encoding", compression.name);
    }
    header.set("content-length", String(body.byteLength));
    res.writeHead(status, nodeHeaders(header));
    res.end(body);
  }

  return (req, res, fallback) => {
    const type = req.headers["content-type"];
    if (req.headers["connect-timeout-ms"] !== undefined || (type !== undefined && !contentTypeUnaryRegExp.test(type))) return false;
    const failed = (err: unknown) => res.destroy(err as Error);
    if (req.method === "POST" && type !== undefined) {
      const encoding = req.headers["content-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      const read = async () => {
        const body = await readUpTo(req as AsyncIterable<Uint8Array>, opts.readMaxBytes);
        if (body.complete && body.bytes.length <= opts.readMaxBytes) return body.bytes;
        fallback(body.replay());
        return undefined;
      };
      serve(req, res, read, !/json/i.test(type)).catch(failed);
      return true;
    }
    if (req.method === "GET" && getAllowed) {
      const url = req.url!;
      const q = url.indexOf("?");
      const query = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
      const encoding = query.get("encoding");
      const compression = query.get("compression");
      if ((encoding !== "json" && encoding !== "proto") || (compression !== null && compression !== "identity")) return false;
      // connect decodes the same way: base64 (either alphabet) when asked, else the text as UTF-8.
      const read = async () => (query.get("base64") === "1" ? base64Decode(query.get("message") ?? "") : utf8.encode(query.get("message") ?? ""));
      serve(req, res, read, encoding === "proto").catch(failed);
      return true;
    }
    return false;
  };
}

const headerValue = (value: string | string[] | undefined) => (value === undefined ? null : Array.isArray(value) ? value.join(", ") : value);
