// The differ: data-driven cases (tests/data/diff), a seeded property test, error paths,
// compact ops, diff_keys and diff_paths.
//
// Each tests/data/diff/*.json holds one case:
//   {"name": "...", "before": {...}, "lua": "code that mutates the global `state`",
//    "after": {...}?, "ops": [...]?, "error": "substring of the expected message"?}
// The runner builds the mirror from `before`, pushes it into Lua as `state` (arrays carry
// the marker, as the engine's own push does), runs `lua` in a lua_State with the base,
// table, string and math libraries (no jit) plus `atrium.array(t?)`, diffs, and checks:
// the ops applied in order to `before` give to_value(state); `after`, when given, is that
// state; `ops`, when given, are exactly the ops; `error`, when given, is in the message.
// It also checks diff_keys over every top-level key, diff_paths over the path to every
// leaf, and restore() back to `before`.
// Tests run with the project root as working directory (tests/unit/meson.build).
#include <doctest/doctest.h>

#include <lua.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "json/codec.hpp"
#include "script/lua_json.hpp"
#include "state/diff.hpp"
#include "state/shadow.hpp"

using atrium::json::Value;
using atrium::state::diff;
using atrium::state::diff_keys;
using atrium::state::diff_paths;
using atrium::state::Op;

namespace {

int l_array(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  atrium::script::push_array_marker(L);
  lua_setmetatable(L, 1);
  return 1;
}

struct Lua {
  lua_State* L = luaL_newstate();
  Lua() {
    for (lua_CFunction open : {luaopen_base, luaopen_table, luaopen_string, luaopen_math}) {
      lua_pushcfunction(L, open);
      lua_call(L, 0, 0);
    }
    atrium::script::init_lua_json(L);
    lua_newtable(L);
    lua_pushcfunction(L, l_array);
    lua_setfield(L, -2, "array");
    lua_setglobal(L, "atrium");
  }
  ~Lua() { lua_close(L); }
  Lua(const Lua&) = delete;
  Lua& operator=(const Lua&) = delete;

  void run(const std::string& code) {
    if (luaL_loadstring(L, code.c_str()) != 0 || lua_pcall(L, 0, 0, 0) != 0) {
      FAIL(lua_tostring(L, -1));
    }
  }
  void set_state(const Value& v) {
    atrium::script::push_value(L, v);
    lua_setglobal(L, "state");
  }
};

Value parsed(std::string_view text) {
  auto r = atrium::json::parse(text);
  REQUIRE(r.ok());
  return std::move(r).value();
}

Value ops_as_json(const std::vector<Op>& ops) {
  std::string text = "[";
  atrium::state::write_ops(ops, text);
  text += "]";
  return parsed(text);
}

// Top-level keys on either side: what a caller of diff_keys would pass to see it all.
std::vector<std::string> all_keys(lua_State* L, int idx, const Value& mirror) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : mirror.members()) keys.push_back(k);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    char buf[32];
    std::string_view k;
    if (atrium::script::key_text(L, -1, buf, k)) keys.emplace_back(k);
  }
  return keys;
}

// Paths to every leaf (a scalar, or a table with nothing in it) of the mirror and of the
// Lua table at `idx`: every change lies on one of them, so diff_paths over them must
// see everything. The Lua walk stops at a table met again on its way (a cycle) and at
// keys a path cannot name.
void mirror_leaves(const Value& v, atrium::state::Path& at, std::vector<atrium::state::Path>& out) {
  if (v.is_object() && v.size() > 0) {
    for (const auto& [k, m] : v.members()) {
      at.push_back(k);
      mirror_leaves(m, at, out);
      at.pop_back();
    }
  } else if (v.is_array() && v.size() > 0) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      at.push_back(std::to_string(i + 1));
      mirror_leaves(v.items()[i], at, out);
      at.pop_back();
    }
  } else {
    out.push_back(at);
  }
}

void lua_leaves(lua_State* L, int idx, atrium::state::Path& at, std::vector<const void*>& open,
                std::vector<atrium::state::Path>& out) {
  if (!lua_istable(L, idx) ||
      std::find(open.begin(), open.end(), lua_topointer(L, idx)) != open.end()) {
    out.push_back(at);
    return;
  }
  open.push_back(lua_topointer(L, idx));
  bool empty = true;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    char buf[32];
    std::string_view k;
    if (atrium::script::key_text(L, -2, buf, k)) {
      empty = false;
      at.emplace_back(k);
      lua_leaves(L, lua_gettop(L), at, open, out);
      at.pop_back();
    }
    lua_pop(L, 1);
  }
  if (empty) out.push_back(at);
  open.pop_back();
}

std::vector<atrium::state::Path> leaf_paths(lua_State* L, int idx, const Value& mirror) {
  std::vector<atrium::state::Path> out;
  atrium::state::Path at;
  mirror_leaves(mirror, at, out);
  std::vector<const void*> open;
  lua_leaves(L, idx, at, open, out);
  return out;
}

// Ops as their wire text, sorted: diff_by_shadow() may emit diff()'s ops in another order.
std::vector<std::string> op_texts(const std::vector<Op>& ops) {
  std::vector<std::string> texts;
  for (const Op& op : ops) {
    texts.emplace_back();
    atrium::state::write_op(op, texts.back());
  }
  std::sort(texts.begin(), texts.end());
  return texts;
}

