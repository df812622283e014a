-- wrk script for the Tollway benchmark: POST one small chat completion, over and over.
--
-- Configuration comes from the environment (set by bench/run.py):
--   BENCH_BODY_FILE  file holding the JSON request body
--   BENCH_PATH       request path (default /v1/chat/completions)
--   BENCH_HEADERS    extra request headers, one "Name: value" per line (auth etc.)
--   BENCH_SECONDS    length of the measuring window in seconds
--   BENCH_RESULT     file the JSON summary is written to (by done())
--   BENCH_CONNS      connections per thread (wrk's -c divided by -t)
--
-- Why not a plain `wrk -d`: wrk stops at -d with requests still in flight; a gateway then
-- finishes (and bills) calls whose responses wrk never counts. To compare "responses received"
-- with "usage records written" exactly, each thread stops sending new requests after
-- BENCH_SECONDS (delay() parks each connection once its last response is in) and stops itself
-- once all its connections are parked, i.e. nothing it sent is still unanswered. (Counting
-- request() calls would not do: wrk calls request() once more on thread 1 to validate it.) Requests per second are computed over that exact window (monotonic clock via
-- LuaJIT's FFI), not over wrk's -d, which only bounds the run (run.py sets -d a few seconds
-- longer than the window).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec[1]")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC: the same clock in every thread
  return tonumber(ts[0].tv_sec) + tonumber(ts[0].tv_nsec) * 1e-9
end

-- main-thread state (setup / done)
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

-- per-thread state: globals, so that done() can read them with thread:get()
sent, ok, failed, parked, t_start, t_last, draining, statuses = 0, 0, 0, 0, 0, 0, false, {}
local req, window, conns

function init(args)
  local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
  local body = f:read("*a")
  f:close()
  local headers = { ["Content-Type"] = "application/json" }
  for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
    local k, v = string.match(line, "^%s*([^:]+):%s*(.-)%s*$")
    if k then headers[k] = v end
  end
  req = wrk.format("POST", os.getenv("BENCH_PATH") or "/v1/chat/completions", headers, body)
  window = tonumber(os.getenv("BENCH_SECONDS") or "10")
  conns = tonumber(os.getenv("BENCH_CONNS") or "1")
end

function request()
  if sent == 0 then t_start = now() end
  sent = sent + 1
  return req
end

function delay()
  if not draining then return 0 end
  -- park this connection (no new request); stop the thread when all of them are parked
  parked = parked + 1
  if parked >= conns then wrk.thread:stop() end
  return 3600000
end

function response(status, headers, body)
  local t = now()
  t_last = t
  if status == 200 then
    ok = ok + 1
  else
    failed = failed + 1
    local k = tostring(status)
    statuses[k] = (statuses[k] or 0) + 1
  end
  if not draining and t - t_start >= window then draining = true end
end

function done(summary, latency, requests)
  local n_ok, n_failed, n_sent, t0, t1 = 0, 0, 0, math.huge, 0
  n_parked = 0
  local by_status = {}
  for _, t in ipairs(threads) do
    n_ok = n_ok + t:get("ok")
    n_failed = n_failed + t:get("failed")
    n_sent = n_sent + t:get("sent")
    n_parked = n_parked + t:get("parked")
    local s, l = t:get("t_start"), t:get("t_last")
    if s > 0 and s < t0 then t0 = s end
    if l > t1 then t1 = l end
    for k, v in pairs(t:get("statuses")) do by_status[k] = (by_status[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(by_status) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  local doc = string.format(
    '{"ok":%d,"failed":%d,"sent":%d,"parked":%d,"window_s":%.6f,"wrk_requests":%d,"wrk_duration_us":%d,'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"min":%d},'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"non_200":{%s}}',
    n_ok, n_failed, n_sent, n_parked, math.max(t1 - t0, 0), summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.stdev, latency.max, latency.min,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ","))
  local out = os.getenv("BENCH_RESULT")
  if out and out ~= "" then
    local f = assert(io.open(out, "w"))
    f:write(doc, "\n")
    f:close()
  end
  io.write("BENCH_RESULT ", doc, "\n")
end
