-- Test room: records every onLeave reason in state, so a watcher can tell a clean
-- close ("leave") from a dropped connection ("disconnect"). No grace: drops leave at once.
local Tracker = {
  defaultState = { members = 0, leaves = atrium.array(), lastLeave = false },
  options = { reconnectGrace = 0 },
}

function Tracker:onJoin(ctx)
  self.state.members = self.state.members + 1
end

function Tracker:onLeave(ctx)
  self.state.members = self.state.members - 1
  self.state.lastLeave = { client = ctx.client, reason = ctx.reason }
  table.insert(self.state.leaves, { client = ctx.client, reason = ctx.reason })
end

return Tracker
