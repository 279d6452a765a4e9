-- rooms/counter.lua: a shared counter. Shows actions with argument validation and private
-- meta (how often each user bumped it; never sent to clients).
local LIMIT = 1000000

local Counter = {
  defaultState = { value = 0, lastBy = false },
  defaultMeta = { bumpsBy = {} },
  options = { maxMembers = 50 },
}

-- An optional step: a whole number from 1 to 100, default 1.
local function step(by)
  if by == nil then return 1 end
  if type(by) ~= "number" or by ~= math.floor(by) or by < 1 or by > 100 then
    error("the step must be a whole number from 1 to 100")
  end
  return by
end

local function bump(self, ctx, delta)
  local value = self.state.value + delta
  if math.abs(value) > LIMIT then
    error("the counter stays within -" .. LIMIT .. ".." .. LIMIT)
  end
  local who = ctx.userId or ctx.client
  self.meta.bumpsBy[who] = (self.meta.bumpsBy[who] or 0) + 1
  self.state.value = value
  self.state.lastBy = who
  return value                                    -- the reply's result
end

Counter.actions = {}

function Counter.actions.increment(self, ctx, by)
  return bump(self, ctx, step(by))
end

function Counter.actions.decrement(self, ctx, by)
  return bump(self, ctx, -step(by))
end

function Counter.actions.reset(self, ctx)
  return bump(self, ctx, -self.state.value)
end

-- Each caller may read its own count from meta; nobody sees the others'.
function Counter.actions.myBumps(self, ctx)
  return self.meta.bumpsBy[ctx.userId or ctx.client] or 0
end

return Counter
