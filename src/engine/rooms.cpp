// Room lifecycle: open (typed or untyped, created on demand), instantiate a typed room's
// Lua instance from its class defaults, destroy when empty, reap between operations.
#include <lua.hpp>

#include <algorithm>

#include "engine/engine_impl.hpp"
#include "script/lua_json.hpp"

namespace atrium::engine {

Member* Room::find_member(ClientId c) {
  for (Member& m : members)
    if (m.id == c) return &m;
  return nullptr;
}

std::size_t Room::active_count() const {
  std::size_t n = 0;
  for (const Member& m : members) n += m.joining ? 0 : 1;
  return n;
}

// math.random's first state for a room: from the configured seed and the room's id (FNV-1a,
// then a splitmix64 round), or from the random device.
std::uint64_t Engine::Impl::room_seed(std::string_view id) {
  if (!config.seed) return random() | 1;
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : id) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  std::uint64_t z = *config.seed + h + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (z ^ (z >> 31)) | 1;
}

Room* Engine::Impl::find_room(std::string_view id) {
  auto it = rooms.find(std::string(id));
  return it == rooms.end() || it->second->doomed ? nullptr : it->second.get();
}

Result<Room*> Engine::Impl::open_room(std::string_view id, bool create, bool* created) {
  if (created) *created = false;
  if (Room* r = find_room(id)) return r;
  if (Status s = validate_room_id(id); !s) return s.error();
  const std::string_view type_name = room_type_of(id);
  RoomType* type = type_name.empty() ? nullptr : find_type(type_name);
  // A typo or a script not saved yet must not open a room with no script at all: the
  // untyped (pub/sub) rooms are the ids without a ':'.
  if (!type_name.empty() && !type)
    return make_error(ErrorCode::not_found, "no room type '" + std::string(type_name) + "': " +
                                                script_file_of(type_name) + " does not exist");
  if (type_name.empty() && !config.untyped_rooms)
    return make_error(ErrorCode::not_found, "untyped rooms are off on this server (--untyped off): "
                                            "join TYPE:INSTANCE, a room of a script in rooms/");
  if (type) {
    if (type->deleted)
      return make_error(ErrorCode::not_found, "room type '" + type->name + "' no longer exists");
    if (type->class_ref < 0)
      return make_error(ErrorCode::script_error, as_shown(type->error));
  }
  if (!create) return make_error(ErrorCode::not_found, "no room " + std::string(id));
  // A room doomed earlier in this operation may still be in the map: it makes way, and
  // lives on until reap(), since the open transaction may still hold it.
  if (auto it = rooms.find(std::string(id)); it != rooms.end()) {
    displaced.push_back(std::move(it->second));
    rooms.erase(it);
  }

  auto room = std::make_unique<Room>();
  room->id = std::string(id);
  room->epoch = new_epoch(id);
  room->type = type;
  if (type) {
    room->type_name = type->name;
    room->instance = std::string(id.substr(type_name.size() + 1));
    room->rng = room_seed(room->id);
    if (Status s = instantiate(*room); !s) return s.error();
  }
  Room* r = room.get();
  rooms.emplace(r->id, std::move(room));
  if (created) *created = true;
  if (txn) {
    txn->created.push_back(r);
    txn->undo.push_back([this, r] { doom(*r); });  // discarded: no onDestroy
  }
  schedule_tick(*r);
  return r;
}

Result<Room*> Engine::Impl::open_for_server(std::string_view id) {
  bool created = false;
  auto opened = open_room(id, true, &created);
  if (!opened) return opened;
  Room& room = *opened.value();
  if (created && room.type) {  // server code created it: onCreate gets no ctx
    lua_pushnil(L);
    if (Status s = run_hook(room, "onCreate", 1); !s) return s.error();
  }
  return &room;
}

namespace {

// Converts class[field] (a table or nil) into the room's initial value: a deep copy, so
// instances never share tables with the class or with each other.
Status default_value(lua_State* L, int cls, const char* field, json::Value& out) {
  lua_pushstring(L, field);
  lua_rawget(L, cls);  // data: no metamethod of the script's runs here
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    out = json::Value::object();
    return {};
  }
  auto v = script::to_value(L, -1, field);
  lua_pop(L, 1);
  if (!v) return v.error();
  if (!v->is_object() && !(v->is_array() && v->size() == 0))
    return make_error(ErrorCode::script_error, std::string(field) + " must be a table of named fields");
  out = v->is_object() ? std::move(v.value()) : json::Value::object();
  return {};
}

}  // namespace

// The room's Lua side, made protected: with the VM full (rooms cannot take its reserve)
// this fails as budget_exceeded and the join is answered, instead of a Lua error
// unwinding the engine. Short of memory, it collects and tries once more: the heap may
// hold nothing but garbage of rooms destroyed since the last collection.
Status Engine::Impl::instantiate(Room& room) {
  Status s;
  for (int attempt = 0; attempt < 2; ++attempt) {
    room.mem_owner = vm->new_owner();
    Status ran;
    {
      const script::OwnerScope as_room(*vm, room.mem_owner);  // the instance is the room's memory
      ran = script::protected_call(L, [&] { s = make_instance(room); });
    }
    if (ran && s) return {};
    for (int* ref : {&room.inst_ref, &room.box_ref}) {
      if (*ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, *ref);
      *ref = -2;
    }
    vm->release_owner(room.mem_owner);
    room.mem_owner = 0;
    if (ran && s.error().code != ErrorCode::budget_exceeded) return s;
    vm->collect();
  }
  return make_error(ErrorCode::budget_exceeded,
                    "no script memory left for a new room of type '" + room.type_name + "'");
}

