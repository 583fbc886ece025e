-- wrk script of bench/gateway_bench.py: pre-signed BambooHR deliveries, a share of them redeliveries.
--
--   wrk -t1 -c64 -d15s --latency -s signed_deliveries.lua URL -- FILE REDELIVERY
--
-- FILE holds one pre-signed delivery a line (timestamp TAB signature TAB body), each a distinct event. Each
-- request sends the next new event from FILE or, with probability REDELIVERY (0.2), repeats one sent before
-- (a redelivery, which the server must merge). Should FILE run out, every further request is a redelivery,
-- counted in ran_out. done() prints one line `bench key=value ...`: the counts wrk and this script kept, and
-- the latency percentiles in microseconds (wrk's --latency report has no p95).

local deliveries = {}
local redelivery = 0.2
local threads = {}
-- Globals of each thread's Lua state, so that done() can read them with thread:get.
new_sent, redelivered, ran_out = 0, 0, 0

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local stamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    deliveries[#deliveries + 1] = wrk.format("POST", "/officeflow/webhooks/bamboohr", {
      ["Content-Type"] = "application/json",
      ["X-BambooHR-Timestamp"] = stamp,
      ["X-BambooHR-Signature"] = signature,
    }, body)
  end
  file:close()
  redelivery = tonumber(args[2]) or redelivery
  math.randomseed(os.time())
end

function request()
  local exhausted = new_sent >= #deliveries
  if new_sent > 0 and (exhausted or math.random() < redelivery) then
    redelivered = redelivered + 1
    if exhausted then
      ran_out = ran_out + 1
    end
    return deliveries[math.random(new_sent)]
  end
  new_sent = new_sent + 1
  return deliveries[new_sent]
end

function done(summary, latency, _)
  local new, again, out = 0, 0, 0
  for _, thread in ipairs(threads) do
    new = new + thread:get("new_sent")
    again = again + thread:get("redelivered")
    out = out + thread:get("ran_out")
  end
  local errors = summary.errors
  io.write(string.format(
    "bench requests=%d duration_us=%d non_2xx=%d connect=%d read=%d write=%d timeout=%d new=%d redelivered=%d ran_out=%d",
    summary.requests, summary.duration, errors.status, errors.connect, errors.read, errors.write, errors.timeout,
    new, again, out))
  for _, p in ipairs({50, 75, 90, 95, 99}) do
    io.write(string.format(" p%d_us=%d", p, latency:percentile(p)))
  end
  io.write(string.format(" max_us=%d\n", latency.max))
end
