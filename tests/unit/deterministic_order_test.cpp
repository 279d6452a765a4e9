// One defined key order (docs/protocol.md "Key order"): whatever order lua_next gives, the
// same logical table makes the same bytes. That order differs between lua_States (Debian's
// LuaJIT seeds its string hash per state, so a fresh state stands in for a fresh process)
// and with a table's history (pre-sized or grown, keys inserted in another order, keys
// inserted and deleted). Each case builds one logical table several ways, in several
// states, and checks that to_value writes the same bytes and that diff(), diff_paths(),
// diff_keys() and diff_by_shadow() give the same ops in the same order.
#include <doctest/doctest.h>

#include <lua.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "json/codec.hpp"
#include "script/lua_json.hpp"
#include "state/diff.hpp"
#include "state/shadow.hpp"

using atrium::json::Value;
using atrium::state::Op;
using atrium::state::Path;

namespace {

// Keys of every sort the order must place: JSON Pointer escapes, non-ASCII (bytewise, "z"
// comes before "é"), the empty key, and integer keys, which Lua holds as numbers (t[7])
// and whose text sorts as text ("-3" < "10" < "7"). No set of these is 1..n: an object
// stays an object.
const char* const kKeys[] = {"a",  "b",          "B",      "z",         "aa",     "a~b", "a/b",
                             "~",  "/",          "~1",     "\xc3\xa9",  "e",      "",    "x y",
                             "_k", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "0", "7", "10", "-3",
                             "12", "100"};

Value random_scalar(std::mt19937& rng) {
  switch (rng() % 4) {
    case 0: return Value(rng() % 2 == 0);
    case 1: return Value(static_cast<int>(rng() % 201) - 100);
    case 2: return Value(static_cast<double>(rng() % 100000) / 64.0);
    default: return Value(kKeys[rng() % std::size(kKeys)]);
  }
}

// A logical table: objects in no particular order (built by set() in draw order), some
// large enough (20+ members) for the index and the mirror's cursor to matter.
Value random_value(std::mt19937& rng, int depth) {
  const unsigned r = rng() % 10;
  if (depth >= 3 || r < 4) return random_scalar(rng);
  if (r < 8) {
    Value o = Value::object();
    const bool wide = depth == 0 && rng() % 4 == 0;
    const unsigned n = wide ? 20 + rng() % 20 : rng() % 7;
    for (unsigned i = 0; i < n; ++i) {
      std::string key = kKeys[rng() % std::size(kKeys)];
      if (wide) key = "p" + std::to_string(rng() % 60);   // no integer keys: see kKeys
      o.set(key, random_value(rng, depth + 1));
    }
    return o;
  }
  Value a = Value::array();
  const unsigned n = rng() % 5;
  for (unsigned i = 0; i < n; ++i) a.push_back(random_value(rng, depth + 1));
  return a;
}

// What to_value must make of a logical table: every object sorted.
Value canonical(Value v) {
  if (v.is_array()) {
    for (Value& item : v.items()) item = canonical(std::move(item));
  } else if (v.is_object()) {
    Value out = Value::object();
    for (const auto& [key, member] : v.members()) out.set(key, canonical(member));
    out.sort_members();
    return out;
  }
  return v;
}

// The same content with each object's members in a random order: a mirror that grew by
// appends rather than one to_value made.
Value shuffled(const Value& v, std::mt19937& rng) {
  if (v.is_array()) {
    Value out = Value::array();
    for (const Value& item : v.items()) out.push_back(shuffled(item, rng));
    return out;
  }
  if (!v.is_object()) return v;
  std::vector<std::size_t> order(v.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  Value out = Value::object();
  for (const std::size_t i : order) out.set(v.members()[i].first, shuffled(v.members()[i].second, rng));
  return out;
}

// A change of `v`: scalars changed, members added, removed or replaced (kinds change too),
// array items appended, shifted out or changed, and nested tables changed in turn.
Value mutate(const Value& v, std::mt19937& rng, int depth) {
  if (v.is_object()) {
    Value out = Value::object();
    for (const auto& [key, member] : v.members()) {
      const unsigned r = rng() % 10;
      if (r == 0) continue;                                           // removed
      if (r == 1) out.set(key, random_value(rng, depth + 1));         // replaced
      else if (r < 5) out.set(key, mutate(member, rng, depth + 1));
      else out.set(key, member);
    }
    for (unsigned added = rng() % 3; added > 0; --added) {
      const std::string key = kKeys[rng() % std::size(kKeys)];
      if (!out.find(key)) out.set(key, random_value(rng, depth + 1));
    }
    return out;
  }
  if (v.is_array()) {
    Value out = Value::array();
    const auto& items = v.items();
    const std::size_t from = !items.empty() && rng() % 4 == 0 ? 1 : 0;   // a capped log
    for (std::size_t i = from; i < items.size(); ++i) {
      out.push_back(rng() % 3 == 0 ? mutate(items[i], rng, depth + 1) : items[i]);
    }
    if (rng() % 3 == 0) out.push_back(random_value(rng, depth + 1));
    return out;
  }
  return rng() % 2 == 0 ? random_scalar(rng) : v;
}

// ---- Lua tables with a history ---------------------------------------------------------

struct Lua {
  lua_State* L = luaL_newstate();
  Lua() {
    lua_pushcfunction(L, luaopen_base);            // the shadow walk takes next, type, ...
    lua_call(L, 0, 0);
    atrium::script::init_lua_json(L);
  }
  ~Lua() { lua_close(L); }
  Lua(const Lua&) = delete;
  Lua& operator=(const Lua&) = delete;
};

void push_key(lua_State* L, const std::string& key) {
  double n = 0;
  if (atrium::script::integer_key(key, n)) {
    lua_pushnumber(L, n);
  } else {
    lua_pushlstring(L, key.data(), key.size());
  }
}

// Pushes `v` as a Lua table made one of several ways: pre-sized or grown, members set in
// a shuffled order, some first set to a placeholder, and junk keys set and deleted (before,
// among or after the members) so that the hash part has another size or other free slots.
void push_with_history(lua_State* L, const Value& v, std::mt19937& rng) {
  luaL_checkstack(L, 8, "test");
  if (!v.is_object() && !v.is_array()) {
    atrium::script::push_value(L, v);
    return;
  }
  const std::size_t n = v.size();
  const unsigned sizing = rng() % 3;
  if (sizing == 0) {
    lua_newtable(L);
  } else if (v.is_array()) {
    lua_createtable(L, sizing == 1 ? static_cast<int>(n) : 0, sizing == 1 ? 0 : static_cast<int>(n));
  } else {
    lua_createtable(L, 0, static_cast<int>(sizing == 1 ? n : n + 1 + rng() % 40));
  }
  const int t = lua_gettop(L);
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  const unsigned junk = v.is_object() && rng() % 2 == 0 ? 1 + rng() % 30 : 0;
  const std::size_t junk_at = n == 0 ? 0 : rng() % (n + 1);
  auto add_junk = [&] {
    for (unsigned j = 0; j < junk; ++j) {
      lua_pushfstring(L, "junk%d", static_cast<int>(j));
      lua_pushboolean(L, 1);
      lua_rawset(L, t);
    }
  };
  for (std::size_t step = 0; step <= n; ++step) {
    if (step == junk_at) add_junk();
    if (step == n) break;
    const std::size_t i = order[step];
    if (v.is_array()) {
      push_with_history(L, v.items()[i], rng);
      lua_rawseti(L, t, static_cast<int>(i + 1));
      continue;
    }
    const auto& [key, member] = v.members()[i];
    if (rng() % 5 == 0) {
      push_key(L, key);
      lua_pushliteral(L, "placeholder");
      lua_rawset(L, t);
    }
    push_key(L, key);
    push_with_history(L, member, rng);
    lua_rawset(L, t);
  }
  for (unsigned j = 0; j < junk; ++j) {
    lua_pushfstring(L, "junk%d", static_cast<int>(j));
    lua_pushnil(L);
    lua_rawset(L, t);
  }
  if (v.is_array() && (n == 0 || rng() % 2 == 0)) {   // [] needs the marker; 1..n need not
    atrium::script::push_array_marker(L);
    lua_setmetatable(L, t);
  }
}

// The top-level keys in lua_next order, joined: to see that the histories differ at all.
std::string next_order(lua_State* L, int idx) {
  std::string order;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    char buf[32];
    std::string_view k;
    if (atrium::script::key_text(L, -1, buf, k)) order.append(k).push_back('\n');
  }
  return order;
}

std::string written(const Value& v) {
  std::string out;
  atrium::json::write(v, out);
  return out;
}

// Ops as kind, path and value bytes, one line each, in their order; then the patch text.
std::string op_list(const std::vector<Op>& ops) {
  std::string out;
  for (const Op& op : ops) {
    out += std::to_string(static_cast<int>(op.kind)) + " " + op.path;
    if (op.kind != atrium::state::OpKind::remove) out += " " + written(op.value);
    out += "\n";
  }
  out += "patch: ";
  atrium::state::write_ops(ops, out);
  return out;
}

// Paths to every object member of `v`, down to a scalar, an array or an empty object: what
// diff_paths needs to see every change without going into array items (whose ops it
// orders by index text, not by index: see diff.cpp compare_paths).
void member_paths(const Value& v, Path& at, std::vector<Path>& out) {
  if (!v.is_object() || v.size() == 0) {
    if (!at.empty()) out.push_back(at);
    return;
  }
  for (const auto& [key, member] : v.members()) {
    at.push_back(key);
    member_paths(member, at, out);
    at.pop_back();
  }
}

std::vector<Path> change_paths(const Value& before, const Value& after) {
  std::vector<Path> paths;
  Path at;
  member_paths(before, at, paths);
  member_paths(after, at, paths);
  return paths;
}

std::vector<std::string> top_keys(const Value& before, const Value& after) {
  std::vector<std::string> keys;
  for (const Value* v : {&before, &after}) {
    for (const auto& [key, member] : v->members()) keys.push_back(key);
  }
  return keys;
}

// Every way of diffing `after` (pushed with a history into a fresh state) against `mirror`,
// each as op_list(); all must be the same.
std::vector<std::string> all_diffs(const Value& mirror, const Value& before, const Value& after,
                                   std::mt19937& rng) {
  Lua lua;
  lua_State* L = lua.L;
  push_with_history(L, after, rng);
  const int live = lua_gettop(L);
  std::vector<std::string> lists;
  std::vector<Op> ops;
  REQUIRE(atrium::state::diff(L, live, mirror, ops).ok());
  lists.push_back(op_list(ops));
  ops.clear();
  REQUIRE(atrium::state::diff_paths(L, live, mirror, change_paths(before, after), ops).ok());
  lists.push_back(op_list(ops));
  ops.clear();
  REQUIRE(atrium::state::diff_keys(L, live, mirror, top_keys(before, after), ops).ok());
  lists.push_back(op_list(ops));
  REQUIRE(atrium::state::push_shadow(L, mirror));
  ops.clear();
  REQUIRE(atrium::state::diff_by_shadow(L, live, live + 1, mirror, ops).ok());
  lists.push_back(op_list(ops));
  CHECK(lua_gettop(L) == live + 1);
  return lists;
}

Value random_root(std::mt19937& rng) {
  Value root = random_value(rng, 0);
  if (root.is_object()) return root;
  Value wrapped = Value::object();                 // state is an object
  wrapped.set("v", std::move(root));
  return wrapped;
}

}  // namespace

