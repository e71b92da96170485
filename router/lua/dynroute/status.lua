-- The status listener (ROUTER_STATUS_LISTEN): /metrics for Prometheus,
-- /health (backends marked down) as JSON. Loopback by default; not routed.
local cjson = require "cjson.safe"
local health = require "dynroute.health"
local metrics = require "dynroute.metrics"

local _M = {}

function _M.metrics()
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.print(metrics.render(health.list()))
end

function _M.health()
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  local down = health.list()
  ngx.print(cjson.encode({ down = #down > 0 and down or cjson.empty_array }), "\n")
end

return _M
