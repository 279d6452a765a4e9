-- Test room: self:kick and self:close. Members see `left` (kicked with a message, or
-- closed); the room records who was kicked so the others can see it in state.
local Bouncer = {
  defaultState = { members = 0, kicked = atrium.array() },
}

function Bouncer:onJoin(ctx)
  self.state.members = self.state.members + 1
end

function Bouncer:onLeave(ctx)
  self.state.members = self.state.members - 1
  if ctx.reason == "kicked" then
    table.insert(self.state.kicked, ctx.client)
  end
end

Bouncer.actions = {}

function Bouncer.actions.kick(self, ctx, target, reason)
  self:kick(target, reason)
  return true
end

function Bouncer.actions.close(self, ctx, reason)
  self:close(reason)
  return true
end

function Bouncer.actions.roster(self, ctx)
  local list = atrium.array()
  for member in self:members() do
    table.insert(list, member.client)
  end
  return { clients = list, count = self:memberCount() }
end

return Bouncer
