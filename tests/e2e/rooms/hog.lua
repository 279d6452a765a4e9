-- Test room: hooks that run past their budget (an endless loop, one hidden behind pcall,
-- unbounded allocation). Each is stopped with budget_exceeded; only this room notices.
local Hog = {
  defaultState = { value = 1 },
}

Hog.actions = {}

function Hog.actions.spin(self, ctx)
  self.state.value = -1
  while true do end
end

function Hog.actions.spinBehindPcall(self, ctx)
  self.state.value = -2
  while true do
    pcall(function() while true do end end)
  end
end

function Hog.actions.eat(self, ctx)
  self.state.value = -3
  local t, i = {}, 0
  while true do
    i = i + 1
    t[i] = string.rep("x", 4096) .. i
  end
end

function Hog.actions.value(self, ctx)
  return self.state.value
end

return Hog
