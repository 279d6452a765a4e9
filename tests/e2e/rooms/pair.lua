-- Test room: maxMembers = 2, and no onEvent (so a client's emit is not_allowed).
local Pair = {
  defaultState = { members = 0 },
  options = { maxMembers = 2 },
}

function Pair:onJoin(ctx)
  self.state.members = self.state.members + 1
end

function Pair:onLeave(ctx)
  self.state.members = self.state.members - 1
end

return Pair
