-- Test room: each member's entry is written with self:setIn, never through self.state,
-- so a commit diffs only the entry that changed; a move of both coordinates is one
-- replace of the entry (docs/rooms.md "How the server finds what changed").
local Mover = {
  defaultState = { players = {}, moves = 0 },
  options = { patchRate = 20 },
}

function Mover:onJoin(ctx)
  self:setIn({ "players", ctx.client }, { x = 0, y = 0 })
end

function Mover:onLeave(ctx)
  self:setIn({ "players", ctx.client }, nil)
end

Mover.actions = {}

function Mover.actions.move(self, ctx, x, y)
  self:setIn({ "players", ctx.client }, { x = x, y = y })
end

function Mover.actions.nudge(self, ctx, x)
  self:setIn({ "players", ctx.client, "x" }, x)
end

function Mover.actions.tooDeep(self, ctx)
  self:setIn({ "players", ctx.client, "x", "deep" }, 1)
end

return Mover
