-- bench/rooms/field_scan.lua: the state-room scenario of field.lua written the direct
-- way, mutating self.state: reading self.state exposes it, so every commit compares the
-- whole state (all players) with what members last saw, and a move of x, y and t costs
-- a scan of every entry (bench/README.md "Scenarios"). Kept to measure that against
-- field.lua's setIn.
-- t is the mover's send time, carried only so the load generator can measure latency.
local Field = {
  defaultState = { players = {} },
  options = { patchRate = 50 },
}

function Field:onJoin(ctx)
  self.state.players[ctx.client] = { x = 0, y = 0, t = 0 }
end

function Field:onLeave(ctx)
  self.state.players[ctx.client] = nil
end

Field.actions = {}
function Field.actions.move(self, ctx, x, y, t)
  local p = self.state.players[ctx.client]
  p.x, p.y, p.t = x, y, t
end

return Field
