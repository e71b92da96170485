import { domainToASCII } from "node:url";
import { inputError, type FieldRef } from "./errors.js";

const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// Lower-case LDH labels, no A-label (xn--), the last starting with a letter (so not an IPv4 form such as
// 0x7f or 1.2.3.4, which domainToASCII rewrites): a name domainToASCII returns unchanged, without its cost.
const plainAscii = /^(?:[a-z0-9-]+\.)*[a-z][a-z0-9-]*$/;

/**
 * Returns the canonical form of a mapping's domain: lower case, one trailing
 * dot removed, IDN labels as punycode A-labels. The router matches the Host
 * header on the same form, so equal names always compare equal.
 * A wildcard may only be the whole leftmost label ("*.example.org").
 */
export function normalizeDomain(raw: string, field: FieldRef): string {
  const trimmed = raw.endsWith(".") ? raw.slice(0, -1) : raw;
  const wildcard = trimmed.startsWith("*.");
  const host = wildcard ? trimmed.slice(2) : trimmed;
  if (host.includes("*")) {
    throw inputError(field, "domain.wildcard", "a wildcard is only allowed as the whole leftmost label, as in *.example.org");
  }
  if (/[\s:/?#@[\]\\]/.test(host)) {
    throw inputError(field, "domain.hostname", "must be a bare host name: no scheme, port, path or spaces");
  }
  // domainToASCII lower-cases and applies IDNA (UTS #46); it answers "" for names it rejects.
  const ascii = host === "" ? "" : plainAscii.test(host) && !host.includes("xn--") ? host : domainToASCII(host);
  const labels = ascii.split(".");
  if (ascii === "" || !labels.every((l) => label.test(l))) {
    throw inputError(field, "domain.hostname", "must be a domain name of labels of 1-63 letters, digits or hyphens, not starting or ending with a hyphen");
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) {
    throw inputError(field, "domain.hostname", "must be a domain name, not an IP address");
  }
  const result = wildcard ? `*.${ascii}` : ascii;
  if (result.length > 253) throw inputError(field, "domain.hostname", "must be at most 253 characters once encoded");
  return result;
}
