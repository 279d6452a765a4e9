-- Test room: serverJoinOnly. Clients cannot join it themselves; server-side code places
-- them (placer.lua, POST /api/rooms/:id/join), and onJoin still runs and may reject.
local Vip = {
  defaultState = { guests = atrium.array() },
  options = { serverJoinOnly = true },
}

function Vip:onJoin(ctx)
  if ctx.payload.ticket ~= "gold" then
    return false, "no ticket"
  end
  table.insert(self.state.guests, ctx.client)
end

Vip.actions = {}

function Vip.actions.whoami(self, ctx)
  return ctx.client
end

return Vip
