-- The request path: the access phase finds the route and plans the peers
-- (cosockets are not allowed later); the balancer picks them in order, and
-- marks a peer that failed down; the header filter counts answers and turns a
-- backend answer that is not HTTP into a 502. Answers live in a per-worker LRU by
-- host, valid while no invalidation has happened since (one integer from
-- the shared dict) and until they would go stale: the common request parses
-- and decodes nothing.
--
-- One host per request, everywhere (routing, X-Forwarded-Host, the access
-- log): nginx's $host, which is the authority of an absolute-form request
-- target when there is one (RFC 9112 3.2.2), else the Host header.
local answer = require "dynroute.answer"
local config = require "dynroute.config"
local health = require "dynroute.health"
local metrics = require "dynroute.metrics"
local peers = require "dynroute.peers"
local policy = require "dynroute.policy"
local routes = require "dynroute.routes"
local tls = require "dynroute.tls"
local balancer = require "ngx.balancer"
local lrucache = require "resty.lrucache"

local _M = {}
-- Answers per host: routed hosts and unknown ones apart, so a flood of unknown names cannot push
-- the hosts that carry traffic out.
local hot = lrucache.new(10000)
local misses = lrucache.new(10000)
local HIT = 'dynroute_router_cache_total{result="hit"}'
local handoff -- a plan on its way to @dynroute_vars (resume)

local function find(host, epoch)
  -- Without a route cache (ROUTER_CACHE_TTL=0) no answer is ever fresh: nothing is kept here.
  local entry = config.cache_ttl > 0 and (hot:get(host) or misses:get(host))
  if entry and entry.epoch == epoch and entry.fresh_to > ngx.now() then
    metrics.inc(HIT)
    return entry.route, entry.why
  end
  if not routes.valid(host) then return nil, "invalid" end
  local route, why, fresh_to = routes.lookup(host, epoch)
  if fresh_to then
    local keep, drop = hot, misses
    if not route then keep, drop = misses, hot end
    keep:set(host, { epoch = epoch, fresh_to = fresh_to, route = route, why = why })
    drop:delete(host)
  end
  return route, why
end

function _M.access()
  local host = ngx.var.host
  local epoch = routes.epoch()
  local route, why = find(host, epoch)
  if not route then
    if why == "invalid" then return answer.send(400, "the request names no valid host") end
    if why == "unavailable" then return answer.send(503, "routes are unavailable: Redis cannot be reached and " .. host .. " is not cached") end
    return answer.send(404, "no route for host " .. host)
  end
  if config.https_redirect ~= "off" and ngx.var.https ~= "on" and (config.https_redirect == "all" or tls.has_certificate(host)) then
    -- 308: the method and body are kept. The ACME challenge path has a location of its own (nginx.conf).
    return ngx.redirect("https://" .. host .. config.https_port_suffix .. ngx.var.request_uri, 308)
  end
  if route.disabled then return answer.send(503, host .. " is disabled by its owner", "disabled") end
  policy.refresh(epoch)
  local plan, err, refused = peers.plan(route)
  if not plan then
    if refused then
      metrics.inc("dynroute_router_backend_refused_total")
      ngx.log(ngx.WARN, "dynroute: ", host, ": ", err)
      return answer.send(502, "no backend of " .. host .. " may be used: " .. err, "backend_refused")
    end
    return answer.send(502, "no backend of " .. host .. " can be reached: " .. tostring(err))
  end
  local first = plan.peers[plan.start]
  if config.backend_host == "backend" then
    ngx.var.dynroute_host = first.host
  else
    local sent = ngx.var.http_host
    -- An absolute-form target names another host than the Host header: the backend gets the one routed by.
    if sent ~= host and routes.normalize_header(sent) ~= host then ngx.var.dynroute_host = host end
  end
  if first.scheme == "http" and plan.pooled and first.path == "" then
    -- The plan is the request's ctx (one table per request, not two).
    ngx.ctx = plan
    return
  end
  -- Variables default to the common case in nginx.conf; write only what differs (each write costs).
  if first.scheme ~= "http" then
    ngx.var.dynroute_scheme = first.scheme
    ngx.var.dynroute_sni = first.sni
  end
  if not plan.pooled then ngx.var.dynroute_upstream = "dynroute_fresh" end
  if first.path ~= "" then ngx.var.dynroute_path = first.path end
  handoff = plan
  return ngx.exec("@dynroute_vars")
