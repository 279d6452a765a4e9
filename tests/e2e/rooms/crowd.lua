-- Test room: many members' entries under one map change inside one patch interval, so the
-- patch can carry the map's value in one op instead of one op per entry (state/compact.hpp).
local Crowd = {
  defaultState = { players = {}, round = 0 },
  options = { patchRate = 300 },
}

Crowd.actions = {}

function Crowd.actions.move(self, ctx, id, x)
  self.state.players[id] = { x = x, y = -x }
end

return Crowd
