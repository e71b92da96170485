-- The access phase: find the request's route and plan its peers; the
-- balancer phase then picks them in order (cosockets are not allowed there).
local answer = require "dynroute.answer"
local config = require "dynroute.config"
local peers = require "dynroute.peers"
local routes = require "dynroute.routes"
local balancer = require "ngx.balancer"

local _M = {}

function _M.access()
  local host = routes.normalize(ngx.var.http_host or ngx.var.host)
  if not host then return answer.send(400, "the request names no valid host") end
  local backends, why = routes.lookup(host)
  if not backends then
    if why == "unavailable" then return answer.send(503, "routes are unavailable: Redis cannot be reached and " .. host .. " is not cached") end
    return answer.send(404, "no route for host " .. host)
  end
  local plan, err = peers.plan(host, backends)
  if not plan then return answer.send(502, "no backend of " .. host .. " can be reached: " .. tostring(err)) end
  local first = plan[1]
  ngx.ctx.dynroute = { peers = plan, tried = 0 }
  ngx.var.dynroute_scheme = first.scheme
  ngx.var.dynroute_uri = first.path .. ngx.var.request_uri
  ngx.var.dynroute_host = config.backend_host == "backend" and first.host or (ngx.var.http_host or host)
  ngx.var.dynroute_sni = first.host
end

function _M.balance()
  local ctx = ngx.ctx.dynroute
  if ctx.tried == 0 and #ctx.peers > 1 then balancer.set_more_tries(#ctx.peers - 1) end
  ctx.tried = ctx.tried + 1
  local peer = ctx.peers[ctx.tried]
  if not peer then return ngx.exit(502) end
  ngx.var.dynroute_backend = peer.scheme .. "://" .. peer.host .. ":" .. peer.port
  local ok, err = balancer.set_current_peer(peer.addr, peer.port)
  if not ok then
    ngx.log(ngx.ERR, "dynroute: cannot use peer ", peer.addr, ":", peer.port, ": ", err)
    return ngx.exit(502)
  end
end

return _M
