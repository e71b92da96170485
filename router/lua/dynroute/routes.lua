-- Which route serves a Host: Redis behind a shared-dict cache, at most one
-- Redis round trip (and at most two commands) per lookup whatever the name.
--
-- Two kinds of entries: the exact host ("r:<host>": backends, or false when
-- Redis has none: negative caching of the whole host), and the wildcard index
-- ("w", the daemon's <prefix>wildcards hash: every live "*.parent" route with
-- its backends). A host that is not mapped exactly is matched against the
-- index in memory, parent by parent, so a name with many labels costs no
-- lookup per label. Entries are fresh for cache_ttl and kept for stale_ttl:
-- stale entries are refreshed (one worker at a time, the lock owned by its
-- holder) and served while Redis is unreachable. A per-key version guards
-- against a refresh that read Redis before an invalidation overwriting the
-- newer state after it.
local cjson = require "cjson.safe"
local batch = require "dynroute.batch"
local config = require "dynroute.config"
local metrics = require "dynroute.metrics"
local peers = require "dynroute.peers"
local redis = require "dynroute.redis"
local lrucache = require "resty.lrucache"

local routes = ngx.shared.dynroute_routes
-- Hosts Redis has no route for live apart, so a flood of unknown names evicts only its own kind.
local unknown = ngx.shared.dynroute_unknown
local locks = ngx.shared.dynroute_locks

local _M = {}

local INDEX_LOCK, INDEX_VERSION = "l:*", "v:*"
local wild_id, wild -- this worker's parsed index: parent -> route, and the stored copy it came from
local wild_meta, wild_meta_raw -- that copy's freshness, parsed, and the stored text it came from
local parsed = lrucache.new(10000) -- host -> its route, parsed
local tokens = 0
local index_fetching = false -- without a route cache: a request of this worker reads the index (the others use the last)
local index_epoch, generation_seen -- without a route cache: the epoch at which this worker's index copy was last found fresh, and the generation then

-- A Host header as nginx makes $host of it: lower case, no port, no trailing dot. Remembered per
-- worker (as many as router.lua keeps routed hosts): the access phase asks for every request whose
-- Host header differs from $host (a port, capitals), a host's requests mostly send one such value,
-- and LuaJIT compiles no pattern substitution (bench/router-callgrind.sh with a port in the Host
-- header: 36.1k instructions a request without this, 31.3k with).
local normalized = lrucache.new(10000)
-- The longest Host header remembered: a name (253) with a trailing dot and a port. A longer one is made up (nginx
-- takes ~8k), and remembering those would let any client fill a worker's memory, ~8 kB a request.
local REMEMBERED = 260

function _M.normalize_header(raw)
  if not raw then return nil end
  local host = normalized:get(raw)
  if not host then
    host = raw:lower():gsub(":%d*$", ""):gsub("%.$", "")
    if #raw <= REMEMBERED then normalized:set(raw, host) end
  end
  return host
end

-- Whether $host is a name the API could have mapped (nginx lets "_", "!" and more through).
function _M.valid(host)
  return host ~= "" and #host <= 253 and not host:find("[^%w%.%-]")
end

local function claim(lock)
  tokens = tokens + 1
  local token = ngx.worker.pid() .. ":" .. tokens
  if locks:add(lock, token, 1) then return token end
end

-- Only its holder releases a lock: a waiter that gave up must not free another worker's.
local function release(lock, token)
  if token and locks:get(lock) == token then locks:delete(lock) end
end

