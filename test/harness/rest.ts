import { TOKEN } from "./daemon.js";

export interface RestAnswer {
  status: number;
  headers: Headers;
  /** The parsed JSON body; undefined when the body was empty. */
  json: any;
  text: string;
}

export interface RestOptions {
  /** Sent as JSON (objects) or as is (strings). */
  body?: unknown;
  headers?: Record<string, string>;
  /** null: no Authorization header. */
  token?: string | null;
}

/** A plain HTTP call as curl would make it: JSON in, JSON out. */
export async function rest(baseUrl: string, method: string, path: string, opts: RestOptions = {}): Promise<RestAnswer> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.authorization ??= `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(baseUrl + path, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  // Every answer but the web console's page (HTML at /) is JSON.
  const json = text !== "" && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : undefined;
  return { status: res.status, headers: res.headers, text, json };
}
