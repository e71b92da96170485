-- Drops cached routes the moment the relay changes them: one subscription to
-- <prefix>route-invalidate per nginx instance (worker 0), since the cache is
-- shared by all workers. After a reconnect, messages may have been missed:
-- every entry turns stale (refreshed on use, still served if Redis fails).
-- "!backend-policy" announces a new destination policy: every worker re-reads it;
-- "!cert:<name>" a changed certificate (see tls.lua).
local config = require "dynroute.config"
local metrics = require "dynroute.metrics"
local policy = require "dynroute.policy"
local redis = require "dynroute.redis"
local routes = require "dynroute.routes"
local tls = require "dynroute.tls"

local _M = {}

local function listen()
  local red, err = redis.connect(config.redis)
  if not red then return nil, err end
  local channel = config.prefix .. "route-invalidate"
  local ok, serr = red:command("SUBSCRIBE", channel)
  if not ok then red:close(); return nil, serr end
  routes.invalidate_all()
  tls.invalidate()
  policy.changed()
  ngx.log(ngx.NOTICE, "dynroute: subscribed to ", channel)
  red:settimeout(5000)
  while not ngx.worker.exiting() do
    local msg, rerr = red:read()
    if msg then
      if type(msg) == "table" and msg[1] == "message" then
        metrics.inc("dynroute_router_invalidations_total")
        if msg[3] == "!backend-policy" then
          policy.changed()
          routes.bump_epoch()
        elseif msg[3]:sub(1, 6) == "!cert:" then
          tls.invalidate()
        else
          routes.invalidate(msg[3])
        end
      end
    elseif rerr == "timeout" then
      -- Quiet channel: prove the connection still works.
      local sent, perr = red:send("PING")
      if not sent then red:close(); return nil, perr end
    else
      red:close()
      return nil, rerr
    end
  end
  red:close()
  return true
end

local function loop(premature)
  if premature then return end
  local backoff = 0.05
  while not ngx.worker.exiting() do
    local ok, err = listen()
    if ok then return end
    metrics.inc("dynroute_router_redis_errors_total")
    ngx.log(ngx.WARN, "dynroute: invalidation subscription lost (", err, "); retrying in ", backoff, "s")
    ngx.sleep(backoff)
    backoff = math.min(backoff * 2, 2)
  end
end

function _M.start()
  if config.invalidation and ngx.worker.id() == 0 then
    local ok, err = ngx.timer.at(0, loop)
    if not ok then ngx.log(ngx.ERR, "dynroute: cannot start the subscriber: ", err) end
  end
end

return _M
