-- Passive backend health, shared by the workers of one router: a backend
-- whose try failed (refused, timed out, reset, not HTTP) is marked down for
-- config.down_time seconds. A backend is its address with the scheme and TLS
-- name used to reach it, so one tenant's route that speaks https to another
-- tenant's plain-HTTP backend (and fails) cannot mark that backend down. Requests skip marked backends while
-- others remain, and still try them when none does (never fail closed); after
-- the interval one request tries again, so a hung backend costs one timeout
-- per interval instead of one per request.
local config = require "dynroute.config"
local metrics = require "dynroute.metrics"

local dict = ngx.shared.dynroute_health

local _M = {}

-- The health key of a backend: the scheme, the TLS name for https (plain HTTP
-- to an address is the same whatever name led there), and the address as
-- nginx logs it ("127.0.0.1:8080", "[::1]:8080"); made once per backend.
function _M.key(scheme, sni, addr)
  if scheme == "http" then return "http||" .. addr end
  return scheme .. "|" .. sni .. "|" .. addr
end

function _M.is_down(key)
  return dict:get(key) ~= nil
end

-- Marks a backend down; true when it was up until now (counted and logged once per interval).
function _M.mark(key, why)
  local ok = dict:add(key, why, config.down_time)
  if ok then
    metrics.inc("dynroute_router_backends_marked_down_total")
    ngx.log(ngx.WARN, "dynroute: backend ", key, " marked down for ", config.down_time, "s: ", why)
  end
  return ok
end

-- Backends marked down now, for operators: { backend, reason, seconds_left }.
function _M.list()
  local list = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local why = dict:get(key)
    local scheme, name, addr = key:match("^([^|]*)|([^|]*)|(.*)$")
    if why and addr then list[#list + 1] = { backend = addr, scheme = scheme, name = name, reason = why, seconds_left = dict:ttl(key) } end
  end
  table.sort(list, function(a, b) return a.backend < b.backend end)
  return list
end

return _M
