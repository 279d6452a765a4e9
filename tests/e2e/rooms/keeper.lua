-- Test room: onDestroy returns false, so the room outlives its last member.
local Keeper = {
  defaultState = { visits = 0 },
}

function Keeper:onJoin(ctx)
  self.state.visits = self.state.visits + 1
end

function Keeper:onDestroy()
  return false
end

return Keeper
