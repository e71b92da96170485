-- Passive backend health, shared by the workers of one router: a backend
-- address whose try failed (refused, timed out, reset, not HTTP) is marked
-- down for config.down_time seconds. Requests skip marked backends while
-- others remain, and still try them when none does (never fail closed); after
-- the interval one request tries again, so a hung backend costs one timeout
-- per interval instead of one per request.
local config = require "dynroute.config"
local metrics = require "dynroute.metrics"

local dict = ngx.shared.dynroute_health

local _M = {}

-- `key`: the address as nginx logs it, "127.0.0.1:8080" or "[::1]:8080".
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
    if why then list[#list + 1] = { backend = key, reason = why, seconds_left = dict:ttl(key) } end
  end
  table.sort(list, function(a, b) return a.backend < b.backend end)
  return list
end

return _M
