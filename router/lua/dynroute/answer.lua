-- JSON answers the router gives itself, never nginx's HTML pages.
local cjson = require "cjson.safe"

local _M = {}

local codes = {
  [400] = "invalid_argument", [404] = "not_found", [413] = "resource_exhausted", [414] = "invalid_argument",
  [431] = "invalid_argument", [494] = "invalid_argument", [500] = "internal", [502] = "unavailable",
  [503] = "unavailable", [504] = "deadline_exceeded",
}

function _M.send(status, message)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  ngx.header["Cache-Control"] = "no-store"
  ngx.say(cjson.encode({ code = codes[status] or "unknown", message = message }))
  return ngx.exit(status)
end

-- For error_page: the status nginx decided on, explained.
local messages = {
  [400] = "bad request", [413] = "request body too large", [414] = "request URI too long",
  [494] = "request headers too large", [500] = "internal router error",
  [502] = "no backend of this host answered", [504] = "the backend did not answer in time",
}

function _M.error_page()
  local status = ngx.status
  return _M.send(status, messages[status] or "request failed")
end

return _M
