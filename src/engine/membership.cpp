// Join, leave, kick and close, with server-side join enforcement (patches.cpp sends what
// changed). The order matters (docs/protocol.md): a joiner's state is exactly the state at
// its seq, so changes still pending for the room go to the existing members as a patch
// before the joiner becomes a member; frames a request causes for its own client go
// before its reply.
#include <lua.hpp>

#include <algorithm>

#include "engine/engine_impl.hpp"
#include "script/lua_json.hpp"

namespace atrium::engine {

namespace {

// Compares in time independent of where the strings differ (the token is a secret; its
// length is not).
bool same_secret(std::string_view given, std::string_view secret) {
  if (given.size() != secret.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ secret[i]);
  return diff == 0;
}

}  // namespace

Result<Room*> Engine::Impl::watch(Client& c, const Request& req) {
  if (!config.admin_token.empty() && !same_secret(req.token, config.admin_token))
    return make_error(ErrorCode::unauthorized, "watching a room needs the admin token");
  Room* room = find_room(req.room);
  if (!room) return make_error(ErrorCode::not_found, "no room " + req.room);
  flush_patch(*room);  // the state in the reply is exactly the state at its seq
  if (std::find(room->watchers.begin(), room->watchers.end(), c.id) == room->watchers.end()) {
    room->watchers.push_back(c.id);
    c.watching.push_back(room->id);
  }
  return room;
}

void Engine::Impl::unwatch(Client& c, Room& room) {
  std::erase(room.watchers, c.id);
  std::erase(c.watching, room.id);
}

void Engine::Impl::emit_to_members(Room& room, const SharedFrame& frame, ClientId except) {
  for (Member& m : room.members) {
    if (m.joining || m.id == except) continue;  // m.id: no load of the Client to skip one
    send_frame(*m.client, frame);
    ++metrics.events_sent;
  }
  for (ClientId w : room.watchers)  // the inspector's event log
    if (Client* c = find_client(w)) send_frame(*c, frame);
}

void Engine::Impl::push_ctx(const Client& c, const json::Value* payload, const char* reason) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, c.wire_id.c_str());
  lua_setfield(L, -2, "client");
  if (!c.user_id.empty()) {
    lua_pushstring(L, c.user_id.c_str());
    lua_setfield(L, -2, "userId");
  }
  if (!c.claims.is_null()) {
    script::push_value(L, c.claims);
    lua_setfield(L, -2, "claims");
  }
  if (!c.user.is_null()) {
    script::push_value(L, c.user);
    lua_setfield(L, -2, "user");
  }
  if (!c.pusher.is_null()) {
    script::push_value(L, c.pusher);
    lua_setfield(L, -2, "pusher");
  }
  if (payload) {
    script::push_value(L, *payload);
    lua_setfield(L, -2, "payload");
  }
  if (reason) {
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
  }
}

namespace {

// The member becomes active once the pending patch has gone to the others; a server-side
// placement then tells the client with `joined`.
std::function<void()> activation(Engine::Impl& e, Room& room, ClientId client, bool server_side) {
  return [&e, &room, client, server_side] {
    e.flush_patch(room);
    Member* m = room.find_member(client);
    if (!m) return;
    m->joining = false;
    if (room.type && room.type->options.persist) e.persist_seat(room, *m->client);  // durable.cpp
    if (server_side) e.send(*m->client, encode_state("joined", room.id, room.epoch, room.seq, room.mirror));
  };
}

void add_member(Engine::Impl& e, Room& room, Client& c) {
  room.members.push_back(Member{&c, c.id, true, e.wall_now()});
  c.rooms.push_back(room.id);
  if (e.txn) {
    Room* r = &room;
    const ClientId id = c.id;
    e.txn->undo.push_back([&e, r, id] {
      if (Client* cl = e.find_client(id)) e.remove_member(*r, *cl);
    });
  }
}

}  // namespace

