// Where a patch is built: a room's Lua state table is compared with its mirror (the
// state members last saw) and the difference becomes RFC 6902 ops.
#pragma once

#include <string>
#include <vector>

#include "json/value.hpp"
#include "state/op.hpp"
#include "util/result.hpp"

struct lua_State;

namespace atrium::state {

// Appends to `out` the ops that take `mirror` (an object) to the Lua table at stack index
// `idx`. Reads Lua only; nothing is modified: the caller applies the ops to the mirror
// when the hook commits. Fails with script_error when the table breaks ROOMS-API.md
// "State rules" (functions, userdata, cycles, NaN/inf, non-UTF-8 strings, bad keys);
// `out` is then unspecified. The message names the path: "state.players.p1.x: NaN is not
// allowed in state". `what` names the root in messages ("state" or "meta").
// Cost follows what is scanned: one pass over the table, and only changed subtrees are
// converted.  [-0, +0, m]
Status diff(lua_State* L, int idx, const json::Value& mirror, std::vector<Op>& out,
            const char* what = "state");

// The same, limited to the given top-level keys (the ones setState touched): the cost
// follows the change, not the size of the state.  [-0, +0, m]
Status diff_keys(lua_State* L, int idx, const json::Value& mirror,
                 const std::vector<std::string>& keys, std::vector<Op>& out,
                 const char* what = "state");

}  // namespace atrium::state
