-- A minimal Redis client on nginx cosockets (RESP2): connect with pooled
-- keepalive, AUTH/SELECT on fresh connections, pipelined commands, and a
-- subscribed read loop. Debian's lua-nginx-redis needs nginx-extras and has
-- no per-phase timeouts, so the router carries this instead.
--
-- With sentinels configured, the address comes from Redis Sentinel
-- (SENTINEL get-master-addr-by-name), kept per worker and asked again after a
-- connection error (the master died or moved), at most every 100 ms, so a
-- failover is followed within a request or two of the sentinels' promotion.
local tcp = ngx.socket.tcp
local concat, tostring, tonumber, sub, byte = table.concat, tostring, tonumber, string.sub, string.byte

local _M = {}
local mt = { __index = _M }

local REASK_S = 0.1
local master, asked_at, announced = nil, 0, nil -- this worker's answer from the sentinels: { host, port, pool }

local function pool_name(host, port, db)
  return "dynroute-redis:" .. host .. ":" .. port .. ":" .. (db or 0)
end

local encode, read_reply

-- The master's address from the first sentinel that knows it.
local function ask_sentinels(opts)
  local last_err = "no sentinel configured"
  for _, s in ipairs(opts.sentinels) do
    local sock = tcp()
    sock:settimeouts(opts.connect_timeout or 200, opts.read_timeout or 200, opts.read_timeout or 200)
    local ok, err = sock:connect(s.host, s.port)
    if ok then
      local reply
      if opts.sentinel_password and opts.sentinel_password ~= "" then
        sock:send(encode({ "AUTH", opts.sentinel_password }))
        reply, err = read_reply(sock)
      else
        reply = true
      end
      if reply then
        sock:send(encode({ "SENTINEL", "get-master-addr-by-name", opts.master_name }))
        reply, err = read_reply(sock)
      end
      sock:close()
      if type(reply) == "table" and reply[1] and reply[2] then
        local port = tonumber(reply[2])
        local pool = pool_name(reply[1], port, opts.db)
        return { host = reply[1], port = port, pool = pool, pool_opts = { pool = pool } }
      end
      last_err = err or ("sentinel " .. s.host .. ":" .. s.port .. " knows no master " .. opts.master_name)
    else
      last_err = "sentinel " .. s.host .. ":" .. s.port .. ": " .. tostring(err)
    end
  end
  return nil, last_err
end

-- Where to connect: the configured address, or the master the sentinels name.
local function target(opts)
  if not opts.sentinels then
    if not opts.pool then
      opts.pool = pool_name(opts.host, opts.port, opts.db)
      opts.pool_opts = { pool = opts.pool } -- connect's options, made once
    end
    return opts
  end
  local now = ngx.now()
  if not master and now - asked_at >= REASK_S then
    asked_at = now
    local found, err = ask_sentinels(opts)
    if not found then return nil, err end
    if found.pool ~= announced then
      -- A move (failover) is worth a warning; the first answer is not.
      ngx.log(announced and ngx.WARN or ngx.NOTICE, "dynroute: redis master is ", found.host, ":", found.port, " (from the sentinels)")
      announced = found.pool
    end
    master = found
  end
  if not master then return nil, "no redis master known yet (asking the sentinels again shortly)" end
  return master
end

-- A connection error: with sentinels, the next connect asks them again where the master is.
local function lost(opts)
  if opts.sentinels then master = nil end
end

-- opts: host, port, db, password, connect_timeout, read_timeout (ms), pool_size;
-- or sentinels ({ host, port } list), master_name, sentinel_password instead of host and port
function _M.connect(opts)
  local to, terr = target(opts)
  if not to then return nil, terr end
  local sock = tcp()
  sock:settimeouts(opts.connect_timeout or 200, opts.read_timeout or 200, opts.read_timeout or 200)
  local ok, err = sock:connect(to.host, to.port, to.pool_opts)
  if not ok then lost(opts); return nil, err end
  local self = setmetatable({ sock = sock, opts = opts }, mt)
  if sock:getreusedtimes() == 0 then
    if opts.password and opts.password ~= "" then
      local res, aerr = self:command("AUTH", opts.password)
      if not res then sock:close(); return nil, "AUTH: " .. tostring(aerr) end
    end
    if opts.db and opts.db ~= 0 then
      local res, serr = self:command("SELECT", opts.db)
      if not res then sock:close(); return nil, "SELECT: " .. tostring(serr) end
    end
  end
  return self
end

function encode(args)
  local parts = { "*", #args, "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return concat(parts)
end

-- Reads one reply. Errors from Redis come back as nil, "redis: <message>".
function read_reply(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local kind, rest = byte(line), sub(line, 2)
  if kind == 43 then -- +
    return rest
  elseif kind == 45 then -- -
    return nil, "redis: " .. rest
  elseif kind == 58 then -- :
    return tonumber(rest)
  elseif kind == 36 then -- $
    local n = tonumber(rest)
    if n < 0 then return ngx.null end
    local data, derr = sock:receive(n + 2)
    if not data then return nil, derr end
    return sub(data, 1, n)
  elseif kind == 42 then -- *
    local n = tonumber(rest)
    if n < 0 then return ngx.null end
    local list = {}
    for i = 1, n do
      local v, verr = read_reply(sock)
      if v == nil then return nil, verr end
      list[i] = v
    end
    return list
  end
  return nil, "redis: bad reply " .. line
end

-- Sends a command without reading its reply (for a subscribed connection, whose replies come through read).
function _M.send(self, ...)
  return self.sock:send(encode({ ... }))
end

function _M.command(self, ...)
  local ok, err = self:send(...)
  if not ok then lost(self.opts); return nil, err end
  local v, rerr = read_reply(self.sock)
  if v == nil and sub(rerr, 1, 6) ~= "redis:" then lost(self.opts) end
  return v, rerr
end

-- Sends every command at once, then reads every reply: one round trip. An error reply fails the
-- whole pipeline, unless `per_command`: then it fails only its command, whose reply is nil and whose
-- error is in the third value (a table by index, nil when every command succeeded).
function _M.pipeline(self, commands, per_command)
  local buf = {}
  for i, c in ipairs(commands) do buf[i] = encode(c) end
  local ok, err = self.sock:send(concat(buf))
  if not ok then lost(self.opts); return nil, err end
  local replies, errs = {}, nil
  for i = 1, #commands do
    local v, rerr = read_reply(self.sock)
    if v == nil then
      if sub(rerr, 1, 6) ~= "redis:" then lost(self.opts); return nil, rerr end
      if not per_command then return nil, rerr end
      errs = errs or {}
      errs[i] = rerr
    end
    replies[i] = v
  end
  return replies, nil, errs
end

-- One round trip on a pooled connection: connects (or reuses one), sends `commands` as a pipeline and
-- gives the connection back; closes it instead when the round trip failed. Returns what pipeline does.
function _M.round_trip(opts, commands, per_command)
  local red, err = _M.connect(opts)
  if not red then return nil, err end
  local replies, perr, errs = red:pipeline(commands, per_command)
  if not replies then red:close(); return nil, perr end
  red:keepalive()
  return replies, nil, errs
end

-- The next message of a subscribed connection; nil, "timeout" when none came in time.
function _M.read(self)
  return read_reply(self.sock)
end

function _M.settimeout(self, ms)
  self.sock:settimeout(ms)
end

function _M.keepalive(self)
  return self.sock:setkeepalive(60000, self.opts.pool_size or 32)
end

function _M.close(self)
  return self.sock:close()
end

return _M