end

-- @dynroute_vars's access phase: ngx.exec ran it at once, before any other request of this worker,
-- so the plan waits in one slot (ngx.ctx does not survive the redirect).
function _M.resume()
  local plan = handoff
  handoff = nil
  if not plan then
    ngx.log(ngx.ERR, "dynroute: @dynroute_vars without a plan")
    return ngx.exit(500)
  end
  ngx.ctx = plan
end

-- Tries the planned peers in order, from `start` round the list; a failed try marks its peer down.
function _M.balance()
  local ctx = ngx.ctx
  local list = ctx.peers
  local n = #list
  if ctx.tried == 0 then
    ctx.started = ngx.now()
    if n > 1 then balancer.set_more_tries(n - 1) end
  else
    local prev = list[(ctx.start + ctx.tried - 2) % n + 1]
    local state, code = balancer.get_last_failure()
    if state then health.mark(prev.health, state .. (code and code ~= 0 and " " .. code or "")) end
  end
  if ctx.tried >= n then return ngx.exit(502) end
  local i = (ctx.start - 1 + ctx.tried) % n + 1
  ctx.tried = ctx.tried + 1
  local peer = list[i]
  if ctx.tried > 1 and peer.sni ~= list[(i - 2) % n + 1].sni then ngx.var.dynroute_sni = peer.sni end
  local ok, err = balancer.set_current_peer(peer.addr, peer.port)
  if not ok then
    ngx.log(ngx.ERR, "dynroute: cannot use peer ", peer.key, ": ", err)
    return ngx.exit(502)
  end
end

-- Every answer's status is counted here (one handler fewer per request than
-- a log phase), with the time from the first try to the backend's response
-- headers (ngx.now() as the balancer saw it: no variable to read). nginx 1.22
-- passes a backend answer without a status line on as HTTP/0.9 (no status
-- line, no headers, the bytes as they came): that is a failure, answered
-- by the error page (ngx.exit here ends the proxying and goes there), which
-- counts it. Not a body filter: that would cost every answer a Lua call per
-- chunk to catch the rare one.
function _M.header_filter()
  local status = ngx.status
  if status == 9 then
    local ctx = ngx.ctx
    ngx.log(ngx.WARN, "dynroute: backend ", ngx.var.upstream_addr, " answered something that is not HTTP")
    metrics.inc("dynroute_router_upstream_garbage_total")
    health.mark(ctx.peers[(ctx.start + ctx.tried - 2) % #ctx.peers + 1].health, "not HTTP")
    return ngx.exit(502)
  end
  local started = ngx.ctx.started -- false or nil: no backend was tried (the router answered itself)
  metrics.request(status, started and ngx.now() - started)
  if config.hsts and ngx.var.https == "on" then ngx.header["Strict-Transport-Security"] = config.hsts end
end

-- error_page for what nginx itself decided (a backend's own answers pass
-- through): a try that failed last is marked down like the ones before it.
function _M.error_page()
  local status = ngx.status
  if status == 502 or status == 504 then
    -- Only the header filter turns a backend's 200 into a 502: its answer was not HTTP (and is marked).
    -- nginx took it for HTTP/0.9 and so writes no status line or headers for this request: the answer does.
    local tries = status == 502 and ngx.var.upstream_status
    if tries and tries:sub(-3) == "200" then
      return answer.send_raw(502, "the backend answered something that is not HTTP")
    end
    -- ngx.ctx does not survive the internal redirect here; variables do.
    local addrs = ngx.var.upstream_addr
    local last = addrs and addrs:match("([^%s,:]+:%d+)$") or addrs and addrs:match("(%[[%x:.]+%]:%d+)$")
    if last then health.mark(health.key(ngx.var.dynroute_scheme, ngx.var.dynroute_sni, last), status == 504 and "timed out" or "failed") end
  end
  return answer.error_page()
end

return _M
