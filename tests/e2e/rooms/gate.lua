-- Test room: onJoin changes state and then rejects; a rejected join must change nothing,
-- and a room created only for a rejected join must be discarded.
local Gate = {
  defaultState = { attempts = 0, admitted = atrium.array() },
}

function Gate:onJoin(ctx)
  self.state.attempts = self.state.attempts + 1
  table.insert(self.state.admitted, ctx.client)
  if ctx.payload.letMeIn ~= true then
    return false, "not on the list"
  end
end

return Gate
