-- The room base class: what every room instance has besides its script's methods.
-- Returns a constructor taking the C core, so the core is never a global.
return function(core)
  local type, error, setmetatable, getmetatable, rawset, rawget, next =
    type, error, setmetatable, getmetatable, rawset, rawget, next

  local Room = {}

  function Room:setState(partial)
    core.set_state(self, partial)
  end

  -- state[path[1]]...[path[n]] = value, marking only that path changed: unlike reading
  -- self.state, it leaves the state unexposed, so the engine diffs just that entry. The
  -- core returns a bad path's message, raised here at the script's line.
  function Room:setIn(path, value)
    local problem = core.set_in(self, path, value)
    if problem then error(problem, 2) end
  end

  function Room:emit(event, data, opts)
    core.emit(self, event, data, opts)
  end

  function Room:send(client, event, data)
    core.send(self, client, event, data)
  end

  function Room:kick(client, reason)
    core.kick(self, client, reason)
  end

  function Room:close(reason)
    core.close(self, reason)
  end

  function Room:members()
    local list, i = core.members(self), 0
    return function()
      i = i + 1
      return list[i]
    end
  end

  function Room:memberCount()
    return core.member_count(self)
  end

  -- Timer handles: {id = n}. The room a handle belongs to is kept here, not in the
  -- handle, and the metatable is hidden (every room type's handles share it): no script
  -- can reach another room through a handle, or change what cancel does for others.
  local timer_room = setmetatable({}, { __mode = "k" })
  local TimerMethods = {}
  function TimerMethods.cancel(handle)
    local room = timer_room[handle]
    if room then core.cancel_timer(room, rawget(handle, "id")) end
  end
  local TimerMeta = { __index = TimerMethods, __metatable = false }

  local function new_timer(room, ms, fn, every)
    if type(ms) ~= "number" or ms < 0 then error("timer delay must be a number of ms >= 0", 3) end
    if type(fn) ~= "function" then error("timer callback must be a function", 3) end
    local handle = setmetatable({ id = core.set_timer(room, ms, fn, every) }, TimerMeta)
    timer_room[handle] = room
    return handle
  end

  function Room:setTimeout(ms, fn) return new_timer(self, ms, fn, false) end
  function Room:setInterval(ms, fn) return new_timer(self, ms, fn, true) end

  -- An instance looks names up in its class, then here. `state` and `meta` live in the
  -- engine's box: reading them marks them exposed, so the engine knows which tables a
  -- hook may have changed and diffs only those (docs/rooms.md "How the server finds what
  -- changed (and what that costs)").
  function Room.newInstance(class, id, typeName, instanceName, box)
    local inst = { id = id, type = typeName, instance = instanceName }
    return setmetatable(inst, {
      __index = function(_, k)
        if k == "state" then box.sx = true; return box.state end
        if k == "meta" then box.mx = true; return box.meta end
        local v = class[k]
        if v ~= nil then return v end
        return Room[k]
      end,
      __newindex = function(t, k, v)
        if k == "state" or k == "meta" then
          if type(v) ~= "table" then error("self." .. k .. " must be a table", 2) end
          box[k] = v
          box[k == "state" and "sx" or "mx"] = true
          return
        end
        rawset(t, k, v)
      end,
      __metatable = false,
    })
  end

  -- Reload replaces methods in the live class table, so every instance sees the new
  -- code on its next call; defaults and state are not touched here. These and the
  -- functions below read and write raw: a script's metatables on its class, state or
  -- defaults never run from here (the engine calls these through its one door anyway).
  function Room.replaceMethods(class, fresh)
    for k in next, class do
      if rawget(fresh, k) == nil then rawset(class, k, nil) end
    end
    for k, v in next, fresh do rawset(class, k, v) end
  end

  -- A shallow copy of a class as it was: what onReload gets as previousClass.
  function Room.snapshot(class)
    local copy = {}
    for k, v in next, class do copy[k] = v end
    return copy
  end

  local function is_array(t)
    return core.is_array(t) or rawget(t, 1) ~= nil
  end

  -- An array keeps its marker (getmetatable cannot see it); other metatables are copied
  -- when a script left them visible.
  local function deepcopy(v)
    if type(v) ~= "table" then return v end
    local c = {}
    for k, x in next, v do c[k] = deepcopy(x) end
    local mt = core.is_array(v) and core.array_marker or getmetatable(v)
    if type(mt) == "table" then setmetatable(c, mt) end
    return c
  end

  -- Adds the keys of `defaults` that `target` lacks, recursively into tables present in
  -- both (never into arrays: their items are data, not defaults).
  local function merge(target, defaults)
    if type(defaults) ~= "table" or is_array(defaults) then return end
    for k, v in next, defaults do
      local t = rawget(target, k)
      if t == nil then
        rawset(target, k, deepcopy(v))
      elseif type(t) == "table" and type(v) == "table" and not is_array(t) then
        merge(t, v)
      end
    end
  end

  -- Reload: new default keys reach a live room (the engine diffs both tables after).
  function Room.mergeDefaults(box, class)
    merge(box.state, rawget(class, "defaultState"))
    merge(box.meta, rawget(class, "defaultMeta"))
    box.sx, box.mx = true, true
  end

  return Room
end
