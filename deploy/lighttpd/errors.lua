-- errors.lua: lighttpd's own error answers (server.error-handler, looped.conf) as the API's
-- JSON envelope (api.md §1), with X-Request-Id.
--
-- lighttpd answers some requests itself, before or instead of the application: a URL it refuses
-- (control characters, bad percent-encoding: 400), a missing login on /v1/me, /v1/teams/ and
-- /settings/ (401), a denied or missing static file (403, 404), a body over
-- server.max-request-size (413), and 500/502/503/504 when the pool is down or does not answer.
-- server.error-handler sends each of those here (mod_magnet) with the status in REDIRECT_STATUS:
-- no FastCGI round trip, so it works when the application is down too. The application's own
-- errors never come here (they are already the envelope). Codes and sentences as fcgi/error.c.

local r = lighty.r

-- status -> code, sentence; other 4xx are treated as 400 and other 5xx as 500.
local errors = {
	[400] = { "validation_failed", "The request is not valid: see details." },
	[401] = { "unauthenticated", "Sign in to use this endpoint." },
	[403] = { "forbidden", "Access to this path is not allowed." },
	[404] = { "not_found", "Not found." },
	[405] = { "method_not_allowed", "This method is not allowed on this path." },
	[413] = { "payload_too_large", "The request body is too large." },
	[415] = { "unsupported_media_type", "The request body must be application/json." },
	[500] = { "internal_error", "Something went wrong on our side." },
	[501] = { "method_not_allowed", "This method is not allowed on this path." },
	[502] = { "unavailable", "The service is temporarily unavailable; retry later." },
	[503] = { "unavailable", "The service is temporarily unavailable; retry later." },
	[504] = { "unavailable", "The service is temporarily unavailable; retry later." },
}

-- A request for this URL itself (no REDIRECT_STATUS) is a request for a page that is not there.
local status = tonumber(r.req_env["REDIRECT_STATUS"] or "")
if status == nil or status < 400 or status > 599 or status ~= math.floor(status) then
	status = 404
end
local e = errors[status] or errors[status < 500 and 400 or 500]

-- The caller's request id when it is sane (api.md §1: 1-64 of [A-Za-z0-9._-]), else a new one:
-- 128 bits of lighttpd's generator as hex, like the application's.
local rid = r.req_header["X-Request-Id"]
if rid == nil or #rid == 0 or #rid > 64 or rid:find("[^A-Za-z0-9._-]") then
	local bytes = {}
	for i = 1, 4 do
		bytes[i] = string.pack(">I4", lighty.c.rand() & 0xffffffff)
	end
	rid = string.lower(lighty.c.hexenc(table.concat(bytes)))
end

-- validation_failed always names what is wrong; here that is all lighttpd tells.
local details = ""
if e[1] == "validation_failed" then
	details = ',"details":[{"field":"(request)","message":"refused by the web server (status '
		.. status .. ')"}]'
end

-- GET /v1/health keeps its own body (api.md §5) when the web server cannot reach the application.
local path = (r.req_attr["request.orig-uri"] or ""):match("^[^?]*")
local body = { '{"error":{"code":"', e[1], '","message":"', e[2], '","request_id":"', rid, '"',
	details, "}}" }
if path == "/v1/health" and e[1] == "unavailable" then
	body = { '{"status":"unavailable"}' }
end

r.resp_header["Content-Type"] = "application/json; charset=utf-8"
r.resp_header["X-Request-Id"] = rid
r.resp_header["Cache-Control"] = "no-store"
r.resp_header["X-Content-Type-Options"] = "nosniff"
if e[1] == "unavailable" then
	r.resp_header["Retry-After"] = "5"
end
r.resp_body:set(body)
-- (lighttpd keeps the original status for an error handler's answer; returning it says the same.)
return status
