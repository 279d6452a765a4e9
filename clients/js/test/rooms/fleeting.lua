-- Client test room that holds no seat (reconnectGrace 0): a dropped member leaves at once,
-- its session ends, `resume` answers not_found and the client rejoins with its join payload.
-- A join may carry a password; the first join sets it (like board.lua).
local Fleeting = {
  defaultState = { items = atrium.array(), online = 0 },
  defaultMeta = { password = false },
  options = { reconnectGrace = 0 },
}

function Fleeting:onCreate(ctx)
  local payload = ctx and ctx.payload or {}
  if type(payload.password) == "string" and payload.password ~= "" then
    self.meta.password = payload.password
  end
end

function Fleeting:onJoin(ctx)
  if self.meta.password and ctx.payload.password ~= self.meta.password then
    return false, "wrong password"
  end
  self.state.online = self.state.online + 1
end

function Fleeting:onLeave(ctx)
  self.state.online = self.state.online - 1
end

function Fleeting:onEvent(event, data, ctx)
  self:emit(event, { from = ctx.client, data = data })
end

Fleeting.actions = {}

function Fleeting.actions.push(self, ctx, value)
  table.insert(self.state.items, value)
  return #self.state.items
end

function Fleeting.actions.setPassword(self, ctx, password)
  self.meta.password = password
  return true
end

function Fleeting.actions.whoami(self, ctx)
  return ctx.client
end

return Fleeting
