// Lua <-> json::Value under docs/rooms.md "State rules", and restore() (rollback).
#include <doctest/doctest.h>

#include <lua.hpp>

#include <random>
#include <string>

#include "json/codec.hpp"
#include "script/lua_json.hpp"

using atrium::ErrorCode;
using atrium::json::Value;
using atrium::script::push_value;
using atrium::script::restore;
using atrium::script::to_value;

namespace {

// atrium.array(t?) for tests: marks t (or a new table) as an array.
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

// A lua_State with the libraries a room sees (no jit) and a global `atrium.array`.
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

  void run(const char* code) {
    if (luaL_dostring(L, code) != 0) FAIL(lua_tostring(L, -1));
  }
  // Converts the value of the Lua expression `expr`.
  atrium::Result<Value> eval(const std::string& expr, const char* what = "state") {
    run(("__v = " + expr).c_str());
    lua_getglobal(L, "__v");
    const int top = lua_gettop(L);
    auto r = to_value(L, -1, what);
    CHECK(lua_gettop(L) == top);                  // [-0, +0]
    lua_pop(L, 1);
    return r;
  }
  std::string json(const std::string& expr) {
    auto r = eval(expr);
    if (!r) return "error: " + r.error().message;
    return atrium::json::to_json(r.value());
  }
  std::string error(const std::string& expr, const char* what = "state") {
    auto r = eval(expr, what);
    if (r) return "no error";
    CHECK(r.error().code == ErrorCode::script_error);
    return r.error().message;
  }
};

Value parsed(std::string_view text) {
  auto r = atrium::json::parse(text);
  REQUIRE(r.ok());
  return std::move(r).value();
}

}  // namespace

TEST_CASE("scalars convert to their JSON kinds") {
  Lua lua;
  CHECK(lua.json("nil") == "null");
  CHECK(lua.json("true") == "true");
  CHECK(lua.json("12345678901") == "12345678901");
  CHECK(lua.json("0.5") == "0.5");
  CHECK(lua.json("'h\\\"i'") == "\"h\\\"i\"");
  CHECK(lua.json("'caf\\195\\169'") == "\"caf\xc3\xa9\"");
}

TEST_CASE("an empty table is an object and atrium.array() makes it an array") {
  Lua lua;
  CHECK(lua.json("{}") == "{}");
  CHECK(lua.json("atrium.array()") == "[]");
  CHECK(lua.json("atrium.array({1, 2})") == "[1,2]");
  CHECK(lua.json("{a = atrium.array(), b = {}}").find("\"a\":[]") != std::string::npos);
}

TEST_CASE("a table with keys 1..n is an array and a sparse table is an object") {
  Lua lua;
  CHECK(lua.json("{10, 20, 30}") == "[10,20,30]");
  CHECK(lua.json("{[3] = 'c', [1] = 'a', [2] = 'b'}") == R"(["a","b","c"])");
  auto sparse = lua.eval("{[1] = 'a', [3] = 'c'}");
  REQUIRE(sparse.ok());
  CHECK(sparse.value() == parsed(R"({"1":"a","3":"c"})"));
  auto mixed = lua.eval("{1, 2, x = 3}");
  REQUIRE(mixed.ok());
  CHECK(mixed.value() == parsed(R"({"1":1,"2":2,"x":3})"));
  auto from_two = lua.eval("{[2] = 'b'}");
  REQUIRE(from_two.ok());
  CHECK(from_two.value() == parsed(R"({"2":"b"})"));
}

TEST_CASE("integer keys become strings and other keys are refused") {
  Lua lua;
  auto r = lua.eval("{[-1] = 'm', [0] = 'z', [1e15] = 'big', name = 'n'}");
  REQUIRE(r.ok());
  CHECK(r.value() == parsed(R"({"-1":"m","0":"z","1000000000000000":"big","name":"n"})"));
  CHECK(lua.error("{a = {[1.5] = 1}}") ==
        "state.a: the key 1.5 is not allowed in state (keys are strings or integers)");
  CHECK(lua.error("{a = {[true] = 1}}") ==
        "state.a: a key of type boolean is not allowed in state (keys are strings or integers)");
  CHECK(lua.error("{[{}] = 1}") ==
        "state: a key of type table is not allowed in state (keys are strings or integers)");
  CHECK(lua.error("{[1] = 'n', ['1'] = 's', x = 0}") ==
        "state: the key \"1\" is there both as a number and as a string");
}

