-- wrk script: 1-metric beacons of about 320 bytes, as navigator.sendBeacon
-- sends them (text/plain), each with a new metric id (no dedup), spread
-- over 50 page keys.
-- LuaJIT's generator starts from a fixed state: unseeded, every wrk run
-- (the warm-up, then the measured run) would send the same ids again, and
-- the measured run would be re-reports, not new reports.
local function seed()
  local f = io.open("/dev/urandom", "rb")
  if f then
    local b = f:read(4)
    f:close()
    return b:byte(1) * 16777216 + b:byte(2) * 65536 + b:byte(3) * 256 + b:byte(4)
  end
  return os.time()
end
math.randomseed(seed())

local counter = 0

-- Built by concatenation, and the request line and headers by hand rather
-- than with wrk.format: the load generator shares the machine's two cores
-- with the collector, so its cost per request counts against it.
local request_head
local function head()
  if not request_head then
    local host = wrk.port and (wrk.host .. ":" .. wrk.port) or wrk.host
    request_head = "POST /v1/beacon HTTP/1.1\r\nHost: " .. host ..
      "\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: "
  end
  return request_head
end

function setup(thread)
  thread:set("tid", tostring(math.random(100000, 999999)))
end

request = function()
  counter = counter + 1
  local id = tid .. "-" .. counter
  local value = 800 + (counter * 37) % 4000
  local body = '{"schemaVersion":1,"page":"https://shop.example/products/' .. (counter % 50) ..
    '","pageViewId":"pv-' .. id ..
    '","sessionId":"s-8a7f3c","navigationType":"navigate","formFactor":"desktop",' ..
    '"effectiveType":"4g","deviceMemory":8,"metrics":[{"name":"LCP","value":' .. value .. '.5,"delta":' ..
    value .. '.5,"id":"v5-' .. id .. '","rating":"good","navigationType":"navigate"}]}'
  return head() .. #body .. "\r\n\r\n" .. body
end
