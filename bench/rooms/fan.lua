-- bench/rooms/fan.lua: the typed-room fan-out scenario (bench/README.md "Scenarios").
-- A client calls `say(text)`; the room emits it to every other member, as an untyped
-- room's `emit` would, but through an action: parse, dispatch, hook, commit, encode.
local Fan = {
  defaultState = {},
  options = { patchRate = 50 },
}

Fan.actions = {}
function Fan.actions.say(self, ctx, text)
  self:emit("m", text, { except = ctx.client })
end

return Fan
