import type { Redis } from "ioredis";
import type { BackendPolicy } from "../policy/backend-policy.js";
import type { RouteChange } from "../store/store.js";

/** A certificate change with its key opened, as routers read it. */
export interface CertificateState {
  name: string;
  revision: bigint;
  /** null: the name has no certificate any more. */
  tls: { chainPem: string; keyPem: string } | null;
}

export interface RouteLayout {
  /** Prepended to every key and the channel. */
  prefix: string;
  /** Also keep `frontend:<domain>` as a SET of backends, for dynamicproxy-style routers. */
  compatFrontend: boolean;
  /** How long a deletion's tombstone outlives it, so a replayed older upsert cannot resurrect it. */
  tombstoneTtlSeconds: number;
}

const routeKey = (layout: RouteLayout, domain: string) => `${layout.prefix}route:${domain}`;
const frontendKey = (layout: RouteLayout, domain: string) => `${layout.prefix}frontend:${domain}`;
const invalidationChannel = (layout: RouteLayout) => `${layout.prefix}route-invalidate`;
/**
 * Every live wildcard route (`*.parent` → backends JSON) in one hash, so a
 * router matches a host against all wildcards at once from a cached copy
 * instead of asking Redis once per label. Kept by the same scripts as the
 * routes; reconciliation repairs it.
 */
const wildcardIndexKey = (layout: RouteLayout) => `${layout.prefix}wildcards`;
/** The backend destination policy routers enforce: JSON `{"rules": [{cidr, action, reason}]}`, first match wins. */
const backendPolicyKey = (layout: RouteLayout) => `${layout.prefix}backend-policy`;
/**
 * One hash per name with a certificate (`rev`, `chain` and `key` PEM, or
 * `deleted` for a tombstone), versioned like routes. Routers pick by SNI: the
 * exact name, else `*.parent` one label up.
 */
const certificateKey = (layout: RouteLayout, name: string) => `${layout.prefix}cert:${name}`;
/** The key authorization of a pending HTTP-01 challenge, which routers answer at /.well-known/acme-challenge/<token>. */
const acmeChallengeKey = (layout: RouteLayout, token: string) => `${layout.prefix}acme:${token}`;
/**
 * The run_id of the Redis server the last reconciliation wrote to. Missing:
 * Redis lost its data; another run_id: a restart or a failover (which may
 * have lost what the old master had not replicated yet).
 */
const sentinelKey = (layout: RouteLayout) => `${layout.prefix}dynroute:sentinel`;
/** Published on the invalidation channel, followed by the name, when a certificate changes; no domain can look like it. */
export const CERTIFICATE_CHANGED = "!cert:";
/** Published on the invalidation channel when the policy changes; no domain can look like it. */
export const BACKEND_POLICY_CHANGED = "!backend-policy";

