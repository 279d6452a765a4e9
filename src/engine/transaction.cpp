// Where a hook is called and committed: every call into room code goes through invoke()
// (which uses script::call_hook, the one door into Lua), inside a transaction that is
// committed (diff -> patch, effects) or rolled back (state and meta restored from the
// mirrors, effects dropped, membership changes undone).
#include <lua.hpp>

#include <chrono>

#include "engine/engine_impl.hpp"
#include "script/lua_json.hpp"
#include "state/diff.hpp"
#include "state/shadow.hpp"

namespace atrium::engine {

std::string Engine::Impl::where(const Room& room) const {
  return room.type ? room.type->file : room.id;
}

void Engine::Impl::push_instance(Room& room) { lua_rawgeti(L, LUA_REGISTRYINDEX, room.inst_ref); }
void Engine::Impl::push_box(Room& room) { lua_rawgeti(L, LUA_REGISTRYINDEX, room.box_ref); }

void Engine::Impl::touch(Room& room) {
  if (!txn) return;
  for (Room* r : txn->rooms)
    if (r == &room) return;
  txn->rooms.push_back(&room);
  if (config.synctest) txn->rng_before.emplace_back(&room, room.rng);
}

namespace {

// How errors and logs name what ran: "action 'move'", or a hook's or method's own name.
std::string call_name(std::string_view what, bool action) {
  return action ? "action '" + std::string(what) + "'" : std::string(what);
}

}  // namespace

HookOutcome Engine::Impl::invoke(Room& room, int nargs, int nresults, std::string_view what,
                                 bool action) {
  HookOutcome out;
  out.ran = true;
  touch(room);
  {
    // Whatever happens inside, the room stack and the memory owner are as they were.
    struct OnStack {
      std::vector<Room*>& stack;
      ~OnStack() { stack.pop_back(); }
    };
    if (config.synctest) note_first_hook(what, action, lua_gettop(L) - nargs);
    room_stack.push_back(&room);
    const OnStack on_stack{room_stack};
    const script::OwnerScope as_room(*vm, room.mem_owner);
    vm->clear_cap_hit();
    const auto t0 = std::chrono::steady_clock::now();
    out.result = script::call_hook(L, nargs, nresults, budget);
    metrics.observe_hook(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (!out.result.ok && out.result.code == ErrorCode::budget_exceeded &&
      (vm->owner_cap_hit() || vm->vm_cap_hit())) {
    out.result.message = vm->owner_cap_hit()
                             ? "the room ran past its memory budget (" +
                                   std::to_string(config.room_memory_bytes >> 20) + " MiB)"
                             : "the server's script memory is full (--memory-mb): the room could not "
                               "allocate";
    vm->collect();  // what it allocated before failing is garbage now
  } else if (!out.result.ok && out.result.message == script::kBudgetExceededMessage) {
    out.result.message = call_name(what, action) + " ran past its CPU budget (" +
                         std::to_string(budget.cpu_ms) + " ms)";
  }
  ++metrics.hook_calls;
  if (!out.result.ok) {
    ++metrics.hook_errors;
    log_failure(room, what, action, out.result);
    if (txn && !txn->failure) txn->failure = out.result;  // an error anywhere fails it all
  }
  return out;
}

namespace {

// Continuation lines of a traceback are indented: a script's error text with a newline
// in it cannot start a line of its own that reads like the server's.
std::string indented(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    out.push_back(c);
    if (c == '\n') out.append("  ");
  }
  return out;
}

constexpr std::int64_t kSameFailureQuietMs = 10000;
constexpr int kRepeatsToWatchers = 20;

}  // namespace

// A room failing the same way again and again (a 1 ms interval that raises) is logged
// once per kSameFailureQuietMs, with the count of those not logged: it once wrote a
// megabyte of tracebacks every two seconds.
void Engine::Impl::log_failure(Room& room, std::string_view what, bool action,
                               const script::HookResult& r) {
  std::string key(what);
  key += '\x1f';
  key += r.where;
  key += '\x1f';
  key += r.message;
  const std::int64_t now = this->now();
  const bool repeated = key == room.last_failure && now - room.last_failure_ms < kSameFailureQuietMs;
  const Error error = hook_error(r);  // what the caller was answered
  // Watchers (an author trying an action again in the inspector) see the first repeats too.
  if (!room.watchers.empty() && (!repeated || room.failures_not_logged < kRepeatsToWatchers)) {
    const SharedFrame fault(encode_fault(room.id, call_name(what, action), error, r.traceback));
    for (ClientId w : room.watchers)
      if (Client* c = find_client(w)) send_frame(*c, fault);
  }
  if (repeated) {
    ++room.failures_not_logged;
    return;
  }
  std::string line = "script hook_failed room=" + room.id + (action ? " action=" : " hook=") +
                     std::string(what) + " code=" + std::string(error.wire_code()) +
                     (r.where.empty() ? "" : " where=" + r.where);
  if (room.failures_not_logged > 0)
    line += " (" + std::to_string(room.failures_not_logged) + " identical failures before this were not logged)";
  log(LogLevel::warn, line + "\n" + indented(r.traceback));
  room.last_failure = std::move(key);
  room.last_failure_ms = now;
  room.failures_not_logged = 0;
}

// Raw lookups only: see engine_impl.hpp.
void Engine::Impl::push_method(Room& room, std::string_view name, bool from_actions) {
  if (!room.type || room.inst_ref < 0 || room.type->class_ref < 0) {
    lua_pushnil(L);
    return;
  }
  const int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, room.type->class_ref);
  const int cls = top + 1;
  if (from_actions) {
    lua_pushliteral(L, "actions");
    lua_rawget(L, cls);
    if (lua_istable(L, -1)) {
      lua_pushlstring(L, name.data(), name.size());
      lua_rawget(L, -2);
    } else {
      lua_pushnil(L);
    }
  } else {
    push_instance(room);
    lua_pushlstring(L, name.data(), name.size());
    lua_rawget(L, -2);
    if (lua_isnil(L, -1)) {
      lua_pushlstring(L, name.data(), name.size());
      lua_rawget(L, cls);
    }
  }
  if (!lua_isfunction(L, -1)) {
    lua_settop(L, top);
    lua_pushnil(L);
    return;
  }
  lua_replace(L, cls);
  lua_settop(L, cls);
}

bool Engine::Impl::has_method(Room& room, std::string_view name) {
  push_method(room, name, false);
  const bool found = !lua_isnil(L, -1);
  lua_pop(L, 1);
  return found;
}

HookOutcome Engine::Impl::call_method(Room& room, std::string_view name, int nargs, int nresults,
                                      bool from_actions) {
  push_method(room, name, from_actions);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1 + nargs);
    return {};
  }
  // [args..., fn] -> [fn, inst, args...]
  const int fn = lua_gettop(L);
  lua_insert(L, fn - nargs);
  push_instance(room);
  lua_insert(L, fn - nargs + 1);
  return invoke(room, nargs + 1, nresults, name, from_actions);
}

