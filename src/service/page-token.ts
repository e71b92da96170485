import { createHash } from "node:crypto";
import { inputError } from "../domain/errors.js";

/**
 * Page tokens are opaque to clients: the id of the last row returned plus a
 * fingerprint of the filters, so a token cannot be replayed with other ones.
 */
export function encodePageToken(lastId: bigint, filters: string): string {
  return Buffer.from(`1:${lastId}:${fingerprint(filters)}`).toString("base64url");
}

export function decodePageToken(token: string, filters: string, field: string): bigint {
  const m = /^1:(\d{1,20}):([0-9a-f]{16})$/.exec(Buffer.from(token, "base64url").toString());
  if (!m) throw inputError(field, "page_token.valid", "is not a page token from this API");
  if (m[2] !== fingerprint(filters)) throw inputError(field, "page_token.filters", "was issued for other filters; repeat the request that returned it");
  return BigInt(m[1]!);
}

/** The same for lists ordered by a name: the last name returned. */
export function encodeNameToken(lastName: string, filters: string): string {
  return Buffer.from(`2:${Buffer.from(lastName).toString("base64url")}:${fingerprint(filters)}`).toString("base64url");
}

export function decodeNameToken(token: string, filters: string, field: string): string {
  const m = /^2:([A-Za-z0-9_-]{1,400}):([0-9a-f]{16})$/.exec(Buffer.from(token, "base64url").toString());
  if (!m) throw inputError(field, "page_token.valid", "is not a page token from this API");
  if (m[2] !== fingerprint(filters)) throw inputError(field, "page_token.filters", "was issued for other filters; repeat the request that returned it");
  return Buffer.from(m[1]!, "base64url").toString();
}

const fingerprint = (filters: string) => createHash("sha256").update(filters).digest("hex").slice(0, 16);
