import type { Redis } from "ioredis";
import type { BackendPolicy } from "../policy/backend-policy.js";
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
/** The backend destination policy routers enforce: JSON `{"rules": [{cidr, action, reason}]}`, first match wins. */
export const backendPolicyKey = (layout: RouteLayout) => `${layout.prefix}backend-policy`;
/** Published on the invalidation channel when the policy changes; no domain can look like it. */
export const BACKEND_POLICY_CHANGED = "!backend-policy";

// Applies changes only when their revision is newer than the stored one, so
// replays and out-of-order deliveries are harmless. Revisions are outbox ids
// and stay below 2^53, where Lua numbers are exact. Several routes per call
// (one key each, so the layout stays one key per domain) keep the client's
// per-command cost off the hot path; with Redis Cluster the caller would have
// to group a call's keys by slot.
// A reconciliation also stamps each route it pushes ("seen"), so finding the
// routes the store no longer has needs no lookup per route in the store.
// KEYS: per route, its route key and frontend key (compat; may be unused)
// ARGV: tombstone TTL s, channel, compat "1"/"0", stamp or ""; then per route: revision, backends JSON or "" for a deletion, domain
const APPLY = `
local ttl, channel, compat, stamp = tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1', ARGV[4]
local applied = 0
for i = 1, #KEYS / 2 do
  local route, frontend = KEYS[2 * i - 1], KEYS[2 * i]
  local rev, backends, domain = tonumber(ARGV[3 * i + 2]), ARGV[3 * i + 3], ARGV[3 * i + 4]
  local stored = tonumber(redis.call('HGET', route, 'rev') or '0')
  if rev == stored then
    -- Already applied; only fill a missing compatibility set (compat just enabled).
    if compat and backends ~= '' and redis.call('EXISTS', frontend) == 0 then
      redis.call('SADD', frontend, unpack(cjson.decode(backends)))
    end
  elseif rev > stored then
    if backends == '' then
      redis.call('HSET', route, 'rev', ARGV[3 * i + 2], 'deleted', '1')
      redis.call('HDEL', route, 'backends')
      redis.call('EXPIRE', route, ttl)
      if compat then redis.call('DEL', frontend) end
    else
      redis.call('HSET', route, 'rev', ARGV[3 * i + 2], 'backends', backends)
      redis.call('HDEL', route, 'deleted')
      redis.call('PERSIST', route)
      if compat then
        redis.call('DEL', frontend)
        redis.call('SADD', frontend, unpack(cjson.decode(backends)))
      end
    end
    redis.call('PUBLISH', channel, domain)
    applied = applied + 1
  end
  if stamp ~= '' then redis.call('HSET', route, 'seen', stamp) end
end
return applied
`;

// Turns live routes into tombstones only if still at the revision the caller
// saw: reconciliation uses it for domains the store no longer has.
// KEYS: per route, route key and frontend key. ARGV: TTL s, channel, compat; then per route: expected revision, domain
const RETIRE = `
local ttl, channel, compat = tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1'
local retired = 0
for i = 1, #KEYS / 2 do
  local route, frontend = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('HGET', route, 'rev') == ARGV[2 * i + 2] and redis.call('HEXISTS', route, 'deleted') == 0 then
    redis.call('HSET', route, 'deleted', '1')
    redis.call('HDEL', route, 'backends')
    redis.call('EXPIRE', route, ttl)
    if compat then redis.call('DEL', frontend) end
    redis.call('PUBLISH', channel, ARGV[2 * i + 3])
    retired = retired + 1
  end
end
return retired
`;

// Of the given route keys, the live ones (not tombstones) without this stamp, with their revisions.
// KEYS: route keys. ARGV: the stamp. Returns key, revision, key, revision, ...
const UNSEEN = `
local found = {}
for i = 1, #KEYS do
  local state = redis.call('HMGET', KEYS[i], 'rev', 'deleted', 'seen')
  if state[1] and not state[2] and state[3] ~= ARGV[1] then
    found[#found + 1] = KEYS[i]
    found[#found + 1] = state[1]
  end
end
return found
`;

