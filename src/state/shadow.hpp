// The shadow: a room's mirror as plain Lua tables, so that a script that changes its state
// directly (self.state.players[id].x = 5) is diffed by a walk in Lua, which iterates a
// table several times faster than the C API's lua_next can, and runs compiled by LuaJIT's
// JIT, the one code in a room VM that does (shadow.cpp set_up_jit; bench/diff_bench). The walk finds which tables changed; diff_paths()
// then builds the ops there, so the ops are the ones diff() builds, in the same order
// (under an object, by key: diff.hpp).
//
// A shadow is the room engine's own: no script can reach it, and no shadow table has a
// metatable, so looking into one never runs script code. Each shadow table holds, under a
// private key, how many members it has and whether it is an array, which is how the walk
// sees removed keys and kind changes without walking the shadow too.
#pragma once

#include <vector>

#include "json/value.hpp"
#include "state/diff.hpp"
#include "state/op.hpp"
#include "util/result.hpp"

struct lua_State;

namespace atrium::state {

// Pushes a new shadow of `mirror` (an object or array). False, with nil pushed, when Lua
// ran out of memory: the caller then diffs without one.  [-0, +1, -]
bool push_shadow(lua_State* L, const json::Value& mirror);

// The shadow at `idx` was of the mirror before `ops`; `mirror` is after them. Brings the
// shadow up to it, copying what the ops touched from `mirror`. False when it could not
// (out of memory, or ops the shadow cannot follow): the shadow is then unusable and the
// caller drops it.  [-0, +0, -]
bool sync_shadow(lua_State* L, int idx, const json::Value& mirror, const std::vector<Op>& ops);

// What walk_shadow() found.
enum class ShadowWalk {
  paths,   // these tables changed (none: nothing did)
  whole,   // diff() of everything: only it can say (the root became an array, a key no state
           // can hold appeared at the root), or it is cheaper (a quarter of the tables changed)
  failed,  // the walk could not run (out of memory, not tables)
};

// Walks the Lua table at `live` against the shadow at `shadow`. On `paths`, `paths` holds
// the tables whose own members (keys, scalar values, kind) differ, and the root's members
// that do; diff_paths() there gives diff()'s ops.  [-0, +0, -]
ShadowWalk walk_shadow(lua_State* L, int live, int shadow, std::vector<Path>& paths);

// diff(L, live, mirror, out, what), found by walking the Lua table at `live` against the
// shadow at `shadow` (which must be of `mirror`): only the tables the walk finds changed
// are diffed. The result is diff()'s, State rules included.  [-0, +0, m]
Status diff_by_shadow(lua_State* L, int live, int shadow, const json::Value& mirror,
                      std::vector<Op>& out, const char* what = "state");

}  // namespace atrium::state
