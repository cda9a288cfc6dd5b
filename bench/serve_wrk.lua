-- wrk's side of bench/serve.py: each connection (one per thread, so one
-- request at a time) sends one sentence per request, cycling through the
-- bodies in $AIAYN_BODIES from its own offset, and compares every answer
-- with the server's exact answer for that line in $AIAYN_ANSWERS. An answer
-- that is another line's is a mix-up. done() prints one JSON line.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local bodies, answers, known = {}, {}, {}
local k, last = 0, 0

function init(args)
  for line in io.lines(os.getenv("AIAYN_BODIES")) do bodies[#bodies + 1] = line end
  for line in io.lines(os.getenv("AIAYN_ANSWERS")) do
    answers[#answers + 1] = line
    known[line] = true
  end
  local clients = tonumber(os.getenv("AIAYN_CLIENTS"))
  k = math.floor(id * #bodies / clients)
  failed, mixed, differs, checked = 0, 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  k = k % #bodies + 1
  last = k
  return wrk.format(nil, nil, nil, bodies[k])
end

function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 then
    failed = failed + 1
  elseif body ~= answers[last] then
    if known[body] then mixed = mixed + 1 else differs = differs + 1 end
  end
end

function done(summary, latency, requests)
  local sum = {failed = 0, mixed = 0, differs = 0, checked = 0}
  for _, t in ipairs(threads) do
    for name, _ in pairs(sum) do sum[name] = sum[name] + t:get(name) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.2f, "p99_ms": %.2f, "failed": %d, "mixed": %d, ' ..
    '"differs": %d, "checked": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    sum.failed, sum.mixed, sum.differs, sum.checked, e.connect + e.read + e.write + e.timeout))
end
