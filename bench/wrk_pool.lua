-- wrk script for bench.ingest: replay pre-signed requests from a pool file, then print the
-- figures as one JSON line. Usage: wrk ... -s wrk_pool.lua URL -- POOL_FILE
-- The file holds `<length>\n<raw HTTP request>` records (bench/pool.py write_pool).

local pool = {}
local index = 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local position = 1
  while position <= #data do
    local newline = data:find("\n", position, true)
    local length = tonumber(data:sub(position, newline - 1))
    pool[#pool + 1] = data:sub(newline + 1, newline + length)
    position = newline + length + 1
  end
  -- Each thread starts at its own place in the pool (`thread_number` is set by setup).
  index = ((thread_number or 0) * 97) % #pool
end

local threads_set_up = 0

function setup(thread)
  thread:set("thread_number", threads_set_up)
  threads_set_up = threads_set_up + 1
end

function request()
  index = index % #pool + 1
  return pool[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors_connect": %d, '
      .. '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
