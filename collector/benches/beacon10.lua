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

function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end

request = function()
  counter = counter + 1
  local id = tid .. "-" .. counter
  local metrics = {}
  for i = 1, 10 do
    local name = names[(i - 1) % 5 + 1]
    local value = (name == "CLS") and string.format("0.%02d", (counter + i) % 40) or tostring(100 + (counter * 37 + i * 11) % 3000)
    metrics[i] = string.format(
      '{"name":"%s","value":%s,"delta":%s,"id":"v5-%s-%d","rating":"good","navigationType":"navigate"}',
      name, value, value, id, i)
  end
  local body = string.format(
    '{"schemaVersion":1,"page":"https://shop.example/products/%d","pageViewId":"v5-pv-%s",' ..
    '"formFactor":"phone","metrics":[%s]}',
    counter % 50, id, table.concat(metrics, ","))
  return wrk.format("POST", "/v1/beacon", {["Content-Type"] = "text/plain;charset=UTF-8"}, body)
end
