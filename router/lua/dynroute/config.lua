-- The router's settings, set once from nginx.conf (init_by_lua) and read by every module.
local _M = {
  -- sentinels: nil, or { { host =, port = }, ... } to ask for master_name's address instead of host and port
  redis = { host = "127.0.0.1", port = 6379, db = 0, password = "", connect_timeout = 200, read_timeout = 500, pool_size = 32,
            sentinels = nil, master_name = "mymaster", sentinel_password = "" },
  prefix = "",           -- DYNROUTE_REDIS_PREFIX of the daemon
  layout = "route",      -- "route": route:<domain> hashes; "frontend": dynamicproxy's frontend:<domain> sets
  cache_ttl = 5,         -- seconds a cached answer is fresh; invalidation usually ends it sooner
  stale_ttl = 300,       -- seconds a cached answer may still serve while Redis is unreachable
  invalidation = true,   -- subscribe to <prefix>route-invalidate
  resolver = nil,        -- DNS server for host-name backends, e.g. "127.0.0.53"
  dns_ttl = 30,          -- at most this long a resolved name is kept
  dns_negative_ttl = 5,  -- this long a name that did not resolve is not asked again
  backend_host = "client", -- Host sent to backends: "client" (as received) or "backend" (the backend URL's host)
  down_time = 10,        -- seconds a backend that failed is skipped (tried again only when all others are too)
  https_redirect = "off", -- "certified": plain HTTP to hosts with a certificate of their own gets a 308 to https; "all": to every mapped host
  https_port_suffix = "", -- ":8443" when the TLS listener is not on 443, for redirect targets
  hsts = nil,            -- Strict-Transport-Security value sent on TLS answers, e.g. "max-age=31536000"
  tls_default = false,   -- an operator's default certificate is configured (ROUTER_TLS_DEFAULT_CERT): served when SNI finds none
  hosts = {},            -- /etc/hosts, name -> address (the DNS client does not read it)
}

function _M.set(opts)
  for k, v in pairs(opts) do
    if type(v) == "table" and type(_M[k]) == "table" then
      for k2, v2 in pairs(v) do _M[k][k2] = v2 end
    else
      _M[k] = v
    end
  end
  _M.hosts = _M.read_hosts("/etc/hosts")
end

-- IPv4 entries only: host-name backends resolve to A records alike (see peers.lua).
function _M.read_hosts(path)
  local hosts = {}
  local f = io.open(path, "r")
  if not f then return hosts end
  for line in f:lines() do
    line = line:gsub("#.*", "")
    local addr, names = line:match("^%s*(%S+)%s+(.+)$")
    if addr and addr:find("^%d+%.%d+%.%d+%.%d+$") then
      for name in names:gmatch("%S+") do
        name = name:lower()
        if not hosts[name] then hosts[name] = addr end
      end
    end
  end
  f:close()
  return hosts
end

return _M
