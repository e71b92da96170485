import { hash, randomBytes } from "node:crypto";

// "dr." + id + "." + 32 random bytes: the id finds the stored hash without a scan.
const SECRET = /^dr\.(k_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

/** A new key id and its secret (256 bits of randomness), e.g. "dr.k_3f9c2a7d1b4e8f60.<43 chars>". */
export function newKeySecret(): { id: string; secret: string } {
  const id = `k_${randomBytes(8).toString("hex")}`;
  return { id, secret: `dr.${id}.${randomBytes(32).toString("base64url")}` };
}

/** The key id a presented secret claims to belong to, or undefined when it is not shaped like one. */
export const keyIdOf = (secret: string) => SECRET.exec(secret)?.[1];

/** What the store keeps of a secret. */
export const secretHash = (secret: string) => hash("sha256", secret, "buffer");
