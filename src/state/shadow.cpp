// The shadow (shadow.hpp): building it, keeping it in step with the mirror, and the walk.
#include "state/shadow.hpp"

#include <lua.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "script/lua_json.hpp"
#include "state/diff.hpp"
#include "state/json_pointer.hpp"

namespace atrium::state {

namespace {

// Registry keys (their addresses): the private key under which each shadow table keeps
// its count, and the entry points of prepare() below: the walk, build and sync.
const char kCountKey = 0;
const char kWalkKey = 0;
const char kBuildKey = 0;
const char kSyncKey = 0;

// A shadow table's count: n members for an object, -1 - n for an array of n items, and
// this for a table that must always be diffed: an array with null items (Lua holds them
// as holes: the walk could not tell [1, null] from [1]), an object with a null member, a
// long array whose items moved (settle_array). The walk's ALWAYS.
constexpr double kAlwaysDiffer = -0.5;

// The walk. It gets the count key, is_marked, and the base functions it uses, taken from
// the VM's own globals (room scripts see copies in their own environments and cannot
// reach these). Returns a function (live, shadow) -> whole, list, n: `whole` when diff()
// of everything will do; otherwise the n paths of the tables whose own members changed
// and of the root's members that changed, flat in `list` (read_paths below).
//
// Shaped first for the interpreter, where a function call per table cost about as much
// as comparing its members: the members of each member table are compared inline, and
// only a table nested in one of those is walked by a call. It runs compiled now
// (set_up_jit below), and calls a C function (is_marked) only for a table with a
// metatable, which a trace would have to leave for.
constexpr char kWalkSource[] = R"lua(
local N, is_marked, next, type, getmetatable, rawget = ...
local ROOT, TABLE, DETECT = 1, 2, 3
local ALWAYS = -0.5  -- kAlwaysDiffer: a table the walk always reports
-- The paths found, flat (each: its length, then its keys), so that recording one
-- allocates nothing. The list is kept from walk to walk: a new one grew through seven
-- resizes for a tick that moves 16 players, a third of the walk. Past its first nflat
-- items it holds an earlier walk's keys, at most 256 of them (a longer list goes).
local out, nout, nflat, path, seen = nil, 0, 0, {}, 0

local function record(depth)
  if not out then out = {} end
  nout = nout + 1
  local at = nflat + 1
  out[at] = depth
  for i = 1, depth do out[at + i] = path[i] end
  nflat = at + depth
end

-- Whether a table with `n` keys, all of them the shadow's, is not of the shadow's kind.
local function kind_differs(t, want, n)
  local marked = getmetatable(t) ~= nil and is_marked(t)
  if want >= 0 then return n ~= want or marked end
  return n ~= -1 - want or (n == 0 and not marked)
end

-- `live` (reached by path[1..depth]) against its shadow. TABLE: records the tables under
-- it whose own members differ and returns whether its own do. ROOT: records its members
-- that differ instead; true when only a whole diff will do. DETECT (inside an array, which
-- diff() compares whole so that it can see items move): true when anything differs.
local function walk(live, shadow, depth, mode)
  local n, added = 0, 0
  for k, v in next, live do
    n = n + 1
    local s = shadow[k]
    if v ~= s then
      if s == nil then added = added + 1 end
      if type(v) ~= "table" or type(s) ~= "table" then
        if mode ~= ROOT or type(k) ~= "string" then return true end
        path[1] = k
        record(1)
        if nout > 16 and nout * 4 > seen + n then return true end  -- see the end
      else
        -- The member table, compared inline: a call per record costs a third of the walk.
        -- An array of another length, or one to be diffed always, is known without a look.
        local want = s[N]
        local m, own, nested = 0, want < 0 and (want == ALWAYS or #v ~= -1 - want), false
        if not own then
          for k2, v2 in next, v do
            m = m + 1
            local s2 = s[k2]
            if v2 ~= s2 then
              if type(v2) == "table" and type(s2) == "table" then nested = true else own = true end
              break
            end
          end
        end
        if nested then
          path[depth + 1] = k
          own = walk(v, s, depth + 1, (mode == DETECT or want < 0) and DETECT or TABLE)
        elseif not own then  -- kind_differs(v, want, m), inline
          if want >= 0 then
            own = m ~= want or (getmetatable(v) ~= nil and is_marked(v))
          else
            own = m ~= -1 - want or (m == 0 and not (getmetatable(v) ~= nil and is_marked(v)))
          end
        end
        if own then
          if mode == DETECT then return true end
          path[depth + 1] = k
          record(depth + 1)
          if nout > 16 and nout * 4 > seen + n then return true end  -- see the end
        end
      end
    end
  end
  seen = seen + n
  local want = shadow[N]
  if mode ~= ROOT then return kind_differs(live, want, n) end
  if want < 0 or (getmetatable(live) ~= nil and is_marked(live)) then return true end
  if n - added ~= want then  -- some of the shadow's keys are gone
    for k in next, shadow do
      if k ~= N and rawget(live, k) == nil then
        path[1] = k
        record(1)
      end
    end
  end
  return false
end

-- Where a quarter of what was seen changed, diff() of the table is cheaper than a path
-- each (a tick that moves every player: diff_bench, 100 entries all changed), so the walk
-- stops there: a table records itself, the root asks for diff() of everything.
return function(live, shadow)
  if nflat > 256 then out = nil end
  nout, nflat, seen = 0, 0, 0
  if walk(live, shadow, 0, ROOT) or (nout > 16 and nout * 4 > seen) then return true end
  return false, out, nout
end
)lua";

// ---- building -------------------------------------------------------------------------

// Pushes the shadow of `v`; `count_key` is the stack index of the count key.
void build(lua_State* L, const json::Value& v, int count_key) {
  luaL_checkstack(L, 4, "state nested too deeply for the Lua stack");
  switch (v.kind()) {
    case json::Value::Kind::null:
    case json::Value::Kind::boolean:
    case json::Value::Kind::number:
    case json::Value::Kind::string:
      script::push_value(L, v);                     // a scalar is pushed as the live state holds it
      return;
    case json::Value::Kind::array: {
      const auto& items = v.items();
      const bool holes = std::any_of(items.begin(), items.end(),
                                     [](const json::Value& item) { return item.is_null(); });
      if (holes) {                                  // diffed always: nothing to compare with
        lua_createtable(L, 0, 1);
      } else {
        lua_createtable(L, static_cast<int>(items.size()), 1);
        for (std::size_t i = 0; i < items.size(); ++i) {
          build(L, items[i], count_key);
          lua_rawseti(L, -2, static_cast<int>(i + 1));
        }
      }
      lua_pushvalue(L, count_key);
      lua_pushnumber(L, holes ? kAlwaysDiffer : -1.0 - static_cast<double>(items.size()));
      lua_rawset(L, -3);
      return;
    }
    case json::Value::Kind::object: {
      const auto& members = v.members();
      lua_createtable(L, 0, static_cast<int>(members.size()) + 1);
      bool nulls = false;
      for (const auto& [key, value] : members) {
        if (value.is_null()) {
          nulls = true;
          continue;
        }
        lua_pushlstring(L, key.data(), key.size());
        build(L, value, count_key);
        lua_rawset(L, -3);
      }
      lua_pushvalue(L, count_key);
      lua_pushnumber(L, nulls ? kAlwaysDiffer : static_cast<double>(members.size()));
      lua_rawset(L, -3);
      return;
    }
  }
}

// Pushes the count key, made on first use.
void push_count_key(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<char*>(&kCountKey));
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (!lua_isnil(L, -1)) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushlightuserdata(L, const_cast<char*>(&kCountKey));
  lua_pushvalue(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

bool push_entry(lua_State* L, const char* key);

// Runs the entry point kept under `key` (prepare()) protected, with `nargs` arguments
// already pushed: Lua running out of memory is an answer here, not a panic. Nothing here
// allocates outside the protected call (pushing a C function would: a new closure).
bool call_protected(lua_State* L, const char* key, int nargs, int nresults) {
  if (!push_entry(L, key)) {
    lua_pop(L, nargs);
    return false;
  }
  lua_insert(L, -nargs - 1);
  if (lua_pcall(L, nargs, nresults, 0) == 0) return true;
  lua_pop(L, 1);
  return false;
}

// (mirror) -> shadow
int build_protected(lua_State* L) {
  const auto* mirror = static_cast<const json::Value*>(lua_touserdata(L, 1));
  push_count_key(L);
  build(L, *mirror, lua_gettop(L));
  return 1;
}

// ---- keeping in step ------------------------------------------------------------------

// Arrays. An op on an array item is followed in place when it keeps every other item where
// it was: a replace, an append, a pop (a chat log that grows, a game's list of items). An op
// that moves items (an insert or remove before the end: a capped log dropping its oldest)
// marks the array, and once all ops are in, a marked array of up to kRefillItems items is
// refilled from the mirror; a longer one is set to kAlwaysDiffer, so the walk always hands
// it to diff_paths(), whose array compare sees the shift. Copying it at every commit would
// cost more than that compare (hook_bench "chat": 3 times the say with a 100-message log).
constexpr std::size_t kRefillItems = 16;

// An op's path as tokens. The engine's keys rarely hold '~' or '/', so a token is mostly a
// view into the op's path; a path with an escape is unescaped into `owned` first. Kept
// across the ops of a sync: splitting a path allocated a vector and its strings per op,
// a third of the sync's cost (embed_bench arena: every player's x and y, every tick).
struct PathTokens {
  std::vector<std::string_view> views;
  std::vector<std::string> owned;

  bool split(std::string_view path) {
    views.clear();
    if (path.find('~') != std::string_view::npos) {
      if (!split_pointer(path, owned)) return false;
      views.assign(owned.begin(), owned.end());
      return true;
    }
    if (path.empty()) return true;                  // the whole document
    if (path.front() != '/') return false;
    std::size_t start = 1;
    for (std::size_t i = 1; i < path.size(); ++i) {  // short tokens: one pass, no memchr
      if (path[i] != '/') continue;
      views.push_back(path.substr(start, i - start));
      start = i + 1;
    }
    views.push_back(path.substr(start));
    return true;
  }
};

struct SyncArgs {
  const json::Value* mirror = nullptr;
  const std::vector<Op>* ops = nullptr;
  bool ok = true;
  // Marked arrays: each on the Lua stack (its slot), with the mirror's array after the ops.
  std::vector<std::pair<int, const json::Value*>> marked;
  PathTokens tokens;                                // scratch of sync_op, kept across ops
  std::vector<const json::Value*> nodes;
  // The object the last op set a member of (a diff emits the ops under one object in a
  // row: a player's x, then its y): its path, mirror node, and shadow table in stack slot
  // `parent_slot`. Empty path: none.
  std::string_view parent_path;
  const json::Value* parent_node = nullptr;
  int parent_slot = 0;
};

// An array index token as the engine writes them: decimal digits only.
bool index_of(std::string_view token, std::size_t& i) {
  if (token.empty()) return false;
  const auto r = std::from_chars(token.data(), token.data() + token.size(), i);
  return r.ec == std::errc() && r.ptr == token.data() + token.size();
}

double count_of(lua_State* L, int table, int count_key) {
  lua_pushvalue(L, count_key);
  lua_rawget(L, table);
  const double count = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return count;
}

void set_count(lua_State* L, int table, int count_key, double count) {
  lua_pushvalue(L, count_key);
  lua_pushnumber(L, count);
  lua_rawset(L, table);
}

// ---- replacing an object in place ------------------------------------------------------
//
// An op that replaces an object (a tick that moves most players: one replace of /players)
// rebuilt its whole shadow, every table and key again, and left the old tables to the
// collector. Updating the shadow in place costs a walk of it instead, and writes only the
// members that differ: the same contents as build() makes.

// An object whose shadow is a plain object table: no null members (build() makes those a
// table the walk always diffs).
bool plain_object(const json::Value& v) {
  if (!v.is_object()) return false;
  for (const auto& [key, member] : v.members())
    if (member.is_null()) return false;
  return true;
}

// The shadow value at `idx` is what build() makes of the scalar `m`.
bool same_scalar(lua_State* L, int idx, const json::Value& m) {
  switch (m.kind()) {
    case json::Value::Kind::boolean:
      return lua_type(L, idx) == LUA_TBOOLEAN && (lua_toboolean(L, idx) != 0) == m.as_bool();
    case json::Value::Kind::number:
      return lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) == m.as_number();
    case json::Value::Kind::string: {
      if (lua_type(L, idx) != LUA_TSTRING) return false;
      std::size_t len = 0;
      const char* text = lua_tolstring(L, idx, &len);
      return std::string_view(text, len) == m.as_string();
    }
    default: return false;
  }
}

// The object shadow at `table` can be updated to `v` in place.
bool updatable(lua_State* L, int table, const json::Value& v, int count_key) {
  return lua_istable(L, table) && plain_object(v) && count_of(L, table, count_key) >= 0;
}

void update_object(lua_State* L, int table, const json::Value& v, int count_key);

// table[key] (key and its old value at stack slots `key` and `old`) becomes the shadow of
// `m`: in place when both are objects, untouched when it holds that scalar already.
void update_member(lua_State* L, int table, int key, int old, const json::Value& m,
                   int count_key) {
  if (updatable(L, old, m, count_key)) return update_object(L, old, m, count_key);
  if (same_scalar(L, old, m)) return;
  lua_pushvalue(L, key);
  build(L, m, count_key);
  lua_rawset(L, table);
}

// The object shadow at `table` (updatable()) becomes the shadow of `v`. Members are written
// only as lua_next allows during its walk (changed or cleared); new ones are added after it.
void update_object(lua_State* L, int table, const json::Value& v, int count_key) {
  luaL_checkstack(L, 6, "state nested too deeply for the Lua stack");
  std::size_t found = 0;
  const int key = lua_gettop(L) + 1;
  lua_pushnil(L);
  while (lua_next(L, table) != 0) {
    if (lua_type(L, key) == LUA_TSTRING) {        // not the count key
      std::size_t len = 0;
      const char* text = lua_tolstring(L, key, &len);
      if (const json::Value* m = v.find(std::string_view(text, len))) {
        ++found;
        update_member(L, table, key, key + 1, *m, count_key);
      } else {
        lua_pushvalue(L, key);                      // gone from the mirror
        lua_pushnil(L);
        lua_rawset(L, table);
      }
    }
    lua_settop(L, key);
  }
  if (found < v.size()) {
    for (const auto& [name, member] : v.members()) {
      lua_pushlstring(L, name.data(), name.size());
      lua_pushvalue(L, -1);
      lua_rawget(L, table);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        build(L, member, count_key);
        lua_rawset(L, table);
      } else {
        lua_pop(L, 2);
      }
    }
  }
  if (count_of(L, table, count_key) != static_cast<double>(v.size()))
    set_count(L, table, count_key, static_cast<double>(v.size()));
}

// Sets member `key` of the object shadow at `parent` to the shadow of `node` (nullptr:
// removes it), keeping the count. The key is pushed once (interning it is most of the
// cost of a scalar's update), and the count is touched only when it changes.
void set_member(lua_State* L, int parent, std::string_view key, const json::Value* node,
                int count_key) {
  lua_pushlstring(L, key.data(), key.size());
  const int at = lua_gettop(L);
  lua_pushvalue(L, at);
  lua_rawget(L, parent);
  const bool had = !lua_isnil(L, -1);
  const bool has = node && !node->is_null();
  if (has && updatable(L, at + 1, *node, count_key)) {
    update_object(L, at + 1, *node, count_key);
    lua_settop(L, at - 1);
    return;
  }
  lua_pop(L, 1);
  if (has) {
    build(L, *node, count_key);
  } else {
    lua_pushnil(L);
  }
  lua_rawset(L, parent);
  if (node && node->is_null()) {
    set_count(L, parent, count_key, kAlwaysDiffer);  // a null member: always diff it
  } else if (has != had) {
    const double count = count_of(L, parent, count_key);
    if (count >= 0) set_count(L, parent, count_key, count + (has ? 1 : -1));
  }
}

// The op on item `token` of the shadow array at `array` (`items`: the mirror's array after
// all the ops), in place if it keeps the other items where they were. False: mark it.
bool follow_item(lua_State* L, int array, const json::Value& items, const Op& op,
                 std::string_view token, int count_key) {
  const double count = count_of(L, array, count_key);
  if (count == kAlwaysDiffer) return false;       // holds no items: settle_array may refill it
  const auto len = static_cast<std::size_t>(-1.0 - count);
  std::size_t i = len;                            // "-": the end
  if (token != "-" && !index_of(token, i)) return false;
  const bool present = i < items.items().size() && !items.items()[i].is_null();
  if (op.kind == OpKind::replace && i < len && present) {
    build(L, items.items()[i], count_key);
    lua_rawseti(L, array, static_cast<int>(i + 1));
    return true;
  }
  if (op.kind == OpKind::add && i == len && present) {
    build(L, items.items()[i], count_key);
    lua_rawseti(L, array, static_cast<int>(i + 1));
    set_count(L, array, count_key, -1.0 - static_cast<double>(len + 1));
    return true;
  }
  if (op.kind == OpKind::remove && len > 0 && i == len - 1) {
    lua_pushnil(L);
    lua_rawseti(L, array, static_cast<int>(i + 1));
    set_count(L, array, count_key, -1.0 - static_cast<double>(len - 1));
    return true;
  }
  return false;
}

// A marked array, once all ops are in: refilled from `items` in place, or emptied and
// diffed always (an array diffed always holds no items: the walk never looks at them).
void settle_array(lua_State* L, int array, const json::Value& items, int count_key) {
  const double count = count_of(L, array, count_key);
  const auto old_len = count == kAlwaysDiffer ? 0 : static_cast<std::size_t>(-1.0 - count);
  const auto& list = items.items();
  const bool keep = list.size() <= kRefillItems &&
                    std::none_of(list.begin(), list.end(),
                                 [](const json::Value& item) { return item.is_null(); });
  const std::size_t fill = keep ? list.size() : 0;
  for (std::size_t i = 0; i < std::max(old_len, fill); ++i) {
    if (i < fill) build(L, list[i], count_key);
    else lua_pushnil(L);
    lua_rawseti(L, array, static_cast<int>(i + 1));
  }
  set_count(L, array, count_key, keep ? -1.0 - static_cast<double>(fill) : kAlwaysDiffer);
}

// The mirror's nodes down `tokens`, as far as they go, into `nodes` (the root first).
void mirror_nodes(const json::Value& mirror, const std::vector<std::string_view>& tokens,
                  std::vector<const json::Value*>& nodes) {
  nodes.assign(1, &mirror);
  for (const std::string_view token : tokens) {
    const json::Value& at = *nodes.back();
    const json::Value* next = nullptr;
    std::size_t i = 0;
    if (at.is_object()) {
      next = at.find(token);
    } else if (at.is_array() && index_of(token, i) && i < at.items().size()) {
      next = &at.items()[i];
    }
    if (!next) return;
    nodes.push_back(next);
  }
}

// The op sets a member of the object the op before it did: that object's shadow is at
// hand, and the op costs one key lookup in each tree.
bool same_parent(const Op& op, const SyncArgs& args, std::string_view& key) {
  const std::string_view path = op.path;
  const std::size_t cut = path.rfind('/');
  if (args.parent_path.empty() || cut == std::string_view::npos ||
      path.substr(0, cut) != args.parent_path)
    return false;
  key = path.substr(cut + 1);
  return key.find('~') == std::string_view::npos;   // an escaped key: the long way
}

// Remembers the object shadow at `container` (mirror `parent`) as the one `op` set a
// member of, when no escape makes its path differ from its tokens.
void remember_parent(lua_State* L, const Op& op, const json::Value& parent, int container,
                     SyncArgs& args) {
  const std::string_view path = op.path;
  const std::size_t cut = path.rfind('/');
  if (cut == 0 || cut == std::string_view::npos || path.find('~') != std::string_view::npos)
    return;
  args.parent_path = path.substr(0, cut);
  args.parent_node = &parent;
  lua_pushvalue(L, container);
  lua_replace(L, args.parent_slot);
}

// One op. What it touched is copied from the mirror as it is after all the ops (an op on an
// item of an array: follow_item above). An op whose place no longer exists in the mirror is
// left to the later op that removed it. False when the shadow does not hold what the mirror
// says it should, or the op replaces the whole state: the caller makes a new shadow.
bool sync_op(lua_State* L, int shadow, const json::Value& mirror, const Op& op, int count_key,
             SyncArgs& args) {
  std::string_view key;
  if (same_parent(op, args, key)) {
    lua_pushvalue(L, args.parent_slot);
    set_member(L, lua_gettop(L), key, args.parent_node->find(key), count_key);
    lua_pop(L, 1);
    return true;
  }
  args.parent_path = {};
  if (!args.tokens.split(op.path) || args.tokens.views.empty()) return false;
  const std::vector<std::string_view>& tokens = args.tokens.views;
  std::vector<const json::Value*>& nodes = args.nodes;
  mirror_nodes(mirror, tokens, nodes);
  const std::size_t depth = tokens.size();
  if (depth - 1 >= nodes.size()) return true;     // its place is gone: a later op's
  const json::Value& parent = *nodes[depth - 1];
  if (!parent.is_object() && !parent.is_array()) return true;  // replaced later: that op's
  // The same container in the shadow.
  lua_checkstack(L, 4);
  lua_pushvalue(L, shadow);
  for (std::size_t i = 0; i + 1 < depth; ++i) {
    if (nodes[i]->is_array()) {
      if (count_of(L, lua_gettop(L), count_key) == kAlwaysDiffer) {
        lua_pop(L, 1);
        return true;                                // diffed always: holds nothing to update
      }
      std::size_t item = 0;
      (void)index_of(tokens[i], item);              // found in the mirror: digits
      lua_rawgeti(L, -1, static_cast<int>(item + 1));
    } else {
      lua_pushlstring(L, tokens[i].data(), tokens[i].size());
      lua_rawget(L, -2);
    }
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) return false;
  }
  const int container = lua_gettop(L);
  if (parent.is_object()) {
    set_member(L, container, tokens[depth - 1], depth < nodes.size() ? nodes[depth] : nullptr,
               count_key);
    remember_parent(L, op, parent, container, args);
  } else {
    for (const auto& [slot, items] : args.marked)
      if (lua_rawequal(L, slot, container)) {
        lua_settop(L, container - 1);
        return true;                                // marked already: settled at the end
      }
    if (!follow_item(L, container, parent, op, tokens[depth - 1], count_key)) {
      args.marked.emplace_back(container, &parent);  // stays on the stack until then
      return true;
    }
  }
  lua_settop(L, container - 1);
  return true;
}

