-- requests.lua: wrk script of tests/bench/run. Every variant uses it, so every variant costs wrk
-- the same: one pre-built request string per call, with an X-API-Key header taken in turn from
-- a file of keys already drawn from the skewed (Zipf) distribution by the harness.
--
--   wrk ... -s requests.lua URL -- METHOD PATH KEYFILE [BODYFILE [OFFSET]]
--
-- OFFSET (default 0): where in the key sequence to start, so that successive rounds walk through
-- it instead of replaying its first part.
--
-- done() prints one line "BENCHJSON {...}" with the counts and latency percentiles.
local reqs = {}
local n, i = 0, 0

function init(args)
  local method, path, keyfile, bodyfile, offset = args[1], args[2], args[3], args[4], args[5]
  local body = nil
  if bodyfile and bodyfile ~= "" then
    local f = assert(io.open(bodyfile, "rb"))
    body = f:read("*a")
    f:close()
  end
  for key in io.lines(keyfile) do
    local h = { ["X-API-Key"] = key, ["User-Agent"] = "looped-bench" }
    if body then
      h["Content-Type"] = "application/json"
    end
    n = n + 1
    reqs[n] = wrk.format(method, path, h, body)
    if n >= 200000 then
      break
    end
  end
  assert(n > 0, "no keys in " .. keyfile)
  i = (tonumber(offset) or 0) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}, "latency_us": {"p50": %d, ' ..
    '"p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
