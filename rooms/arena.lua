-- rooms/arena.lua: a tick-driven game room. Clients send intents with move(dx, dy); onTick
-- moves every player 20 times a second and keeps it inside the arena: the server decides.
local WIDTH, HEIGHT = 800, 600                    -- arena size, px
local SPEED = 200                                 -- px per second at full intent
local MAX_NAME = 24

local Arena = {
  defaultState = { width = WIDTH, height = HEIGHT, players = {} },
  options = { tickRate = 20, maxMembers = 16 },
}

local function clamp(v, lo, hi)
  return math.max(lo, math.min(hi, v))
end

local function round2(v)
  return math.floor(v * 100 + 0.5) / 100
end

-- Player keys are strings, so `players` stays a JSON object whatever the client ids are.
local function key(ctx)
  return tostring(ctx.client)
end

function Arena:onJoin(ctx)
  local name = ctx.payload.name
  if type(name) ~= "string" or #name == 0 or #name > MAX_NAME then
    name = "player " .. self:memberCount()  -- the joiner is counted already
  end
  self.state.players[key(ctx)] = {
    name = name,
    x = math.floor(math.random() * WIDTH),
    y = math.floor(math.random() * HEIGHT),
    vx = 0,
    vy = 0,
  }
end

function Arena:onLeave(ctx)
  self.state.players[key(ctx)] = nil
end

Arena.actions = {}

-- move(dx, dy): an intent in [-1, 1] per axis; longer vectors are scaled to length 1 so
-- diagonals are not faster. The next ticks apply it.
function Arena.actions.move(self, ctx, dx, dy)
  if type(dx) ~= "number" or type(dy) ~= "number"
      or math.abs(dx) == math.huge or math.abs(dy) == math.huge then
    error("move(dx, dy) takes two finite numbers")
  end
  local len = math.sqrt(dx * dx + dy * dy)
  if len > 1 then
    dx, dy = dx / len, dy / len
  end
  local player = self.state.players[key(ctx)]
  player.vx = round2(dx * SPEED)
  player.vy = round2(dy * SPEED)
  return { vx = player.vx, vy = player.vy }
end

-- dt: seconds since the last tick. Only moving players change, so idle rooms send no patches.
function Arena:onTick(dt)
  for _, p in pairs(self.state.players) do
    if p.vx ~= 0 or p.vy ~= 0 then
      p.x = round2(clamp(p.x + p.vx * dt, 0, WIDTH))
      p.y = round2(clamp(p.y + p.vy * dt, 0, HEIGHT))
    end
  end
end

return Arena
