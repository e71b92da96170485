-- Which backends serve a Host: Redis behind a shared-dict cache.
--
-- Cache entries are per Redis key (an exact domain or a "*.parent" wildcard),
-- positive or negative, so an invalidation message for one domain drops
-- exactly one entry. An entry is fresh for cache_ttl and kept for stale_ttl:
-- stale entries are refreshed (one worker at a time) and served while Redis
-- is unreachable. A per-key version guards against a refresh that read Redis
-- before an invalidation overwriting the newer state after it.
local cjson = require "cjson.safe"
local config = require "dynroute.config"
local redis = require "dynroute.redis"

local routes = ngx.shared.dynroute_routes
local locks = ngx.shared.dynroute_locks

local _M = {}

-- Host as the API normalises domains: lower case, no port, no trailing dot.
function _M.normalize(host)
  if not host or host == "" or host:byte(1) == 91 then return nil end -- "[": an IPv6 literal
  host = host:lower():gsub(":%d*$", ""):gsub("%.$", "")
  if host == "" or #host > 253 or host:find("[^%w%.%-]") then return nil end
  return host
end

-- The keys that can map a host, in the order they win: itself, then *.parent, *.grandparent ...
function _M.candidates(host)
  local list = { host }
  local rest = host
  while true do
    local dot = rest:find(".", 1, true)
    if not dot or dot == #rest then break end
    rest = rest:sub(dot + 1)
    list[#list + 1] = "*." .. rest
  end
  return list
end

-- What Redis holds for the keys: backends (a list) or false (none, or a tombstone).
local function fetch(keys)
  local red, err = redis.connect(config.redis)
  if not red then return nil, err end
  local commands = {}
  for i, key in ipairs(keys) do
    if config.layout == "frontend" then
      commands[i] = { "SMEMBERS", config.prefix .. "frontend:" .. key }
    else
      commands[i] = { "HGET", config.prefix .. "route:" .. key, "backends" }
    end
  end
  local replies, perr = red:pipeline(commands)
  if not replies then red:close(); return nil, perr end
  red:keepalive()
  local found = {}
  for i, reply in ipairs(replies) do
    if config.layout == "frontend" then
      found[i] = (type(reply) == "table" and #reply > 0) and reply or false
    else
      local list = reply ~= ngx.null and cjson.decode(reply)
      found[i] = (type(list) == "table" and #list > 0) and list or false
    end
  end
  return found
end

local function cached(key, now, generation)
  local value = routes:get("r:" .. key)
  if value == nil then return nil end
  local entry = cjson.decode(value)
  if not entry then return nil end
  return entry.b, entry.f >= now and entry.g == generation, entry.f
end

local function store(key, backends, version, generation, now)
  -- An invalidation since the read means Redis has something newer: do not cache the older answer.
  if (routes:get("v:" .. key) or 0) ~= version then return end
  routes:set("r:" .. key, cjson.encode({ b = backends, g = generation, f = now + config.cache_ttl }), config.stale_ttl)
end

-- What the cache knows for the keys in order, up to the first with backends; fresh when all of that is.
-- Also the time until which all of that stays fresh.
local function from_cache(keys, now, generation)
  local known, fresh, fresh_to = {}, true, math.huge
  for i, key in ipairs(keys) do
    local backends, is_fresh, fresh_until = cached(key, now, generation)
    if backends == nil then return known, false end
    known[i] = backends
    fresh = fresh and is_fresh
    fresh_to = math.min(fresh_to, fresh_until)
    if backends then break end
  end
  return known, fresh, fresh_to
end

-- The first key with backends wins once every key before it is known to have none.
local function decide(keys, known)
  for i, key in ipairs(keys) do
    local b = known[i]
    if b == nil then return nil end
    if b then return b, key end
  end
  return nil, "none"
end

local function with_freshness(fresh_to, backends, why)
  return backends, why, fresh_to
end

-- Backends for a normalised host and the key that matched, or nil and why:
-- "none" (nothing maps it) or "unavailable" (Redis unreachable, nothing cached);
-- third, until when the answer is fresh (nil: stale or uncached, do not copy it).
function _M.lookup(host)
  local keys = _M.candidates(host)
  if config.cache_ttl == 0 then
    -- No cache: every request asks Redis (for debugging, and to measure the miss path).
    local found, err = fetch(keys)
    if not found then
      ngx.log(ngx.WARN, "dynroute: redis unreachable (", err, ")")
      return nil, "unavailable"
    end
    return decide(keys, found)
  end
  local generation = routes:get("gen") or 0
  local known, fresh, fresh_to = from_cache(keys, ngx.now(), generation)
  if fresh then return with_freshness(fresh_to, decide(keys, known)) end

  -- One worker refreshes a host at a time; the others serve what is cached, or wait for it briefly.
  local lock = "l:" .. host
  if not locks:add(lock, true, 1) then
    local b, why = decide(keys, known)
    if b or why == "none" then return b, why end
    for _ = 1, 50 do
      ngx.sleep(0.002)
      if not locks:get(lock) then break end
    end
    known, fresh, fresh_to = from_cache(keys, ngx.now(), generation)
    if fresh then return with_freshness(fresh_to, decide(keys, known)) end
  end

  local versions = {}
  for i, key in ipairs(keys) do versions[i] = routes:get("v:" .. key) or 0 end
  local now = ngx.now()
  local found, err = fetch(keys)
  locks:delete(lock)
  if not found then
    ngx.log(ngx.WARN, "dynroute: redis unreachable (", err, "); serving cached routes for ", host)
    local b, why = decide(keys, known)
    if b or why == "none" then return b, why end
    return nil, "unavailable"
  end
  for i, key in ipairs(keys) do store(key, found[i], versions[i], generation, now) end
  return with_freshness(now + config.cache_ttl, decide(keys, found))
end

-- A change of one domain (from the invalidation channel): its entry goes, its version moves on.
function _M.invalidate(key)
  routes:incr("v:" .. key, 1, 0)
  routes:delete("r:" .. key)
  routes:incr("epoch", 1, 0)
end

-- After missed messages (subscriber reconnected): every entry becomes stale, still usable if Redis fails.
function _M.invalidate_all()
  routes:incr("gen", 1, 0)
  routes:incr("epoch", 1, 0)
end

-- Moves on with every invalidation: per-worker copies of answers made before it are void.
function _M.epoch()
  return routes:get("epoch") or 0
end

return _M
