-- Test room: tickRate 20. onTick counts ticks and keeps the last dt it was given.
local Ticker = {
  defaultState = { ticks = 0, lastDt = 0, minDt = false, maxDt = 0 },
  options = { tickRate = 20 },
}

function Ticker:onTick(dt)
  local s = self.state
  s.ticks = s.ticks + 1
  s.lastDt = dt
  if not s.minDt or dt < s.minDt then s.minDt = dt end
  if dt > s.maxDt then s.maxDt = dt end
end

return Ticker
