-- Test room: an ordinary room, destroyed when its last member leaves (the contrast to
-- keeper.lua and resident.lua).
local Transient = {
  defaultState = { visits = 0 },
}

function Transient:onJoin(ctx)
  self.state.visits = self.state.visits + 1
end

return Transient
