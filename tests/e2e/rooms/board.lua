-- Test room: a plain method for the HTTP API (POST /api/rooms/:id/call/:method) and an
-- onEvent that counts client emits (an HTTP emit bypasses it).
local Board = {
  defaultState = { banner = "", clientEvents = 0, members = 0 },
}

function Board:onJoin(ctx)
  self.state.members = self.state.members + 1
end

function Board:onLeave(ctx)
  self.state.members = self.state.members - 1
end

function Board:onEvent(event, data, ctx)
  self.state.clientEvents = self.state.clientEvents + 1
end

-- Plain method: server-side only.
function Board:announce(text, extra)
  self.state.banner = text
  return { length = #text, extra = extra }
end

function Board:explode()
  error("exploded on purpose") -- board:explode
end

Board.actions = {}

function Board.actions.banner(self, ctx)
  return self.state.banner
end

return Board
