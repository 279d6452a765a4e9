// Engine::check_invariants: what must hold between any two operations, whatever room
// code did (tests/unit/engine_fuzz_test.cpp calls it after every random step).
#include <lua.hpp>

#include <algorithm>
#include <set>

#include "engine/engine_impl.hpp"
#include "json/codec.hpp"
#include "script/lua_json.hpp"

namespace atrium::engine {

namespace {

Error broken(std::string what) { return make_error(ErrorCode::internal, "invariant: " + std::move(what)); }

// box[field] converted, as the next commit would see it.
Result<json::Value> lua_side(Engine::Impl& e, const Room& room, const char* field) {
  Result<json::Value> out = json::Value();
  const Status ran = script::protected_call(e.L, [&] {
    lua_rawgeti(e.L, LUA_REGISTRYINDEX, room.box_ref);
    lua_getfield(e.L, -1, field);
    out = script::to_value(e.L, -1, field);
    lua_pop(e.L, 2);
  });
  if (!ran) return ran.error();
  return out;
}

}  // namespace

Status Engine::check_invariants() const {
  Impl& e = *impl_;
  if (e.txn || e.abandoned) return broken("a transaction is open between operations");
  if (!e.room_stack.empty()) return broken("the room stack is not empty");
  if (e.vm->owner() != 0) return broken("the memory owner is a room's");
  if (lua_gettop(e.L) != 0) return broken("the Lua stack holds " + std::to_string(lua_gettop(e.L)) + " values");
  // Deferred work may be left for the next operation (a cycle of hooks); doomed rooms not.
  if (!e.doomed_ids.empty() || !e.displaced.empty()) return broken("doomed rooms left over");
  if (e.sessions.size() != e.clients.size())
    return broken(std::to_string(e.sessions.size()) + " sessions for " + std::to_string(e.clients.size()) + " clients");
  for (const auto& [conn, cid] : e.rebound) {
    auto it = e.clients.find(cid);
    if (it == e.clients.end() || it->second->conn != conn)
      return broken("connection " + std::to_string(conn) + " speaks for a client that is not on it");
  }
  for (const auto& [cid, c] : e.clients) {
    if (c->leaving) return broken(c->wire_id + " is still leaving");
    if (auto s = e.sessions.find(c->session); s == e.sessions.end() || s->second != cid)
      return broken(c->wire_id + "'s session does not lead to it");
    if (c->held && (c->sink || c->conn || (c->rooms.empty() && !e.timers.find(c->session_timer))))
      return broken(c->wire_id + " is held but has a connection, or no seat and no session timer");
    if (!c->held && !c->conn) return broken(c->wire_id + " has no connection and is not held");
    for (const std::string& rid : c->rooms)
      if (auto it = e.rooms.find(rid); it != e.rooms.end())
        if (const Member* m = it->second->find_member(cid);
            m && (m->connected == c->held || (!m->connected && !e.timers.find(m->seat_timer))))
          return broken(c->wire_id + "'s seat in " + rid + " does not match its connection");
    std::set<std::string> seen;
    for (const std::string& rid : c->rooms) {
      if (!seen.insert(rid).second) return broken(c->wire_id + " lists " + rid + " twice");
      auto it = e.rooms.find(rid);
      if (it == e.rooms.end()) return broken(c->wire_id + " lists " + rid + ", which does not exist");
      if (!it->second->find_member(cid)) return broken(c->wire_id + " lists " + rid + ", which lacks it");
    }
    for (const std::string& rid : c->watching)
      if (!e.rooms.count(rid)) return broken(c->wire_id + " watches " + rid + ", which does not exist");
  }
  for (const auto& [rid, room] : e.rooms) {
    if (room->doomed) return broken(rid + " is doomed but not reaped");
    if (room->id != rid) return broken(rid + " is filed under another id");
    std::set<ClientId> members;
    for (const Member& m : room->members) {
      if (!members.insert(m.id).second) return broken(rid + " has " + std::to_string(m.id) + " twice");
      if (m.joining) return broken(rid + " has a member still joining");
      Client* c = e.find_client(m.id);
      if (!c || c != m.client) return broken(rid + " has a member that is not a live client");
      if (std::find(c->rooms.begin(), c->rooms.end(), rid) == c->rooms.end())
        return broken(rid + " has " + c->wire_id + ", which does not list it");
    }
    for (TimerId t : room->timers)
      if (!e.timers.find(t)) return broken(rid + " holds a timer that is not scheduled");
    if (!room->type) continue;
    if (room->inst_ref < 0 || room->box_ref < 0) return broken(rid + " has no Lua instance");
    if (!room->dirty_paths.empty()) return broken(rid + " has dirty paths left");
    for (const auto& [field, mirror] : {std::pair<const char*, const json::Value*>{"state", &room->mirror},
                                        {"meta", &room->meta_mirror}}) {
      auto live = lua_side(e, *room, field);
      if (!live) return broken(rid + "'s " + field + " does not convert: " + live.error().message);
      if (!(live.value() == *mirror))
        return broken(rid + "'s " + field + " " + json::to_json(live.value()) + " differs from its mirror " +
                      json::to_json(*mirror));
    }
  }
  return {};
}

}  // namespace atrium::engine
