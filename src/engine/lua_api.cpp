// The C functions behind self:emit/send/kick/... and atrium.* (lua/atrium/*.lua wraps
// them). Each checks its arguments before building any C++ object, and queues what it
// does as an effect of the open transaction, so a hook that fails changes nothing.
#include <lua.hpp>

#include <chrono>
#include <cmath>
#include <cstring>

#include "engine/engine_impl.hpp"
#include "json/codec.hpp"
#include "script/lua_json.hpp"
#include "script/lua_patterns.hpp"

namespace atrium::engine {

namespace {

using Impl = Engine::Impl;

Impl& engine_of(lua_State* L) { return *static_cast<Impl*>(lua_touserdata(L, lua_upvalueindex(1))); }

// Raises a Lua error with `msg` (level 1: the calling Lua line gets the position).
int raise(lua_State* L, const std::string& msg) {
  luaL_where(L, 1);
  lua_pushlstring(L, msg.data(), msg.size());
  lua_concat(L, 2);
  return lua_error(L);
}

// The room behind arg 1, which must be a live room instance (not a look-alike table).
Room& self_room(lua_State* L, Impl& e) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_rawgeti(L, LUA_REGISTRYINDEX, e.instances_ref);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  Room* room = static_cast<Room*>(lua_touserdata(L, -1));
  lua_pop(L, 2);
  if (!room || room->doomed) luaL_error(L, "not a live room instance (call methods with ':')");
  if (!e.txn) luaL_error(L, "room methods can only be used while the room's code runs");
  return *room;
}

// A JSON value from a Lua argument, or a Lua error naming what it was for.
json::Value arg_value(lua_State* L, int idx, const char* what) {
  auto v = script::to_value(L, idx, what);
  if (!v) raise(L, v.error().message);
  return std::move(v.value());
}

// A string argument with its length: a NUL inside is part of it, never the end.
std::string check_string(lua_State* L, int idx) {
  size_t n = 0;
  const char* s = luaL_checklstring(L, idx, &n);
  return std::string(s, n);
}

// Event names go on the wire as they are: one that is not UTF-8 is the script's error
// here, at its line, rather than a U+FFFD in every member's frame.
void check_event_name(lua_State* L, std::string_view name) {
  if (!json::is_valid_utf8(name)) raise(L, "the event name is not valid UTF-8");
}

std::string opt_string(lua_State* L, int idx) {
  size_t n = 0;
  const char* s = luaL_optlstring(L, idx, "", &n);
  return std::string(s, n);
}

int l_room_set_state(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  luaL_checktype(L, 2, LUA_TTABLE);
  e.push_box(room);
  lua_getfield(L, -1, "state");
  const int state = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "setState keys must be strings");
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, state);
    std::size_t n = 0;
    const char* key = lua_tolstring(L, -2, &n);
    room.dirty_paths.push_back(state::Path{std::string(key, n)});
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  e.touch(room);
  return 0;
}

// setIn's path at `idx`: a non-empty array of keys, each a string or a positive integer.
// `path` gets them as JSON keys ("3" for 3); the message says what is wrong, or is empty.
std::string read_path(lua_State* L, int idx, state::Path& path) {
  if (!lua_istable(L, idx) || lua_objlen(L, idx) == 0) {
    return "setIn: the path must be a non-empty array of keys, like {\"players\", ctx.client}";
  }
  const std::size_t n = lua_objlen(L, idx);
  path.reserve(n);
  for (std::size_t i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, static_cast<int>(i));
    char buf[32];
    std::string_view key;
    const int type = lua_type(L, -1);
    const bool ok = (type == LUA_TSTRING || (type == LUA_TNUMBER && lua_tonumber(L, -1) >= 1)) &&
                    script::key_text(L, -1, buf, key);
    if (!ok) {
      const std::string got = type == LUA_TNUMBER ? lua_tostring(L, -1)   // a copy: -1 is ours
                                                  : std::string("a ") + lua_typename(L, type);
      return "setIn: path[" + std::to_string(i) + "] must be a string or a positive integer, not " +
             got;
    }
    path.emplace_back(key);
    lua_pop(L, 1);
  }
  return {};
}

