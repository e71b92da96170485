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

local JSON = "application/json; charset=utf-8"

-- The status and headers of every answer of the router's own; router.lua's header filter adds
-- Strict-Transport-Security on TLS, as to every answer.
local function start(status)
  ngx.status = status
  ngx.header["Content-Type"] = JSON
  ngx.header["Cache-Control"] = "no-store"
end

-- `code` overrides the one the status implies (e.g. "backend_refused").
function _M.send(status, message, code)
  start(status)
  ngx.print(_M.body(status, message, code))
  return ngx.exit(status)
end

local reasons = { [502] = "Bad Gateway" }
-- Headers nginx writes from fields of its own rather than from the header list (ngx.resp.get_headers
-- names them in lower case): send_raw writes these itself.
local written = { ["content-type"] = true, ["content-length"] = true, connection = true, ["transfer-encoding"] = true }

-- A whole HTTP/1.1 answer as bytes, for a request nginx writes no status line or headers for (it takes
-- a backend's answer without a status line for HTTP/0.9, see router.lua): send's answer, with what nginx
-- would have written for it, in its order (Server as server_tokens off has it), the body's length, and
-- Connection: close (nginx closes the connection after it, see below).
function _M.send_raw(status, message)
  -- Only an HTTP/1 request gets it. HTTP/2 frames the status and headers itself whatever the backend's version,
  -- so raw bytes there would arrive as the body of a text/plain answer; an HTTP/0.9 request (no protocol in its
  -- line) expects no status line or headers, and gets none in any answer.
  local protocol = ngx.var.server_protocol
  if not protocol or protocol:sub(1, 7) ~= "HTTP/1." then return _M.send(status, message) end
  start(status)
  -- To nginx and lua-nginx-module all of it is body, which they drop for HEAD: the request is a GET while the
  -- answer goes out (a HEAD again after, for the access log), and a HEAD's bytes stop before the body. nginx
  -- knows no length for that body, on a request below HTTP/1.1 to it (HTTP/0.9, as the backend's answer made
  -- it): so it closes the connection after it (its chunked filter), for HEAD too while it is a GET.
  local head = ngx.req.get_method() == "HEAD"
  if head then ngx.req.set_method(ngx.HTTP_GET) end
  -- The header filters run as for any answer (router.lua counts it and adds HSTS), though nginx writes nothing.
  ngx.send_headers()
  local body = _M.body(status, message)
  local out = { "HTTP/1.1 ", status, " ", reasons[status], "\r\nServer: nginx\r\nDate: ", ngx.http_time(ngx.time()),
    "\r\nContent-Type: ", JSON, "\r\nContent-Length: ", #body, "\r\nConnection: close\r\n" }
  for name, value in pairs(ngx.resp.get_headers(nil, true)) do
    if not written[name] then out[#out + 1] = name .. ": " .. value .. "\r\n" end
  end
  out[#out + 1] = "\r\n"
  if not head then out[#out + 1] = body end
  ngx.print(out)
  -- Sent now: nginx would hold a short output back for more.
  ngx.eof()
  if head then ngx.req.set_method(ngx.HTTP_HEAD) end
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
