-- Turns a mapping's backend URLs into the peers of one request: round robin
-- over the backends per host (per worker), then the others in order for
-- failover. Host names resolve through /etc/hosts, then DNS (cached).
local config = require "dynroute.config"
local resolver = require "nginx.dns.resolver"

local _M = {}
local turn = {}          -- host -> last start index (per worker)
local resolved = {}      -- name -> { addr, until }

-- scheme, host, port, path of "http://host:port/path"; nil when it does not parse.
function _M.parse(url)
  local scheme, authority, path = url:match("^(https?)://([^/]+)(.*)$")
  if not scheme then return nil end
  local host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  return { scheme = scheme, host = host:lower(), port = port, path = path:gsub("/$", "") }
end

local function literal(name)
  return name:find("^[%d.]+$") or name:find(":", 1, true)
end

local function resolve(name)
  if literal(name) then return name end
  local addr = config.hosts[name]
  if addr then return addr end
  local hit = resolved[name]
  if hit and hit.expires > ngx.now() then return hit.addr end
  if not config.resolver then return nil, "no resolver configured for " .. name end
  local r, err = resolver:new({ nameservers = { config.resolver }, retrans = 2, timeout = 1000 })
  if not r then return nil, err end
  local answers, qerr = r:query(name, { qtype = r.TYPE_A })
  if not answers then return nil, qerr end
  if answers.errcode then return nil, answers.errstr end
  for _, a in ipairs(answers) do
    if a.address then
      resolved[name] = { addr = a.address, expires = ngx.now() + math.min(a.ttl or config.dns_ttl, config.dns_ttl) }
      return a.address
    end
  end
  return nil, "no address for " .. name
end

-- A route as requests use it: the backends parsed once, for many requests.
-- `direct`: every backend is an IP address of one scheme, so a request needs
-- no resolution and no list of its own (the common case, and the fast one).
function _M.route(host, backends)
  local list = {}
  local direct = true
  for _, url in ipairs(backends) do
    local b = _M.parse(url)
    if b then
      list[#list + 1] = b
      if literal(b.host) then b.addr = b.host else direct = false end
      if b.scheme ~= list[1].scheme then direct = false end
    end
  end
  return { host = host, backends = list, direct = direct }
end

-- One request's order: round robin picks the first backend (per host, per
-- worker); the others of its scheme follow for failover. Returns the peers
-- and their addresses, or nil and why when none resolves.
function _M.plan(route)
  local list = route.backends
  local n = #list
  if n == 0 then return nil, "no usable backend" end
  local start = (turn[route.host] or 0) % n + 1
  turn[route.host] = start
  if route.direct then
    -- In round-robin order from `start`; the balancer indexes the shared list.
    return list, nil, start
  end
  local scheme = list[start].scheme
  local peers, addrs = {}, {}
  local last_err
  for k = 0, n - 1 do
    local b = list[(start - 1 + k) % n + 1]
    if b.scheme == scheme then
      local addr, err = resolve(b.host)
      if addr then
        peers[#peers + 1] = b
        addrs[#peers] = addr
      else
        last_err = err
      end
    end
  end
  if #peers == 0 then return nil, last_err or "no usable backend" end
  return peers, addrs, 1
end

return _M
