// Lua 5.1 patterns (reference manual §5.4.1) as LuaJIT runs them, under the CPU budget.
//
// LuaJIT's string.find/match/gmatch/gsub match in C, where the count hook never fires:
// string.rep("a", 30000):find(".-.-.-.-b") would hold the engine thread for minutes.
// These four replacements give the same results and the same errors, word for word, and
// every pattern_steps_per_check matcher steps ask hook_call whether the running call is
// past its deadline; if it is, they raise the hook's own "budget_exceeded: ..." error.
// Outside a call_hook (the engine's own Lua) nothing is bounded.
#pragma once

struct lua_State;

namespace atrium::script {

// Steps between two looks at the clock. A step is one pattern item tried at one subject
// position, a few nanoseconds, so the budget is overrun by well under a millisecond.
inline constexpr int pattern_steps_per_check = 10'000;

// Sets core.patterns = { find, match, gmatch, gsub } on the table at core_index, and
// puts the same four into the VM's global `string` table. That table is also what the
// string metatable's __index points to, so ("x"):find(...) is bounded too. Call once,
// after the string library is open.  [-0, +0, m]
void push_pattern_functions(lua_State* L, int core_index);

}  // namespace atrium::script
