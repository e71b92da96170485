-- Redis reads of one worker's concurrent requests, sent together (the
-- router without a route cache, where every request reads its route).
--
-- A request that finds no round trip in flight sends its read at once; the
-- requests that arrive meanwhile queue, and the next round trip, sent the
-- moment the current one is back (by one of them), carries all of their reads
-- in one pipeline, each key once. So every answer still comes from a read
-- sent after its request arrived, while under load a worker pays one
-- connection use, one send and one receive per round trip instead of per
-- request, and Redis one wake-up.
local config = require "dynroute.config"
local redis = require "dynroute.redis"
local semaphore = require "ngx.semaphore"

local _M = {}

local queued       -- the batch that requests join until its round trip starts
local busy = false -- a round trip is in flight (or its successor about to start)
local busy_since = 0

local function new_batch()
  return { commands = {}, slots = {}, n = 0, waiting = 0, sema = semaphore.new() }
end


-- The longest one round trip may take within the Redis timeouts: asking each sentinel, connecting,
-- AUTH, SELECT and the pipeline's reply (the settings do not change after startup).
local budget_ms
local function round_trip_ms()
  if not budget_ms then
    local r = config.redis
    local sentinels = r.sentinels and #r.sentinels or 0
    budget_ms = (sentinels + 1) * (r.connect_timeout + r.read_timeout) + 3 * r.read_timeout
  end
  return budget_ms
end

-- Sends `batch`, hands the replies to its waiters, and the next batch (queued
-- meanwhile) to one of its own waiters, who sends it.
local function lead(batch)
  if queued == batch then queued = nil end
  busy_since = ngx.now()
  -- An error reply fails only its own slot (errs); a failed round trip, every slot.
  local ok, replies, err, errs = pcall(redis.round_trip, config.redis, batch.commands, true)
  if not ok then replies, err = nil, replies end
  batch.replies, batch.err, batch.errs, batch.done = replies, err, errs, true
  if batch.waiting > 0 then batch.sema:post(batch.waiting) end
  if queued then queued.sema:post(1) else busy = false end
end

-- The reply to `command` (a list of arguments; `key` tells equal commands
-- apart, so a batch sends each once), or nil, err.
function _M.read(command, key)
  local batch = queued
  if not batch then
    batch = new_batch()
    queued = batch
  end
  local slot = batch.slots[key]
  if not slot then
    slot = batch.n + 1
    batch.n = slot
    batch.commands[slot] = command
    batch.slots[key] = slot
  end
  local timeout_ms = round_trip_ms()
  -- Defensive: a round trip is bounded by the Redis timeouts (and errors are caught), but were a leader's
  -- request ever torn down mid-way, the worker's reads must not wait for it for good.
  if busy and ngx.now() - busy_since > 2 * timeout_ms / 1000 then busy = false end
  if not busy then
    busy = true
    lead(batch)
  else
    batch.waiting = batch.waiting + 1
    -- Behind at most the round trip in flight, then this one.
    local ok, err = batch.sema:wait(2 * timeout_ms / 1000)
    if not ok then return nil, "waiting for redis: " .. err end
    if not batch.done then
      -- Woken to send it: the round trip before is back.
      batch.waiting = batch.waiting - 1
      lead(batch)
    end
  end
  if not batch.replies then return nil, batch.err end
  if batch.errs and batch.errs[slot] then return nil, batch.errs[slot] end
  return batch.replies[slot]
end

return _M
