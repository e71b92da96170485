-- The backend destination policy the daemon writes to <prefix>backend-policy:
-- {"rules":[{"cidr":"127.0.0.0/8","action":"deny","reason":"…"}, …]}, first
-- match wins, no match allows. Every address the router is about to connect
-- to is checked. Each worker keeps the rules parsed into numbers, re-reads
-- the key when the relay announces "!backend-policy" (through the routes
-- epoch) or after cache_ttl, keeps the last rules while Redis is unreachable
-- or the key is missing (a copy in the shared dict outlives the worker), and
-- refuses every backend while no policy was ever loaded: fail closed.
local cjson = require "cjson.safe"
local config = require "dynroute.config"
local redis = require "dynroute.redis"
local lrucache = require "resty.lrucache"
local metrics = require "dynroute.metrics"

local shared = ngx.shared.dynroute_routes
local tonumber, floor = tonumber, math.floor

local _M = {}

local rules            -- parsed rules; nil: none loaded yet
local version = 0      -- moves on with every load: memos keyed by it go stale
local fresh_to = 0
local seen_change      -- the shared "policy-change" counter when last loaded
local seen_epoch       -- the routes epoch when that counter was last read (any change moves the epoch)
local fetching = false -- one fetch per worker at a time; the others use what is loaded
local verdicts = lrucache.new(10000) -- address -> reason or false, for this version

