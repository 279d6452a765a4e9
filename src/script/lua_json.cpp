// Lua values <-> json::Value under docs/rooms.md "State rules", and restore(), the
// rollback of a failed hook. The differ (state/diff.cpp) judges tables with the same
// functions, so a diff and a full conversion cannot disagree.
#include "script/lua_json.hpp"

#include <lua.hpp>

#include <charconv>
#include <climits>
#include <cmath>
#include <unordered_set>
#include <vector>

#include "json/codec.hpp"

namespace atrium::script {

namespace {

// Registry key of the array marker: the address of this byte, so that no string key
// another library puts in the registry can collide with it.
const char kMarkerKey = 0;

constexpr double kTwoTo63 = 9223372036854775808.0;

int absolute(lua_State* L, int idx) noexcept {
  return idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop(L) + idx + 1 : idx;
}

bool is_identifier(std::string_view key) noexcept {
  if (key.empty()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// ---- Lua -> JSON --------------------------------------------------------------------

// One step of the path to a failing value, collected while the converter unwinds, so
// that a conversion that succeeds never formats a path.
struct Step {
  std::string key;
  long long index = 0;
  bool is_index = false;
};

class Converter {
 public:
  Converter(lua_State* L, int marker, const char* what, std::span<const void* const> enclosing)
      : L_(L), marker_(marker), what_(what), open_(enclosing.begin(), enclosing.end()) {}

  // `depth`: tables enclosing `idx`. The value becomes `out`; false on a rule broken.
  bool convert(int idx, json::Value& out, int depth) {
    switch (lua_type(L_, idx)) {
      case LUA_TNIL: out = json::Value(); return true;
      case LUA_TBOOLEAN: out = json::Value(lua_toboolean(L_, idx) != 0); return true;
      case LUA_TNUMBER: {
        const double d = lua_tonumber(L_, idx);
        if (std::isnan(d)) return not_allowed("NaN");
        if (std::isinf(d)) return not_allowed(d > 0 ? "infinity" : "-infinity");
        out = json::Value(d);
        return true;
      }
      case LUA_TSTRING: {
        std::size_t n = 0;
        const char* s = lua_tolstring(L_, idx, &n);
        if (!json::is_valid_utf8(std::string_view(s, n))) return fail("string is not valid UTF-8");
        out = json::Value(std::string_view(s, n));
        return true;
      }
      case LUA_TTABLE: return convert_table(idx, out, depth);
      case LUA_TFUNCTION: return not_allowed("a function");
      case LUA_TLIGHTUSERDATA:
        if (!lua_touserdata(L_, idx)) {  // atrium.null
          out = json::Value();
          return true;
        }
        return not_allowed("userdata");
      case LUA_TUSERDATA: return not_allowed("userdata");
      case LUA_TTHREAD: return not_allowed("a coroutine");
      default: return not_allowed(lua_typename(L_, lua_type(L_, idx)));   // LuaJIT cdata
    }
  }

  std::string message(std::string_view path) const {
    std::string msg(path);
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      if (it->is_index) {
        append_path_index(msg, it->index);
      } else {
        append_path_key(msg, it->key);
      }
    }
    msg += ": ";
    msg += reason_;
    return msg;
  }

 private:
  bool fail(std::string reason) {
    reason_ = std::move(reason);
    return false;
  }
  bool not_allowed(const char* thing) {
    return fail(std::string(thing) + " is not allowed in " + what_);
  }

  bool convert_table(int idx, json::Value& out, int depth) {
    const void* self = lua_topointer(L_, idx);
    for (const void* open : open_) {
      if (open == self) return not_allowed("cycle: a table that contains itself");
    }
    if (depth >= json::kMaxDepth) {
      return fail("nested deeper than " + std::to_string(json::kMaxDepth) + " levels");
    }
    if (!lua_checkstack(L_, 4)) return fail("nested too deeply for the Lua stack");
    open_.push_back(self);
    std::size_t n = 0;
    const bool ok = is_array_table(L_, idx, marker_, n) ? convert_array(idx, n, out, depth)
                                                         : convert_object(idx, out, depth);
    open_.pop_back();
    return ok;
  }

  bool convert_array(int idx, std::size_t n, json::Value& out, int depth) {
    if (n > static_cast<std::size_t>(INT_MAX)) return fail("array too long");
    out = json::Value::array();
    auto& items = out.items();
    items.reserve(n);
    for (std::size_t i = 1; i <= n; ++i) {
      lua_rawgeti(L_, idx, static_cast<int>(i));
      items.emplace_back();
      const bool ok = convert(lua_gettop(L_), items.back(), depth + 1);
      lua_pop(L_, 1);
      if (!ok) {
        steps_.push_back(Step{{}, static_cast<long long>(i), true});
        return false;
      }
    }
    return true;
  }

  // lua_next gives the keys in hash order, which differs from one process (one lua_State,
  // even) to the next: Debian's LuaJIT seeds its string hash. Sorted, the same table gives
  // the same bytes anywhere. Sorting also brings t[3] beside t["3"], one JSON key, to light.
  bool convert_object(int idx, json::Value& out, int depth) {
    std::vector<json::Value::Member>& members = gathered(depth);
    const Cleared cleared{members};
    const int key = lua_gettop(L_) + 1;
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      char buf[32];
      std::string_view k;
      const bool ok = check_key(key, buf, k) && convert_member(key, k, members, depth);
      if (!ok) {
        lua_pop(L_, 2);
        return false;
      }
      lua_pop(L_, 1);
    }
    std::string twice;
    out = json::Value::sorted_object(members, &twice);
    if (out.is_null()) {
      return fail("the key \"" + twice + "\" is there both as a number and as a string");
    }
    return true;
  }

  // The members of the object being converted at `depth`, gathered in lua_next order
  // before sorted_object moves them, sorted, into the object's own vector. Kept per thread
  // and depth (objects at one depth are converted one after the other): a conversion then
  // allocates each object's vector once, at its size, and nothing to gather it in.
  static std::vector<json::Value::Member>& gathered(int depth) {
    thread_local std::vector<std::vector<json::Value::Member>> by_depth(json::kMaxDepth + 1);
    return by_depth[static_cast<std::size_t>(depth)];
  }

  // Empties a gathering vector on the way out, whichever way that is; a very large one is
  // let go rather than kept for the thread.
  struct Cleared {
    std::vector<json::Value::Member>& members;
    ~Cleared() {
      members.clear();
      if (members.capacity() > 4096) std::vector<json::Value::Member>().swap(members);
    }
  };

  bool check_key(int key, char (&buf)[32], std::string_view& k) {
    if (!key_text(L_, key, buf, k)) {
      if (lua_type(L_, key) != LUA_TNUMBER) {
        return fail(std::string("a key of type ") + luaL_typename(L_, key) + " is not allowed in " +
                    what_ + " (keys are strings or integers)");
      }
      char num[32];
      const auto r = std::to_chars(num, num + sizeof num, lua_tonumber(L_, key));
      return fail("the key " + std::string(num, r.ptr) + " is not allowed in " + what_ +
                  " (keys are strings or integers)");
    }
    if (lua_type(L_, key) == LUA_TSTRING && !json::is_valid_utf8(k)) {
      return fail("a key is not valid UTF-8");
    }
    return true;
  }

  bool convert_member(int key, std::string_view k, std::vector<json::Value::Member>& members,
                      int depth) {
    json::Value v;
    if (!convert(key + 1, v, depth + 1)) {
      if (lua_type(L_, key) == LUA_TNUMBER) {
        steps_.push_back(Step{{}, static_cast<long long>(lua_tonumber(L_, key)), true});
      } else {
        steps_.push_back(Step{std::string(k), 0, false});
      }
      return false;
    }
    members.emplace_back(std::string(k), std::move(v));
    return true;
  }

  lua_State* L_;
  int marker_;
  const char* what_;
  std::vector<const void*> open_;                  // tables on the current path
  std::string reason_;
  std::vector<Step> steps_;                        // failing value first
};

// ---- rollback -----------------------------------------------------------------------

bool same_scalar(lua_State* L, int idx, const json::Value& want) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return want.is_null();
    case LUA_TLIGHTUSERDATA: return want.is_null() && !lua_touserdata(L, idx);
    case LUA_TBOOLEAN: return want.is_bool() && want.as_bool() == (lua_toboolean(L, idx) != 0);
    case LUA_TNUMBER: return want.is_number() && want.as_number() == lua_tonumber(L, idx);
    case LUA_TSTRING: {
      if (!want.is_string()) return false;
      std::size_t n = 0;
      const char* s = lua_tolstring(L, idx, &n);
      return std::string_view(s, n) == want.as_string();
    }
    default: return false;
  }
}

