-- rooms/team.lua: a team's room for Laravel Echo and pusher-js clients (docs/pusher.md,
-- "Channels that are rooms"). With --pusher-app set, subscribing to presence-team.42 (or
-- private-team.42, or team.42) joins room team:42, so this script decides who gets in and
-- what their whispers say; native clients can join team:42 over /ws beside them.
--
-- Moderation from the back end, over the HTTP API:
--   POST /api/rooms/team:42/call/mute  {"args": ["17"]}   user 17's typing is no longer shown
--   POST /api/rooms/team:42/call/ban   {"args": ["17"]}   user 17 can no longer subscribe
local MAX_TEXT = 1000

local Team = {
  defaultState = { online = atrium.array() },       -- who is here: { {client, userId, name} }
  defaultMeta = { muted = {}, banned = {} },        -- by user id; never sent to anyone
}

-- A member's user id: the presence channel_data's (or the pusher:signin's) user_id, or a
-- native client's token subject. Anonymous clients have none.
local function userOf(ctx)
  return ctx.userId
end

function Team:onJoin(ctx)
  local user = userOf(ctx)
  if user and self.meta.banned[user] then
    return false, "banned from this team"          -- Echo's .error() gets this text
  end
  local info = ctx.pusher and ctx.pusher.userInfo
  table.insert(self.state.online, { client = ctx.client, userId = user or false,
                                    name = type(info) == "table" and info.name or false })
end

function Team:onLeave(ctx)
  for i, m in ipairs(self.state.online) do
    if m.client == ctx.client then
      table.remove(self.state.online, i)
      break
    end
  end
end

-- What a whisper becomes: false drops it. Echo's whisper('typing', data) arrives as
-- "client-typing"; a native client emits the same names.
local function filter(self, event, data, ctx)
  local user = userOf(ctx)
  if event == "client-typing" then
    if user and self.meta.muted[user] then return false end
    return data
  end
  if event == "client-message" then
    local text = type(data) == "table" and data.text
    if type(text) ~= "string" then return false end
    text = text:match("^%s*(.-)%s*$")
    if text == "" or #text > MAX_TEXT then return false end
    -- Who sent it is the server's to say, not the sender's.
    return { text = text, by = user or ctx.client, at = atrium.now() }
  end
  return data
end

-- A Pusher client event is relayed by the engine with what this returns (false: to nobody).
-- A native member's emit is not relayed unless the script does it, so it does it here.
function Team:onEvent(event, data, ctx)
  local out = filter(self, event, data, ctx)
  if out == false then return false end
  if ctx.pusher then return out end
  self:emit(event, out, { except = ctx.client })
end

function Team:mute(userId)
  self.meta.muted[tostring(userId)] = true
  return true
end

function Team:unmute(userId)
  self.meta.muted[tostring(userId)] = nil
  return true
end

-- Bans for the future and kicks whoever of that user is here now.
function Team:ban(userId)
  userId = tostring(userId)
  self.meta.banned[userId] = true
  for _, m in ipairs(self.state.online) do
    if m.userId == userId then self:kick(m.client, "banned from this team") end
  end
  return true
end

return Team
