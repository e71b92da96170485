import { inputError } from "./errors.js";

export interface BackendRules {
  /**
   * No path, not even "/" (DYNROUTE_COMPAT_FRONTEND): dynamicproxy routers
   * `proxy_pass` the URL, so nginx would replace the request's path with it.
   */
  pathless: boolean;
}

/**
 * Checks what the proto's backend rule (an http/https URL without userinfo,
 * query or fragment) leaves open: that the URL parses, names a host, and has
 * a port in 1-65535. Backends are stored exactly as given.
 */
export function checkBackends(backends: readonly string[], field: string, rules: BackendRules): void {
  backends.forEach((backend, i) => {
    let url: URL;
    try {
      url = new URL(backend);
    } catch {
      throw inputError(`${field}[${i}]`, "backend.http_url", `"${backend}" is not a valid URL`);
    }
    if (url.hostname === "") throw inputError(`${field}[${i}]`, "backend.http_url", "must name a host");
    if (url.port === "0") throw inputError(`${field}[${i}]`, "backend.http_url", "port must be 1-65535");
    if (rules.pathless && /^[a-z]+:\/\/[^/]*\//i.test(backend)) {
      throw inputError(`${field}[${i}]`, "backend.compat_path", "must not have a path (not even /) while DYNROUTE_COMPAT_FRONTEND is on: dynamicproxy routers would replace the request's path with it");
    }
  });
}