TEST_CASE("NaN and infinities are refused with the path to them") {
  Lua lua;
  CHECK(lua.error("{players = {p1 = {x = 0/0}}}") ==
        "state.players.p1.x: NaN is not allowed in state");
  CHECK(lua.error("{a = {1, 2, math.huge}}") == "state.a[3]: infinity is not allowed in state");
  CHECK(lua.error("-math.huge") == "state: -infinity is not allowed in state");
  CHECK(lua.error("{x = 0/0}", "meta") == "meta.x: NaN is not allowed in meta");
}

TEST_CASE("functions, userdata, coroutines and cycles are refused with a path") {
  Lua lua;
  CHECK(lua.error("{cb = print}") == "state.cb: a function is not allowed in state");
  lua_pushlightuserdata(lua.L, &lua);
  lua_setglobal(lua.L, "ud");
  CHECK(lua.error("{u = {ud}}") == "state.u[1]: userdata is not allowed in state");
  lua_newuserdata(lua.L, 8);
  lua_setglobal(lua.L, "full_ud");
  CHECK(lua.error("{u = full_ud}") == "state.u: userdata is not allowed in state");
  CHECK(lua.error("{co = coroutine.create(print)}") ==
        "state.co: a coroutine is not allowed in state");
  lua.run("cyc = {a = {b = {}}}; cyc.a.b.back = cyc.a");
  CHECK(lua.error("cyc") ==
        "state.a.b.back: cycle: a table that contains itself is not allowed in state");
  lua.run("self_ref = {}; self_ref[1] = self_ref");
  CHECK(lua.error("self_ref") ==
        "state[1]: cycle: a table that contains itself is not allowed in state");
}

TEST_CASE("a table reachable twice without a cycle converts twice") {
  Lua lua;
  lua.run("shared = {v = 1}");
  auto r = lua.eval("{a = shared, b = {shared, shared}}");
  REQUIRE(r.ok());
  CHECK(r.value() == parsed(R"({"a":{"v":1},"b":[{"v":1},{"v":1}]})"));
}

TEST_CASE("strings and keys that are not UTF-8 are refused") {
  Lua lua;
  CHECK(lua.error("{name = 'ok', bad = 'x\\255y'}") == "state.bad: string is not valid UTF-8");
  CHECK(lua.error("{list = {'\\237\\160\\128'}}") == "state.list[1]: string is not valid UTF-8");
  CHECK(lua.error("{t = {['\\192\\175'] = 1}}") == "state.t: a key is not valid UTF-8");
}

TEST_CASE("paths quote keys that are not identifiers") {
  Lua lua;
  CHECK(lua.error("{['a b'] = {['x\"y'] = {['\\1'] = 0/0}}}") ==
        R"(state["a b"]["x\"y"]["\x01"]: NaN is not allowed in state)");
  CHECK(lua.error("{[7] = {z = 0/0}}") == "state[7].z: NaN is not allowed in state");
  CHECK(lua.error("{['7'] = {z = 0/0}}") == R"(state["7"].z: NaN is not allowed in state)");
}

TEST_CASE("tables nested 64 deep convert and 65 deep are refused") {
  Lua lua;
  lua.run("function nest(n) local t = {} local top = t for i = 2, n do t.c = {} t = t.c end "
          "return top end");
  CHECK(lua.eval("nest(64)").ok());
  const std::string err = lua.error("nest(65)");
  CHECK(err.find("nested deeper than 64 levels") != std::string::npos);
  CHECK(err.find("state.c.c.c") == 0);
}

