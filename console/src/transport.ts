import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

/** The Connect transport to this daemon (same origin) that presents the key on every call. */
export function createApiTransport(key: string): Transport {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("Authorization", `Bearer ${key}`);
    return next(req);
  };
  return createConnectTransport({ baseUrl: window.location.origin, interceptors: [bearer] });
}
