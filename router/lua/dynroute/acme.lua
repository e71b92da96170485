-- Answers ACME HTTP-01 challenges (/.well-known/acme-challenge/<token>) from
-- the key authorizations the daemon's ACME manager puts in Redis
-- (<prefix>acme:<token>) while an order is open. Not cached: a challenge is
-- asked for a few times in its life.
local config = require "dynroute.config"
local metrics = require "dynroute.metrics"
local redis = require "dynroute.redis"

local _M = {}

local PATH = "/.well-known/acme-challenge/"

function _M.challenge()
  local token = ngx.var.uri:sub(#PATH + 1)
  -- Tokens are base64url (RFC 8555 8.1): anything else is no token of ours.
  if token == "" or token:find("[^%w_%-]") then return ngx.exit(ngx.HTTP_NOT_FOUND) end
  local red, err = redis.connect(config.redis)
  local answer
  if red then
    answer, err = red:command("GET", config.prefix .. "acme:" .. token)
    if answer then red:keepalive() else red:close() end
  end
  if not answer then
    metrics.inc("dynroute_router_redis_errors_total")
    ngx.log(ngx.WARN, "dynroute: redis unreachable (", err, ") answering an ACME challenge")
    return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
  end
  if answer == ngx.null then return ngx.exit(ngx.HTTP_NOT_FOUND) end
  ngx.header["Content-Type"] = "application/octet-stream"
  ngx.print(answer)
end

return _M