TEST_CASE("an array marker keeps items 1..#t and ignores other keys") {
  Lua lua;
  CHECK(lua.json("atrium.array({1, 2, 3, x = 1})") == "[1,2,3]");
  CHECK(lua.json("atrium.array({x = 1})") == "[]");
  // #t is a border, so a hole may end the array early; where #t reaches past a hole
  // (as in a table push_value made from [1,null,3]) the hole reads as null.
  push_value(lua.L, parsed("[1,null,3]"));
  auto holes = to_value(lua.L, -1, "state");
  lua_pop(lua.L, 1);
  REQUIRE(holes.ok());
  CHECK(atrium::json::to_json(holes.value()) == "[1,null,3]");
}

TEST_CASE("push_value gives arrays the marker, null items atrium.null, and leaves null members out") {
  Lua lua;
  const Value v = parsed(R"({"list":[],"obj":{},"n":null,"a":[1,null,{"k":"v"}],"s":"é"})");
  push_value(lua.L, v);
  lua_setglobal(lua.L, "pushed");
  lua.run("assert(getmetatable(pushed.list) ~= nil and getmetatable(pushed.obj) == nil)");
  lua.run("assert(pushed.n == nil and type(pushed.a[2]) == 'userdata' and pushed.a[3].k == 'v')");
  lua.run("assert(#pushed.a == 3)");
  auto back = lua.eval("pushed");
  REQUIRE(back.ok());
  CHECK(back.value() == parsed(R"({"list":[],"obj":{},"a":[1,null,{"k":"v"}],"s":"é"})"));
}

TEST_CASE("push_value then to_value gives back a document without nulls") {
  Lua lua;
  const Value v = parsed(R"({"players":{"p1":{"x":1.5,"y":-2,"tags":["a","b"]},"1":{"x":0}},)"
                         R"("log":[[],[{}],"x"],"on":true,"a/b":{"~":""}})");
  push_value(lua.L, v);
  auto back = to_value(lua.L, -1, "state");
  lua_pop(lua.L, 1);
  REQUIRE(back.ok());
  CHECK(back.value() == v);
}

TEST_CASE("null array items survive JSON -> Lua -> JSON whatever surrounds them") {
  Lua lua;
  for (const char* doc : {R"({"v":[1,null],"w":[null],"x":[null,null,3,null]})", "[null]", "[[null],[null,[null]]]",
                          R"([{"a":[null,1]},null])"}) {
    CAPTURE(doc);
    push_value(lua.L, parsed(doc));
    auto back = to_value(lua.L, -1, "data");
    lua_pop(lua.L, 1);
    REQUIRE(back.ok());
    CHECK_MESSAGE(back.value() == parsed(doc), atrium::json::to_json(back.value()));
  }
}

TEST_CASE("rollback is exact for every JSON value, nulls in arrays and null members included (seeded)") {
  // restore() must make a table deep-equal to its mirror whatever a hook did to it:
  // insert, replace, remove, nested, nulls, sparse, aliasing, metatables.
  Lua lua;
  std::mt19937 rng(7);
  const char* const docs[] = {
      R"({"a":[1,null,3],"b":{"c":null,"d":[null]},"e":[[null,2],{"f":null}],"g":"x"})",
      R"({"list":[null,null,3,null],"m":{"k":[1,2,3]},"n":0})",
      R"({"deep":{"er":{"est":[null,{"x":[null]}]}},"z":[]})",
  };
  const char* const mutations[] = {
      "s.a[2] = 5", "table.insert(s.a, 1, 'new')", "table.remove(s.a or {}, 1)", "s.a = nil", "s.b = s.e",
      "s.list = {1}", "s.list[2] = 'x'", "s.m.k[5] = 7", "s.deep = 'flat'", "s.new = {null = 1}",
      "if s.e then s.e[1][1] = 9 end", "s.z[3] = true", "setmetatable(s, nil) s.q = {}",
      "if s.b then s.b.c = 1 s.b.d = {} end", "s.g = nil s.h = s", "if s.deep then s.deep.er = nil end",
      "s.n = (s.n or 0) + 1", "if s.list then s.list[1] = s.list end",
  };
  for (int round = 0; round < 400; ++round) {
    const Value mirror = parsed(docs[rng() % 3]);
    push_value(lua.L, mirror, /*keep_null_members=*/true);
    lua_setglobal(lua.L, "s");
    lua.run("held = s");
    for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) {
      const std::string m = mutations[rng() % (sizeof mutations / sizeof *mutations)];
      if (luaL_dostring(lua.L, m.c_str()) != 0) lua_pop(lua.L, 1);  // a mutation may not apply
    }
    lua_getglobal(lua.L, "held");
    atrium::script::restore(lua.L, -1, mirror);
    auto back = to_value(lua.L, -1, "state");
    lua_pop(lua.L, 1);
    REQUIRE(back.ok());
    CHECK_MESSAGE(back.value() == mirror, atrium::json::to_json(back.value()) << " != " << atrium::json::to_json(mirror));
  }
}

