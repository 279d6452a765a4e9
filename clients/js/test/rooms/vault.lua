-- Client test room for durable rooms (options.persist): its state and its members' seats
-- survive a server restart; joins and leaves are written to state.log.
local Vault = {
  defaultState = { log = atrium.array(), items = atrium.array() },
  options = { persist = true, reconnectGrace = 30 },
  actions = {},
}

function Vault:onJoin(ctx) table.insert(self.state.log, "join " .. ctx.client) end
function Vault:onLeave(ctx) table.insert(self.state.log, "leave " .. ctx.client .. " " .. tostring(ctx.reason)) end
function Vault.actions.push(self, ctx, item) table.insert(self.state.items, item) end

return Vault