class Restorer {
 public:
  Restorer(lua_State* L, int marker) : L_(L), marker_(marker) {}

  void restore_table(int idx, const json::Value& want) {
    seen_.insert(lua_topointer(L_, idx));
    luaL_checkstack(L_, 6, "state nested too deeply to restore");
    if (want.is_array()) {
      restore_array(idx, want);
    } else {
      restore_object(idx, want);
    }
  }

 private:
  // Keys are cleared while lua_next walks the table (Lua allows clearing and
  // overwriting existing fields during a traversal); missing keys are added after.
  void restore_object(int idx, const json::Value& want) {
    set_marker(idx, false, false);
    const auto& members = want.members();
    std::size_t matched = 0;
    const int key = lua_gettop(L_) + 1;
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      char buf[32];
      std::string_view k;
      std::size_t pos = json::Value::npos;
      if (key_text(L_, key, buf, k)) pos = want.position(k);
      if (pos != json::Value::npos && lua_type(L_, key) == LUA_TNUMBER && has_string_key(idx, k)) {
        pos = json::Value::npos;                   // t[3] beside t["3"]: the string key stays
      }
      if (pos == json::Value::npos) {
        clear(idx, key);
      } else {
        ++matched;
        restore_slot(idx, key, members[pos].second);
      }
      lua_pop(L_, 1);
    }
    if (matched < members.size()) {
      for (const auto& [k, v] : members) {
        if (has_key(idx, k)) continue;
        lua_pushlstring(L_, k.data(), k.size());
        push_exact(v);
        lua_rawset(L_, idx);
      }
    }
    std::size_t n = 0;
    if (is_array_table(L_, idx, marker_, n)) stringify_keys(idx, n);
  }

  // The mirror says object, but the integer keys the script left read as an array
  // (only keys 1..n): the table had them as strings before the hook, so they go back.
  void stringify_keys(int idx, std::size_t n) {
    for (std::size_t i = 1; i <= n; ++i) {
      const std::string key = std::to_string(i);
      lua_pushlstring(L_, key.data(), key.size());
      lua_rawgeti(L_, idx, static_cast<int>(i));
      lua_rawset(L_, idx);
      lua_pushnil(L_);
      lua_rawseti(L_, idx, static_cast<int>(i));
    }
  }

  void restore_array(int idx, const json::Value& want) {
    const auto& items = want.items();
    set_marker(idx, true, items.empty());
    const int key = lua_gettop(L_) + 1;
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      const double k = lua_type(L_, key) == LUA_TNUMBER ? lua_tonumber(L_, key) : 0;
      if (k >= 1 && k <= static_cast<double>(items.size()) && k == std::trunc(k)) {
        restore_slot(idx, key, items[static_cast<std::size_t>(k) - 1]);
      } else {
        clear(idx, key);
      }
      lua_pop(L_, 1);
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      lua_rawgeti(L_, idx, static_cast<int>(i + 1));
      const bool missing = lua_isnil(L_, -1);
      lua_pop(L_, 1);
      if (!missing) continue;
      push_exact(items[i]);
      lua_rawseti(L_, idx, static_cast<int>(i + 1));
    }
  }

  // The value of table `idx` under the key at `key` (its value just above it) must
  // become `want`. A nested table is restored in place unless it was met before: a
  // table reachable twice (aliased, or a cycle the hook made) is replaced by a fresh
  // one, since one table cannot equal two mirrors.
  void restore_slot(int idx, int key, const json::Value& want) {
    const int value = key + 1;
    if (lua_type(L_, value) == LUA_TTABLE && (want.is_object() || want.is_array()) &&
        seen_.count(lua_topointer(L_, value)) == 0) {
      restore_table(value, want);
      return;
    }
    if (same_scalar(L_, value, want)) return;
    lua_pushvalue(L_, key);
    push_exact(want);
    lua_rawset(L_, idx);
  }

  // `want` as the value of a table slot, exactly: a null is atrium.null (nil would be
  // no slot at all), and so are the null members inside it.
  void push_exact(const json::Value& want) {
    if (want.is_null()) {
      push_null(L_);
    } else {
      push_value(L_, want, /*keep_null_members=*/true);
    }
  }

  void clear(int idx, int key) {
    lua_pushvalue(L_, key);
    lua_pushnil(L_);
    lua_rawset(L_, idx);
  }

  bool has_string_key(int idx, std::string_view k) {
    lua_pushlstring(L_, k.data(), k.size());
    lua_rawget(L_, idx);
    const bool found = !lua_isnil(L_, -1);
    lua_pop(L_, 1);
    return found;
  }

  bool has_key(int idx, std::string_view k) {
    if (has_string_key(idx, k)) return true;
    double n = 0;
    if (!integer_key(k, n)) return false;
    lua_pushnumber(L_, n);
    lua_rawget(L_, idx);
    const bool found = !lua_isnil(L_, -1);
    lua_pop(L_, 1);
    return found;
  }

  // Arrays carry the marker, as push_value makes them; a table with a metatable of
  // the script's own keeps it unless it must read as [] (empty arrays need the marker).
  void set_marker(int idx, bool array, bool empty) {
    bool marked = false;
    const bool has_mt = lua_getmetatable(L_, idx) != 0;
    if (has_mt) {
      marked = lua_rawequal(L_, -1, marker_) != 0;
      lua_pop(L_, 1);
    }
    if (array && !marked && (!has_mt || empty)) {
      lua_pushvalue(L_, marker_);
      lua_setmetatable(L_, idx);
    } else if (!array && marked) {
      lua_pushnil(L_);
      lua_setmetatable(L_, idx);
    }
  }

  lua_State* L_;
  int marker_;
  std::unordered_set<const void*> seen_;
};

}  // namespace

