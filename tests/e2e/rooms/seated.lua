-- Test room for held seats and resume (docs/protocol.md "Seats and resume"): every
-- join and leave goes into state.log; a drop holds the seat for 2 s.
local Seated = {
  defaultState = { n = 0, log = atrium.array() },
  options = { reconnectGrace = 2, patchRate = 10 },
  actions = {},
}

function Seated:onJoin(ctx) table.insert(self.state.log, "join " .. ctx.client) end
function Seated:onLeave(ctx) table.insert(self.state.log, ctx.reason .. " " .. ctx.client) end

function Seated.actions.bump(self)
  self.state.n = self.state.n + 1
  return self.state.n
end

return Seated
