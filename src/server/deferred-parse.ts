import { fromBinary, fromJsonString, type DescMessage, type Message } from "@bufbuild/protobuf";
import { createContextKey, createContextValues, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { compressedFlag, encodeEnvelope, type Compression, type UniversalHandler, type UniversalServerRequest } from "@connectrpc/connect/protocol";
import { inputError } from "../domain/errors.js";

/** A unary request's message as deferParsing read it: parsed, or why it did not parse. */
const parsed = createContextKey<{ message: Message } | { failure: string } | undefined>(undefined, { description: "dynroute request message" });

// Enveloped protocols frame each message as 1 flag byte + 4 length bytes (gRPC, gRPC-Web).
const ENVELOPE_HEADER = 5;
const EMPTY_JSON = new TextEncoder().encode("{}");
// What connect gets instead of a body read here: an empty message, in the request's framing.
const EMPTY = {
  connect: { json: EMPTY_JSON, binary: new Uint8Array(0) },
  grpc: { json: encodeEnvelope(0, EMPTY_JSON), binary: encodeEnvelope(0, new Uint8Array(0)) },
};
const utf8 = new TextDecoder();
const GRPC_TYPE = /^application\/grpc(-web)?(?:\+(?:(json)(?:; ?charset=utf-?8)?|proto))?$/i;
const CONNECT_UNARY_TYPE = /^application\/(?:(json)(?:; ?charset=utf-?8)?|proto)$/i;

/**
 * connect parses a request message before any interceptor runs, so a
 * malformed one was answered before authentication (binary as "internal").
 * This handler reads a unary request's body first and parses it the way
 * connect would; connect then gets an empty message in the request's own
 * framing (nothing to parse twice), and decodeInterceptor, placed after
 * auth, puts the parsed message in, or answers invalid_argument for one that
 * did not parse, logged and counted like any other call. Anything it cannot
 * read (framing, unknown compression, a body over the limit) goes on
 * untouched for connect to answer, and so do Connect GET requests (the
 * message in the query; only for methods marked NO_SIDE_EFFECTS, none yet).
 */
export function deferParsing(handler: UniversalHandler, readMaxBytes: number, compressions: readonly Compression[]): UniversalHandler {
  if (handler.method.methodKind !== "unary") return handler;
  const input = handler.method.input;
  const wrapped = async (req: UniversalServerRequest) => {
    const type = req.header.get("content-type") ?? "";
    const grpc = GRPC_TYPE.exec(type);
    const connect = grpc ? null : CONNECT_UNARY_TYPE.exec(type);
    if (req.method !== "POST" || (!grpc && !connect) || !isByteStream(req.body)) return handler(req);
    const json = Boolean(grpc ? grpc[2] : connect![1]);
    const read = await readUpTo(req.body, readMaxBytes + ENVELOPE_HEADER);
    const untouched = () => handler({ ...req, body: read.replay() });
    if (!read.complete) return untouched();

    let payload = read.bytes;
    let compressed = false;
    if (grpc) {
      const length = payload.length >= ENVELOPE_HEADER ? new DataView(payload.buffer, payload.byteOffset).getUint32(1) : -1;
      if (length !== payload.length - ENVELOPE_HEADER || (payload[0]! & ~compressedFlag) !== 0) return untouched();
      compressed = (payload[0]! & compressedFlag) !== 0;
      payload = payload.subarray(ENVELOPE_HEADER);
    } else {
      compressed = (req.header.get("content-encoding") ?? "identity") !== "identity";
    }
    if (payload.length > readMaxBytes) return untouched();
    if (compressed) {
      const name = req.header.get(grpc ? "grpc-encoding" : "content-encoding");
      const compression = compressions.find((c) => c.name === name);
      if (!compression) return untouched();
      try {
        payload = await compression.decompress(payload, readMaxBytes);
      } catch {
        return untouched();
      }
    }

    const contextValues = req.contextValues ?? createContextValues();
    deferMessage(contextValues, input, payload, json);
    // An empty message in the request's own framing, uncompressed.
    const body = EMPTY[grpc ? "grpc" : "connect"][json ? "json" : "binary"];
    if (compressed && !grpc) req.header.delete("content-encoding");
    if (req.header.get("content-length") !== null) req.header.set("content-length", String(body.length));
    return handler({ ...req, contextValues, body: single(body) });
  };
  return Object.assign(wrapped, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

/** Parses a request message as connect would and keeps it (or why it did not parse) for decodeInterceptor. */
export function deferMessage(values: ContextValues, schema: DescMessage, bytes: Uint8Array, json: boolean): void {
  values.set(parsed, parse(schema, bytes, json));
}

/** Hands the handler the message deferParsing read, or answers why it did not parse; place it after authentication. */
export function decodeInterceptor(): Interceptor {
  return (next) => (req) => {
    const result = req.stream ? undefined : req.contextValues.get(parsed);
    if (result === undefined) return next(req);
    if ("failure" in result) throw inputError("body", "body.parse", result.failure);
    return next({ ...req, message: result.message } as typeof req);
  };
}

const JSON_OPTIONS = { ignoreUnknownFields: true };

/** Parses as connect does (binary; JSON ignoring unknown fields). */
function parse(schema: DescMessage, bytes: Uint8Array, json: boolean): { message: Message } | { failure: string } {
  try {
    return { message: json ? fromJsonString(schema, utf8.decode(bytes), JSON_OPTIONS) : fromBinary(schema, bytes) };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { failure: `is not a valid ${schema.typeName} in the protobuf ${json ? "JSON" : "binary"} format: ${reason}` };
  }
}

const isByteStream = (body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> =>
  typeof body === "object" && body !== null && Symbol.asyncIterator in body;

/**
 * Reads a body up to `limit` bytes. `replay()` yields everything read, then
 * the rest of the stream (or the error reading it failed with), so the
 * handler sees the body as sent either way.
 */
export async function readUpTo(body: AsyncIterable<Uint8Array>, limit: number): Promise<{ complete: boolean; bytes: Uint8Array; replay: () => AsyncIterable<Uint8Array> }> {
  const it = body[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let complete = false;
  let failure: { error: unknown } | undefined;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        complete = true;
        break;
      }
      chunks.push(r.value);
      size += r.value.length;
      if (size > limit) break;
    }
  } catch (error) {
    failure = { error };
  }
  const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const replay = async function* () {
    yield bytes;
    if (failure) throw failure.error;
    if (!complete) for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  };
  return { complete, bytes, replay };
}

function single(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      yield bytes;
    },
  };
}