// (args, shadow)
int sync_protected(lua_State* L) {
  auto* args = static_cast<SyncArgs*>(lua_touserdata(L, 1));
  push_count_key(L);
  const int count_key = lua_gettop(L);
  lua_pushnil(L);
  args->parent_slot = lua_gettop(L);
  for (const Op& op : *args->ops) {
    if (!sync_op(L, 2, *args->mirror, op, count_key, *args)) {
      args->ok = false;
      return 0;
    }
  }
  for (const auto& [slot, items] : args->marked) settle_array(L, slot, *items, count_key);
  return 0;
}

// ---- the walk -------------------------------------------------------------------------

// is_marked(t): the table carries the array marker, judged raw (getmetatable would answer
// a __metatable field instead). Called only for tables that have a metatable at all.
int is_marked(lua_State* L) {
  bool marked = false;
  if (lua_getmetatable(L, 1)) {
    script::push_array_marker(L);
    marked = lua_rawequal(L, -1, -2) != 0;
  }
  lua_pushboolean(L, marked);
  return 1;
}

// The walk runs compiled; nothing else in a room VM ever does.
//
// Room code runs in the interpreter only: the budget's count hook never fires inside a
// compiled trace (script/vm.cpp), so the VM keeps LuaJIT's JIT engine off. The walk is the
// engine's own code and bounded by the state's size, and compiled it takes half the time
// or less (bench/README.md "Diff"). So the engine is switched on only while the walk runs,
// and that is safe because nothing the walk does can run room code: it compares and indexes
// tables raw (the shadow's have no metatable, so `==` calls no __eq), calls only the base
// functions handed to it and is_marked, and room code cannot make userdata, whose __gc a
// collection step could run. Traces are made of the code that runs while they are
// recorded, so every trace is the walk's, entered only from the walk's own loops.
//
// LuaJIT sets its JIT up (CPU features, trace parameters) in luaopen_jit, which also turns
// the engine on and makes the global `jit`: called once per VM (prepare()), with the engine
// turned off again and the table dropped, so room scripts still have no `jit`.
void set_up_jit(lua_State* L) {
  lua_pushcfunction(L, luaopen_jit);
  lua_call(L, 0, 0);
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  lua_pushnil(L);
  lua_setfield(L, LUA_GLOBALSINDEX, LUA_JITLIBNAME);
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) {
    for (const char* name : {LUA_JITLIBNAME, "jit.opt"}) {
      lua_pushnil(L);
      lua_setfield(L, -2, name);
    }
  }
  lua_pop(L, 1);
}

