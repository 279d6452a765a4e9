-- bench/rooms/relay.lua: a Pusher channel that is a room (bench/README.md "Pusher
-- (issue 20)"): private-relay.bench is room relay:bench, and every client event goes
-- through onEvent before the engine relays it, as a moderation script's would.
local Relay = { defaultState = {} }

function Relay:onEvent(event, data, ctx)
  if event ~= "client-load" then return false end   -- looked at, and let through as sent
end

return Relay
