// Connections of the Pusher endpoint: the handshake (app key, protocol version, capacity),
// sending, closing, and giving back everything a connection held when it goes.
#include <algorithm>
#include <charconv>

#include "json/codec.hpp"
#include "pusher/frames.hpp"
#include "pusher/impl.hpp"

namespace atrium::pusher {

namespace {

// Protocol 7 only (docs/pusher.md): every pusher-js since 3.0 sends it. Pusher itself still
// serves 4-6 for old clients, whose frames differ in ways we do not implement.
constexpr int kOldestProtocol = 7;
constexpr int kProtocol = 7;

const std::string* query_value(const std::vector<std::pair<std::string, std::string>>& query,
                               std::string_view key) {
  for (const auto& [k, v] : query) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace

ConnId PusherServer::Impl::connect(engine::ClientSink& sink, std::string_view key,
                                   const std::vector<std::pair<std::string, std::string>>& query) {
  const ConnId id = next_conn++;
  Conn& c = conns[id];
  c.sink = &sink;
  c.open = true;
  // Refusals: pusher:error first (what a client without close codes reads), then the close
  // whose code tells pusher-js what to do (4000-4099: give up).
  AppState* app = app_by_key(key);
  if (!app) {
    ++counters.connections_refused;
    c.open = false;
    send(c, error_frame(4001, "App key " + std::string(key.substr(0, 64)) + " does not exist"));
    sink.close(4001, "unknown app");
    return id;
  }
  c.app = static_cast<std::size_t>(app - apps.data());
  const std::string* protocol = query_value(query, "protocol");
  int version = 0;
  if (!protocol) {
    // Pusher's docs: protocol 1 when none is given, "to be replaced by a 4008 error": 1 is
    // not served any more, so 4008 it is.
    ++counters.connections_refused;
    c.open = false;
    send(c, error_frame(4008, "No protocol version supplied"));
    sink.close(4008, "no protocol version");
    return id;
  }
  const auto [end, ec] = std::from_chars(protocol->data(), protocol->data() + protocol->size(), version);
  if (ec != std::errc() || end != protocol->data() + protocol->size() || version < kOldestProtocol ||
      version > kProtocol) {
    ++counters.connections_refused;
    c.open = false;
    send(c, error_frame(4007, "Unsupported protocol version"));
    sink.close(4007, "unsupported protocol version");
    return id;
  }
  const std::size_t limit = app->app.limits.max_connections;
  if (limit != 0 && app->connections >= limit) {
    ++counters.connections_refused;
    c.open = false;
    send(c, error_frame(4100, "Over capacity"));
    sink.close(4100, "over capacity");
    return id;
  }
  ++app->connections;
  ++counters.connections_opened;
  // "N.N" as Pusher's: two random numbers, unique among live connections (the HTTP API's
  // socket_id names a connection by it).
  do {
    c.socket_id = std::to_string(rng() % 1000000000) + "." + std::to_string(rng() % 1000000000);
  } while (by_socket_id.count(c.socket_id));
  by_socket_id.emplace(c.socket_id, id);
  send(c, connection_established_frame(c.socket_id, config.activity_timeout_s));
  if (app->app.user_authentication_timeout_ms > 0) {
    c.auth_deadline_ms = now_ms() + app->app.user_authentication_timeout_ms;
    auth_deadlines.emplace(c.auth_deadline_ms, id);
  }
  return id;
}

void PusherServer::Impl::send(Conn& c, const SharedFrame& frame) {
  if (!c.sink) return;
  ++counters.messages_out;
  counters.bytes_out += frame.size();
  c.sink->send(frame);
}

void PusherServer::Impl::close(ConnId id, Conn& c, int code, std::string_view reason) {
  if (!c.open) return;
  send(c, error_frame(code, reason));
  engine::ClientSink* sink = c.sink;
  release(id, c);
  // Last: a transport may call disconnect() from inside close(), which forgets `c`.
  sink->close(code, reason);
}

void PusherServer::Impl::release(ConnId id, Conn& c) {
  if (!c.open) return;
  c.open = false;
  AppState& app = apps[c.app];
  while (!c.channels.empty()) {
    const std::string channel = *c.channels.begin();
    unsubscribe(id, c, channel);
  }
  // Subscriptions still joining their room.
  for (auto it = room_sub_of.lower_bound(std::make_pair(id, std::string()));
       it != room_sub_of.end() && it->first.first == id;) {
    const std::string channel = (it++)->first.second;
    leave_room(id, channel);
  }
  if (!c.user_id.empty()) {
    for (const std::string& watched : c.watchlist) {
      auto w = app.watchers.find(watched);
      if (w == app.watchers.end()) continue;
      w->second.erase(id);
      if (w->second.empty()) app.watchers.erase(w);
    }
    auto u = app.users.find(c.user_id);
    if (u != app.users.end()) {
      u->second.erase(id);
      if (u->second.empty()) {
        app.users.erase(u);
        // The user's last connection: whoever watches them sees them go offline.
        auto w = app.watchers.find(c.user_id);
        if (w != app.watchers.end()) {
          std::string data = "{\"events\":[{\"name\":\"offline\",\"user_ids\":[" + quoted(c.user_id) + "]}]}";
          const SharedFrame frame(event_frame("pusher_internal:watchlist_events", {}, data));
          for (ConnId watcher : w->second) {
            auto wc = conns.find(watcher);
            if (wc != conns.end() && wc->second.open) send(wc->second, frame);
          }
        }
      }
    }
  }
  if (c.auth_deadline_ms >= 0) auth_deadlines.erase({c.auth_deadline_ms, id});
  c.auth_deadline_ms = -1;
  by_socket_id.erase(c.socket_id);
  --app.connections;
}

void PusherServer::Impl::disconnect(ConnId id) {
  auto it = conns.find(id);
  if (it == conns.end()) return;
  release(id, it->second);
  conns.erase(it);
}

std::size_t PusherServer::Impl::broadcast(AppState& app, std::string_view channel, std::string_view frame,
                                          ConnId except) {
  const Channel* ch = app.channels.find(channel);
  if (!ch) return 0;
  const SharedFrame shared(frame);
  std::size_t n = 0;
  for (ConnId to : ch->subscribers) {
    if (to == except) continue;
    auto it = conns.find(to);
    if (it == conns.end() || !it->second.open) continue;
    send(it->second, shared);
    ++n;
  }
  return n;
}

void PusherServer::Impl::publish(AppState& app, std::string_view channel, std::string_view event,
                                 std::string_view data_json, ConnId except,
                                 std::vector<std::string>* rooms_reached) {
  ++counters.http_events_published;
  const std::string_view user = server_to_user_id(channel);
  if (!user.empty()) {
    auto u = app.users.find(std::string(user));
    if (u == app.users.end()) return;
    const SharedFrame shared(event_frame(event, channel, data_json));
    for (ConnId to : u->second) {
      auto it = conns.find(to);
      if (to != except && it != conns.end() && it->second.open) send(it->second, shared);
    }
    return;
  }
  if (const RoomRoute route = route_of(app, channel); !route.room.empty()) {
    if (rooms_reached) {
      if (std::find(rooms_reached->begin(), rooms_reached->end(), route.room) != rooms_reached->end()) return;
      rooms_reached->push_back(route.room);
    }
    publish_to_room(app, route.room, event, data_json, except);
    return;
  }
  if (kind_of(channel).cache) app.channels.cache(channel, std::string(event), std::string(data_json), now_ms());
  broadcast(app, channel, event_frame(event, channel, data_json), except);
}

void PusherServer::Impl::run_due() {
  const std::int64_t now = now_ms();
  while (!auth_deadlines.empty() && auth_deadlines.begin()->first <= now) {
    const ConnId id = auth_deadlines.begin()->second;
    auth_deadlines.erase(auth_deadlines.begin());
    auto it = conns.find(id);
    if (it == conns.end()) continue;
    it->second.auth_deadline_ms = -1;
    close(id, it->second, 4009, "Connection not authorized within timeout");
  }
  if (webhooks) webhooks->run_due();
  settle_rooms();
}

std::int64_t PusherServer::Impl::ms_until_next() const {
  if (!room_leaves.empty()) return 0;
  std::int64_t next = -1;
  if (!auth_deadlines.empty()) next = std::max<std::int64_t>(0, auth_deadlines.begin()->first - now_ms());
  if (webhooks) {
    const std::int64_t w = webhooks->ms_until_next();
    if (w >= 0 && (next < 0 || w < next)) next = w;
  }
  return next;
}

}  // namespace atrium::pusher
