// Seats held through a dropped connection, and `resume`, which takes them back on a new
// one (docs/protocol.md "Seats and resume"). A dropped client stays in `clients`, still a
// member of its typed rooms, with no connection (Client::held) until each seat's grace
// runs out; a resume moves the client, its id and session included, onto the new
// connection, and sends each room exactly what it missed: the patches from the room's log,
// or one fresh state.
#include <lua.hpp>

#include <algorithm>
#include <cstdio>

#include "engine/engine_impl.hpp"

namespace atrium::engine {

Client* Engine::Impl::by_connection(ClientId conn) {
  ClientId id = conn;
  if (!rebound.empty())
    if (auto it = rebound.find(conn); it != rebound.end()) id = it->second;
  Client* c = find_client(id);
  // A connection whose session another one took over speaks for nobody any more.
  return c && c->conn == conn ? c : nullptr;
}

// Random per incarnation; under EngineConfig::seed a function of the seed, the room's id
// and how many rooms this engine made before, so that a seeded simulation sends the same
// bytes every run.
std::string Engine::Impl::new_epoch(std::string_view room_id) {
  ++rooms_made;
  const std::uint64_t bits = config.seed ? room_seed(room_id) ^ (rooms_made * 0x9e3779b97f4a7c15ull) : random();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(bits));
  return buf;
}

void Engine::Impl::log_patch(Room& room, const SharedFrame& frame) {
  if (!room.type) return;  // untyped rooms have no state: nothing to recover
  if (!room.patch_log) room.patch_log = make_local_patch_log(config.patch_log);
  room.patch_log->append(room.seq, frame, now());
}

void Engine::Impl::note_left(Client& c, const std::string& room, const char* reason) {
  std::erase_if(c.lefts, [&](const auto& l) { return l.first == room; });
  if (c.lefts.size() >= kMaxRecentLefts) c.lefts.erase(c.lefts.begin());
  c.lefts.emplace_back(room, reason);
}

void Engine::Impl::end_seat(Member& m) {
  if (m.seat_timer) timers.cancel(m.seat_timer);
  m.seat_timer = 0;
  m.connected = true;
}

bool Engine::Impl::hold_seats(Client& c) {
  std::vector<std::string> held_in;
  for (const std::string& rid : std::vector<std::string>(c.rooms)) {
    Room* room = find_room(rid);
    Member* m = room ? room->find_member(c.id) : nullptr;
    if (!m) continue;
    const double grace_s = room->type ? room->type->options.reconnect_grace_s : 0;
    if (grace_s <= 0 || m->joining || room->closing) {
      (void)leave(c, *room, "disconnect");
      continue;
    }
    TimerEvent ev;
    ev.kind = TimerKind::seat;
    ev.room = room->id;
    ev.client = c.id;
    ev.due_ms = now() + static_cast<std::int64_t>(grace_s * 1000);
    m->connected = false;
    m->seat_timer = timers.add(std::move(ev));
    held_in.push_back(rid);
  }
  if (held_in.empty()) return false;
  c.held = true;    // no join may place it anywhere (enter) while it has no connection
  c.leaving = false;
  c.conn = 0;
  for (const std::string& rid : held_in)
    if (Room* room = find_room(rid); room && room->find_member(c.id))
      (void)hook_transaction(*room, "onDrop", [&] {
        push_ctx(c, nullptr, nullptr);
        return 1;
      });
  return true;
}

void Engine::Impl::keep_session_until(Client& c, std::int64_t until_ms) {
  if (until_ms <= now()) {
    released.push_back(c.id);  // finish_operation forgets it
    return;
  }
  if (c.session_timer) timers.cancel(c.session_timer);
  TimerEvent ev;
  ev.kind = TimerKind::seat;  // with no room: the session's end
  ev.client = c.id;
  ev.due_ms = until_ms;
  c.session_timer = timers.add(std::move(ev));
}

