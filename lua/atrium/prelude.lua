-- The engine's own Lua, run once per VM with the C core as its argument. It builds what
-- room scripts see (a sandboxed environment per room type, with `atrium` in it) and the
-- room base class. Room scripts never see `core` or this file's locals.
-- room_module: lua/atrium/room.lua's result, loaded by the engine.
local core, room_module = ...

local Room = room_module(core)

local pairs, type, error, tostring, select = pairs, type, error, tostring, select
local setmetatable, rawget, rawset = setmetatable, rawget, rawset

local M = { Room = Room }

-- Standard library names a room script may see, by library. Anything not listed here
-- (io, os beyond time/clock/date, debug, ffi, jit, require, load, loadstring, dofile,
-- loadfile, getfenv, setfenv, newproxy, string.dump, module, gcinfo) does not exist for it.
local allowed = {
  _ = { "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
        "rawget", "rawset", "select", "setmetatable", "getmetatable", "tonumber",
        "tostring", "type", "unpack", "xpcall", "_VERSION" },
  string = { "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower",
             "match", "rep", "reverse", "sub", "upper" },
  table = { "concat", "insert", "maxn", "remove", "sort" },
  math = { "abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp",
           "floor", "fmod", "frexp", "huge", "ldexp", "log", "log10", "max", "min",
           "modf", "pi", "pow", "rad", "sin", "sinh", "sqrt", "tan", "tanh" },
  bit = { "tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift",
          "arshift", "rol", "ror", "bswap" },
}

local G = _G
local os_time, os_clock, os_date = core.os_time, core.os_clock, core.os_date
if core.fixed_clock then
  -- An embedding host's clock (EngineConfig::host_clock), or the clock a record or a
  -- synctest reads once per input: "now" is that time, in every form.
  local now, floor, real_time, real_date = core.now, math.floor, os_time, os_date
  os_time = function(t)
    if t == nil then return floor(now() / 1000) end
    return real_time(t)
  end
  os_clock = function() return now() / 1000 end
  os_date = function(format, t) return real_date(format, t or floor(now() / 1000)) end
end

local function copy_library(name)
  local src, dst = name == "_" and G or G[name], {}
  for _, fname in pairs(allowed[name]) do dst[fname] = src[fname] end
  return dst
end

