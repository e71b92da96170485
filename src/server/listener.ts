import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { once } from "node:events";
import type stream from "node:stream";
import { Code } from "@connectrpc/connect";
import { httpError } from "../gateway/error-body.js";
import { sendJson } from "./json-response.js";

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** The part of an HTTP/1 or HTTP/2 request that plain (non-RPC) routes read; iterating it reads the body. */
export interface PlainRequest extends AsyncIterable<unknown> {
  method?: string | undefined;
  url?: string | undefined;
  headers: http.IncomingHttpHeaders;
}

/** The part of an HTTP/1 or HTTP/2 response that plain (non-RPC) routes write. */
export interface PlainResponse {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(): unknown;
  end(body: string | Uint8Array): unknown;
}

/** A non-RPC route: answers true when it handled the request. */
export type PlainRoute = (req: PlainRequest, res: PlainResponse) => Promise<boolean>;

export interface ListenOptions {
  host: string;
  port: number;
  /** PEM contents; with TLS, ALPN picks h2 or http/1.1. */
  tls?: { cert: Buffer; key: Buffer };
}

export interface Listener {
  address: AddressInfo;
  /** Starts answering with `handler`; until then every request gets a JSON 503. */
  serve(handler: RequestHandler): void;
  /** Stops accepting, lets in-flight requests finish (up to timeoutMs), then closes every connection. */
  close(timeoutMs: number): Promise<void>;
}

// Every HTTP/2 connection with prior knowledge opens with "PRI * HTTP/2.0"; no HTTP/1 method starts with "PRI".
const H2_PREFACE_START = Buffer.from("PRI");

/**
 * Serves Connect, gRPC-Web (HTTP/1.1 or HTTP/2) and gRPC (HTTP/2) on one port.
 * Cleartext: the first bytes of each connection decide between HTTP/1.1 and
 * h2c. TLS: ALPN decides. Binds before there is a handler (see serve), so a
 * daemon can claim its port before it writes anything; a port that cannot be
 * bound rejects with the system error (EADDRINUSE, EACCES).
 */
export async function listen(opts: ListenOptions): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let inflight = 0;
  let draining = false;
  let drained: (() => void) | undefined;
  let handler: RequestHandler = (req, res) => sendJson(req, res, 503, httpError(503, Code.Unavailable, "the daemon is starting; retry shortly").body, { "retry-after": "1" });

  const tracked: RequestHandler = (req, res) => {
    inflight++;
    res.once("close", () => {
      if (--inflight === 0) drained?.();
    });
    if (draining && req.httpVersionMajor === 1) (res as http.ServerResponse).shouldKeepAlive = false;
    handler(req, res);
  };

  let server: net.Server;
  if (opts.tls) {
    const secure = http2.createSecureServer({ cert: opts.tls.cert, key: opts.tls.key, allowHTTP1: true }, tracked);
    secure.on("clientError", answerClientError);
    secure.on("session", (s) => trackSession(s, sessions));
    server = secure;
  } else {
    const h1 = http.createServer(tracked as http.RequestListener);
    h1.on("clientError", answerClientError);
    const h2 = http2.createServer(tracked);
    h2.on("session", (s) => trackSession(s, sessions));
    server = net.createServer((socket) => dispatchByPreface(socket, h1, h2));
  }
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.listen(opts.port, opts.host);
  await once(server, "listening");

  return {
    address: server.address() as AddressInfo,
    serve(h) {
      handler = h;
    },
    async close(timeoutMs) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.close();
      if (inflight > 0) {
        const idle = new Promise<void>((resolve) => (drained = resolve));
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
        clearTimeout(timer);
      }
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

// Node's HTTP/1 parser errors, by code: what the request did wrong, as the status says it.
const parserErrors: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, "the request headers are larger than the server accepts (16 KB)"],
  HPE_UNEXPECTED_CONTENT_LENGTH: [400, "the request has both Content-Length and Transfer-Encoding"],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "the request took too long to arrive"],
};

/**
 * A request Node's parser rejected never reaches a handler; answer it in the
 * API's JSON error shape (Node's own answer has no body) and close.
 */
function answerClientError(err: Error & { code?: string }, socket: stream.Duplex): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, message] = parserErrors[err.code ?? ""] ?? [400, `the request is not valid HTTP/1.1 (${err.code ?? "parse error"})`];
  const body = JSON.stringify(httpError(status, status === 431 ? Code.ResourceExhausted : status === 408 ? Code.DeadlineExceeded : Code.InvalidArgument, message).body);
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function trackSession(session: http2.ServerHttp2Session, sessions: Set<http2.ServerHttp2Session>): void {
  sessions.add(session);
  session.once("close", () => sessions.delete(session));
}

function dispatchByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let head = Buffer.alloc(0);
  const dispatch = () => {
    socket.off("readable", onReadable);
    socket.off("end", dispatch);
    socket.unshift(head);
    const target = head.subarray(0, H2_PREFACE_START.length).equals(H2_PREFACE_START) ? h2 : h1;
    target.emit("connection", socket);
  };
  const onReadable = () => {
    for (let chunk: Buffer | null; (chunk = socket.read()) !== null; ) head = Buffer.concat([head, chunk]);
    if (head.length >= H2_PREFACE_START.length) dispatch();
  };
  socket.on("readable", onReadable);
  socket.once("end", dispatch);
  socket.on("error", () => socket.destroy());
}
