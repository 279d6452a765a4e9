-- Test room: keys that need JSON Pointer escaping ("a/b", "~", "~1"), unicode keys and
-- values, arrays that grow and shrink, and type changes, so patches can be replayed.
local Weird = {
  defaultState = {
    ["a/b"] = 1,
    ["~"] = "tilde",
    ["~1"] = "not a slash",
    ["é"] = "e-acute",
    list = atrium.array(),
    nested = { deep = { deeper = { value = 0 } } },
  },
  options = { patchRate = 10 },
}

local steps = {
  function(s) s["a/b"] = s["a/b"] + 1 end,
  function(s) s["~"] = "still tilde ~0 ~1 /" end,
  function(s) s["日本語"] = "こんにちは 👋" end,
  function(s) table.insert(s.list, "x") table.insert(s.list, { k = "v" }) end,
  function(s) s.nested.deep.deeper.value = "now a string" end,
  function(s) s["~1"] = nil end,
  function(s) table.remove(s.list, 1) end,
  function(s) s.nested.deep = 42 end,
  function(s) s["a/b"] = { ["c~d"] = { "e/f", "g~h" } } end,
  function(s) s.list = atrium.array() end,
  function(s) s["é"] = nil s["ü/~"] = "both" end,
  function(s) s.nested = { "now", "an", "array" } end,
  function(s) s.emptyObject = {} s.emptyArray = atrium.array() end,
  function(s) s[""] = "empty key" end,
  function(s) s.flag = true s.nothing = false s.big = 1e300 s.neg = -0.5 end,
}

Weird.actions = {}

function Weird.actions.step(self, ctx, i)
  local f = steps[i]
  if not f then error("no step " .. tostring(i)) end
  f(self.state)
  return i
end

function Weird.actions.stepCount(self, ctx)
  return #steps
end

function Weird.actions.setState(self, ctx, partial)
  self:setState(partial)
  return true
end

return Weird
