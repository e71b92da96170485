-- Turns a mapping's backend URLs into the peers of one request: round robin
-- over the backends (state kept in the parsed route, so it is bounded by the
-- route caches, not by the hosts requested), healthy backends first, then
-- the ones marked down, each address checked against the destination policy.
-- Host names resolve through /etc/hosts, then DNS (A records; answers and
-- failures cached).
local config = require "dynroute.config"
local health = require "dynroute.health"
local policy = require "dynroute.policy"
local resolver = require "nginx.dns.resolver"
local lrucache = require "resty.lrucache"

local _M = {}
local resolved = lrucache.new(1000) -- name -> list of addresses, or an error string (negative)

-- The keepalive cache of nginx is keyed by address alone. A connection is
-- reused only by requests of the scheme and TLS name that opened it: per
-- worker (as that cache is), the first (scheme, SNI) to use an address owns
-- its pooled connections; others get fresh ones (upstream dynroute_fresh).
local owners, owner_count, MAX_OWNERS = {}, 0, 20000

local function is_literal(name)
  return name:find("^[%d.]+$") or name:find(":", 1, true)
end

-- "http://host:port/path" parsed once: scheme, host (IPv6 without brackets),
-- port, path; for IP literals also addr (as balancer and logs write it) and key.
function _M.parse(url)
  local scheme, authority, path = url:match("^(https?)://([^/]+)(.*)$")
  if not scheme then return nil end
  local host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
  local v6 = host ~= nil
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  local b = { scheme = scheme, host = host:lower(), port = port, path = path:gsub("/$", "") }
  -- The name TLS verifies; nginx sends none for an address (RFC 6066), and "[" marks IPv6 ones.
  b.sni = v6 and "[" .. b.host .. "]" or b.host
  b.owner = scheme .. "|" .. b.sni
  if is_literal(b.host) then
    b.addr = v6 and "[" .. b.host .. "]" or b.host
    b.key = b.addr .. ":" .. port
    b.health = health.key(scheme, b.sni, b.key)
  end
  return b
end

-- ROUTER_RESOLVER: "addr", "addr:port" or "[v6]:port".
local nameserver = config.resolver
if nameserver then
  local host, port = nameserver:match("^%[(.+)%]:(%d+)$")
  if not host then host, port = nameserver:match("^([%d.]+):(%d+)$") end
  if host then nameserver = { host, tonumber(port) } end
end

