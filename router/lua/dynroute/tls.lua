-- Picks the certificate of a TLS handshake by SNI (ssl_certificate_by_lua):
-- the name's own certificate, else the wildcard one label up ("*.parent"),
-- else the operator's default (nginx's ssl_certificate, left in place), else
-- the handshake fails. Certificates come from the daemon's <prefix>cert:<name>
-- hashes in Redis, one round trip for both candidates, and are cached twice:
-- the PEM in the shared dict (for every worker, kept stale_ttl to serve while
-- Redis is down; names without one in a dict of their own, so that a flood of
-- made-up SNI names cannot evict real certificates) and the parsed cdata per
-- worker (the handshake is TLS's hot
-- path: parsing PEM there would cost more than the lookup). Any certificate
-- change (the "!cert:" messages of the invalidation channel) moves a
-- generation on, which makes every cached answer stale at once: a wildcard's
-- change reaches names cached under their own keys.
local ssl = require "ngx.ssl"
local config = require "dynroute.config"
local metrics = require "dynroute.metrics"
local redis = require "dynroute.redis"
local lrucache = require "resty.lrucache"

local certs = ngx.shared.dynroute_certs
local misses = ngx.shared.dynroute_cert_misses
local find, sub, lower, tonumber = string.find, string.sub, string.lower, tonumber

local _M = {}

local parsed = lrucache.new(2000) -- server name -> { g, f, body, cert, key } (no cert, key: none)
local NONE_SEP = "\0"

local function fetch(name)
  local commands = { { "HMGET", config.prefix .. "cert:" .. name, "chain", "key" } }
  local dot = find(name, ".", 1, true)
  if dot and sub(name, 1, 2) ~= "*." then
    commands[2] = { "HMGET", config.prefix .. "cert:*." .. sub(name, dot + 1), "chain", "key" }
  end
  local replies, err = redis.round_trip(config.redis, commands)
  if not replies then return nil, err end
  for _, r in ipairs(replies) do
    if type(r) == "table" and type(r[1]) == "string" and type(r[2]) == "string" then return r[1] .. NONE_SEP .. r[2] end
  end
  return ""
end

-- The PEM pair for a name ("" for none) and whether it is current; nil when nothing is known.
local function shared(name, gen, now)
  local key = "c:" .. name
  local v = certs:get(key) or misses:get(key)
  if not v then return nil end
  local g, f, body = v:match("^(%d+)|([%d.]+)|(.*)$")
  return body, tonumber(g) == gen and tonumber(f) >= now
end

local function parse(name, body, gen, fresh_until)
  local entry = parsed:get(name)
  -- The PEM this worker parsed before: only its freshness changes (parsing is the costly part).
  if entry and entry.body == body then
    entry.g, entry.f = gen, fresh_until
    return entry
  end
  entry = { g = gen, f = fresh_until, body = body }
  if body ~= "" then
    local at = find(body, NONE_SEP, 1, true)
    local cert, cerr = ssl.parse_pem_cert(sub(body, 1, at - 1))
    local key, kerr = ssl.parse_pem_priv_key(sub(body, at + 1))
    if not cert or not key then
      ngx.log(ngx.ERR, "dynroute: the certificate for ", name, " does not parse: ", cerr or kerr)
    else
      entry.cert, entry.key = cert, key
    end
  end
  parsed:set(name, entry)
  return entry
end

-- The cached or fetched choice for a server name: { cert, key } or an entry without them.
local function choose(name)
  local now = ngx.now()
  local gen = certs:get("gen") or 0
  local entry = parsed:get(name)
  if entry and entry.g == gen and entry.f >= now then
    metrics.inc('dynroute_router_tls_cache_total{result="hit"}')
    return entry
  end
  local body, fresh = shared(name, gen, now)
  if body and fresh then
    return parse(name, body, gen, now + config.cache_ttl)
  end
  metrics.inc('dynroute_router_tls_cache_total{result="miss"}')
  local fetched, err = fetch(name)
  if not fetched then
    metrics.inc("dynroute_router_redis_errors_total")
    ngx.log(ngx.WARN, "dynroute: redis unreachable (", err, ") looking up the certificate of ", name)
    -- Serve what was known, however old; nothing known: the default (or no handshake).
    if body then return parse(name, body, -1, 0) end
    return { g = -1, f = 0 }
  end
  -- Kept stale_ttl so an outage keeps serving it; fresh for cache_ttl (invalidation usually ends it sooner).
  -- One dict holds a name at a time: the other's answer for it is older.
  local key, value = "c:" .. name, gen .. "|" .. (now + config.cache_ttl) .. "|" .. fetched
  if fetched == "" then
    certs:delete(key)
    misses:set(key, value, config.stale_ttl)
  else
    misses:delete(key)
    certs:set(key, value, config.stale_ttl)
  end
  return parse(name, fetched, gen, now + config.cache_ttl)
end

-- ssl_certificate_by_lua: set the chosen certificate, keep the default, or end the handshake.
function _M.certificate()
  local name = ssl.server_name()
  if name then
    name = lower(name)
    local entry = choose(name)
    if entry.cert then
      local ok, err = ssl.clear_certs()
      if ok then ok, err = ssl.set_cert(entry.cert) end
      if ok then ok, err = ssl.set_priv_key(entry.key) end
      if ok then
        metrics.inc('dynroute_router_tls_handshakes_total{certificate="own"}')
        return
      end
      ngx.log(ngx.ERR, "dynroute: cannot set the certificate of ", name, ": ", err)
      return ngx.exit(ngx.ERROR)
    end
  end
  if config.tls_default then
    metrics.inc('dynroute_router_tls_handshakes_total{certificate="default"}')
    return
  end
  metrics.inc('dynroute_router_tls_handshakes_total{certificate="none"}')
  ngx.log(ngx.WARN, "dynroute: no certificate for ", name or "(no SNI)", " and no default: handshake refused")
  return ngx.exit(ngx.ERROR)
end

-- Whether a name has a certificate of its own (exact or the wildcard one label up), from the same cache.
function _M.has_certificate(name)
  return choose(name).cert ~= nil
end

-- A certificate changed (or messages may have been missed): every cached choice is stale.
function _M.invalidate()
  certs:incr("gen", 1, 0)
end

return _M