Status Engine::Impl::run_hook(Room& room, std::string_view name, int nargs) {
  const int top = lua_gettop(L) - nargs;
  HookOutcome o = call_method(room, name, nargs, 0);
  lua_settop(L, top);
  if (o.ran && !o.result.ok) return hook_error(o.result);
  return {};
}

Error Engine::Impl::hook_error(const script::HookResult& r) const {
  Error e = make_error(r.code, r.message);
  e.script_code = r.script_code;
  e.where = as_shown(r.where);
  return e;
}

namespace {

void set_flag(lua_State* L, int box, const char* key, bool v) {
  lua_pushboolean(L, v);
  lua_setfield(L, box, key);
}

bool get_flag(lua_State* L, int box, const char* key) {
  lua_getfield(L, box, key);
  const bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

struct RoomChanges {
  std::vector<state::Op> state_ops, meta_ops;
};

}  // namespace

Status Engine::Impl::commit(Transaction& t) {
  // Phase 1 reads only: the state rules may still fail, and then nothing is applied.
  // One room is the common case: its changes stay on the stack, with no vector to allocate.
  RoomChanges only_room;
  std::vector<RoomChanges> per_room(t.rooms.size() > 1 ? t.rooms.size() : 0);
  auto changes = [&](std::size_t i) -> RoomChanges& { return per_room.empty() ? only_room : per_room[i]; };
  for (std::size_t i = 0; i < t.rooms.size(); ++i) {
    if (Status s = room_changes(*t.rooms[i], changes(i).state_ops, changes(i).meta_ops); !s) return s;
  }
  // Phase 2: mirrors, pending patches, then the effects the hooks queued, in order.
  std::vector<Room*> flush_now;
  for (std::size_t i = 0; i < t.rooms.size(); ++i) {
    Room& room = *t.rooms[i];
    if (!room.type || room.box_ref < 0) continue;
    RoomChanges& ch = changes(i);
    if (!ch.state_ops.empty()) {
      if (Status s = state::apply_patch(room.mirror, ch.state_ops); !s)
        log(LogLevel::error, "state mirror_out_of_step room=" + room.id + " " + s.error().message);
    }
    if (!ch.meta_ops.empty()) (void)state::apply_patch(room.meta_mirror, ch.meta_ops);
    if (room.type->options.persist) persist_commit(room, ch.state_ops, ch.meta_ops);  // durable.cpp
    if (!ch.state_ops.empty()) {
      sync_shadow(room, "ss", room.mirror, ch.state_ops);
      for (state::Op& op : ch.state_ops) room.pending_ops.push_back(std::move(op));
      if (room.type->options.patch_rate_ms <= 0)
        flush_now.push_back(&room);
      else
        schedule_patch(room);
    }
    if (!ch.meta_ops.empty()) sync_shadow(room, "ms", room.meta_mirror, ch.meta_ops);
    push_box(room);
    set_flag(L, lua_gettop(L), "sx", false);
    set_flag(L, lua_gettop(L), "mx", false);
    lua_pop(L, 1);
    room.dirty_paths.clear();
  }
  for (auto& effect : t.effects) effect();
  for (Room* room : flush_now) flush_patch(*room);
  // A room that server code created and nobody joined goes the way of any empty room.
  for (Room* room : t.created) defer(*room, [this](Room& r) { maybe_destroy_empty(r); });
  return {};
}

// What a transaction changed in `room`'s state and meta, as ops against the mirrors. Reads
// only (a first diff makes the room's shadow).
Status Engine::Impl::room_changes(Room& room, std::vector<state::Op>& state_ops,
                                  std::vector<state::Op>& meta_ops) {
  if (!room.type || room.box_ref < 0) return {};
  push_box(room);
  const int box = lua_gettop(L);
  Status s;
  if (get_flag(L, box, "sx")) {
    s = diff_exposed(room, box, "state", "ss", room.mirror, state_ops);
  } else if (!room.dirty_paths.empty()) {  // only setState/setIn changed it: diff just that
    lua_getfield(L, box, "state");
    s = state::diff_paths(L, -1, room.mirror, room.dirty_paths, state_ops, "state");
    lua_pop(L, 1);
  }
  if (s && get_flag(L, box, "mx")) s = diff_exposed(room, box, "meta", "ms", room.meta_mirror, meta_ops);
  lua_pop(L, 1);
  if (!s) return make_error(ErrorCode::script_error, where(room) + ": " + s.error().message);
  return {};
}

// The table box[field] that a hook exposed (it read self.state or self.meta), diffed
// against `mirror`. By walking its shadow box[shadow_field] (state/shadow.hpp), made at the
// first such diff and charged to the room: the walk, compiled, is about three times as
// fast as diff() over the C API (bench/README.md "Diff"). A room whose memory budget has
// no room for a shadow keeps box[shadow_field] = false and is diffed without one.
Status Engine::Impl::diff_exposed(Room& room, int box, const char* field, const char* shadow_field,
                                  const json::Value& mirror, std::vector<state::Op>& ops) {
  lua_getfield(L, box, field);
  const int live = lua_gettop(L);
  lua_getfield(L, box, shadow_field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    bool made = false;
    {
      const script::OwnerScope as_room(*vm, room.mem_owner);
      made = state::push_shadow(L, mirror);
    }
    if (!made) {
      lua_pop(L, 1);
      lua_pushboolean(L, 0);
      vm->collect();  // what the build allocated is the room's until collected
      log(LogLevel::info, "state no_shadow room=" + room.id + " table=" + field +
                              " reason=\"out of memory\"");
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, box, shadow_field);
  }
  const Status s = lua_istable(L, live + 1)
                       ? state::diff_by_shadow(L, live, live + 1, mirror, ops, field)
                       : state::diff(L, live, mirror, ops, field);
  lua_settop(L, live - 1);
  return s;
}

// After `ops` were applied to `mirror`: the shadow follows, or is dropped (and made again
// at the next diff_exposed) when it cannot.
void Engine::Impl::sync_shadow(Room& room, const char* shadow_field, const json::Value& mirror,
                               const std::vector<state::Op>& ops) {
  push_box(room);
  lua_getfield(L, -1, shadow_field);
  if (lua_istable(L, -1)) {
    bool synced = false;
    {
      const script::OwnerScope as_room(*vm, room.mem_owner);
      synced = state::sync_shadow(L, -1, mirror, ops);
    }
    if (!synced) {
      lua_pushnil(L);
      lua_setfield(L, -3, shadow_field);
    }
  }
  lua_pop(L, 2);
}

// As the engine: a restore must not fail because the room is at its memory cap (the
// reserve is there for it). What it rewrites is the mirror's, which the room had room for
// when it was committed.
void Engine::Impl::restore_room(Room& room) {
  if (!room.type || room.box_ref < 0) return;
  const script::OwnerScope as_engine(*vm, 0);
  push_box(room);
  const int box = lua_gettop(L);
  lua_getfield(L, box, "state");
  script::restore(L, -1, room.mirror);
  lua_pop(L, 1);
  lua_getfield(L, box, "meta");
  script::restore(L, -1, room.meta_mirror);
  lua_pop(L, 1);
  set_flag(L, box, "sx", false);
  set_flag(L, box, "mx", false);
  lua_pop(L, 1);
  room.dirty_paths.clear();
}

void Engine::Impl::rollback(Transaction& t) {
  for (auto it = t.rooms.rbegin(); it != t.rooms.rend(); ++it) restore_room(**it);
  for (auto it = t.undo.rbegin(); it != t.undo.rend(); ++it) (*it)();
}

}  // namespace atrium::engine
