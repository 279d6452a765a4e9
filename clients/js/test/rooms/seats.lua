-- Client test room for seats and resume: each join and leave is written to state.log, so a
-- member can see that a dropped member's seat was held (no leave, no second join); `bump`
-- changes the state once per call. The seat of a dropped member is held for the default
-- reconnectGrace (10 s).
local Seats = {
  defaultState = { log = atrium.array(), n = 0 },
}

function Seats:onJoin(ctx)
  table.insert(self.state.log, "join " .. ctx.client)
end

function Seats:onLeave(ctx)
  table.insert(self.state.log, "leave " .. ctx.client .. " " .. tostring(ctx.reason))
end

Seats.actions = {}

function Seats.actions.bump(self, ctx)
  self.state.n = self.state.n + 1
  return self.state.n
end

-- A patch of about 100 kB: three of them pass the patch log's byte bound (256 KiB by default).
function Seats.actions.big(self, ctx)
  self.state.n = self.state.n + 1
  self.state.big = string.rep(string.char(97 + self.state.n % 26), 100000)
  return self.state.n
end

function Seats.actions.kick(self, ctx, target)
  self:kick(target, "kicked while away")
  return true
end

function Seats.actions.close(self, ctx)
  self:close()
  return true
end

function Seats.actions.whoami(self, ctx)
  return ctx.client
end

return Seats
