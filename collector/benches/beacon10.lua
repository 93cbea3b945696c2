-- wrk script: 10-metric beacons (each of the five metrics twice, each with
-- its own id), about 1.3 KB, over 50 page keys.
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
local names = {"FCP", "LCP", "CLS", "INP", "TTFB"}
-- Built by concatenating pieces, and the request line and headers by hand
-- rather than with wrk.format: the load generator shares the machine's two
-- cores with the collector, so its cost per request counts against it.
local prefix = {}
for i = 1, 10 do
  prefix[i] = '{"name":"' .. names[(i - 1) % 5 + 1] .. '","value":'
end

-- The request line and headers up to the Content-Length value.
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
  thread:set("tid", tostring(math.random(1, 1e9)))
end

request = function()
  counter = counter + 1
  local id = tid .. "-" .. counter
  local parts = {'{"schemaVersion":1,"page":"https://shop.example/products/', counter % 50,
    '","pageViewId":"v5-pv-', id, '","formFactor":"phone","metrics":['}
  local n = #parts
  for i = 1, 10 do
    local value
    if i % 5 == 3 then
      local v = (counter + i) % 40
      value = (v < 10) and ("0.0" .. v) or ("0." .. v)
    else
      value = 100 + (counter * 37 + i * 11) % 3000
    end
    parts[n + 1] = (i > 1) and ("," .. prefix[i]) or prefix[i]
    parts[n + 2] = value
    parts[n + 3] = ',"delta":'
    parts[n + 4] = value
    parts[n + 5] = ',"id":"v5-'
    parts[n + 6] = id
    parts[n + 7] = "-"
    parts[n + 8] = i
    parts[n + 9] = '","rating":"good","navigationType":"navigate"}'
    n = n + 9
  end
  parts[n + 1] = "]}"
  local body = table.concat(parts)
  return head() .. #body .. "\r\n\r\n" .. body
end
