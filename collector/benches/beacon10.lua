-- wrk script: 10-metric beacons (each of the five metrics twice, each with
-- its own id), about 1.3 KB, over 50 page keys.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
common.seed_random()
local head = common.head

local counter = 0
local names = {"FCP", "LCP", "CLS", "INP", "TTFB"}
local prefix = {}
for i = 1, 10 do
  prefix[i] = '{"name":"' .. names[(i - 1) % 5 + 1] .. '","value":'
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
