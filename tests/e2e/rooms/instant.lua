-- Test room: patchRate 0 (no batching delay). Patches must still replay to the state.
local Instant = {
  defaultState = { n = 0 },
  options = { patchRate = 0 },
}

Instant.actions = {}

function Instant.actions.inc(self, ctx)
  self.state.n = self.state.n + 1
  return self.state.n
end

return Instant
