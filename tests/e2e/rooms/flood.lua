-- Test room: floods one member with events, or every member with large patches, on an
-- interval, so a client that stops reading fills its outbox (slow-reader handling).
local Flood = {
  defaultState = { blob = "", round = 0 },
  options = { patchRate = 5 },
}

local running = {}

local function stop(self)
  local h = running[self.id]
  if h then h:cancel() end
  running[self.id] = nil
end

Flood.actions = {}

-- Every `ms`, send `count` events of `size` bytes to `target` only.
function Flood.actions.events(self, ctx, target, size, count, ms)
  stop(self)
  local filler = string.rep("e", size)
  running[self.id] = self:setInterval(ms, function()
    for i = 1, count do
      self:send(target, "flood", { i = i, filler = filler })
    end
  end)
  return true
end

-- Every `ms`, replace state.blob with a fresh string of `size` bytes (a patch to everyone).
function Flood.actions.churn(self, ctx, size, ms)
  stop(self)
  local letters = { "a", "b", "c", "d" }
  running[self.id] = self:setInterval(ms, function()
    local round = self.state.round + 1
    self.state.round = round
    self.state.blob = string.rep(letters[round % 4 + 1], size)
  end)
  return true
end

function Flood.actions.stop(self, ctx)
  stop(self)
  return self.state.round
end

function Flood:onLeave(ctx)
  stop(self)
end

function Flood:onDestroy()
  stop(self)
end

return Flood
