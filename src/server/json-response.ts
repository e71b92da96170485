import type { PlainRequest, PlainResponse } from "./listener.js";

/** Writes a JSON answer, as every non-RPC route answers: UTF-8 JSON with its length, no body for HEAD. */
export function sendJson(req: PlainRequest, res: PlainResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  if (req.method === "HEAD") res.end();
  else res.end(text);
}
