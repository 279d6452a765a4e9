-- rooms/chat.lua: chat rooms. Shows a capped message list in public state, a password kept
-- in private meta (set by the creator's first join), and listing itself in directory.lua.
-- Who is here: a `members` action for the list, then `chat:presence` events as it changes.
local MAX_MESSAGES = 100
local MAX_TEXT = 500
local MAX_TITLE = 80
local MAX_NAME = 32
local DIRECTORY = "directory:main"

local Chat = {
  defaultState = { title = "", messages = atrium.array(), online = 0, isPrivate = false },
  defaultMeta = { password = false, createdBy = false, members = atrium.array() },
}

-- A display name from the join payload: trimmed, 1..MAX_NAME bytes, else none.
local function displayName(payload)
  local name = payload.name
  if type(name) ~= "string" then return nil end
  name = name:match("^%s*(.-)%s*$")
  if name == "" or #name > MAX_NAME then return nil end
  return name
end

-- The member list in meta (made here for rooms that outlived a reload of an older script).
local function memberList(self)
  if self.meta.members == nil then self.meta.members = atrium.array() end
  return self.meta.members
end

local function memberIndex(self, client)
  for i, m in ipairs(memberList(self)) do
    if m.client == client then return i end
  end
  return nil
end

-- What the directory shows about this room.
local function listing(self)
  return { title = self.state.title, members = self.state.online, isPrivate = self.state.isPrivate }
end

-- ctx is the first join's context, or nil when server code created the room.
function Chat:onCreate(ctx)
  local payload = ctx and ctx.payload or {}
  local title = payload.title
  if type(title) == "string" and #title > 0 and #title <= MAX_TITLE then
    self.state.title = title
  else
    self.state.title = self.instance
  end
  if type(payload.password) == "string" and payload.password ~= "" then
    self.meta.password = payload.password
    self.state.isPrivate = true
  end
  self.meta.createdBy = ctx and (ctx.userId or ctx.client) or false
  atrium.room(DIRECTORY):call("register", self.id, listing(self))
end

function Chat:onJoin(ctx)
  if self.meta.password and ctx.payload.password ~= self.meta.password then
    return false, "wrong password"                -- the client gets join_rejected
  end
  self.state.online = self.state.online + 1
  local member = { client = ctx.client, name = displayName(ctx.payload) }
  table.insert(memberList(self), member)
  self:emit("chat:presence", { client = member.client, name = member.name, here = true })
  atrium.room(DIRECTORY):call("update", self.id, listing(self))
end

function Chat:onLeave(ctx)
  self.state.online = self.state.online - 1
  local i = memberIndex(self, ctx.client)
  if i then table.remove(memberList(self), i) end
  self:emit("chat:presence", { client = ctx.client, here = false })
  atrium.room(DIRECTORY):call("update", self.id, listing(self))
end

function Chat:onDestroy()
  atrium.room(DIRECTORY):call("unregister", self.id)
end

Chat.actions = {}

-- send(text): appends a message, keeps the last MAX_MESSAGES, and emits it.
function Chat.actions.send(self, ctx, text)
  if type(text) ~= "string" then
    error("send(text) takes a string")
  end
  if #text > MAX_TEXT then
    error("a message is at most " .. MAX_TEXT .. " bytes")
  end
  text = text:match("^%s*(.-)%s*$")
  if text == "" then
    error("a message cannot be empty")
  end
  local i = memberIndex(self, ctx.client)
  local msg = { user = ctx.userId or ctx.client, text = text, at = atrium.now(),
                name = i and self.meta.members[i].name or nil }
  local messages = self.state.messages
  table.insert(messages, msg)
  while #messages > MAX_MESSAGES do
    table.remove(messages, 1)
  end
  self:emit("chat:message", msg)
  return msg                                       -- the call's reply result
end

-- members(): who is here, in join order: { {client, name?}, ... }. Members keep it current
-- with the `chat:presence` events ({client, name?, here}) that follow.
function Chat.actions.members(self, ctx)
  local list = atrium.array()
  for _, m in ipairs(memberList(self)) do
    table.insert(list, { client = m.client, name = m.name })
  end
  return list
end

-- A plain method: server-side code only (another room, or POST /api/rooms/:id/call/setPassword).
function Chat:setPassword(password)
  if password ~= false and (type(password) ~= "string" or password == "") then
    error("setPassword takes a non-empty string, or false to open the room")
  end
  self.meta.password = password
  self.state.isPrivate = password ~= false
  atrium.room(DIRECTORY):call("update", self.id, listing(self))
  return self.state.isPrivate
end

return Chat
