-- Shared by the wrk scripts beacon1.lua and beacon10.lua (wrk loads one
-- script per run; they load this one with dofile). Each script builds its
-- bodies itself, by chained concatenation, which LuaJIT compiles: the load
-- generator shares the two cores with the collector.
local M = {}

-- LuaJIT's generator starts from a fixed state: unseeded, every wrk run
-- (the warm-up, then the measured run) would send the same ids again, and
-- the measured run would be re-reports, not new reports.
function M.seed_random()
  local seed = os.time()
  local f = io.open("/dev/urandom", "rb")
  if f then
    local b = f:read(4)
    f:close()
    seed = b:byte(1) * 16777216 + b:byte(2) * 65536 + b:byte(3) * 256 + b:byte(4)
  end
  math.randomseed(seed)
end

-- The request line and headers up to the Content-Length value, written by
-- hand rather than with wrk.format (cheaper per request).
local request_head
function M.head()
  if not request_head then
    local host = wrk.port and (wrk.host .. ":" .. wrk.port) or wrk.host
    request_head = "POST /v1/beacon HTTP/1.1\r\nHost: " .. host ..
      "\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: "
  end
  return request_head
end

return M
