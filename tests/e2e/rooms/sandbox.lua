-- Test room: what a script can see. Reports the type of names the sandbox must hide or
-- keep; raw reads so the strict-globals guard does not raise.
local Sandbox = {
  defaultState = {},
}

local hidden = { "io", "debug", "ffi", "jit", "require", "load", "loadstring", "dofile",
                 "loadfile", "getfenv", "setfenv", "newproxy", "module" }

Sandbox.actions = {}

function Sandbox.actions.probe(self, ctx)
  local seen = {}
  for _, name in ipairs(hidden) do
    seen[name] = type(rawget(_G, name))
  end
  seen["os.execute"] = type(os.execute)
  seen["os.getenv"] = type(os.getenv)
  seen["os.exit"] = type(os.exit)
  seen["os.time"] = type(os.time)
  seen["os.clock"] = type(os.clock)
  seen["string.dump"] = type(string.dump)
  seen["string.format"] = type(string.format)
  seen["table.insert"] = type(table.insert)
  seen["math.floor"] = type(math.floor)
  seen["atrium.now"] = type(atrium.now)
  return seen
end

function Sandbox.actions.stopCollector(self, ctx)
  collectgarbage("stop")
  return "collector stopped"
end

function Sandbox.actions.setGlobal(self, ctx)
  leakedGlobal = 1 -- sandbox:setGlobal
  return true
end

function Sandbox.actions.randoms(self, ctx, n)
  local out = atrium.array()
  for i = 1, n do out[i] = math.random() end
  return out
end

return Sandbox
