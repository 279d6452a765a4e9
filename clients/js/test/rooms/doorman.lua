-- Client test room: an action that places its caller into another room server-side.
local Doorman = {
  defaultState = { seated = 0 },
}

Doorman.actions = {}

function Doorman.actions.seat(self, ctx, target, ticket)
  local ok, reason = atrium.room(target):join(ctx.client, { ticket = ticket })
  if ok then
    self.state.seated = self.state.seated + 1
  end
  return { ok = ok, reason = reason }
end

return Doorman