// state[path[1]]...[path[n]] = the value at `value`, with raw gets and sets (as
// setState), creating the missing tables on the way, except for a nil: removing from a
// table that is not there changes nothing. The message names the first value on the
// way that is not a table ("setIn: state.players.c1 is a number, not a table").
std::string write_in(lua_State* L, int path_idx, std::size_t n, int value, int state) {
  std::string where = "state";
  for (std::size_t i = 1; i < n; ++i) {
    lua_rawgeti(L, path_idx, static_cast<int>(i));
    if (lua_type(L, -1) == LUA_TNUMBER) {
      script::append_path_index(where, static_cast<long long>(lua_tonumber(L, -1)));
    } else {
      std::size_t len = 0;
      const char* key = lua_tolstring(L, -1, &len);
      script::append_path_key(where, std::string_view(key, len));
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, state);                           // [key, next]
    if (lua_isnil(L, -1)) {
      if (lua_isnil(L, value)) return {};
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, state);                         // [key, new table]
    } else if (!lua_istable(L, -1)) {
      return "setIn: " + where + " is a " + luaL_typename(L, -1) + ", not a table";
    }
    lua_replace(L, state);                          // the next table becomes `state`
    lua_pop(L, 1);
  }
  lua_rawgeti(L, path_idx, static_cast<int>(n));
  lua_pushvalue(L, value);
  lua_rawset(L, state);
  return {};
}

// self:setIn(path, value). Returns a message instead of raising it, so that room.lua can
// raise it at the script's line. Marks only `path` dirty: the state is not exposed.
int l_room_set_in(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  lua_settop(L, 3);
  state::Path path;
  std::string problem = read_path(L, 2, path);
  if (problem.empty()) {
    e.push_box(room);
    lua_getfield(L, 4, "state");
    problem = write_in(L, 2, path.size(), 3, 5);
  }
  if (!problem.empty()) {
    lua_pushlstring(L, problem.data(), problem.size());
    return 1;
  }
  room.dirty_paths.push_back(std::move(path));
  e.touch(room);
  return 0;
}

int l_room_emit(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  std::size_t event_len = 0;
  const char* event = luaL_checklstring(L, 2, &event_len);
  check_event_name(L, std::string_view(event, event_len));
  const json::Value data = lua_isnoneornil(L, 3) ? json::Value() : arg_value(L, 3, "event data");
  ClientId skip = 0;
  if (lua_istable(L, 4)) {
    lua_pushliteral(L, "except");
    lua_rawget(L, 4);  // options are data: no metamethod of the script's runs here
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t n = 0;
      const char* except = lua_tolstring(L, -1, &n);
      if (const Client* c = e.find_client(std::string_view(except, n))) skip = c->id;
    }
    lua_pop(L, 1);
  }
  // Encoded now, sent at commit: the effect carries one shared line, not the data, the
  // event name and the except id to encode and look up later (a typed room's emit is the
  // hot path of its fan-out). A rolled-back hook drops the line unsent.
  SharedFrame line = encode_event_frame(room.id, std::string_view(event, event_len), data, {});
  Transaction& t = *e.txn;
  t.emits.push_back(Transaction::Emit{&room, std::move(line), skip});
  t.effects.push_back([&e, i = t.emits.size() - 1] {
    const Transaction::Emit& emit = e.txn->emits[i];  // the commit runs with txn still set
    e.emit_to_members(*emit.room, emit.line, emit.skip);
  });
  return 0;
}

int l_room_send(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  const std::string client = check_string(L, 2);
  const std::string event = check_string(L, 3);
  check_event_name(L, event);
  json::Value data = lua_isnoneornil(L, 4) ? json::Value() : arg_value(L, 4, "event data");
  Room* r = &room;
  e.txn->effects.push_back([&e, r, client, event, data = std::move(data)] {
    Client* c = e.find_client(client);
    if (c && r->is_active_member(c->id)) {
      e.send(*c, encode_event(r->id, event, data, {}));
      ++e.metrics.events_sent;
    }
  });
  return 0;
}

int l_room_kick(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  const std::string client = check_string(L, 2);
  const std::string message = opt_string(L, 3);
  Room* r = &room;
  e.txn->effects.push_back([&e, r, client, message] {
    if (Client* c = e.find_client(client)) e.kick(*r, c->id, message);
  });
  return 0;
}

int l_room_close(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  const std::string message = opt_string(L, 2);
  Room* r = &room;
  e.txn->effects.push_back([&e, r, message] { e.close_room(*r, message); });
  return 0;
}