void Engine::Impl::remove_member(Room& room, Client& c) {
  std::int64_t seat_due = 0;  // when its held seat would have ended, if it was held
  if (Member* m = room.find_member(c.id)) {
    unpersist_seat(room, c.id);
    if (const TimerEvent* t = m->seat_timer ? timers.find(m->seat_timer) : nullptr) seat_due = t->due_ms;
    end_seat(*m);
  }
  std::erase_if(room.members, [&](const Member& m) { return m.client == &c; });
  // Searched from the back: leave_all leaves the last room first.
  auto it = std::find(c.rooms.rbegin(), c.rooms.rend(), room.id);
  if (it != c.rooms.rend()) c.rooms.erase(std::next(it).base());
  if (c.held && c.rooms.empty()) keep_session_until(c, seat_due);
}

Status Engine::Impl::room_slot_left(const Client& c) const {
  const auto most = static_cast<std::size_t>(config.max_rooms_per_connection);
  if (c.rooms.size() < most) return {};
  return make_error(ErrorCode::not_allowed, c.wire_id + " is in " + std::to_string(most) +
                                                " rooms already, the most one connection may be in "
                                                "(--max-rooms-per-connection): leave one first");
}

// The one join path: a client's join, an HTTP placement and atrium.room(id):join all
// come here, inside the open transaction. In order: the client may join at all, the
// room has space, onCreate for a room made by this join, then, once more, the client is
// not a member already (onCreate may have placed it), membership, onJoin and its verdict.
// `activate_first`: the joiner becomes active before the transaction's other effects (a
// top-level join: it sees what its own onJoin emitted).  [-0, +0, -]
Status Engine::Impl::enter(Room& room, Client& c, const json::Value& payload, bool created,
                           bool server_side, bool activate_first) {
  if (c.leaving) return make_error(ErrorCode::not_allowed, c.wire_id + " is disconnecting");
  if (c.held)
    return make_error(ErrorCode::not_allowed, c.wire_id + " is disconnected (its seats are held for a resume)");
  if (room.closing || room.doomed) return make_error(ErrorCode::not_found, room.id + " is closing");
  if (room.find_member(c.id)) return make_error(ErrorCode::already_member, "already a member of " + room.id);
  if (Status s = room_slot_left(c); !s) return s;
  if (!room.type) {  // untyped pub/sub: anyone may join, nothing runs
    add_member(*this, room, c);
    room.members.back().joining = false;
    if (server_side)
      txn->effects.push_back([this, &room, id = c.id] {
        if (Client* cl = find_client(id)) send(*cl, encode_state("joined", room.id, room.epoch, room.seq, room.mirror));
      });
    return {};
  }
  const int max = room.type->options.max_members;
  if (max > 0 && room.members.size() >= static_cast<std::size_t>(max))
    return make_error(ErrorCode::room_full, room.id + " is full (" + std::to_string(max) + " members)");
  const int top = lua_gettop(L);
  if (created) {
    push_ctx(c, &payload, nullptr);
    if (Status s = run_hook(room, "onCreate", 1); !s) return s;
    if (room.find_member(c.id))
      return make_error(ErrorCode::already_member, "already a member of " + room.id + " (its onCreate placed it)");
    if (Status s = room_slot_left(c); !s) return s;
  }
  add_member(*this, room, c);
  push_ctx(c, &payload, nullptr);
  HookOutcome o = call_method(room, "onJoin", 1, 2);
  if (o.ran && !o.result.ok) {
    lua_settop(L, top);
    return hook_error(o.result);
  }
  if (o.ran && lua_isboolean(L, top + 1) && !lua_toboolean(L, top + 1)) {
    std::size_t n = 0;
    const char* why = lua_type(L, top + 2) == LUA_TSTRING ? lua_tolstring(L, top + 2, &n) : nullptr;
    std::string reason = why ? std::string(why, n) : "join rejected";
    lua_settop(L, top);
    return make_error(ErrorCode::join_rejected, std::move(reason));
  }
  lua_settop(L, top);
  if (activate_first)
    txn->effects.insert(txn->effects.begin(), activation(*this, room, c.id, server_side));
  else
    txn->effects.push_back(activation(*this, room, c.id, server_side));
  return {};
}