TEST_CASE("sort_members and sorted_object order keys bytewise and refuse a key met twice") {
  Value o = Value::object();
  for (const char* key : {"b", "\xc3\xa9", "a~b", "10", "a", "", "9", "z", "B"}) o.set(key, key);
  // Keys alike in their first 8 bytes (a large object's sort compares those first), one
  // with a NUL where the shorter ends.
  for (const char* key : {"abcdefgh2", "abcdefgh", "abcdefgh10", "abcdefg", "abcdefgh1"}) {
    o.set(key, key);
  }
  o.set(std::string("abcdefg\0", 8), "nul");
  for (int i = 0; i < 30; ++i) o.set("k" + std::to_string(i), i);   // indexed, sorted by ref
  REQUIRE(o.find("k7") != nullptr);
  o.sort_members();
  std::vector<std::string> keys;
  for (const auto& [key, member] : o.members()) keys.push_back(key);
  CHECK(std::is_sorted(keys.begin(), keys.end()));
  CHECK(keys.size() == 45);
  CHECK(keys.front().empty());
  CHECK(keys[1] == "10");
  CHECK(keys[2] == "9");
  CHECK(keys[5] == "abcdefg");
  CHECK(keys[6] == std::string("abcdefg\0", 8));
  CHECK(keys[7] == "abcdefgh");
  CHECK(keys[8] == "abcdefgh1");
  CHECK(keys[9] == "abcdefgh10");
  CHECK(keys[10] == "abcdefgh2");
  CHECK(keys[11] == "a~b");                        // '~' after every letter
  CHECK(keys.back() == "\xc3\xa9");                // 0xc3 after every ASCII byte
  for (const auto& [key, member] : o.members()) {  // each value moved with its key
    if (member.is_number()) CHECK(key == "k" + std::to_string(static_cast<int>(member.as_number())));
    else if (key != keys[6]) CHECK(member.as_string() == key);
  }
  CHECK(o.find("k7")->as_number() == 7);           // the index was rebuilt, not kept stale
  CHECK(o.find("a~b")->as_string() == "a~b");
  o.set("0", 0);                                   // a later key goes at the end
  CHECK(o.members().back().first == "0");

  std::vector<Value::Member> members;
  members.emplace_back("y", 1);
  members.emplace_back("x", 2);
  const Value sorted = Value::sorted_object(members);
  REQUIRE(sorted.is_object());
  CHECK(atrium::json::to_json(sorted) == R"({"x":2,"y":1})");
  members.clear();
  for (int i = 0; i < 40; ++i) members.emplace_back("m" + std::to_string(i % 30), i);
  std::string twice;
  CHECK(Value::sorted_object(members, &twice).is_null());
  CHECK(twice == "m0");
  CHECK(members[35].first == "m5");                // left as it was
  CHECK(members[35].second.as_number() == 35);
}