-- At most 100 ms, looking every millisecond (nginx's timer resolution): right after an invalidation
-- every request for the host but one waits here, and each step is latency they all add.
local function wait(lock)
  for _ = 1, 100 do
    ngx.sleep(0.001)
    if not locks:get(lock) then return end
  end
end

-- Exact entry: backends, false (none) or nil (not cached); fresh or not; until when fresh.
local function cached_exact(host, now, generation)
  local key = "r:" .. host
  local value = routes:get(key) or unknown:get(key)
  local entry = value and cjson.decode(value)
  if not entry then return nil end
  return entry.b, entry.f >= now and entry.g == generation, entry.f
end

-- This worker's copy of the index (parent -> route), or nil; fresh or not; until when fresh.
-- Asked on every request without a route cache: nothing is decoded unless the index changed.
local function cached_index(now, generation)
  local raw = routes:get("wm")
  if not raw then return nil end
  local meta = wild_meta
  if raw ~= wild_meta_raw then
    meta = cjson.decode(raw)
    if not meta then return nil end
  end
  if meta.id ~= wild_id then
    local flat = cjson.decode(routes:get("w") or "")
    if type(flat) ~= "table" then return nil end
    local by_parent = {}
    for i = 1, #flat, 2 do
      local backends = cjson.decode(flat[i + 1])
      -- An empty list is a disabled wildcard: it still answers for its subtree.
      if type(backends) == "table" then
        by_parent[flat[i]:sub(3)] = peers.route(flat[i], backends) -- "*.a.b" -> "a.b"
      end
    end
    wild, wild_id = by_parent, meta.id
  end
  wild_meta, wild_meta_raw = meta, raw
  return wild, meta.f >= now and meta.g == generation, meta.f
end

local function exact_command(host)
  if config.layout == "frontend" then return { "SMEMBERS", config.prefix .. "frontend:" .. host } end
  return { "HGET", config.prefix .. "route:" .. host, "backends" }
end

-- The backends as a JSON array (kept as text: it also tells whether a parsed copy is current), or false.
-- "[]" is a disabled mapping: it is routed (to a 503), and no wildcard may answer for it.
local function exact_value(reply)
  if config.layout == "frontend" then return (type(reply) == "table" and #reply > 0) and cjson.encode(reply) or false end
  return type(reply) == "string" and reply or false
end

-- One round trip: the exact host's backends and/or the whole wildcard index (a flat list).
local function fetch(host, want_exact, want_index)
  local commands = {}
  if want_exact then commands[1] = exact_command(host) end
  if want_index then commands[#commands + 1] = { "HGETALL", config.prefix .. "wildcards" } end
  local replies, err = redis.round_trip(config.redis, commands)
  if not replies then return nil, err end
  local exact, index
  if want_exact then exact = exact_value(replies[1]) end
  if want_index then
    index = replies[#replies]
    if type(index) ~= "table" then return nil, "redis: " .. config.prefix .. "wildcards is not a hash" end
  end
  return true, exact, index
end

local function store_exact(host, backends, version, generation, now)
  -- An invalidation since the read means Redis has something newer: do not cache the older answer.
  if (routes:get("v:" .. host) or 0) ~= version then return end
  local key = "r:" .. host
  local value = cjson.encode({ b = backends, g = generation, f = now + config.cache_ttl })
  if backends then
    routes:set(key, value, config.stale_ttl)
    unknown:delete(key)
  else
    unknown:set(key, value, config.stale_ttl)
    routes:delete(key)
  end
end

local function store_index(flat, version, generation, now)
  if (routes:get(INDEX_VERSION) or 0) ~= version then return end
  local id = routes:incr("wid", 1, 0)
  routes:set("w", cjson.encode(flat), config.stale_ttl)
  -- The index stays fresh at least a second, so a lookup never needs it more than once a second.
  routes:set("wm", cjson.encode({ id = id, g = generation, f = now + math.max(config.cache_ttl, 1) }), config.stale_ttl)
end

-- The route of the nearest "*.parent" in the index, or nil.
local function wildcard(index, host)
  local dot = host:find(".", 1, true)
  while dot do
    local route = index[host:sub(dot + 1)]
    if route then return route end
    dot = host:find(".", dot + 1, true)
  end
end

-- Parsed once per worker while its backends stay the same, so round robin carries on across refreshes.
local function exact_route(host, source)
  local route = parsed:get(host)
  if route and route.source == source then return route end
  local backends = cjson.decode(source)
  if type(backends) ~= "table" then return nil end
  route = peers.route(host, backends)
  route.source = source
  parsed:set(host, route)
  return route
end

local function decide(host, exact, index)
  if exact then
    local route = exact_route(host, exact)
    if route then return route end
    return nil, "none"
  end
  if exact == false and index then
    local route = wildcard(index, host)
    if route then return route end
    return nil, "none"
  end
  return nil, "unavailable"
end

-- The route for a normalised host (`epoch`: _M.epoch() as the request read it), or nil and why: "none" (nothing maps it)
-- or "unavailable" (Redis unreachable, nothing cached); third, until when the
-- answer is fresh (nil: stale or uncached, do not copy it).
function _M.lookup(host, epoch)
  local now = ngx.now()
  if config.cache_ttl == 0 then
    -- No route cache: every request asks Redis for the host (the index is still kept, a second at most),
    -- in the round trips the worker's concurrent requests share. Whatever voids this worker's copy of
    -- the index before it goes stale (a wildcard's change, missed messages) moves the epoch: while the
    -- epoch stays, a fresh copy needs no look at the shared dict.
    local index, ifresh
    local generation = generation_seen
    if epoch == index_epoch and wild_meta.f >= now then
      index, ifresh = wild, true
    else
      generation = routes:get("gen") or 0
      index, ifresh = cached_index(now, generation)
      generation_seen = generation
      index_epoch = ifresh and epoch or nil
    end
    local ok, exact, flat
    if ifresh or (index and index_fetching) then
      local reply, err = batch.read(exact_command(host), host)
      if reply == nil then
        ok, exact = false, err
      else
        ok, exact = true, exact_value(reply)
      end
    else
      index_fetching = true
      ok, exact, flat = fetch(host, true, true)
      index_fetching = false
    end
    if not ok then
      metrics.inc("dynroute_router_redis_errors_total")
      ngx.log(ngx.WARN, "dynroute: redis unreachable (", exact, ")")
      return nil, "unavailable"
    end
    metrics.inc('dynroute_router_cache_total{result="miss"}')
    if flat then
      store_index(flat, routes:get(INDEX_VERSION) or 0, generation, now)
      index = cached_index(now, generation)
    end
    return decide(host, exact, index)
  end

  local generation = routes:get("gen") or 0
  local exact, efresh, efresh_to = cached_exact(host, now, generation)
  local index, ifresh, ifresh_to = cached_index(now, generation)
  -- The index matters only when the host has no route of its own (or that is not known yet).
  local want_exact, want_index = not efresh, not exact and not ifresh

  -- One worker refreshes a key at a time; the others serve the stale copy, or wait for it briefly.
  local host_lock = "l:" .. host
  local etoken = want_exact and claim(host_lock)
  local itoken = want_index and claim(INDEX_LOCK)
  if want_exact and not etoken then
    if exact == nil then
      wait(host_lock)
      exact, efresh, efresh_to = cached_exact(host, ngx.now(), generation)
    end
    want_exact = exact == nil
  end
  if want_index and not itoken then
    if index == nil then
      wait(INDEX_LOCK)
      index, ifresh, ifresh_to = cached_index(ngx.now(), generation)
    end
    want_index = index == nil
  end

  if want_exact or want_index then
    metrics.inc('dynroute_router_cache_total{result="miss"}')
    local eversion = routes:get("v:" .. host) or 0
    local iversion = routes:get(INDEX_VERSION) or 0
    now = ngx.now()
    local ok, fexact, flat = fetch(host, want_exact, want_index)
    if ok then
      if want_exact then
        exact, efresh, efresh_to = fexact, true, now + config.cache_ttl
        store_exact(host, exact, eversion, generation, now)
      end
      if want_index then
        store_index(flat, iversion, generation, now)
        index, ifresh, ifresh_to = cached_index(now, generation)
      end
    else
      metrics.inc("dynroute_router_redis_errors_total")
      ngx.log(ngx.WARN, "dynroute: redis unreachable (", fexact, "); serving cached routes for ", host)
    end
    release(host_lock, etoken)
    release(INDEX_LOCK, itoken)
  else
    metrics.inc('dynroute_router_cache_total{result="hit"}')
  end

  local route, why = decide(host, exact, index)
  local fresh_to
  if exact and efresh then
    fresh_to = efresh_to
  elseif exact == false and efresh and ifresh then
    fresh_to = math.min(efresh_to, ifresh_to)
  end
  return route, why, fresh_to
end

-- A change of one domain (from the invalidation channel): its entry goes, its version moves on.
-- A wildcard's change voids the whole index (it is read again at once, in one command).
function _M.invalidate(domain)
  if domain:sub(1, 2) == "*." then
    routes:incr(INDEX_VERSION, 1, 0)
    routes:delete("wm")
  else
    routes:incr("v:" .. domain, 1, 0)
    routes:delete("r:" .. domain)
    unknown:delete("r:" .. domain)
  end
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

-- For the subscriber: a policy change makes every worker look again (policy.refresh).
function _M.bump_epoch()
  routes:incr("epoch", 1, 0)
end

return _M
