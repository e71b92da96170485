import { parse } from "tldts";
import { inputError, type FieldRef } from "../domain/errors.js";

// The private section too: *.github.io-style suffixes are as public as com.
const PSL = { allowPrivateDomains: true, extractHostname: false, validateHostname: false } as const;

/** The host a normalised mapping domain stands for: the wildcard's parent, or the name itself. */
export const baseName = (domain: string) => (domain.startsWith("*.") ? domain.slice(2) : domain);

/**
 * The registrable domain (one label below a public suffix) a normalised
 * mapping domain lies in, or an InputError when it is a public suffix, above
 * one, or a single label: nobody may claim `com`, `*.co.uk`, `*.github.io` or
 * `localhost`. Every name a wildcard can cover shares it, so writes lock it
 * to decide ownership conflicts one at a time.
 */
export function registrableDomain(domain: string, field: FieldRef): string {
  const base = baseName(domain);
  const parsed = parse(base, PSL);
  if (parsed.domain !== null) return parsed.domain;
  if (!parsed.isIcann && !parsed.isPrivate) {
    throw inputError(field, "domain.single_label", `"${domain}" is a single label; map a full domain name such as app.example.org`);
  }
  const what = domain.startsWith("*.") ? `"${domain}" would cover every name under the public suffix "${base}"` : `"${domain}" is a public suffix`;
  throw inputError(field, "domain.public_suffix", `${what}; map a name under a domain someone can register, such as app.example.${base.split(".").pop()}`);
}

/**
 * The names whose owner owns `domain` too, nearest first: the wildcards that
 * would cover it (for *.a.b: *.b and up) and the names above it (a.b's subtree
 * is its owner's); for a wildcard also the name it stands under, and for a
 * name the wildcard under it (a name and its wildcard go together).
 */
export function ancestorClaims(domain: string): string[] {
  const labels = baseName(domain).split(".");
  const above = labels.slice(1).flatMap((_, i) => {
    const parent = labels.slice(i + 1).join(".");
    return [`*.${parent}`, parent];
  });
  return [domain.startsWith("*.") ? baseName(domain) : `*.${domain}`, ...above];
}

/** Whether a normalised mapping domain lies in one of the tenant's zones (none: anywhere). */
export function inZones(domain: string, zones: readonly string[]): boolean {
  if (zones.length === 0) return true;
  const base = baseName(domain);
  return zones.some((z) => base === z || base.endsWith(`.${z}`));
}
