-- Test room: an action that places its caller into another room server-side with
-- atrium.room(id):join, and one that reads another room's public state.
local Placer = {
  defaultState = { placed = 0 },
}

Placer.actions = {}

function Placer.actions.place(self, ctx, target, payload)
  local ok, reason = atrium.room(target):join(ctx.client, payload or {})
  if ok then
    self.state.placed = self.state.placed + 1
  end
  return { ok = ok, reason = reason }
end

function Placer.actions.peek(self, ctx, target)
  return atrium.room(target).state
end

return Placer