int l_room_members(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  lua_createtable(L, static_cast<int>(room.members.size()), 0);
  int i = 0;
  for (const Member& m : room.members) {
    e.push_ctx(*m.client, nullptr, nullptr);
    lua_pushboolean(L, m.connected);  // false: dropped, its seat held for a resume
    lua_setfield(L, -2, "connected");
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

int l_room_member_count(lua_State* L) {
  Impl& e = engine_of(L);
  lua_pushinteger(L, static_cast<lua_Integer>(self_room(L, e).members.size()));
  return 1;
}

int l_room_set_timer(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  const double ms = luaL_checknumber(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  const bool every = lua_toboolean(L, 4);
  if (!(ms >= 0) || ms > 86400000.0 * 365) luaL_error(L, "timer delay must be between 0 and a year in ms");
  // A timer's engine-side entries are the room's memory too: 150,000 timers once cost
  // five times the RSS the room was charged for.
  if (!e.vm->charge(room.mem_owner, kTimerCost))
    return raise(L, "setTimeout: the room ran past its memory budget (" +
                        std::to_string(room.timers.size()) + " timers)");
  lua_pushvalue(L, 3);
  TimerEvent ev;
  ev.kind = TimerKind::script;
  ev.room = room.id;
  {
    const script::OwnerScope as_engine(*e.vm, 0);  // the registry is the engine's table
    ev.fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  ev.interval_ms = every ? std::max<std::int64_t>(1, static_cast<std::int64_t>(ms)) : 0;
  ev.due_ms = e.now() + static_cast<std::int64_t>(ms);
  const int fn_ref = ev.fn_ref;
  const TimerId id = e.timers.add(std::move(ev));
  room.timers.insert(id);
  Room* r = &room;
  e.txn->undo.push_back([&e, r, id, fn_ref] {  // a failed hook starts no timer
    if (e.timers.cancel(id)) luaL_unref(e.L, LUA_REGISTRYINDEX, fn_ref);
    if (r->timers.erase(id)) e.vm->uncharge(r->mem_owner, kTimerCost);
  });
  lua_pushnumber(L, static_cast<lua_Number>(id));
  return 1;
}

int l_room_cancel_timer(lua_State* L) {
  Impl& e = engine_of(L);
  Room& room = self_room(L, e);
  const double given = luaL_checknumber(L, 2);
  // Only what set_timer hands out can name a timer; NaN or 1e300 must not reach a cast.
  if (!(given >= 1 && given < 9007199254740992.0)) return 0;
  const TimerId id = static_cast<TimerId>(given);
  if (room.timers.erase(id)) {
    e.vm->uncharge(room.mem_owner, kTimerCost);
    if (const TimerEvent* ev = e.timers.find(id)) luaL_unref(L, LUA_REGISTRYINDEX, ev->fn_ref);
    e.timers.cancel(id);
  }
  return 0;
}

// atrium.room(id):join(client, payload) -> true | false, reason
int l_room_join(lua_State* L) {
  Impl& e = engine_of(L);
  const std::string id = check_string(L, 1);
  const std::string client = check_string(L, 2);
  json::Value payload = lua_isnoneornil(L, 3) ? json::Value::object() : arg_value(L, 3, "join payload");
  if (!payload.is_object()) luaL_error(L, "join payload must be a table of named fields");
  if (!e.txn) luaL_error(L, "atrium.room():join can only be used while a room's code runs");
  Client* c = e.find_client(client);
  if (!c || c->leaving || c->held) {  // a client going away is placed nowhere
    lua_pushboolean(L, 0);
    lua_pushstring(L, !c ? "unknown client" : c->held ? "the client is disconnected (its seats are held)"
                                                       : "the client is disconnecting");
    return 2;
  }
  bool created = false;
  auto opened = e.open_room(id, true, &created);
  if (!opened) return raise(L, opened.error().message);
  const Status joined = e.nested_join(*opened.value(), *c, payload, created);
  if (e.txn->failure) return raise(L, e.txn->failure->message);
  lua_pushboolean(L, joined.ok());
  if (joined) return 1;
  lua_pushlstring(L, joined.error().message.data(), joined.error().message.size());
  return 2;
}

// atrium.room(id):call(name, ...) -> what the method returned. Arguments and results are
// copied as JSON values, so rooms never share tables.
int l_room_call(lua_State* L) {
  Impl& e = engine_of(L);
  const std::string id = check_string(L, 1);
  const std::string name = check_string(L, 2);
  if (!e.txn) luaL_error(L, "atrium.room():call can only be used while a room's code runs");
  const int nargs = lua_gettop(L) - 2;
  std::vector<json::Value> args;
  for (int i = 0; i < nargs; ++i) args.push_back(arg_value(L, 3 + i, "call argument"));
  if (is_reserved_method(name))  // hooks run for the engine's own events, never on request
    return raise(L, id + " has no method '" + name + "' (hooks and class data cannot be called)");
  auto opened = e.open_for_server(id);
  if (!opened) return raise(L, opened.error().message);
  Room& room = *opened.value();
  if (!room.type) return raise(L, id + " is an untyped room: it has no methods");
  const int top = lua_gettop(L);
  for (const json::Value& a : args) script::push_value(L, a);
  HookOutcome o = e.call_method(room, name, nargs, LUA_MULTRET);
  if (!o.ran) return raise(L, id + " has no method '" + name + "'");
  if (!o.result.ok) return raise(L, o.result.message);
  const int nres = lua_gettop(L) - top;
  std::vector<json::Value> results;
  for (int i = 1; i <= nres; ++i) results.push_back(arg_value(L, top + i, "call result"));
  lua_settop(L, top);
  for (const json::Value& r : results) script::push_value(L, r);
  return nres;
}

// atrium.room(id).state: a copy of the public state as members last saw it.
int l_room_state(lua_State* L) {
  Impl& e = engine_of(L);
  Room* room = e.find_room(check_string(L, 1));
  if (!room) return 0;
  script::push_value(L, room->mirror);
  return 1;
}

int l_now(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(engine_of(L).wall_now()));
  return 1;
}

int l_log(lua_State* L) {
  Impl& e = engine_of(L);
  const std::string level = check_string(L, 1);
  const std::string type = check_string(L, 2);
  const std::string text = check_string(L, 3);
  const LogLevel lv = level == "debug" ? LogLevel::debug
                      : level == "warn" ? LogLevel::warn
                      : level == "error" ? LogLevel::error
                                         : LogLevel::info;
  const Room* room = e.room_stack.empty() ? nullptr : e.room_stack.back();
  // Control characters escaped: a script's text is one log line, never a forged second.
  std::string line = "room log room=" + (room ? room->id : type) + " ";
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') line += "\\n";
    else if (c == '\\') line += "\\\\";
    else if (c < 0x20 || c == 0x7f) line += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    else line.push_back(ch);
  }
  e.log(lv, line);
  return 0;
}

// core.stopped(): the running call was stopped (budget, nesting): pcall must not hide it.
int l_stopped(lua_State* L) {
  lua_pushboolean(L, script::call_stopped(L));
  return 1;
}

int l_json_encode(lua_State* L) {
  json::Value v = arg_value(L, 1, "json.encode");
  const std::string text = json::to_json(v);
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

int l_json_decode(lua_State* L) {
  size_t n = 0;
  const char* s = luaL_checklstring(L, 1, &n);
  auto v = json::parse(std::string_view(s, n));
  if (!v) return raise(L, "json.decode: " + v.error().message);
  script::push_value(L, v.value());
  return 1;
}

// core.host_call(name, ...): atrium.host.NAME(...), a function the embedding host
// registered (Engine::register_host_function). Arguments go as one JSON array and the JSON
// text it answers comes back as a value; a host function that fails fails the script's call.
int l_host_call(lua_State* L) {
  Impl& e = engine_of(L);
  const std::string name = check_string(L, 1);
  const auto fn = e.host_functions.find(name);
  if (fn == e.host_functions.end())
    return raise(L, "atrium.host." + name + ": the host registered no such function");
  json::Value args = json::Value::array();
  for (int i = 2; i <= lua_gettop(L); ++i) args.push_back(arg_value(L, i, "host function argument"));
  std::string args_json;
  json::write(args, args_json);
  Result<std::string> answer = make_error(ErrorCode::internal, "not called");
  try {
    answer = fn->second(args_json);
  } catch (const std::exception& ex) {
    answer = make_error(ErrorCode::script_error, ex.what());
  } catch (...) {
    answer = make_error(ErrorCode::script_error, "it threw");
  }
  if (e.recorder) e.recorder->host(name, args_json, answer);
  if (!answer) return raise(L, "atrium.host." + name + " failed: " + answer.error().message);
  auto value = json::parse(answer.value());
  if (!value) return raise(L, "atrium.host." + name + " answered text that is not JSON: " + value.error().message);
  script::push_value(L, value.value());
  return 1;
}

// core.synctest_reversed(): true while a synctest's second run is running.
int l_synctest_reversed(lua_State* L) {
  lua_pushboolean(L, engine_of(L).synctest_second_run);
  return 1;
}

int l_array(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
  }
  script::push_array_marker(L);
  lua_setmetatable(L, 1);
  return 1;
}

// core.is_array(t): t carries the array marker, which Lua code cannot see (script/vm.cpp).
int l_is_array(lua_State* L) {
  script::push_array_marker(L);
  const bool marked = lua_istable(L, 1) && lua_getmetatable(L, 1) && lua_rawequal(L, -1, -2);
  lua_pushboolean(L, marked);
  return 1;
}

// math.random per room: xorshift64* state kept in the room, so rooms do not disturb each
// other and stay deterministic for a given seed.
std::uint64_t& rng_of(Impl& e) {
  return e.room_stack.empty() ? e.engine_rng : e.room_stack.back()->rng;
}

double next_unit(std::uint64_t& s) {
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return static_cast<double>((s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

int l_random(lua_State* L) {
  Impl& e = engine_of(L);
  const double r = next_unit(rng_of(e));
  switch (lua_gettop(L)) {
    case 0:
      lua_pushnumber(L, r);
      return 1;
    case 1: {
      const double m = luaL_checknumber(L, 1);
      if (m < 1) luaL_error(L, "bad argument #1 to 'random' (interval is empty)");
      lua_pushnumber(L, std::floor(r * m) + 1);
      return 1;
    }
    default: {
      const double lo = luaL_checknumber(L, 1), hi = luaL_checknumber(L, 2);
      if (lo > hi) luaL_error(L, "bad argument #2 to 'random' (interval is empty)");
      lua_pushnumber(L, std::floor(r * (hi - lo + 1)) + lo);
      return 1;
    }
  }
}

int l_randomseed(lua_State* L) {
  Impl& e = engine_of(L);
  const double seed = luaL_checknumber(L, 1);
  // Any number is a seed, NaN and 1e300 included: its bits, never an out-of-range cast.
  std::uint64_t bits = 0;
  static_assert(sizeof bits == sizeof seed);
  std::memcpy(&bits, &seed, sizeof bits);
  const bool integral = std::fabs(seed) < 9007199254740992.0 && seed == std::trunc(seed);
  if (integral) bits = static_cast<std::uint64_t>(static_cast<std::int64_t>(seed));
  std::uint64_t s = bits * 0x9E3779B97F4A7C15ull;
  rng_of(e) = s ? s : 1;
  return 0;
}

}  // namespace

// Builds the `core` table (every function with the Impl as upvalue) and leaves it on the
// stack for the prelude. Also takes os.time/clock/date out of the os library, which is
// opened only for that and then removed.  [-0, +1, m]
void Engine::Impl::open_core_api() {
  lua_newtable(L);  // instances: weak keys
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  instances_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  const luaL_Reg fns[] = {
      {"set_state", l_room_set_state}, {"set_in", l_room_set_in}, {"emit", l_room_emit},
      {"send", l_room_send}, {"kick", l_room_kick},
      {"close", l_room_close}, {"members", l_room_members},
      {"member_count", l_room_member_count}, {"set_timer", l_room_set_timer},
      {"cancel_timer", l_room_cancel_timer}, {"room_join", l_room_join},
      {"room_call", l_room_call}, {"room_state", l_room_state},
      {"now", l_now}, {"log", l_log},
      {"json_encode", l_json_encode}, {"json_decode", l_json_decode},
      {"array", l_array}, {"is_array", l_is_array}, {"random", l_random},
      {"randomseed", l_randomseed}, {"stopped", l_stopped}, {"host_call", l_host_call},
      {"synctest_reversed", l_synctest_reversed},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  const int core = lua_gettop(L);
  for (const luaL_Reg* f = fns; f->name; ++f) {
    lua_pushlightuserdata(L, this);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, core, f->name);
  }
  script::push_array_marker(L);
  lua_setfield(L, core, "array_marker");
  script::push_null(L);
  lua_setfield(L, core, "null");
  script::push_pattern_functions(L, core);  // core.patterns; also string.find & co.
  lua_pushcfunction(L, luaopen_os);
  lua_pushliteral(L, LUA_OSLIBNAME);
  lua_call(L, 1, 1);
  for (const char* name : {"time", "clock", "date"}) {
    lua_getfield(L, -1, name);
    lua_setfield(L, core, (std::string("os_") + name).c_str());
  }
  lua_pop(L, 1);
  lua_pushboolean(L, fixed_clock);  // os.time/clock/date follow the engine's fixed clock
  lua_setfield(L, core, "fixed_clock");
  lua_pushboolean(L, config.synctest);    // next and pairs can walk backwards (synctest.cpp)
  lua_setfield(L, core, "synctest");
  lua_pushnil(L);
  lua_setglobal(L, LUA_OSLIBNAME);
}

}  // namespace atrium::engine