void init_lua_json(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<char*>(&kMarkerKey));
  lua_rawget(L, LUA_REGISTRYINDEX);
  const bool exists = lua_istable(L, -1);
  lua_pop(L, 1);
  if (exists) return;                               // a second marker would orphan the first
  lua_pushlightuserdata(L, const_cast<char*>(&kMarkerKey));
  lua_newtable(L);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

void push_array_marker(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<char*>(&kMarkerKey));
  lua_rawget(L, LUA_REGISTRYINDEX);
}

void push_null(lua_State* L) { lua_pushlightuserdata(L, nullptr); }

void push_value(lua_State* L, const json::Value& v, bool keep_null_members) {
  luaL_checkstack(L, 4, "JSON nested too deeply for the Lua stack");
  switch (v.kind()) {
    case json::Value::Kind::null: lua_pushnil(L); return;
    case json::Value::Kind::boolean: lua_pushboolean(L, v.as_bool()); return;
    case json::Value::Kind::number: lua_pushnumber(L, v.as_number()); return;
    case json::Value::Kind::string:
      lua_pushlstring(L, v.as_string().data(), v.as_string().size());
      return;
    case json::Value::Kind::array: {
      const auto& items = v.items();
      lua_createtable(L, static_cast<int>(items.size()), 0);
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].is_null()) push_null(L);       // nil would end the array here
        else push_value(L, items[i], keep_null_members);
        lua_rawseti(L, -2, static_cast<int>(i + 1));
      }
      push_array_marker(L);
      lua_setmetatable(L, -2);
      return;
    }
    case json::Value::Kind::object: {
      const auto& members = v.members();
      lua_createtable(L, 0, static_cast<int>(members.size()));
      for (const auto& [key, value] : members) {
        if (value.is_null() && !keep_null_members) continue;
        lua_pushlstring(L, key.data(), key.size());
        if (value.is_null()) push_null(L);
        else push_value(L, value, keep_null_members);
        lua_rawset(L, -3);
      }
      return;
    }
  }
}

