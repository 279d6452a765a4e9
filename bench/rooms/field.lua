-- bench/rooms/field.lua: the state-room scenario (bench/README.md "Scenarios"), the same
-- shape as the peer harness' Colyseus room: players[client] = {x, y, t}; each member moves
-- its own entry; members get the changes as one patch every 50 ms.
-- Entries are written with self:setIn, which marks only that entry changed: a commit
-- costs the same with 10 players or 10,000, and a move is one replace of the entry.
-- field_scan.lua is the same room mutating self.state directly.
-- t is the mover's send time, carried only so the load generator can measure latency.
local Field = {
  defaultState = { players = {} },
  options = { patchRate = 50 },
}

function Field:onJoin(ctx)
  self:setIn({ "players", ctx.client }, { x = 0, y = 0, t = 0 })
end

function Field:onLeave(ctx)
  self:setIn({ "players", ctx.client }, nil)
end

Field.actions = {}
function Field.actions.move(self, ctx, x, y, t)
  self:setIn({ "players", ctx.client }, { x = x, y = y, t = t })
end

return Field