// diff_by_shadow() with a shadow of `mirror` gives what diff() gave for the Lua table at
// `idx`: the same ops, or the same error.
void check_shadow(lua_State* L, int idx, const Value& mirror, const atrium::Status& status,
                  const std::vector<Op>& ops, const char* what = "state",
                  bool same_message = false) {
  if (!mirror.is_object() || !lua_istable(L, idx)) return;
  REQUIRE(atrium::state::push_shadow(L, mirror));
  const int shadow = lua_gettop(L);
  std::vector<atrium::state::Path> paths;
  CHECK(atrium::state::walk_shadow(L, idx, shadow, paths) != atrium::state::ShadowWalk::failed);
  std::vector<Op> shadow_ops;
  const auto by_shadow = atrium::state::diff_by_shadow(L, idx, shadow, mirror, shadow_ops, what);
  CHECK(lua_gettop(L) == shadow);
  lua_settop(L, shadow - 1);
  REQUIRE(by_shadow.ok() == status.ok());
  if (!status.ok()) {
    // With several broken places, each names the first it met.
    if (same_message) CHECK(by_shadow.error().message == status.error().message);
    return;
  }
  const auto got = op_texts(shadow_ops), want = op_texts(ops);
  std::string shown;
  for (const auto* list : {&got, &want}) {
    shown += "\n  ";
    for (const std::string& t : *list) shown += t + " ";
  }
  CHECK_MESSAGE(got == want, "by shadow, then by diff():" << shown);
}

// Diffs the global `state` against `mirror` and checks what must hold for any change:
// the ops replay onto the mirror, diff_keys and diff_paths (over every leaf) agree,
// restore() rolls back. Returns the diff's status; `ops` gets the ops.
atrium::Status check_diff(Lua& lua, const Value& mirror, std::vector<Op>& ops) {
  lua_State* L = lua.L;
  lua_getglobal(L, "state");
  const int top = lua_gettop(L);
  ops.clear();
  const auto status = diff(L, top, mirror, ops, "state");
  CHECK(lua_gettop(L) == top);
  check_shadow(L, top, mirror, status, ops);
  auto actual = atrium::script::to_value(L, top, "state");
  CHECK(status.ok() == actual.ok());                // a diff fails exactly when the state is bad
  if (status.ok() && actual.ok()) {
    Value replayed = mirror;
    const auto applied = atrium::state::apply_patch(replayed, ops);
    CHECK_MESSAGE(applied.ok(), (applied.ok() ? "" : applied.error().message));
    CHECK(replayed == actual.value());
    if (lua_istable(L, top) && mirror.is_object()) {
      std::vector<Op> key_ops;
      REQUIRE(diff_keys(L, top, mirror, all_keys(L, top, mirror), key_ops, "state").ok());
      Value by_keys = mirror;
      REQUIRE(atrium::state::apply_patch(by_keys, key_ops).ok());
      CHECK(by_keys == actual.value());
      std::vector<Op> path_ops;
      const auto by_paths = diff_paths(L, top, mirror, leaf_paths(L, top, mirror), path_ops);
      REQUIRE_MESSAGE(by_paths.ok(), (by_paths.ok() ? "" : by_paths.error().message));
      Value replayed_paths = mirror;
      const auto path_applied = atrium::state::apply_patch(replayed_paths, path_ops);
      CHECK_MESSAGE(path_applied.ok(), (path_applied.ok() ? "" : path_applied.error().message));
      CHECK_MESSAGE(replayed_paths == actual.value(), atrium::json::to_json(ops_as_json(path_ops)));
    }
    CHECK(ops_as_json(ops).is_array());             // what goes on the wire parses
  }
  if (lua_istable(L, top)) {
    atrium::script::restore(L, top, mirror);
    auto back = atrium::script::to_value(L, top, "state");
    REQUIRE(back.ok());
    CHECK(back.value() == mirror);
  }
  lua_settop(L, top - 1);
  return status;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void run_case(const std::filesystem::path& path) {
  const Value c = parsed(read_file(path));
  const std::string* name = c.get_string("name");
  const std::string* code = c.get_string("lua");
  const Value* before = c.find("before");
  REQUIRE_MESSAGE(name, (path.string() + ": no name"));
  REQUIRE_MESSAGE(code, (path.string() + ": no lua"));
  REQUIRE_MESSAGE(before, (path.string() + ": no before"));
  INFO("case ", path.filename().string(), ": ", *name);
  Lua lua;
  lua.set_state(*before);
  lua.run(*code);
  lua_getglobal(lua.L, "state");
  auto actual = atrium::script::to_value(lua.L, -1, "state");   // before restore() in check_diff
  lua_pop(lua.L, 1);
  std::vector<Op> ops;
  const auto status = check_diff(lua, *before, ops);
  if (const std::string* expected_error = c.get_string("error")) {
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == atrium::ErrorCode::script_error);
    CHECK_MESSAGE(status.error().message.find(*expected_error) != std::string::npos,
                  status.error().message);
    return;
  }
  REQUIRE_MESSAGE(status.ok(), (status.ok() ? "" : status.error().message));
  if (const Value* after = c.find("after")) {
    REQUIRE(actual.ok());
    CHECK_MESSAGE(actual.value() == *after, atrium::json::to_json(actual.value()));
  }
  if (const Value* expected_ops = c.find("ops")) {
    const Value got = ops_as_json(ops);
    CHECK_MESSAGE(got == *expected_ops, atrium::json::to_json(got));
  }
}

}  // namespace

TEST_CASE("every case in tests/data/diff gives ops that take before to the Lua state") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator("tests/data/diff")) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  CHECK(files.size() >= 25);
  for (const auto& file : files) run_case(file);
}

// ---- errors --------------------------------------------------------------------------

namespace {

std::string diff_error(const char* before, const char* code, const char* what = "state") {
  Lua lua;
  const Value mirror = parsed(before);
  lua.set_state(mirror);
  lua.run(code);
  lua_getglobal(lua.L, "state");
  std::vector<Op> ops;
  const auto status = diff(lua.L, -1, mirror, ops, what);
  check_shadow(lua.L, lua_gettop(lua.L), mirror, status, ops, what, true);
  lua_pop(lua.L, 1);
  if (status.ok()) return "no error";
  CHECK(status.error().code == atrium::ErrorCode::script_error);
  return status.error().message;
}

}  // namespace

