-- wrk script: 10-metric beacons (each of the five metrics twice, each with
-- its own id), about 1.3 KB, over 50 page keys.
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