TEST_CASE("init_lua_json twice keeps the first marker") {
  Lua lua;
  lua.run("marked = atrium.array()");
  atrium::script::init_lua_json(lua.L);
  CHECK(lua.json("marked") == "[]");
}

TEST_CASE("restore rolls a table back in place and keeps nested tables") {
  Lua lua;
  const Value mirror = parsed(R"({"a":{"x":1,"y":[1,2]},"keep":"k","list":[],"obj":{},"n":3})");
  push_value(lua.L, mirror);
  lua_setglobal(lua.L, "state");
  lua.run("held_a = state.a; held_y = state.a.y; held_list = state.list");
  lua.run("state.a.x = 99; state.a.z = {}; table.insert(state.a.y, 3); state.keep = nil; "
          "state.extra = {1}; state.list = held_list; state.list[1] = 'x'; "
          "setmetatable(state.obj, getmetatable(held_list)); state.n = 'three'");
  lua_getglobal(lua.L, "state");
  const int top = lua_gettop(lua.L);
  restore(lua.L, -1, mirror);
  CHECK(lua_gettop(lua.L) == top);
  auto back = to_value(lua.L, -1, "state");
  lua_pop(lua.L, 1);
  REQUIRE(back.ok());
  CHECK(back.value() == mirror);
  lua.run("assert(rawequal(state.a, held_a) and rawequal(state.a.y, held_y))");
  lua.run("assert(rawequal(state.list, held_list) and getmetatable(state.obj) == nil)");
}

TEST_CASE("restore turns a table back into an array or an object as the mirror says") {
  Lua lua;
  const Value mirror = parsed(R"({"was_array":[1,{"k":2}],"was_object":{"1":"one"},"empty":[]})");
  push_value(lua.L, mirror);
  lua_setglobal(lua.L, "state");
  lua.run("state.was_array.extra = true; state.was_array[5] = 5; "
          "state.was_object[1] = 'number key'; state.was_object['1'] = nil; "
          "setmetatable(state.empty, nil); state.empty.k = 1");
  lua_getglobal(lua.L, "state");
  restore(lua.L, -1, mirror);
  auto back = to_value(lua.L, -1, "state");
  lua_pop(lua.L, 1);
  REQUIRE(back.ok());
  CHECK(back.value() == mirror);
}

TEST_CASE("restore replaces a table the hook made reachable twice or cyclic") {
  Lua lua;
  const Value mirror = parsed(R"({"a":{"v":1},"b":{"v":2},"c":{"d":{}}})");
  push_value(lua.L, mirror);
  lua_setglobal(lua.L, "state");
  lua.run("state.b = state.a; state.c.d.up = state.c; state.c.d.root = state; state.c.self = state.c");
  lua_getglobal(lua.L, "state");
  restore(lua.L, -1, mirror);
  auto back = to_value(lua.L, -1, "state");
  lua_pop(lua.L, 1);
  REQUIRE(back.ok());
  CHECK(back.value() == mirror);
  lua.run("assert(not rawequal(state.a, state.b))");
}

TEST_CASE("restore keeps an integer key as a number when the script used one") {
  Lua lua;
  const Value mirror = parsed(R"({"m":{"7":"seven","x":1}})");
  lua.run("state = {m = {[7] = 'seven', x = 1}}");
  lua.run("state.m[7] = 'changed'; state.m.x = nil");
  lua_getglobal(lua.L, "state");
  restore(lua.L, -1, mirror);
  lua_pop(lua.L, 1);
  lua.run("assert(state.m[7] == 'seven' and state.m['7'] == nil and state.m.x == 1)");
}