TEST_CASE("to_value writes the same bytes for one logical table whatever its history") {
  std::mt19937 rng(20261207);
  int orders_differed = 0;
  for (int iteration = 0; iteration < 300; ++iteration) {
    const Value logical = random_root(rng);
    const std::string want = written(canonical(logical));
    std::string first_order;
    for (int run = 0; run < 4; ++run) {
      Lua lua;
      push_with_history(lua.L, logical, rng);
      const std::string order = next_order(lua.L, 1);
      if (run == 0) first_order = order;
      else if (order != first_order) ++orders_differed;
      auto v = atrium::script::to_value(lua.L, 1, "state");
      REQUIRE(v.ok());
      CHECK_MESSAGE(written(v.value()) == want, "iteration " << iteration << ", run " << run);
    }
  }
  CHECK(orders_differed > 100);                    // the histories did change lua_next order
}

TEST_CASE("to_value still refuses t[3] beside t[\"3\"], wherever they meet") {
  Lua lua;
  for (int fill = 0; fill < 40; fill += 7) {
    lua_newtable(lua.L);
    for (int i = 0; i < fill; ++i) {
      lua_pushboolean(lua.L, 1);
      lua_setfield(lua.L, -2, ("f" + std::to_string(i)).c_str());
    }
    lua_pushboolean(lua.L, 1);
    lua_rawseti(lua.L, -2, 3);
    lua_pushboolean(lua.L, 0);
    lua_setfield(lua.L, -2, "3");
    const auto v = atrium::script::to_value(lua.L, -1, "state");
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message == "state: the key \"3\" is there both as a number and as a string");
    lua_pop(lua.L, 1);
  }
}