void Engine::Impl::on_seat_expired(const TimerEvent& ev) {
  Client* c = find_client(static_cast<ClientId>(ev.client));
  if (ev.room.empty()) {
    if (c && c->session_timer == ev.id && c->held && c->rooms.empty()) forget_client(c->id);
    return;
  }
  Room* room = find_room(ev.room);
  Member* m = c && room ? room->find_member(c->id) : nullptr;
  if (!m || m->seat_timer != ev.id) return;
  m->seat_timer = 0;
  (void)leave(*c, *room, "disconnect");  // its last seat: remove_member releases it
}

void Engine::Impl::forget_client(ClientId id) {
  auto it = clients.find(id);
  if (it == clients.end()) return;
  Client& c = *it->second;
  if (c.expiry_timer) timers.cancel(c.expiry_timer);
  if (c.session_timer) timers.cancel(c.session_timer);
  if (c.conn != c.id) rebound.erase(c.conn);
  if (auto s = sessions.find(c.session); s != sessions.end() && s->second == id) sessions.erase(s);
  clients.erase(it);
}

void Engine::Impl::forget_released() {
  auto ids = std::move(released);
  released.clear();
  for (ClientId id : ids)
    if (Client* c = find_client(id); c && c->held && c->rooms.empty() && !c->session_timer) forget_client(id);
}

std::string session_hex(const SessionKey& key) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(2 * sizeof key);
  for (std::uint64_t word : key)
    for (int j = 0; j < 8; ++j, word >>= 8) {
      s += hex[(word >> 4) & 0xf];
      s += hex[word & 0xf];
    }
  return s;
}

bool parse_session(std::string_view hex, SessionKey& out) {
  if (hex.size() != 32) return false;
  out = {};
  for (std::size_t i = 0; i < hex.size(); ++i) {
    const char ch = hex[i];
    int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (v < 0) return false;
    // welcome.session writes each word's bytes lowest first, each byte as two digits.
    const std::size_t word = i / 16, byte = (i % 16) / 2;
    const int shift = static_cast<int>(byte * 8 + (i % 2 == 0 ? 4 : 0));
    out[word] |= static_cast<std::uint64_t>(v) << shift;
  }
  return true;
}

namespace {

constexpr int kResumedElsewhere = 4002;

}  // namespace