// Applies changes only when their revision is newer than the stored one, so
// replays and out-of-order deliveries are harmless. Revisions are outbox ids
// and stay below 2^53, where Lua numbers are exact. Several routes per call
// (one key each, so the layout stays one key per domain) keep the client's
// per-command cost off the hot path; with Redis Cluster the caller would have
// to group a call's keys by slot (and the wildcard index would need a hash tag).
// A reconciliation also stamps each route it pushes ("seen"), so finding the
// routes the store no longer has needs no lookup per route in the store; a
// route already at its revision gets its wildcard index entry and (compat)
// its frontend set repaired, announced when that changed anything.
// KEYS: the wildcard index; then per route, its route key and frontend key (compat; may be unused)
// ARGV: tombstone TTL s, channel, compat "1"/"0", stamp or ""; then per route: revision, backends JSON or "" for a deletion, domain
const APPLY = `
local ttl, channel, compat, stamp = tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1', ARGV[4]
local index = KEYS[1]
local function same_members(key, list)
  if redis.call('SCARD', key) ~= #list then return false end
  for _, member in ipairs(list) do
    if redis.call('SISMEMBER', key, member) == 0 then return false end
  end
  return true
end
local applied = 0
for i = 1, (#KEYS - 1) / 2 do
  local route, frontend = KEYS[2 * i], KEYS[2 * i + 1]
  local rev, backends, domain = tonumber(ARGV[3 * i + 2]), ARGV[3 * i + 3], ARGV[3 * i + 4]
  local wild = string.sub(domain, 1, 2) == '*.'
  local stored = tonumber(redis.call('HGET', route, 'rev') or '0')
  if rev == stored then
    -- Already applied: repair what is derived from it.
    local repaired = false
    if wild and backends ~= '' and redis.call('HGET', index, domain) ~= backends then
      redis.call('HSET', index, domain, backends)
      repaired = true
    elseif wild and backends == '' and redis.call('HDEL', index, domain) == 1 then
      repaired = true
    end
    if compat and backends ~= '' then
      local list = cjson.decode(backends)
      if not same_members(frontend, list) then
        redis.call('DEL', frontend)
        if #list > 0 then redis.call('SADD', frontend, unpack(list)) end
        repaired = true
      end
    elseif compat and redis.call('DEL', frontend) == 1 then
      repaired = true
    end
    if repaired then redis.call('PUBLISH', channel, domain) end
  elseif rev > stored then
    if backends == '' then
      redis.call('HSET', route, 'rev', ARGV[3 * i + 2], 'deleted', '1')
      redis.call('HDEL', route, 'backends')
      redis.call('EXPIRE', route, ttl)
      if wild then redis.call('HDEL', index, domain) end
      if compat then redis.call('DEL', frontend) end
    else
      redis.call('HSET', route, 'rev', ARGV[3 * i + 2], 'backends', backends)
      redis.call('HDEL', route, 'deleted')
      redis.call('PERSIST', route)
      if wild then redis.call('HSET', index, domain, backends) end
      if compat then
        -- A disabled route has no backends: dynamicproxy routers then find no set.
        redis.call('DEL', frontend)
        local list = cjson.decode(backends)
        if #list > 0 then redis.call('SADD', frontend, unpack(list)) end
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
// KEYS: the wildcard index; then per route, route key and frontend key. ARGV: TTL s, channel, compat; then per route: expected revision, domain
const RETIRE = `
local ttl, channel, compat = tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1'
local index = KEYS[1]
local retired = 0
for i = 1, (#KEYS - 1) / 2 do
  local route, frontend, domain = KEYS[2 * i], KEYS[2 * i + 1], ARGV[2 * i + 3]
  if redis.call('HGET', route, 'rev') == ARGV[2 * i + 2] and redis.call('HEXISTS', route, 'deleted') == 0 then
    redis.call('HSET', route, 'deleted', '1')
    redis.call('HDEL', route, 'backends')
    redis.call('EXPIRE', route, ttl)
    if string.sub(domain, 1, 2) == '*.' then redis.call('HDEL', index, domain) end
    if compat then redis.call('DEL', frontend) end
    redis.call('PUBLISH', channel, domain)
    retired = retired + 1
  end
end
return retired
`;

// Drops what is derived from routes that are not live (missing, or a
// tombstone): entries of the wildcard index, and (compat) frontend sets, such
// as those an older system left. A live route always has both, written by the
// same script, so this never races with the relay.
// KEYS: the wildcard index; then per domain, route key and frontend key. ARGV: channel, compat; then the domains
const PRUNE = `
local channel, compat = ARGV[1], ARGV[2] == '1'
local index = KEYS[1]
local pruned = 0
for i = 1, (#KEYS - 1) / 2 do
  local route, frontend, domain = KEYS[2 * i], KEYS[2 * i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', route, 'backends') == 0 then
    local n = redis.call('HDEL', index, domain)
    if compat then n = n + redis.call('DEL', frontend) end
    if n > 0 then
      redis.call('PUBLISH', channel, domain)
      pruned = pruned + 1
    end
  end
end
return pruned
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

// The revision of each route key, tombstones included (nil when none): a page's Mapping.live in one call, not a command per key.
// KEYS: route keys. Returns one revision or nil per key.
const REVISIONS = `
local revs = {}
for i = 1, #KEYS do revs[i] = redis.call('HGET', KEYS[i], 'rev') end
return revs
`;

// Replaces the policy and tells routers, only when it changed (each reconciliation writes it).
// KEYS: policy key. ARGV: policy JSON, channel, message.
const SET_POLICY = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`;

// Certificates: the same versioned apply as routes (newer revisions only,
// tombstones that outlive the worst lag, a stamp for reconciliation).
// KEYS: per name its certificate key. ARGV: TTL s, channel, message prefix, stamp or ""; then per name: revision, chain or "" for a deletion, key, name
const APPLY_CERT = `
local ttl, channel, announce, stamp = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local applied = 0
for i = 1, #KEYS do
  local key, rev, chain, pem, name = KEYS[i], tonumber(ARGV[4 * i + 1]), ARGV[4 * i + 2], ARGV[4 * i + 3], ARGV[4 * i + 4]
  if rev > tonumber(redis.call('HGET', key, 'rev') or '0') then
    if chain == '' then
      redis.call('HSET', key, 'rev', ARGV[4 * i + 1], 'deleted', '1')
      redis.call('HDEL', key, 'chain', 'key')
      redis.call('EXPIRE', key, ttl)
    else
      redis.call('HSET', key, 'rev', ARGV[4 * i + 1], 'chain', chain, 'key', pem)
      redis.call('HDEL', key, 'deleted')
      redis.call('PERSIST', key)
    end
    redis.call('PUBLISH', channel, announce .. name)
    applied = applied + 1
  end
  if stamp ~= '' then redis.call('HSET', key, 'seen', stamp) end
end
return applied
`;

// Tombstones certificates still at the revision the caller saw (reconciliation: names the store no longer has).
// KEYS: certificate keys. ARGV: TTL s, channel, message prefix; then per key: expected revision, name
const RETIRE_CERT = `
local ttl, channel, announce = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local retired = 0
for i = 1, #KEYS do
  if redis.call('HGET', KEYS[i], 'rev') == ARGV[2 * i + 2] and redis.call('HEXISTS', KEYS[i], 'deleted') == 0 then
    redis.call('HSET', KEYS[i], 'deleted', '1')
    redis.call('HDEL', KEYS[i], 'chain', 'key')
    redis.call('EXPIRE', KEYS[i], ttl)
    redis.call('PUBLISH', channel, announce .. ARGV[2 * i + 3])
    retired = retired + 1
  end
end
return retired
`;

/** Routes per script call: large enough to amortise a command, small enough to keep each call short. */
const PER_CALL = 250;
/** Keys asked for per SCAN/HSCAN step. */
const SCAN_COUNT = 5000;

/** What the sentinel says of the Redis server written to now. */
export type SentinelState = "intact" | "missing" | "restarted";

interface RouteCommands {
  dynrouteApply(numberOfKeys: number, ...args: Array<string | number>): Promise<number>;
  dynrouteRetire(numberOfKeys: number, ...args: Array<string | number>): Promise<number>;
  dynrouteUnseen(numberOfKeys: number, ...args: string[]): Promise<string[]>;
  dynroutePrune(numberOfKeys: number, ...args: string[]): Promise<number>;
  dynrouteRevisions(numberOfKeys: number, ...keys: string[]): Promise<Array<string | null>>;
  dynrouteSetPolicy(numberOfKeys: 1, key: string, policy: string, channel: string, message: string): Promise<number>;
  dynrouteApplyCert(numberOfKeys: number, ...args: Array<string | number>): Promise<number>;
  dynrouteRetireCert(numberOfKeys: number, ...args: Array<string | number>): Promise<number>;
}

type Batch = RouteCommands & { exec(): Promise<Array<[Error | null, unknown]> | null> };

/**
 * Writes routes to Redis in the layout the router reads: one hash per domain
 * (`rev`, `backends` JSON, or `deleted` for a tombstone), one key per domain
 * so it is Redis Cluster-safe, and a PUBLISH of the domain after each change.
 */
export class RouteWriter {
  constructor(
    private readonly redis: Redis,
    private readonly layout: RouteLayout,
  ) {
    // defineCommand loads each script once and calls it by EVALSHA.
    if (!("dynrouteApply" in redis)) {
      // numberOfKeys is given with each call: it varies with the routes in it.
      redis.defineCommand("dynrouteApply", { lua: APPLY });
      redis.defineCommand("dynrouteRetire", { lua: RETIRE });
      redis.defineCommand("dynrouteUnseen", { lua: UNSEEN });
      redis.defineCommand("dynroutePrune", { lua: PRUNE });
      redis.defineCommand("dynrouteRevisions", { lua: REVISIONS });
      redis.defineCommand("dynrouteSetPolicy", { lua: SET_POLICY });
      redis.defineCommand("dynrouteApplyCert", { lua: APPLY_CERT });
      redis.defineCommand("dynrouteRetireCert", { lua: RETIRE_CERT });
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
    for (const part of chunks(changes, PER_CALL)) {
      const keys = [wildcardIndexKey(layout), ...part.flatMap((c) => [routeKey(layout, c.domain), frontendKey(layout, c.domain)])];
      const args = part.flatMap((c) => [c.revision.toString(), c.backends === null ? "" : JSON.stringify(c.backends), c.domain]);
      pipeline.dynrouteApply(keys.length, ...keys, layout.tombstoneTtlSeconds, invalidationChannel(layout), layout.compatFrontend ? "1" : "0", stamp, ...args);
    }
    return countApplied(await pipeline.exec());
  }

  /** Applies certificate changes like routes (see apply); returns how many were newer than Redis had. */
  async applyCertificates(changes: readonly CertificateState[], stamp = ""): Promise<number> {
    if (changes.length === 0) return 0;
    const { layout } = this;
    const pipeline = this.redis.pipeline() as unknown as Batch;
    for (const part of chunks(changes, PER_CALL)) {
      const keys = part.map((c) => certificateKey(layout, c.name));
      const args = part.flatMap((c) => [c.revision.toString(), c.tls?.chainPem ?? "", c.tls?.keyPem ?? "", c.name]);
      pipeline.dynrouteApplyCert(keys.length, ...keys, layout.tombstoneTtlSeconds, invalidationChannel(layout), CERTIFICATE_CHANGED, stamp, ...args);
    }
    return countApplied(await pipeline.exec());
  }

  /** Tombstones certificates (name → revision seen) that are still at that revision. */
  async retireCertificates(names: ReadonlyMap<string, string>): Promise<number> {
    if (names.size === 0) return 0;
    const { layout } = this;
    const entries = [...names];
    const pipeline = this.redis.pipeline() as unknown as Batch;
    for (const part of chunks(entries, PER_CALL)) {
      const keys = part.map(([name]) => certificateKey(layout, name));
      pipeline.dynrouteRetireCert(keys.length, ...keys, layout.tombstoneTtlSeconds, invalidationChannel(layout), CERTIFICATE_CHANGED, ...part.flatMap(([name, rev]) => [rev, name]));
    }
    return countApplied(await pipeline.exec());
  }

  /** Lets routers answer an HTTP-01 challenge for a while (an order that dies midway leaves nothing behind). */
  async putChallenge(token: string, keyAuthorization: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(acmeChallengeKey(this.layout, token), keyAuthorization, "EX", ttlSeconds);
  }

  async removeChallenge(token: string): Promise<void> {
    await this.redis.del(acmeChallengeKey(this.layout, token));
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
    for (const part of chunks(entries, PER_CALL)) {
      const keys = [wildcardIndexKey(layout), ...part.flatMap(([domain]) => [routeKey(layout, domain), frontendKey(layout, domain)])];
      const args = part.flatMap(([domain, rev]) => [rev, domain]);
      pipeline.dynrouteRetire(keys.length, ...keys, layout.tombstoneTtlSeconds, invalidationChannel(layout), layout.compatFrontend ? "1" : "0", ...args);
    }
    return countApplied(await pipeline.exec());
  }

  /** Drops the wildcard index entries and (compat) frontend sets of these domains whose routes are not live. */
  async prune(domains: readonly string[]): Promise<number> {
    if (domains.length === 0) return 0;
    const { layout } = this;
    const pipeline = this.redis.pipeline() as unknown as Batch;
    for (const part of chunks(domains, PER_CALL)) {
      const keys = [wildcardIndexKey(layout), ...part.flatMap((d) => [routeKey(layout, d), frontendKey(layout, d)])];
      pipeline.dynroutePrune(keys.length, ...keys, invalidationChannel(layout), layout.compatFrontend ? "1" : "0", ...part);
    }
    return countApplied(await pipeline.exec());
  }

  /** Connected: anything else fails at once (no offline queue). */
  get ready(): boolean {
    return this.redis.status === "ready";
  }

  /** Whether this server still holds what the last reconciliation wrote (see sentinelKey). */
  async sentinel(): Promise<SentinelState> {
    const [stored, info] = await Promise.all([this.redis.get(sentinelKey(this.layout)), this.redis.info("server")]);
    if (stored === runId(info)) return "intact";
    return stored === null ? "missing" : "restarted";
  }

  /**
   * Marks this server as reconciled; called before a reconciliation pushes, so
   * that if Redis is emptied during the run the sentinel is missing afterwards.
   */
  async setSentinel(): Promise<void> {
    await this.redis.set(sentinelKey(this.layout), runId(await this.redis.info("server")));
  }

  /** Live routes not stamped `stamp` (domain → revision), a batch at a time: what a reconciliation did not push. */
  unseenRoutes(stamp: string): AsyncGenerator<Map<string, string>> {
    return this.unseenUnder(routeKey(this.layout, ""), stamp);
  }

  /** Live certificates not stamped `stamp` (name → revision), a batch at a time. */
  unseenCertificates(stamp: string): AsyncGenerator<Map<string, string>> {
    return this.unseenUnder(certificateKey(this.layout, ""), stamp);
  }

  /** Domains with derived entries, a batch at a time: the wildcard index's, and (compat) those with a frontend set. */
  async *derivedDomains(): AsyncGenerator<string[]> {
    let cursor = "0";
    do {
      const [next, flat] = await this.redis.hscan(wildcardIndexKey(this.layout), cursor, "COUNT", SCAN_COUNT);
      cursor = next;
      yield flat.filter((_, i) => i % 2 === 0);
    } while (cursor !== "0");
    if (!this.layout.compatFrontend) return;
    const prefix = frontendKey(this.layout, "");
    for await (const keys of this.keysUnder(prefix)) yield keys.map((k) => k.slice(prefix.length));
  }

  private async *unseenUnder(prefix: string, stamp: string): AsyncGenerator<Map<string, string>> {
    for await (const keys of this.keysUnder(prefix)) {
      const pipeline = this.redis.pipeline() as unknown as Batch;
      for (const part of chunks(keys, PER_CALL)) {
        pipeline.dynrouteUnseen(part.length, ...part, stamp);
      }
      const found = new Map<string, string>();
      for (const [err, flat] of (await pipeline.exec()) ?? []) {
        if (err) throw err;
        const list = flat as string[];
        for (let i = 0; i < list.length; i += 2) found.set(list[i]!.slice(prefix.length), list[i + 1]!);
      }
      if (found.size > 0) yield found;
    }
  }

  /** Keys starting with `prefix`, a SCAN step at a time (steps with none are skipped). */
  private async *keysUnder(prefix: string): AsyncGenerator<string[]> {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== "0");
  }

  /** The revision Redis holds for each domain (0 when none), tombstones included. */
  async revisions(domains: readonly string[]): Promise<bigint[]> {
    const keys = domains.map((d) => routeKey(this.layout, d));
    const commands = this.redis as unknown as RouteCommands;
    // One domain (a GET) is one HGET; a page, one script call per PER_CALL keys.
    const revs =
      keys.length === 1
        ? [await this.redis.hget(keys[0]!, "rev")]
        : (await Promise.all(chunks(keys, PER_CALL).map((part) => commands.dynrouteRevisions(part.length, ...part)))).flat();
    return revs.map((rev) => BigInt(rev ?? "0"));
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let at = 0; at < items.length; at += size) out.push(items.slice(at, at + size));
  return out;
}

const runId = (info: string) => /run_id:(\w+)/.exec(info)?.[1] ?? "unknown";

function countApplied(results: Array<[Error | null, unknown]> | null): number {
  if (!results) throw new Error("redis pipeline was discarded");
  let applied = 0;
  for (const [err, value] of results) {
    if (err) throw err;
    applied += Number(value);
  }
  return applied;
}
