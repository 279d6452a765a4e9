-- Test room: self:setTimeout, self:setInterval and handle:cancel(). Handles live in a
-- module table keyed by room id (not in state: they are not data).
local Timers = {
  defaultState = { fired = 0, beats = 0 },
}

local handles = {}

local function slot(self)
  handles[self.id] = handles[self.id] or {}
  return handles[self.id]
end

Timers.actions = {}

function Timers.actions.after(self, ctx, ms, tag)
  slot(self).timeout = self:setTimeout(ms, function()
    self.state.fired = self.state.fired + 1
    self:emit("timer:fired", { tag = tag })
  end)
  return true
end

function Timers.actions.cancelAfter(self, ctx)
  slot(self).timeout:cancel()
  return true
end

function Timers.actions.every(self, ctx, ms)
  slot(self).interval = self:setInterval(ms, function()
    self.state.beats = self.state.beats + 1
  end)
  return true
end

function Timers.actions.stop(self, ctx)
  slot(self).interval:cancel()
  return true
end

function Timers:onDestroy()
  handles[self.id] = nil
end

return Timers