TEST_CASE("every differ gives the same ops in the same order whatever the tables' history") {
  std::mt19937 rng(7031);
  for (int iteration = 0; iteration < 250; ++iteration) {
    const Value before = random_root(rng);
    const Value after = mutate(before, rng, 0);
    CAPTURE(iteration);
    CAPTURE(atrium::json::to_json(before));
    CAPTURE(atrium::json::to_json(after));
    const Value mirror = canonical(before);         // as to_value reads it back
    const Value grown = shuffled(before, rng);      // as appends leave it
    std::string want;
    for (int run = 0; run < 3; ++run) {
      for (const Value* m : {&mirror, &grown}) {
        for (const std::string& list : all_diffs(*m, before, after, rng)) {
          if (want.empty()) want = list;
          CHECK(list == want);
        }
      }
    }
    // And they are right: applied to the mirror, they give the new state.
    Lua lua;
    push_with_history(lua.L, after, rng);
    std::vector<Op> ops;
    REQUIRE(atrium::state::diff(lua.L, 1, mirror, ops).ok());
    Value replayed = mirror;
    REQUIRE(atrium::state::apply_patch(replayed, ops).ok());
    CHECK(replayed == canonical(after));
  }
}

TEST_CASE("ops under an object come in key order, each member's block whole") {
  const Value mirror = atrium::json::parse(
      R"({"b":1,"d":{"name":"long enough to keep its ops","q":9,"w":0,"x":1,"y":2},"e":true,)"
      R"("z":["a","b","c"]})").value();
  const char* const code = R"lua(
    local s = ...
    s.a = "new"
    s.b = 2
    s["c/d"] = 1
    s.d.x = 5
    s.d.q = 8
    s.e = nil
    table.remove(s.z, 1)
    s.z[3] = "d"
    s[7] = true
    s[12] = true
    s["\195\169"] = 0
  )lua";
  const char* const want =
      R"([{"op":"add","path":"/12","value":true},{"op":"add","path":"/7","value":true},)"
      R"({"op":"add","path":"/a","value":"new"},{"op":"replace","path":"/b","value":2},)"
      R"({"op":"add","path":"/c~1d","value":1},{"op":"replace","path":"/d/q","value":8},)"
      R"({"op":"replace","path":"/d/x","value":5},{"op":"remove","path":"/e"},)"
      R"({"op":"remove","path":"/z/0"},{"op":"add","path":"/z/2","value":"d"},)"
      R"({"op":"add","path":"/\u00e9","value":0}])";
  std::mt19937 rng(5);
  for (int run = 0; run < 20; ++run) {
    Lua lua;
    push_with_history(lua.L, mirror, rng);
    REQUIRE(luaL_loadstring(lua.L, code) == 0);
    lua_pushcfunction(lua.L, luaopen_table);
    lua_call(lua.L, 0, 0);
    lua_pushvalue(lua.L, 1);
    REQUIRE(lua_pcall(lua.L, 1, 0, 0) == 0);
    std::vector<Op> ops;
    REQUIRE(atrium::state::diff(lua.L, 1, mirror, ops).ok());
    std::string text = "[";
    atrium::state::write_ops(ops, text);
    text += "]";
    CHECK(atrium::json::parse(text).value() == atrium::json::parse(want).value());
    CHECK(text == atrium::json::to_json(atrium::json::parse(want).value()));
  }
}
