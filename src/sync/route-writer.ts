import type { Redis } from "ioredis";
import type { RouteChange } from "../store/store.js";

export interface RouteLayout {
  /** Prepended to every key and the channel. */
  prefix: string;
  /** Also keep `frontend:<domain>` as a SET of backends, for dynamicproxy-style routers. */
  compatFrontend: boolean;
  /** How long a deletion's tombstone outlives it, so a replayed older upsert cannot resurrect it. */
  tombstoneTtlSeconds: number;
}

export const routeKey = (layout: RouteLayout, domain: string) => `${layout.prefix}route:${domain}`;
export const frontendKey = (layout: RouteLayout, domain: string) => `${layout.prefix}frontend:${domain}`;
export const invalidationChannel = (layout: RouteLayout) => `${layout.prefix}route-invalidate`;

// Applies a change only when its revision is newer than the stored one, so
// replays and out-of-order deliveries are harmless. Revisions are outbox ids
// and stay below 2^53, where Lua numbers are exact.
// KEYS: route key, frontend key (compat; may be unused)
// ARGV: revision, backends JSON or "" for a deletion, tombstone TTL s, channel, domain, compat "1"/"0"
const APPLY = `
local stored = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
local rev = tonumber(ARGV[1])
if rev < stored then return 0 end
if rev == stored then
  -- Already applied; only fill a missing compatibility set (compat just enabled).
  if ARGV[6] == '1' and ARGV[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('SADD', KEYS[2], unpack(cjson.decode(ARGV[2])))
  end
  return 0
end
if ARGV[2] == '' then
  redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'deleted', '1')
  redis.call('HDEL', KEYS[1], 'backends')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  if ARGV[6] == '1' then redis.call('DEL', KEYS[2]) end
else
  redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'backends', ARGV[2])
  redis.call('HDEL', KEYS[1], 'deleted')
  redis.call('PERSIST', KEYS[1])
  if ARGV[6] == '1' then
    redis.call('DEL', KEYS[2])
    redis.call('SADD', KEYS[2], unpack(cjson.decode(ARGV[2])))
  end
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`;

// Turns a live route into a tombstone only if it is still at the revision the
// caller saw: reconciliation uses it for domains MySQL no longer has.
// KEYS: route key, frontend key. ARGV: expected revision, TTL s, channel, domain, compat
const RETIRE = `
local stored = redis.call('HGET', KEYS[1], 'rev')
if stored ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'deleted') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'deleted', '1')
redis.call('HDEL', KEYS[1], 'backends')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
if ARGV[5] == '1' then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;

interface RouteCommands {
  dynrouteApply(routeKey: string, frontendKey: string, rev: string, backends: string, ttl: number, channel: string, domain: string, compat: string): Promise<number>;
  dynrouteRetire(routeKey: string, frontendKey: string, rev: string, ttl: number, channel: string, domain: string, compat: string): Promise<number>;
}

/**
 * Writes routes to Redis in the layout the router reads: one hash per domain
 * (`rev`, `backends` JSON, or `deleted` for a tombstone), one key per domain
 * so it is Redis Cluster-safe, and a PUBLISH of the domain after each change.
 */
export class RouteWriter {
  constructor(
    readonly redis: Redis,
    readonly layout: RouteLayout,
  ) {
    // defineCommand loads each script once and calls it by EVALSHA.
    if (!("dynrouteApply" in redis)) {
      redis.defineCommand("dynrouteApply", { numberOfKeys: 2, lua: APPLY });
      redis.defineCommand("dynrouteRetire", { numberOfKeys: 2, lua: RETIRE });
    }
  }

  /** Applies the changes in one pipeline; returns how many were newer than Redis had. */
  async apply(changes: readonly RouteChange[]): Promise<number> {
    if (changes.length === 0) return 0;
    const { layout } = this;
    const pipeline = this.redis.pipeline() as unknown as RouteCommands & { exec(): Promise<Array<[Error | null, unknown]> | null> };
    for (const c of changes) {
      pipeline.dynrouteApply(
        routeKey(layout, c.domain),
        frontendKey(layout, c.domain),
        c.revision.toString(),
        c.backends === null ? "" : JSON.stringify(c.backends),
        layout.tombstoneTtlSeconds,
        invalidationChannel(layout),
        c.domain,
        layout.compatFrontend ? "1" : "0",
      );
    }
    return countApplied(await pipeline.exec());
  }

  /** Tombstones routes (domain → revision seen) that are still at that revision. */
  async retire(routes: ReadonlyMap<string, string>): Promise<number> {
    if (routes.size === 0) return 0;
    const { layout } = this;
    const pipeline = this.redis.pipeline() as unknown as RouteCommands & { exec(): Promise<Array<[Error | null, unknown]> | null> };
    for (const [domain, rev] of routes) {
      pipeline.dynrouteRetire(routeKey(layout, domain), frontendKey(layout, domain), rev, layout.tombstoneTtlSeconds, invalidationChannel(layout), domain, layout.compatFrontend ? "1" : "0");
    }
    return countApplied(await pipeline.exec());
  }

  /** The revision Redis holds for each domain (0 when none), tombstones included. */
  async revisions(domains: readonly string[]): Promise<bigint[]> {
    const pipeline = this.redis.pipeline();
    for (const d of domains) pipeline.hget(routeKey(this.layout, d), "rev");
    const results = (await pipeline.exec()) ?? [];
    return domains.map((_, i) => {
      const [err, rev] = results[i] ?? [];
      if (err) throw err;
      return BigInt((rev as string | null) ?? "0");
    });
  }
}

function countApplied(results: Array<[Error | null, unknown]> | null): number {
  if (!results) throw new Error("redis pipeline was discarded");
  let applied = 0;
  for (const [err, value] of results) {
    if (err) throw err;
    applied += Number(value);
  }
  return applied;
}
