-- JSON answers the router gives itself, never nginx's HTML pages.
local cjson = require "cjson.safe"

local _M = {}

local codes = {
  [400] = "invalid_argument", [404] = "not_found", [405] = "unimplemented", [408] = "deadline_exceeded",
  [413] = "resource_exhausted", [414] = "invalid_argument", [431] = "invalid_argument", [500] = "internal",
  [502] = "unavailable", [503] = "unavailable", [504] = "deadline_exceeded",
}

function _M.body(status, message, code)
  return cjson.encode({ code = code or codes[status] or "unknown", message = message }) .. "\n"
end

-- `code` overrides the one the status implies (e.g. "backend_refused").
function _M.send(status, message, code)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(_M.body(status, message, code))
  return ngx.exit(status)
end

-- A whole HTTP/1.1 answer as bytes, for a request nginx writes no header for (it
-- takes a backend's answer without a status line for HTTP/0.9, see router.lua).
local reasons = { [502] = "Bad Gateway" }

function _M.send_raw(status, message)
  -- Only HTTP/1 writes no header then: HTTP/2 frames the status and headers itself whatever the backend's version,
  -- so raw bytes there would arrive as the body of a text/plain answer.
  if ngx.var.server_protocol == "HTTP/2.0" then return _M.send(status, message) end
  local body = _M.body(status, message)
  ngx.status = status
  ngx.print("HTTP/1.1 ", status, " ", reasons[status], "\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n",
    "Content-Length: ", #body, "\r\nConnection: close\r\n\r\n", body)
  return ngx.exit(status)
end

-- For error_page: the status nginx decided on, explained (its own 494, "request
-- header too large", arrives as HTTP's 431: see nginx.conf).
local messages = {
  [400] = "bad request", [404] = "not found", [405] = "method not allowed", [408] = "request timed out",
  [413] = "request body too large", [414] = "request URI too long", [431] = "request headers too large",
  [500] = "internal router error", [502] = "no backend of this host answered", [504] = "the backend did not answer in time",
}

function _M.error_page()
  local status = ngx.status
  local message = messages[status] or "request failed"
  if status == 405 then ngx.header["Allow"] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" end
  return _M.send(status, message)
end

return _M
