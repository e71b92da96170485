import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { TOKEN, type Protocol } from "./daemon.js";

export interface RawAnswer {
  /** The HTTP status. */
  status: number;
  /** The RPC outcome, from the Connect error body or the gRPC status. */
  code: Code | "ok";
  message: string;
}

export interface RawCall {
  protocol: Protocol;
  /** e.g. "/dynroute.v1.MappingService/CreateMapping" */
  path: string;
  /** The serialized request message, sent as is (framed for gRPC and gRPC-Web). */
  message: Uint8Array;
  json?: boolean;
  gzip?: boolean;
  /** null: no Authorization header. */
  token?: string | null;
}

/**
 * One unary RPC with hand-made bytes, for requests a generated client would
 * never send (malformed messages). gRPC goes over h2c, the others over HTTP/1.1.
 */
export async function rawRpc(baseUrl: string, call: RawCall): Promise<RawAnswer> {
  const token = call.token === undefined ? TOKEN : call.token;
  const codec = call.json ? "json" : "proto";
  const payload = call.gzip ? gzipSync(call.message) : call.message;
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  if (call.protocol === "connect") {
    if (call.gzip) headers["content-encoding"] = "gzip";
    const res = await fetch(baseUrl + call.path, { method: "POST", headers: { ...headers, "content-type": `application/${codec}` }, body: payload });
    const text = await res.text();
    if (res.status === 200) return { status: 200, code: "ok", message: "" };
    const body = JSON.parse(text) as { code: string; message?: string };
    return { status: res.status, code: codeFromString(body.code) ?? Code.Unknown, message: body.message ?? "" };
  }
  const framed = Buffer.concat([Buffer.from([call.gzip ? 1 : 0]), u32(payload.length), payload]);
  if (call.gzip) headers["grpc-encoding"] = "gzip";
  if (call.protocol === "grpcweb") {
    const res = await fetch(baseUrl + call.path, { method: "POST", headers: { ...headers, "content-type": `application/grpc-web+${codec}` }, body: framed });
    const body = Buffer.from(await res.arrayBuffer());
    const trailer = new Headers(res.headers);
    // Trailers arrive in the headers (trailers-only) or as the last frame, flagged 0x80.
    for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1)) {
      if (body[at]! & 0x80) for (const line of body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1)).toString().split("\r\n")) if (line.includes(":")) trailer.set(line.slice(0, line.indexOf(":")).trim(), line.slice(line.indexOf(":") + 1).trim());
    }
    return grpcAnswer(res.status, trailer.get("grpc-status"), trailer.get("grpc-message"));
  }
  return new Promise<RawAnswer>((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": call.path, "content-type": `application/grpc+${codec}`, te: "trailers", ...headers });
    let status = 0;
    let grpc: { status?: string; message?: string } = {};
    req.on("response", (h) => {
      status = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) grpc = { status: String(h["grpc-status"]), message: String(h["grpc-message"] ?? "") };
    });
    req.on("trailers", (t) => (grpc = { status: String(t["grpc-status"]), message: String(t["grpc-message"] ?? "") }));
    req.on("data", () => undefined);
    req.on("end", () => {
      session.close();
      resolve(grpcAnswer(status, grpc.status ?? null, grpc.message ?? null));
    });
    req.on("error", reject);
    req.end(framed);
  });
}

function grpcAnswer(status: number, grpcStatus: string | null, message: string | null): RawAnswer {
  const n = Number(grpcStatus ?? Code.Unknown);
  return { status, code: n === 0 ? "ok" : (n as Code), message: decodeURIComponent(message ?? "") };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
