import { timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import type { KeyRecord, KeyStore } from "../store/store.js";
import { keyIdOf, secretHash } from "./api-keys.js";
import type { Principal } from "./principal.js";
import type { TokenCheck } from "./tokens.js";

export type Authentication = { principal: Principal } | { refused: string };

export interface Authenticator {
  /** Synchronous unless the key has to be read from the store (a token, or a key cached within cacheMs, does not). */
  authenticate(presented: string | undefined): Authentication | Promise<Authentication>;
  /** Drops a key from this daemon's cache at once (it was revoked here). */
  forget(keyId: string): void;
}

export interface AuthenticatorOptions {
  tokens: TokenCheck;
  keys: KeyStore;
  logger: Logger;
  /** How long a key read from the store is trusted: a revocation on another replica takes effect within it. */
  cacheMs?: number;
  /** How often last_used_time is written per key. */
  touchEveryMs?: number;
}

/** Cached key lookups (missing keys too, so a flood of made-up ids costs one read each per interval). */
const CACHE_LIMIT = 10_000;

/**
 * Resolves the secret a call presents to a principal: a configured admin
 * token, or an API key from the store (by the id inside its secret, compared
 * by hash in constant time). Revoked and expired keys are refused.
 */
export function createAuthenticator({ tokens, keys, logger, cacheMs = 1000, touchEveryMs = 60_000 }: AuthenticatorOptions): Authenticator {
  const cache = new Map<string, { key: KeyRecord | undefined; at: number }>();

  async function load(id: string): Promise<KeyRecord | undefined> {
    const key = await keys.findKey(id);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(id, { key, at: performance.now() });
    return key;
  }

  function verify(key: KeyRecord | undefined, presented: string): Authentication {
    if (!key || !timingSafeEqual(key.secretHash, secretHash(presented))) return { refused: "invalid API key" };
    const now = new Date();
    if (key.revokeTime) return { refused: `API key ${key.id} was revoked` };
    if (key.expireTime && key.expireTime <= now) return { refused: `API key ${key.id} expired` };
    touch(key, now);
    return { principal: { keyId: key.id, role: key.role, tenantId: key.tenantId } };
  }

  function touch(key: KeyRecord, now: Date): void {
    if (key.lastUsedTime && now.getTime() - key.lastUsedTime.getTime() < touchEveryMs) return;
    key.lastUsedTime = now;
    keys.touchKey(key.id, now).catch((err: unknown) => logger.warn({ err: (err as Error).message, keyId: key.id }, "could not record a key's last use"));
  }

  return {
    authenticate(presented) {
      if (!presented) return { refused: "missing API key: send Authorization: Bearer <key> or X-API-Key: <key>" };
      const id = keyIdOf(presented);
      if (id === undefined) {
        const tokenId = tokens(presented);
        return tokenId ? { principal: { keyId: tokenId, role: "admin", tenantId: "" } } : { refused: "invalid API key" };
      }
      const hit = cache.get(id);
      if (hit && performance.now() - hit.at < cacheMs) return verify(hit.key, presented);
      return load(id).then((key) => verify(key, presented));
    },
    forget(keyId) {
      cache.delete(keyId);
    },
  };
}
