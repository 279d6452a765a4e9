-- Test room: actions that fail. An error reaches the caller as script_error naming this
-- file and line; whatever the action changed or queued before failing is rolled back.
local Faulty = {
  defaultState = { value = 0, note = "clean" },
  defaultMeta = { calls = 0 },
}

function Faulty:onEvent(event, data, ctx)
  self:emit("seen", { event = event })
end

Faulty.actions = {}

function Faulty.actions.set(self, ctx, value)
  self.state.value = value
  return value
end

function Faulty.actions.fail(self, ctx)
  error("boom") -- faulty:fail
end

function Faulty.actions.changeThenFail(self, ctx)
  self.state.value = 999
  self.state.note = "dirty"
  self.meta.calls = self.meta.calls + 1
  self:emit("leaked", { from = "changeThenFail" })
  self:setTimeout(10, function() self.state.note = "timer ran" end)
  error("after changes") -- faulty:changeThenFail
end

function Faulty.actions.indexNil(self, ctx)
  local t = nil
  return t.field -- faulty:indexNil
end

function Faulty.actions.functionInState(self, ctx)
  self.state.value = function() end
  return true
end

function Faulty.actions.badUtf8InState(self, ctx)
  self.state.note = "bad \255 bytes"
  return true
end

function Faulty.actions.nanInState(self, ctx)
  self.state.value = 0 / 0
  return true
end

function Faulty.actions.typo(self, ctx)
  return undefinedGlobalName -- faulty:typo
end

return Faulty