// The fresh connection (its welcome's id and session void from here) takes over the
// session's client. Everything is checked before anything changes, so a refused resume
// leaves the seats, their timers and the rooms as they were.
void Engine::Impl::resume(Client& fresh, const Request& req) {
  auto refuse = [&](ErrorCode code, std::string message) {
    ++metrics.resumes_failed;
    ++metrics.request_errors;
    const Error err = make_error(code, std::move(message));
    send(fresh, req.has_ref ? encode_reply_error(req.ref, err) : encode_error(err));
  };
  SessionKey key;
  Client* c = nullptr;
  const bool well_formed = parse_session(req.session, key);
  if (well_formed && key == fresh.session)
    return refuse(ErrorCode::bad_request, "this connection's own session: resume the old connection's");
  if (well_formed)
    if (auto it = sessions.find(key); it != sessions.end()) c = find_client(it->second);
  if (!c || c->session != key)
    return refuse(ErrorCode::not_found, "session expired or unknown: join the rooms again");
  if (!fresh.rooms.empty() || !fresh.watching.empty())
    return refuse(ErrorCode::bad_request,
                  "resume must come before any join or watch on a new connection");
  if (fresh.user_id != c->user_id)
    return refuse(ErrorCode::not_allowed, "the session belongs to another user than this connection's token");

  // The old connection, when the server had not noticed it dropped: it ends here.
  if (c->sink) {
    if (recorder) recorder->closed(conn_wire(*c), kResumedElsewhere);
    c->sink->close(kResumedElsewhere, "session resumed elsewhere");
    c->sink = nullptr;
  }
  if (c->conn && c->conn != c->id) rebound.erase(c->conn);
  for (const std::string& rid : std::vector<std::string>(c->watching))
    if (Room* room = find_room(rid)) unwatch(*c, *room);
  // What is pending goes out now, to the members and into the log, so that what the
  // client gets below is exactly the state at each room's seq.
  for (const std::string& rid : c->rooms)
    if (Room* room = find_room(rid)) flush_patch(*room);

  c->sink = fresh.sink;
  c->conn = fresh.conn;
  rebound[fresh.conn] = c->id;
  c->held = false;
  if (c->session_timer) timers.cancel(c->session_timer);
  c->session_timer = 0;
  c->claims = std::move(fresh.claims);
  c->user = std::move(fresh.user);
  c->pusher = std::move(fresh.pusher);
  if (c->expiry_timer) timers.cancel(c->expiry_timer);
  c->expiry_timer = 0;
  if (fresh.expiry_timer) {  // the new connection's token decides when it ends
    if (const TimerEvent* t = timers.find(fresh.expiry_timer)) {
      TimerEvent ev = *t;
      timers.cancel(fresh.expiry_timer);
      ev.id = 0;
      ev.client = c->id;
      c->expiry_timer = timers.add(std::move(ev));
    }
    fresh.expiry_timer = 0;
  }
  c->rate_limit = fresh.rate_limit;

  std::vector<std::string> reconnected;
  for (const std::string& rid : c->rooms)
    if (Room* room = find_room(rid))
      if (Member* m = room->find_member(c->id); m && !m->connected) {
        end_seat(*m);
        reconnected.push_back(rid);
      }

  json::Value result = json::Value::object();
  result.set("client", json::Value(c->wire_id));
  json::Value rooms = json::Value::object();
  std::vector<SharedFrame> missed;
  for (const ResumePoint& p : req.resume) {
    json::Value entry = json::Value::object();
    Room* room = find_room(p.room);
    if (!room || !room->find_member(c->id)) {
      auto l = std::find_if(c->lefts.begin(), c->lefts.end(), [&](const auto& x) { return x.first == p.room; });
      entry.set("left", json::Value(l != c->lefts.end() ? l->second : std::string("not_member")));
      rooms.set(p.room, std::move(entry));
      continue;
    }
    missed.clear();
    const bool same_epoch = p.epoch.empty() || p.epoch == room->epoch;
    const bool recovered = same_epoch && p.seq <= room->seq &&
                           (p.seq == room->seq ||
                            (room->patch_log && room->patch_log->since(p.seq, room->seq, now(), missed)));
    if (recovered)
      for (const SharedFrame& f : missed) send_frame(*c, f);
    else
      send(*c, encode_state("state", room->id, room->epoch, room->seq, room->mirror));
    ++(recovered ? metrics.resume_rooms_recovered : metrics.resume_rooms_fresh);
    entry.set("recovered", json::Value(recovered));
    entry.set("epoch", json::Value(room->epoch));
    entry.set("seq", json::Value(static_cast<double>(room->seq)));
    rooms.set(p.room, std::move(entry));
  }
  for (const std::string& rid : c->rooms) {  // seats the request did not name
    if (rooms.find(rid)) continue;
    Room* room = find_room(rid);
    if (!room) continue;
    send(*c, encode_state("joined", room->id, room->epoch, room->seq, room->mirror));
    ++metrics.resume_rooms_fresh;
    json::Value entry = json::Value::object();
    entry.set("recovered", json::Value(false));
    entry.set("epoch", json::Value(room->epoch));
    entry.set("seq", json::Value(static_cast<double>(room->seq)));
    rooms.set(rid, std::move(entry));
  }
  c->lefts.clear();
  result.set("rooms", std::move(rooms));
  if (req.has_ref) send(*c, encode_reply_ok(req.ref, &result));
  ++metrics.resumes;

  // The fresh client record goes; its connection now speaks for c.
  const ClientId fresh_id = fresh.id;
  fresh.sink = nullptr;
  fresh.conn = 0;  // forget_client must not drop the rebinding just made
  forget_client(fresh_id);

  for (const std::string& rid : reconnected)
    if (Room* room = find_room(rid); room && room->find_member(c->id))
      guarded("resume", [&] {
        (void)hook_transaction(*room, "onReconnect", [&] {
          push_ctx(*c, nullptr, nullptr);
          return 1;
        });
      });
}

}  // namespace atrium::engine
