-- rooms/pingpong.lua: the smallest useful room. An action with a reply (ping -> pong and a
-- count) and a client event echoed back to its sender with onEvent.
local PingPong = {
  defaultState = { pings = 0 },
}

PingPong.actions = {}

function PingPong.actions.ping(self, ctx)
  self.state.pings = self.state.pings + 1
  return { reply = "pong", count = self.state.pings }
end

-- A client's {"op":"emit","event":"echo","data":...} comes back to it alone.
function PingPong:onEvent(event, data, ctx)
  if event ~= "echo" then
    error("pingpong only knows the event 'echo'")
  end
  self:send(ctx.client, "echo", data)
end

return PingPong
