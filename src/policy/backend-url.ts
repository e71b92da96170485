import { isIPv6 } from "node:net";
import ipaddr from "ipaddr.js";
import { elementOf, inputError, type FieldRef } from "../domain/errors.js";
import type { BackendPolicy } from "./backend-policy.js";

const authority = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(\d{1,5}))?$/;
const dottedQuad = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// What URL parsers read as an IPv4 address in some spelling: 127.1, 2130706433, 0x7f000001, 0177.0.0.1.
const numericLastLabel = /(^|\.)(\d+|0x[0-9a-f]*)$/;
const hostLabel = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** What a write's backends must satisfy besides the proto's rule. */
export interface BackendRules {
  /** Where IP-literal backends may point. */
  policy: BackendPolicy;
  /**
   * No path, not even "/" (DYNROUTE_COMPAT_FRONTEND): dynamicproxy routers
   * `proxy_pass` the URL, so nginx would replace the request's path with it.
   */
  pathless: boolean;
}

/**
 * Checks what the proto's backend rule (an http/https URL without userinfo,
 * query or fragment) leaves open and returns the backends in canonical form:
 * scheme and host in lower case, IPv6 compressed. A host must be a DNS name,
 * a dotted-quad IPv4 address or a bracketed IPv6 address: other spellings of
 * an address (127.1, 2130706433, 0x7f000001, a trailing dot) are refused,
 * because parsers disagree on them and they hide where a backend points.
 * IP literals must be allowed by the destination policy.
 */
export function canonicalBackends(backends: readonly string[], field: FieldRef, rules: BackendRules): string[] {
  const seen = new Set<string>();
  return backends.map((backend, i) => {
    const at = elementOf(field, i);
    const canonical = canonicalBackend(backend, at, rules.policy);
    if (rules.pathless && /^[a-z]+:\/\/[^/]*\//.test(canonical)) {
      throw inputError(at, "backend.compat_path", "must not have a path (not even /) while DYNROUTE_COMPAT_FRONTEND is on: dynamicproxy routers would replace the request's path with it");
    }
    if (seen.has(canonical)) throw inputError(at, "backend.unique", `"${backend}" is listed twice`);
    seen.add(canonical);
    return canonical;
  });
}

function canonicalBackend(backend: string, field: FieldRef, policy: BackendPolicy): string {
  const m = /^(https?):\/\/([^/?#]*)(\/[^?#]*)?$/i.exec(backend);
  if (!m) throw inputError(field, "backend.http_url", `"${backend}" is not an http:// or https:// URL`);
  const scheme = m[1]!.toLowerCase();
  const path = m[3] ?? "";
  const parts = authority.exec(m[2]!);
  if (!parts) throw inputError(field, "backend.host", `"${m[2]}" is not a host with an optional port`);
  const [, v6, name, port] = parts;
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) throw inputError(field, "backend.port", "port must be 1-65535");
  const portPart = port === undefined ? "" : `:${Number(port)}`;
  let host: string;
  let address: string | undefined;
  if (v6 !== undefined) {
    if (v6.includes("%") || !isIPv6(v6)) throw inputError(field, "backend.host", `"[${v6}]" is not an IPv6 address (zone ids are not allowed)`);
    // Parsers disagree on a dotted quad anywhere but after ::ffff: (ipaddr.js reads ::1.2.3.4 as ::ffff:1.2.3.4).
    if (v6.includes(".") && !/^::ffff:[\d.]+$/i.test(v6)) throw inputError(field, "backend.host", `"[${v6}]" embeds an IPv4 address: write the IPv4 address itself`);
    address = ipaddr.IPv6.parse(v6).toString();
    host = `[${address}]`;
  } else {
    host = name!.toLowerCase();
    if (host === "") throw inputError(field, "backend.host", "must name a host");
    if (host.endsWith(".")) throw inputError(field, "backend.host", `write "${host}" without the trailing dot`);
    if (numericLastLabel.test(host)) {
      if (!dottedQuad.test(host)) throw inputError(field, "backend.host", `"${host}" is not a canonical address: write IPv4 addresses as four decimal numbers, like 10.0.0.5`);
      address = host;
    } else if (host.length > 253 || !host.split(".").every((l) => hostLabel.test(l))) {
      throw inputError(field, "backend.host", `"${host}" is not a DNS name (letters, digits, '-' and '_'; internationalised names in their xn-- form)`);
    }
  }
  if (address !== undefined) {
    const refused = policy.refusal(address);
    if (refused) throw inputError(field, "backend.policy", refused);
  }
  return `${scheme}://${host}${portPart}${path}`;
}
