-- Test room: onEvent. "shout" goes to everyone but the sender (emit with except),
-- "whisper" to one member (send), "all" to every member including the sender.
local Echo = {
  defaultState = { events = 0 },
}

function Echo:onEvent(event, data, ctx)
  self.state.events = self.state.events + 1
  if event == "shout" then
    self:emit("shouted", { text = data.text, by = ctx.client }, { except = ctx.client })
  elseif event == "whisper" then
    self:send(data.to, "whispered", { text = data.text, by = ctx.client })
  elseif event == "all" then
    self:emit("all", { text = data.text, by = ctx.client })
  else
    error("unknown event " .. tostring(event))
  end
end

Echo.actions = {}

-- An action whose events are caused by the request: they reach the caller before the reply.
function Echo.actions.announce(self, ctx, text)
  self:emit("announced", { text = text })
  self:send(ctx.client, "private", { text = text })
  return "announced"
end

return Echo