local function resolve(name)
  local addr = config.hosts[name]
  if addr then return { addr } end
  local hit = resolved:get(name)
  if hit then
    if type(hit) == "string" then return nil, hit end
    return hit
  end
  if not nameserver then return nil, "no resolver configured for " .. name end
  local r, err = resolver:new({ nameservers = { nameserver }, retrans = 2, timeout = 1000 })
  if not r then return nil, err end
  local answers, qerr = r:query(name, { qtype = r.TYPE_A })
  local why = qerr or (answers and answers.errcode and answers.errstr)
  if not why then
    local list, ttl = {}, config.dns_ttl
    for _, a in ipairs(answers) do
      if a.address then
        list[#list + 1] = a.address
        ttl = math.min(ttl, a.ttl or ttl)
      end
    end
    if #list > 0 then
      resolved:set(name, list, ttl)
      return list
    end
    why = "no address"
  end
  why = "cannot resolve " .. name .. ": " .. tostring(why)
  -- A dead name is not asked again for a while (every request would repeat the query).
  resolved:set(name, why, config.dns_negative_ttl)
  return nil, why
end

-- A route as requests use it: the backends parsed once, for many requests.
-- `direct`: every backend is an IP address of one scheme, so a request needs
-- no resolution and no list of its own (the common case, and the fast one).
-- `name`: the mapping's domain (for messages).
function _M.route(name, backends)
  local list = {}
  local direct = true
  for _, url in ipairs(backends) do
    local b = _M.parse(url)
    if b then
      list[#list + 1] = b
      if not b.addr or b.scheme ~= list[1].scheme then direct = false end
    end
  end
  -- No backends at all: the mapping's owner disabled it (a maintenance switch).
  return { name = name, backends = list, direct = direct, turn = 0, checked = -1, disabled = #backends == 0 }
end

local function pool_ok(key, owner)
  local o = owners[key]
  if o == nil then
    if owner_count >= MAX_OWNERS then return false end
    owners[key] = owner
    owner_count = owner_count + 1
    return true
  end
  return o == owner
end

-- Policy verdicts and pool ownership of a direct route, memoised per policy version.
local function check_direct(route)
  local allowed, refused = {}, nil
  local pooled = true
  for _, b in ipairs(route.backends) do
    local why = policy.check(b.host)
    if why then
      refused = refused or ("backend " .. b.key .. " refused: " .. why)
    else
      allowed[#allowed + 1] = b
      pooled = pool_ok(b.key, b.owner) and pooled
    end
  end
  if refused and #allowed > 0 then ngx.log(ngx.WARN, "dynroute: ", route.name, ": ", refused) end
  route.allowed, route.refused, route.pooled = allowed, refused, pooled
  route.checked = policy.version()
end

-- The order of one request: from the round-robin start, healthy peers first,
-- then those marked down (tried only when the healthy ones failed). `list`
-- is shared by requests; `order` is made only when a peer is down.
local function order_of(list, start)
  local n = #list
  if n == 1 then return nil end
  local down
  for k = 0, n - 1 do
    local b = list[(start - 1 + k) % n + 1]
    if health.is_down(b.health) then down = true; break end
  end
  if not down then return nil end
  local up, later = {}, {}
  for k = 0, n - 1 do
    local b = list[(start - 1 + k) % n + 1]
    if health.is_down(b.health) then later[#later + 1] = b else up[#up + 1] = b end
  end
  for _, b in ipairs(later) do up[#up + 1] = b end
  return up
end

-- One request's plan (its ngx.ctx): { peers, start, pooled, tried, started } for the balancer
-- (started: when the first try began, set by it), or nil, why, refused
-- (refused: the policy stopped every backend).
function _M.plan(route)
  if route.direct then
    if route.checked ~= policy.version() then check_direct(route) end
    local list = route.allowed
    local n = #list
    if n == 0 then return nil, route.refused or "no usable backend", route.refused ~= nil end
    local start = route.turn % n + 1
    route.turn = start
    local order = order_of(list, start)
    if order then return { peers = order, start = 1, pooled = route.pooled, tried = 0, started = false } end
    return { peers = list, start = start, pooled = route.pooled, tried = 0, started = false }
  end

  -- Host names or mixed schemes: resolve, check and order per request.
  local list = route.backends
  local n = #list
  if n == 0 then return nil, "no usable backend" end
  local start = route.turn % n + 1
  route.turn = start
  local scheme = list[start].scheme
  local peers, pooled, last_err, refused = {}, true, nil, nil
  for k = 0, n - 1 do
    local b = list[(start - 1 + k) % n + 1]
    if b.scheme == scheme then
      local addrs, err
      if b.addr then addrs = { b.host } else addrs, err = resolve(b.host) end
      if not addrs then last_err = err end
      for _, addr in ipairs(addrs or {}) do
        local why = policy.check(addr)
        local shown = addr:find(":", 1, true) and "[" .. addr .. "]" or addr
        local key = shown .. ":" .. b.port
        if why then
          refused = "backend " .. (b.addr and key or b.host .. " (" .. key .. ")") .. " refused: " .. why
          ngx.log(ngx.WARN, "dynroute: ", route.name, ": ", refused)
        else
          peers[#peers + 1] = { scheme = b.scheme, host = b.host, port = b.port, path = b.path, sni = b.sni, addr = shown, key = key, health = health.key(b.scheme, b.sni, key) }
          pooled = pool_ok(key, b.owner) and pooled
        end
      end
    end
  end
  if #peers == 0 then
    if refused then return nil, refused, true end
    return nil, last_err or "no usable backend"
  end
  return { peers = order_of(peers, 1) or peers, start = 1, pooled = pooled, tried = 0, started = false }
end

return _M
