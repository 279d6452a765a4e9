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
// when the hook commits. Fails with script_error when the table breaks docs/rooms.md
// "State rules" (functions, userdata, cycles, NaN/inf, non-UTF-8 strings, bad keys);
// `out` is then unspecified. The message names the path: "state.players.p1.x: NaN is not
// allowed in state". `what` names the root in messages ("state" or "meta").
// Cost follows what is scanned: one pass over the table, and only changed subtrees are
// converted. Where the ops under an object (other than the root) would encode larger
// than one replace of that whole object, the replace is emitted instead: {x, y, t} all
// changed is one op, not three.
// Order: the ops under an object come in the order of their member's key (bytewise, the
// raw key), removes included, each member's ops together; an array's in the order they
// apply. Whatever order lua_next has, the same change gives the same ops.  [-0, +0, m]
Status diff(lua_State* L, int idx, const json::Value& mirror, std::vector<Op>& out,
            const char* what = "state");

// A place in the state: the keys that lead to it from the root, as JSON object keys;
// an array item is its 1-based index as the script writes it ("3" for t[3]).
using Path = std::vector<std::string>;

// The same, limited to what lies under `paths` (what setState and setIn touched): the
// cost follows the change, not the size of the state. A path is followed while both
// sides hold tables of the same kind; where they stop doing so (a value that is no longer
// a table, an object that became an array, an array whose length changed) the value
// there is diffed whole. A path listed twice, or lying under another listed path, adds
// nothing; an empty path stands for the whole state.
// Under the paths the ops are those diff() gives there, in its order where the paths
// lead through objects only (an array's items are visited by their keys' text, "10"
// before "2"); nothing off them is looked at, the State rules included.  [-0, +0, m]
Status diff_paths(lua_State* L, int idx, const json::Value& mirror, const std::vector<Path>& paths,
                  std::vector<Op>& out, const char* what = "state");

// diff_paths with one-key paths (the keys setState touched).  [-0, +0, m]
Status diff_keys(lua_State* L, int idx, const json::Value& mirror,
                 const std::vector<std::string>& keys, std::vector<Op>& out,
                 const char* what = "state");

}  // namespace atrium::state