TEST_CASE("a diff that meets a broken state rule names the path") {
  CHECK(diff_error(R"({"players":{"p1":{"x":1}}})", "state.players.p1.x = 0/0") ==
        "state.players.p1.x: NaN is not allowed in state");
  CHECK(diff_error(R"({"players":{"p1":{"x":1}}})", "state.players.p2 = {x = math.huge}") ==
        "state.players.p2.x: infinity is not allowed in state");
  CHECK(diff_error(R"({"log":["a"]})", "table.insert(state.log, print)") ==
        "state.log[2]: a function is not allowed in state");
  CHECK(diff_error(R"({"a":{"b":1}})", "state.a.self = state.a") ==
        "state.a.self: cycle: a table that contains itself is not allowed in state");
  CHECK(diff_error(R"({"a":{"b":1}})", "state.a.root = state") ==
        "state.a.root: cycle: a table that contains itself is not allowed in state");
  CHECK(diff_error(R"({"s":"ok"})", "state.s = 'caf\\233'") ==
        "state.s: string is not valid UTF-8");
  CHECK(diff_error(R"({"t":{}})", "state.t['\\255'] = 1") == "state.t: a key is not valid UTF-8");
  CHECK(diff_error(R"({"t":{"1":"a"}})", "state.t[1] = 'b'") ==
        "state.t: the key \"1\" is there both as a number and as a string");
  CHECK(diff_error(R"({"t":{"x":1}})", "state.t[true] = 1") ==
        "state.t: a key of type boolean is not allowed in state (keys are strings or integers)");
  CHECK(diff_error(R"({"m":{}})", "state.m.co = coroutine.create(print)", "meta") ==
        "meta.m.co: a coroutine is not allowed in meta");
}

TEST_CASE("a diff ends on a cyclic table the mirror does not reach into") {
  // The cycle sits under a key the mirror already has with a scalar: compare stops at
  // the mirror's depth and the conversion of the change reports the cycle.
  CHECK(diff_error(R"({"a":1})", "local t = {} t.t = t state.a = t") ==
        "state.a.t: cycle: a table that contains itself is not allowed in state");
}

TEST_CASE("a failed diff leaves the Lua stack as it was") {
  Lua lua;
  const Value mirror = parsed(R"({"a":[{"b":{"c":1}}]})");
  lua.set_state(mirror);
  lua.run("state.a[1].b.c = 0/0");
  lua_pushinteger(lua.L, 42);
  lua_getglobal(lua.L, "state");
  std::vector<Op> ops;
  CHECK_FALSE(diff(lua.L, -1, mirror, ops).ok());
  CHECK(lua_gettop(lua.L) == 2);
  CHECK(lua_tointeger(lua.L, 1) == 42);
}

// ---- diff_keys -----------------------------------------------------------------------

TEST_CASE("diff_keys compares only the listed top-level keys") {
  Lua lua;
  const Value mirror = parsed(R"({"a":1,"b":{"x":1},"c":[1,2],"gone":true})");
  lua.set_state(mirror);
  lua.run("state.a = 2; state.b.x = 5; state.c[3] = 3; state.gone = nil; state.new = 'n'");
  lua_getglobal(lua.L, "state");
  std::vector<Op> ops;
  REQUIRE(diff_keys(lua.L, -1, mirror, {"b", "gone", "new", "missing", "b"}, ops).ok());
  lua_pop(lua.L, 1);
  CHECK(ops_as_json(ops) == parsed(R"([{"op":"replace","path":"/b/x","value":5},
                                       {"op":"remove","path":"/gone"},
                                       {"op":"add","path":"/new","value":"n"}])"));
}

TEST_CASE("diff_keys finds an integer key the script wrote as a number") {
  Lua lua;
  const Value mirror = parsed(R"({"5":"five"})");
  lua.run("state = {[5] = 'five'}; state[5] = 'FIVE'; state[6] = 'six'");
  lua_getglobal(lua.L, "state");
  std::vector<Op> ops;
  REQUIRE(diff_keys(lua.L, -1, mirror, {"5", "6"}, ops).ok());
  lua_pop(lua.L, 1);
  CHECK(ops_as_json(ops) == parsed(R"([{"op":"replace","path":"/5","value":"FIVE"},
                                       {"op":"add","path":"/6","value":"six"}])"));
}

TEST_CASE("diff_keys reports a broken rule in a listed key with its path") {
  Lua lua;
  const Value mirror = parsed(R"({"p":{"x":1}})");
  lua.set_state(mirror);
  lua.run("state.p.x = 0/0");
  lua_getglobal(lua.L, "state");
  std::vector<Op> ops;
  const auto status = diff_keys(lua.L, -1, mirror, {"p"}, ops);
  lua_pop(lua.L, 1);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().message == "state.p.x: NaN is not allowed in state");
}

TEST_CASE("diff_keys falls back to a full diff when the root is no longer an object") {
  Lua lua;
  const Value mirror = parsed("{}");
  lua.set_state(mirror);
  lua.run("state[1] = 'x'");                        // {} with key 1 only: now an array
  lua_getglobal(lua.L, "state");
  std::vector<Op> ops;
  REQUIRE(diff_keys(lua.L, -1, mirror, {"1"}, ops).ok());
  lua_pop(lua.L, 1);
  CHECK(ops_as_json(ops) == parsed(R"([{"op":"replace","path":"","value":["x"]}])"));
}

// ---- compact ops (the cases whose op order is the table's are here, not in tests/data)