Result<json::Value> to_value(lua_State* L, int idx, const char* what) {
  return to_value_at(L, idx, what, what);
}

Result<json::Value> to_value_at(lua_State* L, int idx, std::string_view path, const char* what,
                                std::span<const void* const> enclosing) {
  idx = absolute(L, idx);
  if (!lua_checkstack(L, 8)) {
    return make_error(ErrorCode::script_error, std::string(path) + ": Lua stack exhausted");
  }
  const int top = lua_gettop(L);
  push_array_marker(L);
  Converter converter(L, top + 1, what, enclosing);
  json::Value out;
  const bool ok = converter.convert(idx, out, static_cast<int>(enclosing.size()));
  lua_settop(L, top);
  if (!ok) return make_error(ErrorCode::script_error, converter.message(path));
  return out;
}

void restore(lua_State* L, int idx, const json::Value& mirror) {
  idx = absolute(L, idx);
  if (!lua_istable(L, idx) || !(mirror.is_object() || mirror.is_array())) return;
  luaL_checkstack(L, 8, "no Lua stack to restore state");
  const int top = lua_gettop(L);
  push_array_marker(L);
  Restorer restorer(L, top + 1);
  restorer.restore_table(idx, mirror);
  lua_settop(L, top);
}

bool is_array_table(lua_State* L, int idx, int marker, std::size_t& length) {
  bool marked = false;
  if (lua_getmetatable(L, idx)) {
    marked = lua_rawequal(L, -1, marker) != 0;
    lua_pop(L, 1);
  }
  const std::size_t n = lua_objlen(L, idx);
  if (marked) {
    length = n;
    return true;
  }
  if (n == 0) return false;                        // t[1] is nil: {} or an object
  // #t is only a border: the keys must be exactly 1..n (no holes, nothing else).
  std::size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) {
      lua_pop(L, 1);
      return false;
    }
    const double k = lua_tonumber(L, -1);
    if (!(k >= 1 && k <= static_cast<double>(n) && k == std::trunc(k))) {
      lua_pop(L, 1);
      return false;
    }
    ++count;
  }
  if (count != n) return false;
  length = n;
  return true;
}