// Makes the entry points (the walk, build, sync) and keeps them in the registry. Run by
// lua_cpcall, which makes its own closure inside the protected call; after a failure
// part-way, the next use makes them all again.
int prepare_protected(lua_State* L) {
  set_up_jit(L);
  const struct { const char* key; lua_CFunction fn; } entries[] = {
      {&kBuildKey, build_protected}, {&kSyncKey, sync_protected}};
  for (const auto& entry : entries) {
    lua_pushlightuserdata(L, const_cast<char*>(entry.key));
    lua_pushcfunction(L, entry.fn);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_pushlightuserdata(L, const_cast<char*>(&kWalkKey));
  if (luaL_loadbuffer(L, kWalkSource, sizeof kWalkSource - 1, "=atrium.shadow_walk") != 0)
    return lua_error(L);
  push_count_key(L);
  lua_pushcfunction(L, is_marked);
  for (const char* name : {"next", "type", "getmetatable", "rawget"}) {
    lua_pushstring(L, name);
    lua_rawget(L, LUA_GLOBALSINDEX);
    if (!lua_iscfunction(L, -1)) return luaL_error(L, "base function %s is missing", name);
  }
  lua_call(L, 6, 1);
  lua_rawset(L, LUA_REGISTRYINDEX);
  return 0;
}

// Makes the entry points once per VM; false if Lua could not (out of memory: tried again
// at the next use). The JIT engine is off afterwards whatever happened: luaopen_jit turns
// it on, and a failure after it would otherwise leave it on for room code.
bool prepare(lua_State* L) {
  const int rc = lua_cpcall(L, prepare_protected, nullptr);
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  if (rc != 0) lua_pop(L, 1);  // the error
  return rc == 0;
}

// Pushes the entry point kept under `key`, made on first use; false (nothing pushed) if
// it could not be made. One registry lookup once they exist.
bool push_entry(lua_State* L, const char* key) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    lua_pushlightuserdata(L, const_cast<char*>(key));
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_isfunction(L, -1)) return true;
    lua_pop(L, 1);
    if (attempt == 0 && !prepare(L)) return false;
  }
  return false;
}

