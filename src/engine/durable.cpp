// Durable rooms (options.persist; docs/rooms.md "Durable rooms"): what a commit changed
// goes to the store (room_store.hpp) as the room's ops, with a whole snapshot now and then;
// the store commits once per loop pass, and until it has, every frame the engine sends
// waits (the output gate), so no client sees a change a crash could take back. At start
// the rooms come back, snapshot plus the changes after it, with their epoch, seq and held
// seats, before the listener opens.
#include <lua.hpp>

#include <algorithm>

#include "engine/engine_impl.hpp"
#include "json/codec.hpp"

namespace atrium::engine {

namespace {

// A snapshot replaces the changes after this many, so a restore applies at most this many.
constexpr std::uint64_t kSnapshotEvery = 256;

std::string ops_text(const std::vector<state::Op>& ops) {
  std::string out = "[";
  state::write_ops(ops, out);
  out += ']';
  return out;
}

Result<std::vector<state::Op>> ops_of(const std::string& text) {
  auto v = json::parse(text);
  if (!v || !v->is_array()) return make_error(ErrorCode::internal, "a stored change is not a JSON array");
  std::vector<state::Op> ops;
  for (const json::Value& o : v->items()) {
    const std::string* kind = o.get_string("op");
    const std::string* path = o.get_string("path");
    if (!kind || !path || (*kind != "add" && *kind != "remove" && *kind != "replace"))
      return make_error(ErrorCode::internal, "a stored change has an op that is not add, remove or replace");
    const json::Value* value = o.find("value");
    ops.push_back(state::Op{*kind == "add" ? state::OpKind::add : *kind == "remove" ? state::OpKind::remove
                                                                                  : state::OpKind::replace,
                            *path, value ? *value : json::Value()});
  }
  return ops;
}

}  // namespace

RoomStore* Engine::Impl::durable_store(const Room& room) {
  if (!room.type || !room.type->options.persist) return nullptr;
  if (store) return store.get();
  if (store_unavailable) return nullptr;
  if (!config.open_store) {
    store_unavailable = true;
    log(LogLevel::warn, "store none room=" + room.id +
                            " (options.persist is set, but this engine has no store: the room lives in memory only)");
    return nullptr;
  }
  auto opened = config.open_store(true);
  if (!opened || !opened.value()) {
    store_unavailable = true;
    log(LogLevel::error, "store unavailable error=\"" +
                             (opened ? std::string("no store") : opened.error().message) +
                             "\" (durable rooms live in memory only until a restart)");
    return nullptr;
  }
  store = std::move(opened).value();
  log(LogLevel::info, "store opened file=" + store->where());
  return store.get();
}

// At commit, with the mirrors already holding the change: a room the store does not have
// yet goes in whole, then its changes as ops. `seq` is the seq the state has once the change
// is in a patch: the next one when ops are pending.
void Engine::Impl::persist_commit(Room& room, const std::vector<state::Op>& state_ops,
                                  const std::vector<state::Op>& meta_ops) {
  RoomStore* s = durable_store(room);
  if (!s || room.doomed) return;
  if (state_ops.empty() && meta_ops.empty() && room.stored) return;
  const std::uint64_t seq = room.seq + (state_ops.empty() && room.pending_ops.empty() ? 0 : 1);
  ++room.store_ver;
  if (!room.stored || ++room.changes_since_snapshot >= kSnapshotEvery) {
    StoredRoom r;
    r.id = room.id;
    r.type = room.type_name;
    r.epoch = room.epoch;
    r.seq = seq;
    r.ver = room.store_ver;
    r.state = json::to_json(room.mirror);
    r.meta = json::to_json(room.meta_mirror);
    s->snapshot(r);
    room.stored = true;
    room.changes_since_snapshot = 0;
    return;
  }
  StoredChange c;
  c.ver = room.store_ver;
  c.seq = seq;
  c.state_ops = ops_text(state_ops);
  c.meta_ops = ops_text(meta_ops);
  s->change(room.id, c);
}

void Engine::Impl::persist_seat(const Room& room, const Client& c) {
  if (RoomStore* s = durable_store(room)) s->seat(StoredSeat{room.id, c.id, session_hex(c.session), c.user_id});
}

void Engine::Impl::unpersist_seat(const Room& room, ClientId client) {
  if (room.stored && store) store->unseat(room.id, client);
}

void Engine::Impl::unpersist_room(const Room& room) {
  if (room.stored && store) store->drop(room.id);
}

void Engine::Impl::commit_store() {
  if (store && store->pending()) {
    ++metrics.store_commits;
    if (Status s = store->commit(); !s) {
      ++metrics.store_failures;
      log(LogLevel::error, "store commit_failed error=\"" + s.error().message +
                               "\" (the changes of this pass are in memory, not on disk)");
    }
  }
  if (held_frames.empty()) return;
  auto frames = std::move(held_frames);
  held_frames.clear();
  for (HeldFrame& h : frames)
    if (Client* c = find_client(h.client); c && c->conn == h.conn && c->sink) c->sink->send(h.frame);
}

// Before the listener opens: every stored room whose type loaded comes back as it was at
// its last commit, with the seats that were held in it (their clients resume them).
Status Engine::Impl::restore_rooms() {
  if (!config.open_store) return {};
  const std::int64_t started = monotonic_ms();
  auto opened = config.open_store(false);
  if (!opened) return opened.error();
  if (!opened.value()) return {};  // no store yet: nothing was ever durable here
  store = std::move(opened).value();
  auto world = store->load();
  if (!world) return world.error();
  std::vector<Room*> back;
  for (StoredRoom& r : world.value().rooms) {
    const std::string_view type_name = room_type_of(r.id);
    RoomType* type = find_type(type_name);
    if (!type || type->class_ref < 0 || type->deleted || type->name != r.type) {
      log(LogLevel::error, "store room_not_restored room=" + r.id + " (its type '" + r.type +
                               "' has no script that loads: it stays in " + store->where() + ")");
      continue;
    }
    auto state = json::parse(r.state);
    auto meta = json::parse(r.meta);
    if (!state || !meta || !state->is_object() || !meta->is_object())
      return make_error(ErrorCode::internal, store->where() + ": room " + r.id + ": its stored state is not a JSON object");
    std::uint64_t seq = r.seq, ver = r.ver;
    for (const StoredChange& c : r.changes) {
      auto state_ops = ops_of(c.state_ops);
      auto meta_ops = ops_of(c.meta_ops);
      Status applied = state_ops ? state::apply_patch(state.value(), state_ops.value()) : Status(state_ops.error());
      if (applied) applied = meta_ops ? state::apply_patch(meta.value(), meta_ops.value()) : Status(meta_ops.error());
      if (!applied)
        return make_error(ErrorCode::internal, store->where() + ": room " + r.id + ", change " +
                                                   std::to_string(c.ver) + ": " + applied.error().message);
      seq = std::max(seq, c.seq);
      ver = c.ver;
    }
    auto room = std::make_unique<Room>();
    room->id = r.id;
    room->type = type;
    room->type_name = type->name;
    room->instance = r.id.substr(type->name.size() + 1);
    room->rng = room_seed(room->id);
    room->epoch = r.epoch;
    room->seq = seq;
    room->mirror = std::move(state.value());
    room->meta_mirror = std::move(meta.value());
    room->restored = true;
    room->stored = true;
    room->store_ver = ver;
    if (Status s = instantiate(*room); !s)
      return make_error(ErrorCode::internal, store->where() + ": room " + r.id + ": " + s.error().message);
    Room* live = room.get();
    rooms.emplace(live->id, std::move(room));
    schedule_tick(*live);
    back.push_back(live);
    ++metrics.restored_rooms;
  }
  // Held seats: each client comes back with its id and session, for its grace from now.
  for (const StoredSeat& s : world.value().seats) {
    Room* room = find_room(s.room);
    SessionKey key;
    if (!room || !parse_session(s.session, key)) continue;
    Client* c = find_client(static_cast<ClientId>(s.client));
    if (!c) {
      auto fresh = std::make_unique<Client>();
      fresh->id = static_cast<ClientId>(s.client);
      fresh->wire_id = "c" + std::to_string(s.client);
      fresh->session = key;
      fresh->user_id = s.user_id;
      fresh->held = true;
      c = fresh.get();
      sessions[key] = c->id;
      clients.emplace(c->id, std::move(fresh));
      next_client = std::max(next_client, c->id + 1);
    }
    if (room->find_member(c->id)) continue;
    TimerEvent ev;
    ev.kind = TimerKind::seat;
    ev.room = room->id;
    ev.client = c->id;
    ev.due_ms = now() + static_cast<std::int64_t>(room->type->options.reconnect_grace_s * 1000);
    room->members.push_back(Member{c, c->id, false, wall_now(), false, timers.add(std::move(ev))});
    c->rooms.push_back(room->id);
    ++metrics.restored_seats;
  }
  for (Room* room : back) {
    (void)hook_transaction(*room, "onRestore", [] { return 0; });
    if (room->members.empty()) maybe_destroy_empty(*room);
  }
  finish_operation();
  commit_store();
  metrics.restore_ms = static_cast<double>(monotonic_ms() - started);
  log(LogLevel::info, "store restored rooms=" + std::to_string(metrics.restored_rooms) + " seats=" +
                          std::to_string(metrics.restored_seats) + " ms=" +
                          std::to_string(static_cast<long long>(metrics.restore_ms)) + " file=" + store->where());
  return {};
}

}  // namespace atrium::engine