// Replaces the policy and tells routers, only when it changed (each reconciliation writes it).
// KEYS: policy key. ARGV: policy JSON, channel, message.
const SET_POLICY = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`;

/** Routes per script call: large enough to amortise a command, small enough to keep each call short. */
const PER_CALL = 250;

interface RouteCommands {
  dynrouteApply(numberOfKeys: number, ...args: Array<string | number>): Promise<number>;
  dynrouteRetire(numberOfKeys: number, ...args: Array<string | number>): Promise<number>;
  dynrouteUnseen(numberOfKeys: number, ...args: string[]): Promise<string[]>;
  dynrouteSetPolicy(numberOfKeys: 1, key: string, policy: string, channel: string, message: string): Promise<number>;
}

type Batch = RouteCommands & { exec(): Promise<Array<[Error | null, unknown]> | null> };

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
      // numberOfKeys is given with each call: it varies with the routes in it.
      redis.defineCommand("dynrouteApply", { lua: APPLY });
      redis.defineCommand("dynrouteRetire", { lua: RETIRE });
      redis.defineCommand("dynrouteUnseen", { lua: UNSEEN });
      redis.defineCommand("dynrouteSetPolicy", { lua: SET_POLICY });
    }
  }

  /**
   * Applies the changes in one pipeline; returns how many were newer than
   * Redis had. `stamp` (reconciliation) marks every route as seen in that run.
   */
  async apply(changes: readonly RouteChange[], stamp = ""): Promise<number> {
    if (changes.length === 0) return 0;
    const { layout } = this;
    const pipeline = this.redis.pipeline() as unknown as Batch;
    for (let at = 0; at < changes.length; at += PER_CALL) {
      const part = changes.slice(at, at + PER_CALL);
      const keys = part.flatMap((c) => [routeKey(layout, c.domain), frontendKey(layout, c.domain)]);
      const args = part.flatMap((c) => [c.revision.toString(), c.backends === null ? "" : JSON.stringify(c.backends), c.domain]);
      pipeline.dynrouteApply(keys.length, ...keys, layout.tombstoneTtlSeconds, invalidationChannel(layout), layout.compatFrontend ? "1" : "0", stamp, ...args);
    }
    return countApplied(await pipeline.exec());
  }

  /** Publishes the backend destination policy to routers; true when it changed. */
  async writePolicy(policy: BackendPolicy): Promise<boolean> {
    const commands = this.redis as unknown as RouteCommands;
    const { layout } = this;
    return (await commands.dynrouteSetPolicy(1, backendPolicyKey(layout), JSON.stringify(policy), invalidationChannel(layout), BACKEND_POLICY_CHANGED)) === 1;
  }

  /** Tombstones routes (domain → revision seen) that are still at that revision. */
  async retire(routes: ReadonlyMap<string, string>): Promise<number> {
    if (routes.size === 0) return 0;
    const { layout } = this;
    const entries = [...routes];
    const pipeline = this.redis.pipeline() as unknown as Batch;
    for (let at = 0; at < entries.length; at += PER_CALL) {
      const part = entries.slice(at, at + PER_CALL);
      const keys = part.flatMap(([domain]) => [routeKey(layout, domain), frontendKey(layout, domain)]);
      const args = part.flatMap(([domain, rev]) => [rev, domain]);
      pipeline.dynrouteRetire(keys.length, ...keys, layout.tombstoneTtlSeconds, invalidationChannel(layout), layout.compatFrontend ? "1" : "0", ...args);
    }
    return countApplied(await pipeline.exec());
  }

  /** Of these route keys, the live routes not stamped `stamp`: domain → revision. */
  async unseen(keys: readonly string[], stamp: string): Promise<Map<string, string>> {
    const pipeline = this.redis.pipeline() as unknown as Batch;
    for (let at = 0; at < keys.length; at += PER_CALL) {
      const part = keys.slice(at, at + PER_CALL);
      pipeline.dynrouteUnseen(part.length, ...part, stamp);
    }
    const prefix = routeKey(this.layout, "");
    const found = new Map<string, string>();
    for (const [err, flat] of (await pipeline.exec()) ?? []) {
      if (err) throw err;
      const list = flat as string[];
      for (let i = 0; i < list.length; i += 2) found.set(list[i]!.slice(prefix.length), list[i + 1]!);
    }
    return found;
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
