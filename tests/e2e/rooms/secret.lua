-- Test room: a password kept in meta. The first join's payload.password locks the room;
-- later joins must match it. Meta must never reach a frame, an HTTP body or a log line.
local Secret = {
  defaultState = { members = 0, locked = false },
  defaultMeta = { password = false, fingerprint = false },
}

function Secret:onCreate(ctx)
  if ctx and type(ctx.payload.password) == "string" then
    self.meta.password = ctx.payload.password
    -- A value that exists only in meta (never in any input), to look for in outputs.
    self.meta.fingerprint = "fp:" .. string.reverse(ctx.payload.password)
    self.state.locked = true
  end
end

function Secret:onJoin(ctx)
  if self.meta.password and ctx.payload.password ~= self.meta.password then
    return false, "wrong password"
  end
  self.state.members = self.state.members + 1
end

function Secret:onLeave(ctx)
  self.state.members = self.state.members - 1
end

Secret.actions = {}

function Secret.actions.isLocked(self, ctx)
  return self.meta.password ~= false
end

-- A plain method: server-side code may call it, clients may not.
function Secret:setPassword(p)
  self.meta.password = p
  self.state.locked = p ~= false
  return self.state.locked
end

return Secret
