-- A minimal Redis client on nginx cosockets (RESP2): connect with pooled
-- keepalive, AUTH/SELECT on fresh connections, pipelined commands, and a
-- subscribed read loop. Debian's lua-nginx-redis needs nginx-extras and has
-- no per-phase timeouts, so the router carries this instead.
local tcp = ngx.socket.tcp
local concat, tostring, tonumber, sub, byte = table.concat, tostring, tonumber, string.sub, string.byte

local _M = {}
local mt = { __index = _M }

-- opts: host, port, db, password, connect_timeout, read_timeout (ms), pool_size
function _M.connect(opts)
  local sock = tcp()
  sock:settimeouts(opts.connect_timeout or 200, opts.read_timeout or 200, opts.read_timeout or 200)
  local ok, err = sock:connect(opts.host, opts.port, { pool = "dynroute-redis:" .. opts.host .. ":" .. opts.port .. ":" .. (opts.db or 0) })
  if not ok then return nil, err end
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

local function encode(args)
  local parts = { "*", #args, "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return concat(parts)
end

-- Reads one reply. Errors from Redis come back as nil, "redis: <message>".
local function read_reply(sock)
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
  if not ok then return nil, err end
  return read_reply(self.sock)
end

-- Sends every command at once, then reads every reply: one round trip.
function _M.pipeline(self, commands)
  local buf = {}
  for i, c in ipairs(commands) do buf[i] = encode(c) end
  local ok, err = self.sock:send(concat(buf))
  if not ok then return nil, err end
  local replies = {}
  for i = 1, #commands do
    local v, rerr = read_reply(self.sock)
    if v == nil then return nil, rerr end
    replies[i] = v
  end
  return replies
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
