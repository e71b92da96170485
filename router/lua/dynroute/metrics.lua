-- Router metrics for Prometheus. Requests count into per-worker tables (no
-- shared-memory lock per request); a timer per worker adds them to the shared
-- dict every second, where the status listener reads them.
local dict = ngx.shared.dynroute_metrics
local floor, concat = math.floor, table.concat

local _M = {}

local counts = {}
local names = {} -- the counters this worker has touched, in order (stable output, no rehash)

-- Every counter the router keeps, with its help text; labels are part of the key.
local help = {
  dynroute_router_requests_total = "Requests answered, by status class.",
  dynroute_router_upstream_seconds = "Time until the backend's response headers (all tries), for requests that reached a backend.",
  dynroute_router_cache_total = "Route lookups answered from the cache (hit) or from Redis (miss).",
  dynroute_router_redis_errors_total = "Redis calls that failed (connect, timeout, protocol).",
  dynroute_router_invalidations_total = "Invalidation messages received.",
  dynroute_router_backends_marked_down_total = "Times a backend was marked down after a failed try.",
  dynroute_router_backend_refused_total = "Backend addresses refused by the destination policy.",
  dynroute_router_upstream_garbage_total = "Backend answers that were not HTTP (answered 502).",
  dynroute_router_tls_handshakes_total = "TLS handshakes by the certificate served: own (by SNI), default, none (refused).",
  dynroute_router_tls_cache_total = "Certificate lookups answered from the worker's cache (hit) or from Redis (miss).",
  dynroute_router_lua_memory_bytes = "Lua memory in use, per worker.",
  dynroute_router_backend_down = "Backends skipped after a failure (1 while marked down).",
}

function _M.inc(key, n)
  local v = counts[key]
  if v == nil then names[#names + 1] = key; v = 0 end
  counts[key] = v + (n or 1)
end

local class_key = {}
for c = 1, 5 do class_key[c] = 'dynroute_router_requests_total{class="' .. c .. 'xx"}' end
local buckets = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }
local bucket_key = {}
for i, le in ipairs(buckets) do bucket_key[i] = 'dynroute_router_upstream_seconds_bucket{le="' .. le .. '"}' end
bucket_key[#buckets + 1] = 'dynroute_router_upstream_seconds_bucket{le="+Inf"}'

-- One answer (header filter). `t`: seconds from the first try to the backend's response headers, when one was tried.
function _M.request(status, t)
  local c = floor(status / 100)
  _M.inc(class_key[c] or class_key[5])
  if t then
    local i = 1
    while buckets[i] and t > buckets[i] do i = i + 1 end
    _M.inc(bucket_key[i])
    _M.inc("dynroute_router_upstream_seconds_sum", t)
    _M.inc("dynroute_router_upstream_seconds_count")
  end
end

local memory_key

local function flush()
  for i = 1, #names do
    local key = names[i]
    local v = counts[key]
    if v ~= 0 then
      dict:incr(key, v, 0)
      counts[key] = 0
    end
  end
  dict:set(memory_key, collectgarbage("count") * 1024)
end

function _M.start()
  memory_key = 'dynroute_router_lua_memory_bytes{worker="' .. ngx.worker.id() .. '"}'
  local ok, err = ngx.timer.every(1, flush)
  if not ok then ngx.log(ngx.ERR, "dynroute: cannot start the metrics timer: ", err) end
end

-- The status listener's /metrics: counters and gauges as stored, the histogram cumulated, and the
-- backends marked down now (`down`, from health.list()) as gauges.
function _M.render(down)
  flush() -- this worker's own counts, so a scrape right after traffic sees them
  local keys = dict:get_keys(0)
  table.sort(keys)
  local out, described = {}, {}
  for _, key in ipairs(keys) do
    local name = key:match("^([%w_]+)")
    if not name:find("^dynroute_router_upstream_seconds") then
      if not described[name] then
        described[name] = true
        out[#out + 1] = "# HELP " .. name .. " " .. (help[name] or "")
        out[#out + 1] = "# TYPE " .. name .. " " .. (name:find("_total$") and "counter" or "gauge")
      end
      out[#out + 1] = key .. " " .. dict:get(key)
    end
  end
  out[#out + 1] = "# HELP dynroute_router_upstream_seconds " .. help.dynroute_router_upstream_seconds
  out[#out + 1] = "# TYPE dynroute_router_upstream_seconds histogram"
  local cumulative = 0
  for i = 1, #bucket_key do
    cumulative = cumulative + (dict:get(bucket_key[i]) or 0)
    out[#out + 1] = bucket_key[i] .. " " .. cumulative
  end
  out[#out + 1] = "dynroute_router_upstream_seconds_sum " .. (dict:get("dynroute_router_upstream_seconds_sum") or 0)
  out[#out + 1] = "dynroute_router_upstream_seconds_count " .. (dict:get("dynroute_router_upstream_seconds_count") or 0)
  out[#out + 1] = "# HELP dynroute_router_backend_down " .. help.dynroute_router_backend_down
  out[#out + 1] = "# TYPE dynroute_router_backend_down gauge"
  for _, b in ipairs(down) do
    out[#out + 1] = 'dynroute_router_backend_down{backend="' .. b.backend .. '"} 1'
  end
  out[#out + 1] = ""
  return concat(out, "\n")
end

return _M
