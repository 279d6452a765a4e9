-- Test room for durable rooms (docs/rooms.md "Durable rooms"): every `add` appends to the
-- public list and counts in the private meta; joins and leaves go into state.log, and
-- onRestore counts restarts. Seats are held 30 s, so a restart's resume finds them.
local Ledger = {
  defaultState = { n = 0, items = atrium.array(), log = atrium.array(), restores = 0 },
  defaultMeta = { adds = 0 },
  options = { persist = true, reconnectGrace = 30, patchRate = 20 },
  actions = {},
}

function Ledger:onJoin(ctx) table.insert(self.state.log, "join " .. ctx.client) end
function Ledger:onLeave(ctx) table.insert(self.state.log, ctx.reason .. " " .. ctx.client) end
function Ledger:onRestore() self.state.restores = self.state.restores + 1 end

function Ledger.actions.add(self, ctx, item)
  self.state.n = self.state.n + 1
  table.insert(self.state.items, item)
  self.meta.adds = self.meta.adds + 1
  return self.state.n
end

function Ledger.actions.adds(self) return self.meta.adds end

return Ledger