// The walk's `n` paths (flat in `list`: a length, then that many keys) as diff_paths()
// takes them. False on a key no path can hold (the walk records only keys the shadow
// has, so this is a guard, not a case).
// Paths already in `paths` are overwritten in place, keeping their memory: diff_by_shadow
// hands in the same vector each time (a tick that moves 16 players reads 16 paths).
bool read_paths(lua_State* L, int list, int n, std::vector<Path>& paths) {
  paths.resize(static_cast<std::size_t>(n));
  int at = 1;
  for (Path& out : paths) {
    lua_rawgeti(L, list, at++);
    const auto len = static_cast<std::size_t>(lua_tointeger(L, -1));
    lua_pop(L, 1);
    out.resize(len);
    for (std::string& key : out) {
      lua_rawgeti(L, list, at++);
      if (lua_type(L, -1) == LUA_TSTRING) {
        std::size_t size = 0;
        const char* s = lua_tolstring(L, -1, &size);
        key.assign(s, size);
      } else if (lua_type(L, -1) == LUA_TNUMBER) {
        const double d = lua_tonumber(L, -1);
        if (!(d >= 1 && d <= 9007199254740992.0 && d == std::floor(d))) return false;
        char buf[32];
        key.assign(buf, std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(d)).ptr);
      } else {
        return false;
      }
      lua_pop(L, 1);
    }
  }
  return true;
}