Result<Room*> Engine::Impl::join(Client& c, std::string_view id, const json::Value& payload,
                                 bool server_side) {
  if (Status s = validate_room_id(id); !s) return s.error();
  if (Room* existing = find_room(id); existing && existing->find_member(c.id))
    return make_error(ErrorCode::already_member, "already a member of " + std::string(id));
  RoomType* type = find_type(room_type_of(id));
  if (type && !type->deleted && type->class_ref >= 0 && !server_side &&
      type->options.server_join_only)
    return make_error(ErrorCode::server_join_only, "room requires server-side join");
  Room* room = nullptr;
  Status s = transact([&]() -> Status {
    bool created = false;
    auto opened = open_room(id, true, &created);
    if (!opened) return opened.error();
    room = opened.value();
    return enter(*room, c, payload, created, server_side, /*activate_first=*/true);
  });
  if (!s) return s.error();
  return room;
}

// atrium.room(id):join inside a hook. A rejection changes nothing in that room: it goes
// back to its mirror (so do changes this transaction made to the same room before the
// join: a documented limit) and a room this join made is discarded; the transaction
// goes on. Any other failure of a hook fails the transaction (txn->failure).
Status Engine::Impl::nested_join(Room& room, Client& c, const json::Value& payload, bool created) {
  Status s = enter(room, c, payload, created, /*server_side=*/true, /*activate_first=*/false);
  if (s || s.error().code != ErrorCode::join_rejected || !room.type) return s;
  restore_room(room);
  remove_member(room, c);
  if (created) doom(room);
  return s;
}

Engine::Impl::Who Engine::Impl::who(const Client& c) {
  return Who{c.id, c.user_id, c.claims, c.user, c.pusher};
}

void Engine::Impl::run_on_leave(Room& room, const Who& who, const char* reason) {
  if (!room.type || room.doomed) return;
  (void)hook_transaction(room, "onLeave", [&] {
    Client stand_in;  // the client may be gone already (disconnect)
    stand_in.id = who.id;
    stand_in.wire_id = "c" + std::to_string(who.id);
    stand_in.user_id = who.user_id;
    stand_in.claims = who.claims;
    stand_in.user = who.user;
    stand_in.pusher = who.pusher;
    push_ctx(stand_in, nullptr, reason);
    return 1;
  });
}

Status Engine::Impl::leave(Client& c, Room& room, const char* reason) {
  if (!room.find_member(c.id))
    return make_error(ErrorCode::not_member, "not a member of " + room.id);
  remove_member(room, c);
  run_on_leave(room, who(c), reason);
  maybe_destroy_empty(room);
  return {};
}

// From the back of the list, so each leave finds its id last (remove_member looks there
// first): leaving N rooms front to back cost O(N^2), and 40,000 rooms froze the server
// for seconds. What is not left yet stays listed, should a Lua error end this early.
void Engine::Impl::leave_all(Client& c, const char* reason) {
  while (!c.rooms.empty()) {
    const std::string id = c.rooms.back();
    Room* room = find_room(id);
    if (room && room->find_member(c.id)) (void)leave(c, *room, reason);
    if (!c.rooms.empty() && c.rooms.back() == id) c.rooms.pop_back();
  }
}

void Engine::Impl::kick(Room& room, ClientId client, const std::string& message) {
  Client* c = find_client(client);
  if (!c || !room.find_member(client)) return;
  send(*c, encode_left(room.id, "kicked", message));
  note_left(*c, room.id, "kicked");
  remove_member(room, *c);
  defer(room, [this, gone = who(*c)](Room& r) {
    run_on_leave(r, gone, "kicked");
    maybe_destroy_empty(r);
  });
}

void Engine::Impl::close_room(Room& room, const std::string& message) {
  room.closing = true;  // its onLeave and onDestroy hooks may not fill it again
  std::vector<Who> gone;
  for (Member& m : std::vector<Member>(room.members)) {
    send(*m.client, encode_left(room.id, "closed", message));
    note_left(*m.client, room.id, "closed");
    gone.push_back(who(*m.client));
    remove_member(room, *m.client);
  }
  defer(room, [this, gone](Room& r) {
    for (const Who& w : gone) run_on_leave(r, w, "closed");
    (void)hook_transaction(r, "onDestroy", [] { return 0; });
    doom(r);
  });
}

}  // namespace atrium::engine
