-- The access phase: find the request's route and plan its peers; the
-- balancer phase then picks them in order (cosockets are not allowed there).
-- Answers live in a per-worker LRU by Host header, valid while no
-- invalidation has happened since (one integer from the shared dict) and
-- until they would go stale: the common request parses and decodes nothing.
local answer = require "dynroute.answer"
local config = require "dynroute.config"
local peers = require "dynroute.peers"
local routes = require "dynroute.routes"
local balancer = require "ngx.balancer"
local lrucache = require "resty.lrucache"

local _M = {}
local hot = lrucache.new(10000)

local function find(raw)
  local epoch = routes.epoch()
  local entry = raw and hot:get(raw)
  if entry and entry.epoch == epoch and entry.fresh_to > ngx.now() then return entry.route, entry.why end
  local host = routes.normalize(raw or ngx.var.host)
  if not host then return nil, "invalid" end
  local backends, why, fresh_to = routes.lookup(host)
  local route = backends and peers.route(host, backends) or nil
  if fresh_to and raw then hot:set(raw, { epoch = epoch, fresh_to = fresh_to, route = route, why = why }) end
  return route, why, host
end

function _M.access()
  local raw = ngx.var.http_host
  local route, why, host = find(raw)
  if not route then
    host = host or routes.normalize(raw) or raw
    if why == "invalid" then return answer.send(400, "the request names no valid host") end
    if why == "unavailable" then return answer.send(503, "routes are unavailable: Redis cannot be reached and " .. host .. " is not cached") end
    return answer.send(404, "no route for host " .. host)
  end
  local plan, addrs, start = peers.plan(route)
  if not plan then return answer.send(502, "no backend of " .. route.host .. " can be reached: " .. tostring(addrs)) end
  local first = plan[start]
  ngx.ctx.dynroute = { peers = plan, addrs = addrs, start = start, tried = 0 }
  -- Variables default to the common case in nginx.conf; write only what differs (each write costs).
  if first.scheme ~= "http" then
    ngx.var.dynroute_scheme = first.scheme
    ngx.var.dynroute_sni = first.host
  end
  if first.path ~= "" then ngx.var.dynroute_path = first.path end
  if config.backend_host == "backend" then ngx.var.dynroute_host = first.host end
end

-- Tries the planned peers in order, from `start` round the list.
function _M.balance()
  local ctx = ngx.ctx.dynroute
  local n = #ctx.peers
  if ctx.tried == 0 and n > 1 then balancer.set_more_tries(n - 1) end
  if ctx.tried >= n then return ngx.exit(502) end
  local i = (ctx.start - 1 + ctx.tried) % n + 1
  ctx.tried = ctx.tried + 1
  local peer = ctx.peers[i]
  local addr = ctx.addrs and ctx.addrs[i] or peer.addr
  local ok, err = balancer.set_current_peer(addr, peer.port)
  if not ok then
    ngx.log(ngx.ERR, "dynroute: cannot use peer ", addr, ":", peer.port, ": ", err)
    return ngx.exit(502)
  end
end

return _M
