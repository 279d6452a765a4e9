// Lua values <-> json::Value, under docs/rooms.md "State rules".
//
// Lua -> JSON: nil -> null; booleans; finite numbers; UTF-8 strings; a table made by
// atrium.array() (the array marker metatable) is an array of its items 1..#t; another
// table whose keys are exactly 1..n (n >= 1) is an array; an empty table is an object;
// any other table is an object whose integer keys become strings ("3"), its members in
// key order (bytewise: json::Value::sort_members), whatever order lua_next has. Functions,
// userdata, threads, cycles, NaN, infinities, non-UTF-8 strings and keys that are not
// strings or integers are errors; so are t[3] and t["3"] in one table (one JSON key) and
// tables nested deeper than json::kMaxDepth (64) levels. Messages name the path the way
// a script writes it: "state.players.p1.x", "state.log[3]" (1-based), state["a b"].
// JSON -> Lua: arrays come back with the marker metatable, so [] stays [] on a round
// trip. A null array item becomes atrium.null (a light userdata NULL, as lua-cjson's
// cjson.null): nil would end the array there, and the items after it were lost. An
// object member that is null is left out, and null as a whole value is nil.
// Lua -> JSON: atrium.null is null wherever it is.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "json/value.hpp"
#include "util/result.hpp"

struct lua_State;

namespace atrium::script {

// Creates the array marker metatable and keeps it in the registry. Once per lua_State,
// before anything else here.  [-0, +0, m]
void init_lua_json(lua_State* L);

// Pushes the registry's array marker metatable.  [-0, +1, -]
void push_array_marker(lua_State* L);

// Pushes `v` as a fresh Lua value. Arrays get the marker metatable; a null item is
// atrium.null, a null object member is left out (keep_null_members: atrium.null too,
// which rollback needs to make a table exactly what its mirror says).  [-0, +1, m]
void push_value(lua_State* L, const json::Value& v, bool keep_null_members = false);

// Pushes atrium.null.  [-0, +1, -]
void push_null(lua_State* L);

// Converts the Lua value at `idx`. `what` prefixes error messages ("state", "data").
// Errors are script_error with a message naming the path.  [-0, +0, m]
Result<json::Value> to_value(lua_State* L, int idx, const char* what = "value");

// Makes the table at `idx` deep-equal to `mirror` (an object or array) in place: keys
// not in the mirror are removed, changed values rewritten, and nested tables that exist
// on both sides are restored recursively rather than replaced, so references a script
// holds to them stay valid. Used to roll back a failed hook.  [-0, +0, m]
void restore(lua_State* L, int idx, const json::Value& mirror);

// ---- The pieces of the State rules the differ (state/diff.cpp) shares, so that a diff
// ---- and a full conversion can never judge a table differently.

// True when the table at `idx` is a JSON array, with `length` its number of items: it
// carries the marker (items 1..#t) or its keys are exactly 1..n, n >= 1. `marker` is a
// stack index holding the array marker (push_array_marker), looked up once by callers
// that judge many tables.  [-0, +0, -]
bool is_array_table(lua_State* L, int idx, int marker, std::size_t& length);

// The JSON key of the Lua key at `idx`: a string as is, an integer as its decimal text
// (written into `buf`). False for any other key (it is then an error in state).
// [-0, +0, -]
bool key_text(lua_State* L, int idx, char (&buf)[32], std::string_view& key);

// The number an object key's text stands for when it is exactly what key_text gives an
// integer key ("3", "-2"; not "03", "-0" or "+3"): t["3"] and t[3] are one JSON key.
bool integer_key(std::string_view key, double& number) noexcept;

// to_value for a value that sits at `path` ("state.players.p1", Lua-style: see
// append_path_key) inside the root named `what`: errors read "state.players.p1.x: NaN
// is not allowed in state". `enclosing` lists the tables around it (lua_topointer,
// root first): they count towards the depth limit, and meeting one again is a cycle.
// [-0, +0, m]
Result<json::Value> to_value_at(lua_State* L, int idx, std::string_view path, const char* what,
                                std::span<const void* const> enclosing = {});

// Lua-style path segments for messages: ".name" for identifiers, ["a b"] for other
// keys (bytes that are not printable UTF-8 as \xNN), [3] for integer keys and items
// (1-based, as a script indexes them).
void append_path_key(std::string& path, std::string_view key);
void append_path_index(std::string& path, long long lua_index);

}  // namespace atrium::script
