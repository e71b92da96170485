import { createPrivateKey, sign, verify, X509Certificate, type KeyObject } from "node:crypto";
import { normalizeDomain } from "../domain/domain-name.js";
import { inputError } from "../domain/errors.js";

/** What a PEM chain says about its leaf, checked. */
export interface ParsedCertificate {
  /** The chain, normalised to PEM blocks separated by newlines, leaf first. */
  chainPem: string;
  keyPem: string;
  /** Normalised DNS names of the leaf's subjectAltName. */
  dnsNames: string[];
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
}

const BEGIN = "-----BEGIN CERTIFICATE-----";
const END = "-----END CERTIFICATE-----";

/** The PEM certificate blocks of `text`, in order (a scan, not a lazy regex, which is quadratic on repeated BEGIN lines). */
function pemBlocks(text: string): string[] {
  const blocks: string[] = [];
  for (let at = text.indexOf(BEGIN); at >= 0; ) {
    const end = text.indexOf(END, at + BEGIN.length);
    if (end < 0) break;
    blocks.push(text.slice(at, end + END.length));
    at = text.indexOf(BEGIN, end + END.length);
  }
  return blocks;
}

/**
 * The keys routers sign handshakes with: what browsers accept, and bounded
 * in cost (an RSA key is signed with on every full handshake, by a worker that
 * serves every tenant; a 16384-bit one stalls it for seconds).
 */
const RSA_BITS = { min: 2048, max: 4096 };
const EC_CURVES = new Set(["prime256v1", "secp384r1"]);

function checkKeyKind(key: KeyObject): void {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "rsa" && details.modulusLength !== undefined && details.modulusLength >= RSA_BITS.min && details.modulusLength <= RSA_BITS.max) return;
  if (key.asymmetricKeyType === "ec" && details.namedCurve !== undefined && EC_CURVES.has(details.namedCurve)) return;
  throw inputError("private_key", "private_key.kind", `must be an RSA key of ${RSA_BITS.min} to ${RSA_BITS.max} bits or an ECDSA key on P-256 or P-384`);
}

/** A signature made with the key that the leaf's public key verifies: the private half is consistent, not just the public half equal. */
function signsForLeaf(key: KeyObject, leaf: X509Certificate): boolean {
  const probe = Buffer.from("dynroute certificate key check");
  try {
    return verify("sha256", probe, leaf.publicKey, sign("sha256", probe, key));
  } catch {
    return false;
  }
}

/**
 * Parses and checks an uploaded certificate for `name` (normalised): the
 * chain parses, the key matches the leaf, the leaf is valid at `now` and
 * covers `name`. Violations name the request field.
 */
export function parseCertificate(name: string, chain: string, key: string, now: Date): ParsedCertificate {
  const blocks = pemBlocks(chain);
  if (blocks.length === 0) throw inputError("certificate_chain", "certificate.pem", "must hold PEM certificates (-----BEGIN CERTIFICATE-----), leaf first");
  const certs = blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw inputError("certificate_chain", "certificate.pem", `certificate ${i + 1} of the chain does not parse`);
    }
  });
  const leaf = certs[0]!;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw inputError("private_key", "private_key.pem", "must be a PEM private key (PKCS#8, PKCS#1 or SEC1), unencrypted");
  }
  checkKeyKind(privateKey);
  if (!leaf.checkPrivateKey(privateKey) || !signsForLeaf(privateKey, leaf)) throw inputError("private_key", "private_key.match", "does not match the first certificate of the chain");
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notAfter <= now) throw inputError("certificate_chain", "certificate.expired", `the certificate expired at ${notAfter.toISOString()}`);
  if (notBefore > now) throw inputError("certificate_chain", "certificate.not_yet_valid", `the certificate is valid only from ${notBefore.toISOString()}`);
  for (let i = 1; i < certs.length; i++) {
    if (!certs[i - 1]!.checkIssued(certs[i]!)) throw inputError("certificate_chain", "certificate.chain", `certificate ${i + 1} did not issue certificate ${i}; send the leaf first, then its issuers in order`);
  }
  const dnsNames = sanDnsNames(leaf);
  if (dnsNames.length === 0) throw inputError("certificate_chain", "certificate.names", "the certificate names no DNS names in subjectAltName");
  if (!dnsNames.some((n) => covers(n, name))) throw inputError("name", "certificate.covers", `the certificate (${dnsNames.join(", ")}) is not valid for ${name}`);
  return {
    chainPem: blocks.join("\n") + "\n",
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    dnsNames,
    issuer: leaf.issuer.split("\n").join(", "),
    notBefore,
    notAfter,
    fingerprint: leaf.fingerprint256,
  };
}

/** Whether a certificate name (maybe "*.parent") is valid for a host or wildcard name as TLS clients match it: one label. */
export function covers(certName: string, name: string): boolean {
  if (certName === name) return true;
  if (!certName.startsWith("*.") || name.startsWith("*.")) return false;
  const dot = name.indexOf(".");
  return dot > 0 && name.slice(dot + 1) === certName.slice(2);
}

function sanDnsNames(cert: X509Certificate): string[] {
  const names = new Set<string>();
  // "DNS:a.example.org, DNS:*.example.org, IP Address:..." (values with ", " inside are quoted; DNS names hold none).
  for (const part of (cert.subjectAltName ?? "").split(", ")) {
    if (!part.startsWith("DNS:")) continue;
    names.add(normalizeDomain(part.slice(4), "certificate_chain"));
  }
  return [...names];
}