-- Synctest (the engine's synctest setting): in a hook's second run, next and pairs walk a
-- table's keys in the reverse of their order, so that a hook whose outcome follows that
-- order (the "first" player by next()), which another process's hash seed would change,
-- changes something else the second time (src/engine/synctest.cpp reports it).
local synctest_next, synctest_pairs
if core.synctest then
  local raw_next, raw_pairs, reversed = next, pairs, core.synctest_reversed
  local walks = setmetatable({}, { __mode = "k" })  -- table -> its keys backwards, and where
  local function walk_backwards(t)
    local keys, at, n = {}, {}, 0
    local k = raw_next(t)
    while k ~= nil do
      n = n + 1
      keys[n] = k
      k = raw_next(t, k)
    end
    for i = 1, math.floor(n / 2) do keys[i], keys[n + 1 - i] = keys[n + 1 - i], keys[i] end
    for i = 1, n do at[keys[i]] = i end
    local walk = { keys = keys, at = at }
    walks[t] = walk
    return walk
  end
  synctest_next = function(t, k)
    if not reversed() or type(t) ~= "table" then return raw_next(t, k) end
    local walk = k ~= nil and walks[t] or walk_backwards(t)
    local i = 0
    if k ~= nil then
      i = walk.at[k]
      if i == nil then
        walk = walk_backwards(t)
        i = walk.at[k]
        if i == nil then return raw_next(t, k) end  -- "invalid key to 'next'", as ever
      end
    end
    for j = i + 1, #walk.keys do
      local key = walk.keys[j]
      local v = rawget(t, key)
      if v ~= nil then return key, v end
    end
    return nil
  end
  synctest_pairs = function(t)
    if type(t) ~= "table" then return raw_pairs(t) end
    return synctest_next, t, nil
  end
end

-- collectgarbage with only the arguments that cannot stop the collector.
local function safe_collectgarbage(opt)
  if opt == nil or opt == "collect" or opt == "count" or opt == "step" then
    return G.collectgarbage(opt)
  end
  error("collectgarbage('" .. tostring(opt) .. "') is not allowed in a room script", 2)
end

-- pcall and xpcall that cannot catch a stop (CPU budget, nesting too deep): the engine
-- raises a stop again at every instruction, and a stopped call never runs a script's
-- message handler (LuaJIT would run it with the count hook off: an endless handler would
-- never be stopped). Other errors behave as in plain Lua.
local stopped, G_pcall, G_xpcall = core.stopped, G.pcall, G.xpcall
local function unless_stopped(ok, ...)
  if not ok and stopped() then error((...), 0) end
  return ok, ...
end
local function safe_pcall(f, ...)
  return unless_stopped(G_pcall(f, ...))
end
local function safe_xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    error("bad argument #2 to 'xpcall' (function expected, got " .. type(handler) .. ")", 2)
  end
  return unless_stopped(G_xpcall(f, function(message)
    if stopped() then return message end
    return handler(message)
  end, ...))
end

-- atrium.room(id): a handle to another room. `state` is a copy; calls go through the core,
-- which runs them inside the caller's transaction.
local Handle = {}
local HandleMeta = {
  __index = function(h, k)
    if k == "state" then return core.room_state(rawget(h, "id")) end
    return Handle[k]
  end,
  __metatable = false,
}
function Handle:join(client, payload) return core.room_join(rawget(self, "id"), client, payload) end
function Handle:call(name, ...) return core.room_call(rawget(self, "id"), name, ...) end

local function room_handle(id)
  if type(id) ~= "string" then error("atrium.room(id): id must be a string", 2) end
  return setmetatable({ id = id }, HandleMeta)
end

-- A fresh `atrium` table per room type, so one type patching it changes nothing for others.
local function make_atrium(typeName)
  local log = {}
  for _, level in pairs({ "debug", "info", "warn", "error" }) do
    log[level] = function(...)
      local n, parts = select("#", ...), {}
      for i = 1, n do parts[i] = tostring((select(i, ...))) end
      core.log(level, typeName, table.concat(parts, " "))
    end
  end
  return {
    room = room_handle,
    now = core.now,
    log = log,
    json = { encode = core.json_encode, decode = core.json_decode },
    array = core.array,
    null = core.null,  -- a null item of an array (nil would end the array there)
    -- atrium.host.NAME(...): a function of the program that embeds the engine.
    host = setmetatable({}, {
      __index = function(_, name)
        return function(...) return core.host_call(name, ...) end
      end,
      __newindex = function() error("atrium.host is the host's: it cannot be assigned", 2) end,
    }),
  }
end

-- The environment a room script runs in. Globals are strict: reading or assigning a
-- name that is not declared here is an error, so a typo fails loudly.
function M.makeEnv(typeName)
  local env = copy_library("_")
  env.string = copy_library("string")
  -- LuaJIT's own find/match/gmatch/gsub match inside C, out of the count hook's sight;
  -- these are bounded by the CPU budget (src/script/lua_patterns.cpp).
  for name, fn in pairs(core.patterns) do env.string[name] = fn end
  env.table = copy_library("table")
  env.math = copy_library("math")
  env.math.random = core.random
  env.math.randomseed = core.randomseed
  env.bit = copy_library("bit")
  env.os = { time = os_time, clock = os_clock, date = os_date }
  env.collectgarbage = safe_collectgarbage
  env.pcall, env.xpcall = safe_pcall, safe_xpcall
  env.atrium = make_atrium(typeName)
  env.print = env.atrium.log.info   -- stdout belongs to the server; print goes to the log
  if synctest_next then env.next, env.pairs = synctest_next, synctest_pairs end
  env._G = env
  return setmetatable(env, {
    __index = function(_, k)
      error("undeclared global '" .. tostring(k) .. "'", 2)
    end,
    __newindex = function(_, k)
      error("assignment to undeclared global '" .. tostring(k) .. "' (use local)", 2)
    end,
    __metatable = false,
  })
end

M.newInstance = Room.newInstance
M.replaceMethods = Room.replaceMethods
M.snapshot = Room.snapshot
M.mergeDefaults = Room.mergeDefaults

return M
