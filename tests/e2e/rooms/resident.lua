-- Test room: options.keepAlive keeps the room (and its state) when the last member leaves.
local Resident = {
  defaultState = { visits = 0 },
  options = { keepAlive = true },
}

function Resident:onJoin(ctx)
  self.state.visits = self.state.visits + 1
end

return Resident
