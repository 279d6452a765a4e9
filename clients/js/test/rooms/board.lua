-- Client test room: a board whose state exercises every kind of patch (objects, arrays,
-- keys that need JSON Pointer escapes, whole-value replaces), plus events, kicks and close.
-- A join may carry a password; the first join sets it (like rooms/chat.lua).
local Board = {
  defaultState = { items = atrium.array(), tags = {}, online = 0, title = "" },
  defaultMeta = { password = false },
}

function Board:onCreate(ctx)
  local payload = ctx and ctx.payload or {}
  if type(payload.password) == "string" and payload.password ~= "" then
    self.meta.password = payload.password
  end
  self.state.title = self.instance
end

function Board:onJoin(ctx)
  if self.meta.password and ctx.payload.password ~= self.meta.password then
    return false, "wrong password"
  end
  self.state.online = self.state.online + 1
end

function Board:onLeave(ctx)
  self.state.online = self.state.online - 1
end

-- Every event is broadcast to all members (the sender too), with the sender as data.from.
function Board:onEvent(event, data, ctx)
  self:emit(event, { from = ctx.client, data = data })
end

Board.actions = {}

function Board.actions.push(self, ctx, value)
  table.insert(self.state.items, value)
  return #self.state.items
end

function Board.actions.insert(self, ctx, index, value)
  table.insert(self.state.items, index, value)
  return #self.state.items
end

function Board.actions.removeAt(self, ctx, index)
  return table.remove(self.state.items, index)
end

function Board.actions.set(self, ctx, key, value)
  self.state.tags[key] = value
  return true
end

function Board.actions.title(self, ctx, title)
  self.state.title = title
  return title
end

function Board.actions.setPassword(self, ctx, password)
  self.meta.password = password
  return true
end

function Board.actions.whoami(self, ctx)
  return ctx.client
end

function Board.actions.fail(self, ctx, message)
  error(message or "failed on purpose")
end

function Board.actions.kick(self, ctx, target, reason)
  self:kick(target or ctx.client, reason)
  return true
end

function Board.actions.close(self, ctx)
  self:close()
  return true
end

return Board
