-- Test room: a syntax error. The type exists but does not load, so joins get
-- script_error naming this file and line, and /api/status shows the error.
local Broken = {
  defaultState = { ok = false },
}

local x = = 1 -- broken:syntax

return Broken
