-- Test room: a long patch interval (300 ms), so changes from several calls inside one
-- interval reach members as fewer patches than there were calls.
local Batch = {
  defaultState = { n = 0, log = atrium.array() },
  options = { patchRate = 300 },
}

Batch.actions = {}

function Batch.actions.inc(self, ctx)
  self.state.n = self.state.n + 1
  table.insert(self.state.log, self.state.n)
  return self.state.n
end

return Batch
