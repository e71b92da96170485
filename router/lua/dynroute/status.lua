-- The status listener (ROUTER_STATUS_LISTEN): /metrics for Prometheus,
-- /health (backends marked down) and /policy?address=A (the destination
-- policy's verdict on an address) as JSON. Not routed.
local cjson = require "cjson.safe"
local health = require "dynroute.health"
local metrics = require "dynroute.metrics"
local policy = require "dynroute.policy"
local routes = require "dynroute.routes"

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

-- Why the router would refuse to connect to an address, as it decides for backends (nothing is connected to).
function _M.policy()
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  local address = ngx.var.arg_address
  if not address or address == "" then
    ngx.status = 400
    return ngx.print(cjson.encode({ code = "invalid_argument", message = "give ?address=<IPv4 or IPv6 address>" }), "\n")
  end
  address = ngx.unescape_uri(address)
  policy.refresh(routes.epoch())
  ngx.print(cjson.encode({ address = address, refused = policy.check(address) or cjson.null }), "\n")
end

return _M