local function ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Eight 16-bit groups, or nil.
local function ipv6(s)
  local groups = {}
  local v4 = s:match(":(%d+%.%d+%.%d+%.%d+)$")
  if v4 then
    local n = ipv4(v4)
    if not n then return nil end
    s = s:sub(1, #s - #v4) .. string.format("%x:%x", floor(n / 65536), n % 65536)
  end
  local head, tail = s:match("^(.-)::(.*)$")
  local parts = {}
  local function split(str, into)
    if str == "" then return true end
    for g in (str .. ":"):gmatch("([^:]*):") do
      if not g:find("^%x%x?%x?%x?$") then return false end
      into[#into + 1] = tonumber(g, 16)
    end
    return true
  end
  if head then
    local h, t = {}, {}
    if not split(head, h) or not split(tail, t) or #h + #t > 7 then return nil end
    for _, g in ipairs(h) do parts[#parts + 1] = g end
    for _ = 1, 8 - #h - #t do parts[#parts + 1] = 0 end
    for _, g in ipairs(t) do parts[#parts + 1] = g end
  else
    if not split(s, parts) or #parts ~= 8 then return nil end
  end
  for i = 1, 8 do groups[i] = parts[i] end
  return groups
end

-- An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as its IPv4 number, else nil.
local function mapped(g)
  if g[1] == 0 and g[2] == 0 and g[3] == 0 and g[4] == 0 and g[5] == 0 and g[6] == 0xffff then
    return g[7] * 65536 + g[8]
  end
end

local function parse_rule(r)
  if type(r) ~= "table" or type(r.cidr) ~= "string" or (r.action ~= "allow" and r.action ~= "deny") then return nil end
  local addr, bits = r.cidr:match("^([^/]+)/(%d+)$")
  if not addr then addr = r.cidr end
  local reason = type(r.reason) == "string" and r.reason or r.cidr
  local n = ipv4(addr)
  if n then
    bits = tonumber(bits or 32)
    if bits > 32 then return nil end
    local size = 2 ^ (32 - bits)
    local lo = n - n % size
    return { v4 = true, lo = lo, hi = lo + size - 1, allow = r.action == "allow", reason = reason }
  end
  local g = ipv6(addr)
  if not g then return nil end
  bits = tonumber(bits or 128)
  if bits > 128 then return nil end
  -- As the daemon's policy (ipaddr.js): an IPv6 rule matches IPv6 addresses only, so never an
  -- IPv4-mapped one, which is checked as the IPv4 address it carries.
  return { v6 = g, bits = bits, allow = r.action == "allow", reason = reason }
end

local function v6_match(rule, g)
  local bits = rule.bits
  for i = 1, 8 do
    if bits <= 0 then return true end
    local size = bits >= 16 and 1 or 2 ^ (16 - bits)
    if floor(g[i] / size) ~= floor(rule.v6[i] / size) then return false end
    bits = bits - 16
  end
  return true
end

local function load(raw)
  local doc = cjson.decode(raw)
  if type(doc) ~= "table" or type(doc.rules) ~= "table" then return nil, "not a policy document" end
  local parsed = {}
  for i, r in ipairs(doc.rules) do
    local rule = parse_rule(r)
    if not rule then return nil, "rule " .. i .. " is invalid" end
    parsed[i] = rule
  end
  rules = parsed
  version = version + 1
  verdicts:flush_all()
  return true
end

local function fetch()
  local red, err = redis.connect(config.redis)
  if not red then return nil, err end
  local raw, gerr = red:command("GET", config.prefix .. "backend-policy")
  if raw == nil then red:close(); return nil, gerr end
  red:keepalive()
  return raw
end

-- Access phase (cosockets allowed): makes sure the rules are loaded and fresh enough.
-- `epoch` (routes.epoch()) is read per request anyway: the shared counter is read only when it moved.
function _M.refresh(epoch)
  local now = ngx.now()
  if rules and epoch == seen_epoch and fresh_to > now then return end
  local change = shared:get("policy-change")
  seen_epoch = epoch
  if rules and change == seen_change and fresh_to > now then return end
  if fetching then
    -- Another request of this worker is reading it: use the rules loaded, or wait for the first ones.
    for _ = 1, 100 do
      if rules or not fetching then return end
      ngx.sleep(0.005)
    end
    return
  end
  fetching = true
  local raw, err = fetch()
  fetching = false
  fresh_to = ngx.now() + math.max(config.cache_ttl, 1)
  seen_change = change
  if raw == nil or raw == ngx.null then
    -- Redis unreachable, or the key gone (Redis restarted empty, before the daemon wrote it again):
    -- keep the rules this worker has, or the last any worker saw.
    if raw == nil then metrics.inc("dynroute_router_redis_errors_total") end
    if not rules then
      local copy = shared:get("policy")
      if copy then load(copy) end
    end
    if not rules then
      ngx.log(ngx.ERR, "dynroute: no backend policy (", raw == nil and "redis: " .. tostring(err) or config.prefix .. "backend-policy is not set", "): refusing every backend")
    end
    return
  end
  local ok, perr = load(raw)
  if not ok then
    -- A broken document: keep the last good rules rather than open up or shut down.
    ngx.log(ngx.ERR, "dynroute: ", config.prefix, "backend-policy ignored: ", perr)
    return
  end
  shared:set("policy", raw)
end

-- The relay changed the policy (subscriber): every worker re-reads it on its next request
-- (the caller moves the routes epoch, which makes workers look).
function _M.changed()
  shared:incr("policy-change", 1, 0)
end

-- Bumps with every load: per-route memos of verdicts compare it.
function _M.version()
  return version
end

-- Why `addr` (an IP address, IPv6 without brackets) must not be connected to, or nil when it may.
function _M.check(addr)
  if not rules then return "no backend policy is loaded (" .. config.prefix .. "backend-policy)" end
  local cached = verdicts:get(addr)
  if cached ~= nil then return cached or nil end
  local n = ipv4(addr)
  local g
  if not n then
    g = ipv6(addr)
    if not g then return "not an IP address: " .. addr end
    n = mapped(g)
  end
  local verdict = false
  for _, rule in ipairs(rules) do
    local hit
    if rule.v4 then hit = n ~= nil and n >= rule.lo and n <= rule.hi
    else hit = n == nil and v6_match(rule, g) end
    if hit then
      verdict = not rule.allow and rule.reason
      break
    end
  end
  verdicts:set(addr, verdict)
  return verdict or nil
end

return _M
