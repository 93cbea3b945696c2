-- wrk script: 1-metric beacons of about 320 bytes, as navigator.sendBeacon
-- sends them (text/plain), each with a new metric id (no dedup), spread
-- over 50 page keys.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
common.seed_random()
local head = common.head

local counter = 0

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
