import { createHash, timingSafeEqual } from "node:crypto";

/** The key id of the configured admin token presented, or undefined. */
export type TokenCheck = (presented: string) => string | undefined;

/**
 * Accepts any of the configured admin tokens. Both sides are hashed first so
 * the comparison takes the same time whatever the presented token's length
 * or content, and every configured token is compared every time. A token's
 * key id ("token:" + 12 hex digits of its SHA-256) names it in audit events
 * without revealing it.
 */
export function tokenChecker(tokens: readonly string[]): TokenCheck {
  const digests = tokens.map(digest);
  return (presented) => {
    const given = digest(presented);
    let match: Buffer | undefined;
    for (const d of digests) if (timingSafeEqual(d, given)) match = d;
    return match && `token:${match.toString("hex").slice(0, 12)}`;
  };
}

const digest = (token: string) => createHash("sha256").update(token).digest();