namespace {

// The paths of the ops a diff of `code` on `before` gives, sorted.
std::vector<std::string> op_paths(const char* before, const char* code) {
  Lua lua;
  const Value mirror = parsed(before);
  lua.set_state(mirror);
  lua.run(code);
  std::vector<Op> ops;
  REQUIRE(check_diff(lua, mirror, ops).ok());
  std::vector<std::string> paths;
  for (const Op& op : ops) paths.push_back(op.path);
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace

TEST_CASE("member ops stay when the object's other members make one replace longer") {
  CHECK(op_paths(R"({"p":{"x":1,"y":2,"name":"a name that makes the object long"}})",
                 "state.p.x = 5 state.p.y = 6") == std::vector<std::string>{"/p/x", "/p/y"});
  // Without the long name, the same change is one replace.
  CHECK(op_paths(R"({"p":{"x":1,"y":2,"name":"short"}})", "state.p.x = 5 state.p.y = 6") ==
        std::vector<std::string>{"/p"});
}

TEST_CASE("the root is never replaced whole, however many of its members changed") {
  CHECK(op_paths(R"({"x":1,"y":2})", "state.x = 3 state.y = 4") ==
        std::vector<std::string>{"/x", "/y"});
}

TEST_CASE("one change in a large object stays one op") {
  // 10,000 members, one changed: the weighing stops at the first member it looks at.
  Lua lua;
  Value mirror = Value::object();
  Value players = Value::object();
  for (int i = 0; i < 10000; ++i) players.set("p" + std::to_string(i), Value(i));
  mirror.set("players", std::move(players));
  lua.set_state(mirror);
  lua.run("state.players.p5 = -1");
  std::vector<Op> ops;
  REQUIRE(check_diff(lua, mirror, ops).ok());
  CHECK(ops_as_json(ops) == parsed(R"([{"op":"replace","path":"/players/p5","value":-1}])"));
}

// ---- diff_paths ----------------------------------------------------------------------

namespace {

// Runs `code` on the state `before` and returns the ops of diff_paths over `paths`, as
// JSON, or the error message.
std::string path_ops(const char* before, const char* code,
                     const std::vector<atrium::state::Path>& paths) {
  Lua lua;
  const Value mirror = parsed(before);
  lua.set_state(mirror);
  lua.run(code);
  lua_getglobal(lua.L, "state");
  std::vector<Op> ops;
  const auto status = diff_paths(lua.L, -1, mirror, paths, ops);
  CHECK(lua_gettop(lua.L) == 1);
  lua_pop(lua.L, 1);
  if (!status.ok()) return status.error().message;
  return atrium::json::to_json(ops_as_json(ops));
}

const char* const kPlayers = R"({"players":{"c1":{"x":1,"y":1},"c2":{"x":2,"y":2}},"n":0})";

}  // namespace

TEST_CASE("diff_paths compares only what lies under the paths") {
  // c2 and n changed too, off the path: not seen (setIn never changes them).
  CHECK(path_ops(kPlayers, "state.players.c1.x = 5 state.players.c2.x = 9 state.n = 1",
                 {{"players", "c1", "x"}}) ==
        R"([{"op":"replace","path":"/players/c1/x","value":5}])");
  CHECK(path_ops(kPlayers, "state.players.c1.x = 5 state.players.c2.x = 9",
                 {{"players", "c1"}}) ==
        R"([{"op":"replace","path":"/players/c1/x","value":5}])");
}

TEST_CASE("diff_paths: a path twice, or under another path, gives one set of ops") {
  CHECK(path_ops(kPlayers, "state.players.c1.x = 5",
                 {{"players", "c1", "x"}, {"players", "c1"}, {"players", "c1", "x"},
                  {"players", "c1", "y"}}) ==
        R"([{"op":"replace","path":"/players/c1/x","value":5}])");
  // Removed: one remove, however many paths lead into it.
  CHECK(path_ops(kPlayers, "state.players.c1 = nil",
                 {{"players", "c1", "x"}, {"players", "c1", "y"}, {"players", "c1"}}) ==
        R"([{"op":"remove","path":"/players/c1"}])");
}

TEST_CASE("diff_paths: removal, and missing tables created on the way") {
  CHECK(path_ops(kPlayers, "state.players.c2 = nil", {{"players", "c2"}}) ==
        R"([{"op":"remove","path":"/players/c2"}])");
  CHECK(path_ops(kPlayers, "state.players.c3 = {x = 3}", {{"players", "c3", "x"}}) ==
        R"([{"op":"add","path":"/players/c3","value":{"x":3}}])");
  CHECK(path_ops("{}", "state.a = {b = {c = 1}}", {{"a", "b", "c"}}) ==
        R"([{"op":"add","path":"/a","value":{"b":{"c":1}}}])");
  CHECK(path_ops(kPlayers, "state.players.c1.x = nil", {{"players", "c1", "x"}, {"gone"}}) ==
        R"([{"op":"remove","path":"/players/c1/x"}])");
}

TEST_CASE("diff_paths follows array items by their 1-based index") {
  const char* list = R"({"list":[{"a":1},{"a":2}]})";
  CHECK(path_ops(list, "state.list[2].a = 3", {{"list", "2", "a"}}) ==
        R"([{"op":"replace","path":"/list/1/a","value":3}])");
  // A length change: the array logic decides, whatever item the path names.
  CHECK(path_ops(list, "state.list[3] = 'c'", {{"list", "3"}}) ==
        R"([{"op":"add","path":"/list/2","value":"c"}])");
  CHECK(path_ops(list, "state.list[2] = nil", {{"list", "2"}}) ==
        R"([{"op":"remove","path":"/list/1"}])");
  // A key that is no item changed nothing while the table is still an array.
  CHECK(path_ops(list, "state.list.k = nil", {{"list", "k"}, {"list", "9"}}) == "[]");
}

TEST_CASE("diff_paths compares whole where the two sides stop being tables of one kind") {
  CHECK(path_ops(R"({"t":{}})", "state.t[1] = 'x'", {{"t", "1"}}) ==
        R"([{"op":"replace","path":"/t","value":["x"]}])");
  CHECK(path_ops(R"({"t":{"1":"a","k":"b"}})", "state.t = {'a', k = 'b'} state.t.k = nil",
                 {{"t", "k"}}) == R"([{"op":"replace","path":"/t","value":["a"]}])");
  CHECK(path_ops(R"({"t":5})", "state.t = {u = 1}", {{"t", "u"}}) ==
        R"([{"op":"replace","path":"/t","value":{"u":1}}])");
  CHECK(path_ops(R"({"t":{"u":1}})", "state.t = 5", {{"t", "u"}}) ==
        R"([{"op":"replace","path":"/t","value":5}])");
  CHECK(path_ops(R"({"t":{"1":"a"}})", "state.t = {[1] = 'a'} state.t[3] = 'c'", {{"t", "3"}}) ==
        R"([{"op":"add","path":"/t/3","value":"c"}])");   // an object still, number keys or not
}

TEST_CASE("diff_paths checks the state rules for what lies under the paths") {
  CHECK(path_ops(kPlayers, "state.players.c1.x = 0/0", {{"players", "c1", "x"}}) ==
        "state.players.c1.x: NaN is not allowed in state");
  CHECK(path_ops(kPlayers, "state.players.c3 = {f = print}", {{"players", "c3"}}) ==
        "state.players.c3.f: a function is not allowed in state");
  CHECK(path_ops(kPlayers, "state.players.c1.me = state.players", {{"players", "c1", "me"}}) ==
        "state.players.c1.me: cycle: a table that contains itself is not allowed in state");
  CHECK(path_ops(kPlayers, "state.players['\\255'] = 1", {{"players", "\xff"}}) ==
        "state.players: a key is not valid UTF-8");
  CHECK(path_ops(R"({"t":{"1":"a"}})", "state.t[1] = 'b'", {{"t", "1"}}) ==
        "state.t: the key \"1\" is there both as a number and as a string");
}

// A path that ends at a record all of whose members changed skips the member ops that
// compact() would fold into one replace; whatever the record, the ops must be the ones
// the full scan gives (diff_paths with an empty path).
TEST_CASE("diff_paths ending at a record gives the full scan's ops, all members changed or not") {
  const char* const kRecord = R"({"players":{"c1":{"x":1,"y":2,"t":3}},"n":0})";
  struct Case {
    const char* before;
    const char* code;
  } const cases[] = {
      {kRecord, "state.players.c1 = {x = 4, y = 5, t = 6}"},
      {kRecord, "state.players.c1 = {x = 4, y = 5, t = 3}"},          // t unchanged
      {kRecord, "state.players.c1 = {x = 4, y = 5, t = 6, z = 7}"},   // a key added
      {kRecord, "state.players.c1 = {x = 4, y = 5}"},                 // a key gone
      {kRecord, "state.players.c1 = {x = 4, y = 5, q = 6}"},          // one swapped for another
      {kRecord, "state.players.c1 = {x = '1', y = true, t = 6}"},     // kinds changed
      {kRecord, "state.players.c1 = {x = 4, y = 5, t = {6}}"},        // a member became a table
      {kRecord, "state.players.c1 = {x = 4, y = 5, t = print}"},      // refused
      {kRecord, "state.players.c1 = {x = 4, y = 0/0, t = 6}"},        // refused
      {kRecord, "state.players.c1 = {4, 5, 6}"},                      // now an array
      {R"({"players":{"c1":{"x":1,"y":2}}})", "state.players.c1 = {x = 3, y = 4}"},
      {R"({"players":{"c1":{"x":1}}})", "state.players.c1 = {x = 3}"},     // one member
      {R"({"players":{"c1":{"a/b":1,"c~d":2}}})", "state.players.c1 = {['a/b'] = 3, ['c~d'] = 4}"},
      {R"({"players":{"c1":{"x":1,"o":{"k":1}}}})", "state.players.c1 = {x = 2, o = {k = 2}}"},
      {R"({"players":{"c1":{"x":null,"y":1}}})", "state.players.c1 = {y = 2}"},
      {R"({"players":{"c1":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}}})",
       "state.players.c1 = {a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0, i = 0}"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.before);
    CAPTURE(c.code);
    // Member order inside a value follows each Lua state's table layout: compared as JSON.
    const std::string by_path = path_ops(c.before, c.code, {{"players", "c1"}});
    const std::string by_scan = path_ops(c.before, c.code, {{}});
    if (by_scan.front() != '[') {
      CHECK(by_path == by_scan);                    // the same error message
    } else {
      CHECK(parsed(by_path) == parsed(by_scan));
    }
  }
  const char* const move = "state.players.c1 = {x = 4, y = 5, t = 6}";
  CHECK(parsed(path_ops(kRecord, move, {{"players", "c1"}})) ==
        parsed(R"([{"op":"replace","path":"/players/c1","value":{"x":4,"y":5,"t":6}}])"));
}

TEST_CASE("diff_paths with an empty path diffs the whole state") {
  CHECK(path_ops(kPlayers, "state.players.c2.x = 9", {{"players", "c1"}, {}}) ==
        R"([{"op":"replace","path":"/players/c2/x","value":9}])");
}

// ---- property ------------------------------------------------------------------------

namespace {

const char* const kKeys[] = {"a", "b", "c", "x/y", "t~1", "", "\xc3\xa9", "10", "1", "k"};

Value random_value(std::mt19937& rng, int depth) {
  const unsigned r = rng() % 12;
  if (depth >= 4 || r < 6) {
    switch (rng() % 5) {
      case 0: return Value(rng() % 2 == 0);
      case 1: return Value(static_cast<int>(rng() % 101) - 50);
      case 2: return Value(static_cast<double>(rng() % 100000) / 64.0);
      case 3: return Value(kKeys[rng() % std::size(kKeys)]);
      default: return Value("s" + std::to_string(rng() % 5));
    }
  }
  if (r < 9) {
    Value o = Value::object();
    const unsigned n = rng() % 5;
    for (unsigned i = 0; i < n; ++i) {
      const char* key = kKeys[rng() % std::size(kKeys)];   // draws in a fixed order
      o.set(key, random_value(rng, depth + 1));
    }
    return o;
  }
  Value a = Value::array();
  const unsigned n = rng() % 6;
  for (unsigned i = 0; i < n; ++i) a.push_back(random_value(rng, depth + 1));
  return a;
}

// Random mutations in Lua: array edits through table.insert/remove (shifts included),
// key writes and deletions, kind changes, integer keys, aliases; with `bad`, also
// cycles (through aliases), NaN and functions.
const char* const kMutator = R"lua(
local keys = {"a", "b", "c", "x/y", "t~1", "", "\195\169", "10", "1", "k"}
local R = math.random
local function scalar()
  local r = R(6)
  if r == 1 then return R(2) == 1
  elseif r == 2 then return R(-50, 50)
  elseif r == 3 then return R() * 100
  elseif r == 4 then return keys[R(#keys)]
  else return "s" .. R(5) end
end
local function value(depth)
  local r = R(10)
  if depth >= 3 or r <= 5 then return scalar() end
  if r <= 7 then
    local t = {}
    for _ = 1, R(0, 3) do t[keys[R(#keys)]] = value(depth + 1) end
    return t
  end
  local t = R(2) == 1 and atrium.array() or {}
  for i = 1, R(0, 4) do t[i] = value(depth + 1) end
  return t
end
-- pairs order varies from run to run (LuaJIT seeds its hashes): sort, so that a seed
-- always makes the same mutations.
local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(x, y)
    if type(x) ~= type(y) then return type(x) < type(y) end
    return x < y
  end)
  return ks
end
local function collect(t, out, seen)
  if seen[t] then return end
  seen[t] = true
  out[#out + 1] = t
  for _, k in ipairs(sorted_keys(t)) do
    if type(t[k]) == "table" then collect(t[k], out, seen) end
  end
end
local function some_key(t)
  local ks = sorted_keys(t)
  if #ks == 0 then return nil end
  return ks[R(#ks)]
end
function mutate(state, bad)
  for _ = 1, R(1, 4) do
    local all = {}
    collect(state, all, {})
    local t = all[R(#all)]
    local n = #t
    local op = R(17)
    if op == 1 then table.insert(t, value(1))
    elseif op == 2 and n > 0 then table.insert(t, R(n), value(1))
    elseif op == 3 and n > 0 then table.remove(t, 1)
    elseif op == 4 and n > 0 then table.remove(t)
    elseif op == 5 and n > 0 then table.remove(t, R(n))
    elseif op == 6 and n > 0 then table.remove(t, 1) table.insert(t, value(1))
    elseif op == 7 and n > 0 then table.insert(t, 1, value(1)) table.remove(t)
    elseif op == 8 and n > 0 then t[R(n)] = value(1)
    elseif op == 9 then t[keys[R(#keys)]] = value(1)
    elseif op == 10 then local k = some_key(t) if k ~= nil then t[k] = nil end
    elseif op == 11 then t[R(1, 6)] = value(1)
    elseif op == 12 then local k = some_key(t) if k ~= nil then t[k] = R(2) == 1 and {} or atrium.array() end
    elseif op == 13 and n > 1 then local i, j = R(n), R(n) t[i], t[j] = t[j], t[i]
    elseif op == 14 then
      local other = all[R(#all)]
      local reaches = {}
      collect(other, {}, reaches)
      if bad or not reaches[t] then t[keys[R(#keys)]] = other end
    elseif op == 15 and bad then t[keys[R(#keys)]] = R(2) == 1 and 0/0 or print
    elseif op == 16 then if R(2) == 1 then atrium.array(t) else setmetatable(t, nil) end
    elseif op == 17 and n > 0 then
      local item = t[R(n)]
      local k = type(item) == "table" and some_key(item)
      if k then item[k] = value(2) end
    end
  end
end
)lua";

}  // namespace

TEST_CASE("random Lua mutations diff into ops that replay onto the mirror (seeded)") {
  const auto started = std::chrono::steady_clock::now();
  Lua lua;
  lua.run(kMutator);
  std::mt19937 rng(20240601);
  int with_ops = 0;
  int refused = 0;
  constexpr int kIterations = 2000;
  for (int i = 0; i < kIterations; ++i) {
    Value before = Value::object();
    const unsigned n = rng() % 7;
    for (unsigned k = 0; k < n; ++k) {
      const char* key = kKeys[rng() % std::size(kKeys)];
      before.set(key, random_value(rng, 1));
    }
    lua.set_state(before);
    lua.run("math.randomseed(" + std::to_string(i + 1) + ") mutate(state, " +
            (i % 4 == 0 ? "true" : "false") + ")");
    INFO("iteration ", i, " before ", atrium::json::to_json(before));
    std::vector<Op> ops;
    const auto status = check_diff(lua, before, ops);
    if (!status.ok()) ++refused;
    if (status.ok() && !ops.empty()) ++with_ops;
    if (i % 256 == 0) lua_gc(lua.L, LUA_GCCOLLECT, 0);
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  MESSAGE("property: ", with_ops, " diffs with ops, ", refused, " refused, in ",
          std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), " ms");
  CHECK(with_ops > kIterations / 2);
  CHECK(refused > 0);
}

// ---- the shadow (state/shadow.hpp) --------------------------------------------------
// check_diff() above holds diff_by_shadow() to diff() on every case and seeded mutation.
// Here: a shadow kept in step by sync_shadow() over many commits stays the shadow of the
// mirror, and the walk never has to give up on what scripts do.

namespace {

// The shadow value at `a` (kept in step) stands for the one at `b` (built fresh): equal,
// tables deeply, except that a table marked "always diff" (count -0.5: the walk hands it to
// diff() without looking inside) stands for any table. Shadows hold no cycles.
bool lua_deep_equal(lua_State* L, int a, int b) {
  if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE) return lua_rawequal(L, a, b);
  lua_pushnil(L);
  while (lua_next(L, a) != 0) {                     // the count key is the one table key
    const bool always = lua_istable(L, -2) && lua_isnumber(L, -1) && lua_tonumber(L, -1) == -0.5;
    lua_pop(L, 1);
    if (always) {
      lua_pop(L, 1);
      return true;
    }
  }
  std::size_t count_a = 0, count_b = 0;
  lua_pushnil(L);
  while (lua_next(L, a) != 0) {
    ++count_a;
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    const bool same = lua_deep_equal(L, lua_gettop(L) - 1, lua_gettop(L));
    lua_pop(L, 2);
    if (!same) {
      lua_pop(L, 1);
      return false;
    }
  }
  lua_pushnil(L);
  while (lua_next(L, b) != 0) {
    ++count_b;
    lua_pop(L, 1);
  }
  return count_a == count_b;
}

}  // namespace

TEST_CASE("a shadow kept in step over many commits stays the shadow of the mirror (seeded)") {
  Lua lua;
  lua.run(kMutator);
  lua_State* L = lua.L;
  std::mt19937 rng(20261123);
  int committed = 0, walked = 0, rebuilt = 0;
  for (int run = 0; run < 40; ++run) {
    Value mirror = Value::object();
    for (unsigned k = 0; k < 1 + rng() % 6; ++k)
      mirror.set(kKeys[rng() % std::size(kKeys)], random_value(rng, 1));
    lua.set_state(mirror);
    lua_getglobal(L, "state");
    const int live = lua_gettop(L);
    REQUIRE(atrium::state::push_shadow(L, mirror));
    const int shadow = lua_gettop(L);
    for (int round = 0; round < 30; ++round) {
      INFO("run ", run, " round ", round, " mirror ", atrium::json::to_json(mirror));
      lua.run("math.randomseed(" + std::to_string(run * 100 + round + 1) + ") mutate(state, " +
              (round % 7 == 6 ? "true" : "false") + ")");
      std::vector<Op> ops, shadow_ops;
      const std::string before_text = atrium::json::to_json(mirror);
      const auto full = diff(L, live, mirror, ops);
      std::vector<atrium::state::Path> paths;
      const auto walk = atrium::state::walk_shadow(L, live, shadow, paths);
      CHECK(walk != atrium::state::ShadowWalk::failed);
      if (walk == atrium::state::ShadowWalk::paths) ++walked;
      const auto by_shadow = atrium::state::diff_by_shadow(L, live, shadow, mirror, shadow_ops);
      REQUIRE(lua_gettop(L) == shadow);
      REQUIRE(full.ok() == by_shadow.ok());
      if (!full.ok()) {  // a refused change: rolled back, as the engine does
        atrium::script::restore(L, live, mirror);
        continue;
      }
      CHECK(op_texts(shadow_ops) == op_texts(ops));
      REQUIRE(atrium::state::apply_patch(mirror, ops).ok());
      if (!atrium::state::sync_shadow(L, shadow, mirror, ops)) {
        // Only a replace of the whole state, or ops in a root that is an array, cannot be
        // followed: the engine then drops the shadow and builds a new one.
        CHECK((mirror.is_array() ||
               std::any_of(ops.begin(), ops.end(), [](const Op& op) { return op.path.empty(); })));
        REQUIRE(atrium::state::push_shadow(L, mirror));
        lua_replace(L, shadow);
        ++rebuilt;
      }
      REQUIRE(atrium::state::push_shadow(L, mirror));
      CHECK_MESSAGE(lua_deep_equal(L, shadow, lua_gettop(L)),
                    "ops " << atrium::json::to_json(ops_as_json(ops)) << " before " << before_text);
      lua_pop(L, 1);
      ++committed;
    }
    lua_settop(L, live - 1);
    if (run % 8 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  }
  MESSAGE("shadow: ", committed, " commits, ", walked, " walks gave paths, ", rebuilt, " rebuilt");
  CHECK(committed > 800);
  CHECK(walked > 500);  // the rest: the mutator made the root an array (a whole diff)
}

namespace {

// The count a shadow table keeps under its private key (the one key that is a table).
double shadow_count(lua_State* L, int idx) {
  double count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_istable(L, -2)) count = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  return count;
}

// Applies `ops_json` to `mirror` and to the shadow at `shadow`; pushes shadow[key].
void commit_and_push(lua_State* L, int shadow, Value& mirror, const char* ops_json, const char* key) {
  std::vector<Op> ops;
  const Value list = parsed(ops_json);
  for (const Value& o : list.items()) {
    const std::string& kind = *o.get_string("op");
    ops.push_back(Op{kind == "add"      ? atrium::state::OpKind::add
                     : kind == "remove" ? atrium::state::OpKind::remove
                                        : atrium::state::OpKind::replace,
                     *o.get_string("path"), o.find("value") ? *o.find("value") : Value()});
  }
  REQUIRE(atrium::state::apply_patch(mirror, ops).ok());
  REQUIRE(atrium::state::sync_shadow(L, shadow, mirror, ops));
  lua_getfield(L, shadow, key);
}

}  // namespace

TEST_CASE("shadow arrays: appends and pops are followed in place, a long array that shifts is diffed always") {
  Lua lua;
  lua_State* L = lua.L;
  std::string items = "[";
  for (int i = 0; i < 100; ++i) items += (i ? "," : "") + std::to_string(i);
  Value mirror = parsed(R"({"log":)" + items + R"(],"few":[1,2,3]})");
  REQUIRE(atrium::state::push_shadow(L, mirror));
  const int shadow = lua_gettop(L);

  commit_and_push(L, shadow, mirror, R"([{"op":"add","path":"/log/100","value":100}])", "log");
  CHECK(shadow_count(L, lua_gettop(L)) == -102);  // an array of 101, followed
  lua_rawgeti(L, -1, 101);
  CHECK(lua_tonumber(L, -1) == 100);
  lua_pop(L, 2);
  commit_and_push(L, shadow, mirror, R"([{"op":"remove","path":"/log/100"}])", "log");
  CHECK(shadow_count(L, lua_gettop(L)) == -101);
  lua_pop(L, 1);

  // A capped log: the oldest goes, a new one comes. Copying 100 items at every commit would
  // cost more than diff()'s array compare, so the walk hands this array to diff() from now on.
  commit_and_push(L, shadow, mirror,
                  R"([{"op":"remove","path":"/log/0"},{"op":"add","path":"/log/99","value":7}])", "log");
  CHECK(shadow_count(L, lua_gettop(L)) == -0.5);
  lua_rawgeti(L, -1, 1);
  CHECK(lua_isnil(L, -1));  // and holds no items
  lua_pop(L, 2);

  // A short one is copied again instead.
  commit_and_push(L, shadow, mirror, R"([{"op":"remove","path":"/few/0"}])", "few");
  CHECK(shadow_count(L, lua_gettop(L)) == -3);
  lua_rawgeti(L, -1, 1);
  CHECK(lua_tonumber(L, -1) == 2);
  lua_pop(L, 2);

  // Either way the walk still finds every change there.
  lua.set_state(mirror);
  lua.run("table.insert(state.log, 1, -1); state.few[2] = 9");
  lua_getglobal(L, "state");
  std::vector<Op> full, by_shadow;
  REQUIRE(diff(L, -1, mirror, full).ok());
  REQUIRE(atrium::state::diff_by_shadow(L, -1, shadow, mirror, by_shadow).ok());
  CHECK(op_texts(by_shadow) == op_texts(full));
  CHECK(full.size() >= 2);
}

namespace {

// How many traces LuaJIT holds in this VM, read through jit.util (preloaded by the
// luaopen_jit that the walk's first use called; the `jit` global itself is gone).
int trace_count(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "_PRELOAD");
  lua_getfield(L, -1, "jit.util");
  REQUIRE(lua_isfunction(L, -1));
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "traceinfo");
  int n = 0;
  for (int i = 1; i < 10000; ++i) {
    lua_pushvalue(L, -1);
    lua_pushinteger(L, i);
    lua_call(L, 1, 1);
    const bool exists = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (exists) ++n;
  }
  lua_pop(L, 3);
  return n;
}

}  // namespace

TEST_CASE("the walk runs compiled, and nothing else in the VM is ever compiled") {
  Lua lua;
  lua_State* L = lua.L;
  Value mirror = Value::object();
  for (int i = 0; i < 1000; ++i) {
    Value entry = Value::object();
    entry.set("x", Value(static_cast<double>(i)));
    entry.set("name", Value("p" + std::to_string(i)));
    mirror.set("p" + std::to_string(i), std::move(entry));
  }
  lua.set_state(mirror);
  lua_getglobal(L, "state");
  const int live = lua_gettop(L);
  REQUIRE(atrium::state::push_shadow(L, mirror));
  const int shadow = lua_gettop(L);
  for (int round = 0; round < 20; ++round) {
    lua.run("state.p" + std::to_string(round * 37) + ".x = -1");
    std::vector<Op> ops;
    REQUIRE(atrium::state::diff_by_shadow(L, live, shadow, mirror, ops).ok());
    REQUIRE(ops.size() == 1);
    CHECK(ops[0].path == "/p" + std::to_string(round * 37) + "/x");
    REQUIRE(atrium::state::apply_patch(mirror, ops).ok());
    REQUIRE(atrium::state::sync_shadow(L, shadow, mirror, ops));
  }
  const int compiled = trace_count(L);
  CHECK(compiled > 0);  // the walk's loops, hot after the first walk of 1,000 entries
  CHECK(lua_isnil((lua_getglobal(L, "jit"), L), -1));
  lua_pop(L, 1);
  // Code that runs outside the walk stays in the interpreter (where a budget's count hook
  // fires): hot loops of every kind make no new trace.
  lua.run(R"(
    local sum = 0
    for i = 1, 200000 do sum = sum + i end
    local n = 0
    while n < 200000 do n = n + 1 end
    for round = 1, 200 do for k, v in pairs(state) do sum = sum + v.x end end
    local function f(i) return i + 1 end
    for i = 1, 100000 do sum = f(sum) end
  )");
  CHECK(trace_count(L) == compiled);
}

namespace {

// An allocator that refuses once `left` allocations have been made (when armed).
struct FailingAlloc {
  bool armed = false;
  int left = 0;
  static void* alloc(void* ud, void* ptr, size_t, size_t nsize) {
    auto* self = static_cast<FailingAlloc*>(ud);
    if (nsize == 0) {
      std::free(ptr);
      return nullptr;
    }
    if (self->armed && ptr == nullptr && self->left-- <= 0) return nullptr;
    return std::realloc(ptr, nsize);
  }
};

int g_hook_fires = 0;
void count_fires(lua_State*, lua_Debug*) { ++g_hook_fires; }

// How often a count hook (every 1,000 instructions) fires over a hot loop: a few hundred
// in the interpreter, next to none once the loop runs compiled.
int hook_fires_over_hot_loop(lua_State* L) {
  g_hook_fires = 0;
  lua_sethook(L, count_fires, LUA_MASKCOUNT, 1000);
  const int rc = luaL_loadstring(L, "local n = 0 for i = 1, 100000 do n = n + i end return n") ||
                 lua_pcall(L, 0, 1, 0);
  lua_sethook(L, nullptr, 0, 0);
  REQUIRE(rc == 0);
  lua_pop(L, 1);
  return g_hook_fires;
}

}  // namespace

TEST_CASE("a walk that runs out of memory while the JIT is set up leaves the JIT off") {
  Value mirror = Value::object();
  mirror.set("a", Value(1.0));
  Value inner = Value::object();
  inner.set("c", Value("x"));
  mirror.set("b", std::move(inner));
  bool walked = false;
  int tries = 0;
  for (int allowed = 0; allowed < 2000 && !walked; ++allowed) {
    ++tries;
    FailingAlloc fail;
    lua_State* L = lua_newstate(FailingAlloc::alloc, &fail);
    REQUIRE(L != nullptr);
    lua_pushcfunction(L, luaopen_base);
    lua_call(L, 0, 0);
    atrium::script::init_lua_json(L);
    atrium::script::push_value(L, mirror);
    const int live = lua_gettop(L);
    fail.armed = true;  // from before the first use of the shadow's entry points (prepare)
    fail.left = allowed;
    const bool built = atrium::state::push_shadow(L, mirror);
    const int shadow = lua_gettop(L);
    std::vector<atrium::state::Path> paths;
    walked = built && atrium::state::walk_shadow(L, live, shadow, paths) != atrium::state::ShadowWalk::failed;
    fail.armed = false;
    INFO("allocations allowed: ", allowed);
    CHECK(lua_gettop(L) == shadow);
    CHECK(hook_fires_over_hot_loop(L) > 100);  // still interpreted
    lua_close(L);
  }
  CHECK(tries > 20);  // it failed at many points on the way first
  CHECK(walked);  // the loop reached the walk's own allocations and then a whole walk
}
