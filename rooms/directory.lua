-- rooms/directory.lua: the shared room list. Other rooms register, update and unregister
-- themselves through plain methods (server-side only); clients join "directory:main" to watch.
local Directory = {
  defaultState = { rooms = atrium.array(), watchers = 0 },
  options = { keepAlive = true },                 -- the list outlives its watchers
}

local function indexOf(rooms, id)
  for i, entry in ipairs(rooms) do
    if entry.id == id then return i end
  end
  return nil
end

local function check(id, info)
  if type(id) ~= "string" then error("a room id must be a string") end
  if info ~= nil and type(info) ~= "table" then error("room info must be a table") end
end

-- update(id, info): adds the room or changes only the fields that differ, so members
-- get small patches (a count change is one `replace` op).
function Directory:update(id, info)
  check(id, info)
  info = info or {}
  local rooms = self.state.rooms
  local i = indexOf(rooms, id)
  if not i then
    table.insert(rooms, { id = id, title = id, members = 0, isPrivate = false })
    i = #rooms
  end
  local entry = rooms[i]
  if type(info.title) == "string" then entry.title = info.title end
  if type(info.members) == "number" then entry.members = info.members end
  if info.isPrivate ~= nil then entry.isPrivate = info.isPrivate == true end
  return true
end

function Directory:register(id, info)
  return self:update(id, info)
end

function Directory:unregister(id)
  check(id)
  local i = indexOf(self.state.rooms, id)
  if i then table.remove(self.state.rooms, i) end
  return i ~= nil
end

function Directory:onJoin(ctx)
  self.state.watchers = self.state.watchers + 1
end

function Directory:onLeave(ctx)
  self.state.watchers = self.state.watchers - 1
end

Directory.actions = {}

-- find(text): the listed rooms whose title contains text (plain search, no patterns).
function Directory.actions.find(self, ctx, text)
  if type(text) ~= "string" then error("find(text) takes a string") end
  local found = atrium.array()
  for _, entry in ipairs(self.state.rooms) do
    if entry.title:lower():find(text:lower(), 1, true) then
      table.insert(found, entry)
    end
  end
  return found
end

return Directory
