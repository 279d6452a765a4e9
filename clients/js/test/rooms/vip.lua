-- Client test room: only server-side code places clients here (doorman.lua, or
-- POST /api/rooms/:id/join), and only with a gold ticket.
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

function Vip:onLeave(ctx)
  for i, c in ipairs(self.state.guests) do
    if c == ctx.client then
      table.remove(self.state.guests, i)
      break
    end
  end
end

Vip.actions = {}

function Vip.actions.whoami(self, ctx)
  return ctx.client
end

return Vip
