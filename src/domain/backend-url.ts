import { inputError } from "./errors.js";

/**
 * Checks what the proto's backend rule (an http/https URL without userinfo,
 * query or fragment) leaves open: that the URL parses, names a host, and has
 * a port in 1-65535. Backends are stored exactly as given.
 */
export function checkBackends(backends: readonly string[], field: string): void {
  backends.forEach((backend, i) => {
    let url: URL;
    try {
      url = new URL(backend);
    } catch {
      throw inputError(`${field}[${i}]`, "backend.http_url", `"${backend}" is not a valid URL`);
    }
    if (url.hostname === "") throw inputError(`${field}[${i}]`, "backend.http_url", "must name a host");
    if (url.port === "0") throw inputError(`${field}[${i}]`, "backend.http_url", "port must be 1-65535");
  });
}
