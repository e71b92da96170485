import type http from "node:http";

/** A request's headers as the interceptors read them (HTTP/2 pseudo-headers left out). */
export function webHeaders(incoming: http.IncomingHttpHeaders): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(incoming)) if (value !== undefined && !name.startsWith(":")) header.set(name, Array.isArray(value) ? value.join(", ") : value);
  return header;
}

/** Response headers as node:http writes them. */
export function nodeHeaders(header: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  header.forEach((value, name) => (out[name] = value));
  return out;
}