// [-0, +0, m]: every Lua step that may fail for memory; instantiate runs it protected.
Status Engine::Impl::make_instance(Room& room) {
  const int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, room.type->class_ref);
  const int cls = lua_gettop(L);
  // A room from the store (durable.cpp) has its mirrors already.
  Status s = room.restored ? Status{} : default_value(L, cls, "defaultState", room.mirror);
  if (s && !room.restored) s = default_value(L, cls, "defaultMeta", room.meta_mirror);
  if (!s) {
    lua_settop(L, top);
    return make_error(ErrorCode::script_error, room.type->file + ": " + s.error().message);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, prelude_ref);
  lua_getfield(L, -1, "newInstance");
  lua_pushvalue(L, cls);
  lua_pushlstring(L, room.id.data(), room.id.size());
  lua_pushlstring(L, room.type_name.data(), room.type_name.size());
  lua_pushlstring(L, room.instance.data(), room.instance.size());
  lua_createtable(L, 0, 6);  // the box: state, meta, sx, mx, and the shadows ss, ms
  // Each mirror is read back from the table just made, so that it holds what the table
  // holds (a null member of the defaults is left out of the table), in to_value's key order.
  script::push_value(L, room.mirror);
  room.mirror = script::to_value(L, -1, "state").value();
  lua_setfield(L, -2, "state");
  script::push_value(L, room.meta_mirror);
  room.meta_mirror = script::to_value(L, -1, "meta").value();
  lua_setfield(L, -2, "meta");
  lua_pushvalue(L, -1);
  room.box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (const int rc = lua_pcall(L, 5, 1, 0); rc != 0) {
    std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "newInstance failed";
    lua_settop(L, top);
    return make_error(rc == LUA_ERRMEM ? ErrorCode::budget_exceeded : ErrorCode::internal, msg);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, instances_ref);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, &room);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  room.inst_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, top);
  return {};
}

void Engine::Impl::destroy_room(Room& room) {
  for (TimerId id : room.timers) {
    if (const TimerEvent* ev = timers.find(id)) luaL_unref(L, LUA_REGISTRYINDEX, ev->fn_ref);
    timers.cancel(id);
  }
  if (room.tick_timer) timers.cancel(room.tick_timer);
  if (room.patch_timer) timers.cancel(room.patch_timer);
  auto live = rooms.find(room.id);
  Room* successor = live != rooms.end() && live->second.get() != &room ? live->second.get() : nullptr;
  // Whoever is still a member is told: no client may think itself in a room that is gone.
  for (Member& m : room.members)
    if (Client* c = find_client(m.id); c && (!successor || !successor->find_member(m.id))) {
      std::erase(c->rooms, room.id);
      if (!m.joining) send(*c, encode_left(room.id, "closed", "the room was destroyed"));
    }
  for (ClientId w : room.watchers)
    if (Client* c = find_client(w)) {
      std::erase(c->watching, room.id);
      send(*c, encode_left(room.id, "closed", "the room was destroyed"));
    }
  if (room.inst_ref >= 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, instances_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, room.inst_ref);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, room.inst_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, room.box_ref);
  }
  if (room.mem_owner) vm->release_owner(room.mem_owner);
}

void Engine::Impl::maybe_destroy_empty(Room& room) {
  if (room.doomed || !room.members.empty()) return;
  if (!room.type) {
    doom(room);
    return;
  }
  if (room.type->options.keep_alive) return;
  bool keep = false;
  const int top = lua_gettop(L);
  (void)transact([&]() -> Status {
    HookOutcome o = call_method(room, "onDestroy", 0, 1);
    if (o.ran && o.result.ok) keep = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_settop(L, top);
    return {};
  });
  if (!keep) doom(room);
}

void Engine::Impl::defer(Room& room, std::function<void(Room&)> work) {
  deferred.push_back([this, target = &room, id = room.id, work = std::move(work)] {
    // Deferred work may wait for a later operation (finish_operation): run it only if its
    // room was not destroyed since (a new room of the same id is not it).
    auto it = rooms.find(id);
    const bool live = (it != rooms.end() && it->second.get() == target) ||
                      std::any_of(displaced.begin(), displaced.end(),
                                  [&](const std::unique_ptr<Room>& r) { return r.get() == target; });
    if (live) work(*target);
  });
}

void Engine::Impl::doom(Room& room) {
  if (room.doomed) return;
  room.doomed = true;
  doomed_ids.push_back(room.id);
}

// Only the rooms doom() listed: a pass over every room here cost 10,000 untyped rooms a
// whole core at 2,000 emits/s (bench/README.md "Many rooms").
void Engine::Impl::reap() {
  if (doomed_ids.empty() && displaced.empty()) return;
  std::vector<std::string> ids;
  ids.swap(doomed_ids);
  for (const std::string& id : ids) {
    auto it = rooms.find(id);
    // Gone already, or replaced by a new room of the same id (open_room).
    if (it == rooms.end() || !it->second->doomed) continue;
    destroy_room(*it->second);
    unpersist_room(*it->second);
    rooms.erase(it);
  }
  std::vector<std::unique_ptr<Room>> gone;
  gone.swap(displaced);
  for (auto& room : gone) {
    destroy_room(*room);
    if (!rooms.count(room->id)) unpersist_room(*room);  // a successor keeps the stored id
  }
  gone.clear();
  forget_deleted_types();
}

}  // namespace atrium::engine