bool key_text(lua_State* L, int idx, char (&buf)[32], std::string_view& key) {
  const int type = lua_type(L, idx);
  if (type == LUA_TSTRING) {
    std::size_t n = 0;
    const char* s = lua_tolstring(L, idx, &n);     // a string key: no in-place conversion
    key = std::string_view(s, n);
    return true;
  }
  if (type != LUA_TNUMBER) return false;
  const double d = lua_tonumber(L, idx);
  if (!(d == std::trunc(d) && std::fabs(d) < kTwoTo63)) return false;
  const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(d));
  key = std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
  return true;
}

bool integer_key(std::string_view key, double& number) noexcept {
  long long n = 0;
  const auto r = std::from_chars(key.data(), key.data() + key.size(), n);
  if (r.ec != std::errc() || r.ptr != key.data() + key.size()) return false;
  char buf[32];
  const auto back = std::to_chars(buf, buf + sizeof buf, n);
  if (std::string_view(buf, static_cast<std::size_t>(back.ptr - buf)) != key) return false;
  number = static_cast<double>(n);
  return std::fabs(number) < kTwoTo63 && static_cast<long long>(number) == n;  // as key_text
}

void append_path_key(std::string& path, std::string_view key) {
  if (is_identifier(key)) {
    path.push_back('.');
    path.append(key);
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const bool utf8 = json::is_valid_utf8(key);
  path.append("[\"");
  for (const char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      path.push_back('\\');
      path.push_back(ch);
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      const char e[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      path.append(e, 4);
    } else {
      path.push_back(ch);
    }
  }
  path.append("\"]");
}

void append_path_index(std::string& path, long long lua_index) {
  path.push_back('[');
  path.append(std::to_string(lua_index));
  path.push_back(']');
}

}  // namespace atrium::script