int absolute(lua_State* L, int idx) noexcept {
  return idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop(L) + idx + 1 : idx;
}

}  // namespace

bool push_shadow(lua_State* L, const json::Value& mirror) {
  lua_pushlightuserdata(L, const_cast<json::Value*>(&mirror));
  if (call_protected(L, &kBuildKey, 1, 1)) return true;
  lua_pushnil(L);
  return false;
}

bool sync_shadow(lua_State* L, int idx, const json::Value& mirror, const std::vector<Op>& ops) {
  SyncArgs args;
  args.mirror = &mirror;
  args.ops = &ops;
  args.tokens.views.reserve(8);                     // deep enough for most states: no regrowth
  args.nodes.reserve(8);
  idx = absolute(L, idx);
  lua_pushlightuserdata(L, &args);
  lua_pushvalue(L, idx);
  return call_protected(L, &kSyncKey, 2, 0) && args.ok;
}

ShadowWalk walk_shadow(lua_State* L, int live, int shadow, std::vector<Path>& paths) {
  live = absolute(L, live);
  shadow = absolute(L, shadow);
  const int top = lua_gettop(L);
  if (!lua_istable(L, live) || !lua_istable(L, shadow) || !lua_checkstack(L, 8) ||
      !push_entry(L, &kWalkKey)) {
    paths.clear();
    return ShadowWalk::failed;
  }
  lua_pushvalue(L, live);
  lua_pushvalue(L, shadow);
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_ON);  // for the walk only: see set_up_jit
  const int rc = lua_pcall(L, 2, 3, 0);
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  if (rc != 0) {
    lua_settop(L, top);
    return ShadowWalk::failed;
  }
  ShadowWalk result = ShadowWalk::paths;
  if (lua_toboolean(L, top + 1)) {
    result = ShadowWalk::whole;
  } else if (!read_paths(L, top + 2, static_cast<int>(lua_tointeger(L, top + 3)), paths)) {
    result = ShadowWalk::failed;
  }
  if (result != ShadowWalk::paths) paths.clear();
  lua_settop(L, top);
  return result;
}

Status diff_by_shadow(lua_State* L, int live, int shadow, const json::Value& mirror,
                      std::vector<Op>& out, const char* what) {
  // The paths of the last walk on this thread, kept for their memory (read_paths); nothing
  // below walks again before diff_paths is done with them. A rare huge walk gives it back.
  constexpr std::size_t kKeptPaths = 1024;
  thread_local std::vector<Path> paths;
  if (paths.capacity() > kKeptPaths) std::vector<Path>().swap(paths);
  if (!mirror.is_object() || walk_shadow(L, live, shadow, paths) != ShadowWalk::paths)
    return diff(L, live, mirror, out, what);
  if (paths.empty()) return {};
  return diff_paths(L, live, mirror, paths, out, what);
}

}  // namespace atrium::state
