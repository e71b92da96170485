import { createHash, timingSafeEqual } from "node:crypto";

export type TokenCheck = (presented: string | undefined) => boolean;

/**
 * Accepts any of the configured admin tokens. Both sides are hashed first so
 * the comparison takes the same time whatever the presented token's length
 * or content, and every configured token is compared every time.
 */
export function tokenChecker(tokens: readonly string[]): TokenCheck {
  const digests = tokens.map(digest);
  return (presented) => {
    if (presented === undefined || presented === "") return false;
    const given = digest(presented);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, given) || ok;
    return ok;
  };
}

const digest = (token: string) => createHash("sha256").update(token).digest();
