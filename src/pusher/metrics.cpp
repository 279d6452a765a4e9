// /metrics lines (atrium_pusher_*, Prometheus text) and the consistency check tests and
// the fuzzer run after every step.
#include "pusher/impl.hpp"
#include "util/prometheus.hpp"

namespace atrium::pusher {

std::string PusherServer::Impl::metrics() const {
  std::size_t live = 0, channels = 0, subscriptions = 0, users = 0;
  for (const AppState& a : apps) {
    live += a.connections;
    channels += a.channels.all().size();
    subscriptions += a.channels.subscriptions();
    users += a.users.size();
  }
  const Counters& k = counters;
  std::string out;
  append_metric(out, "atrium_pusher_connections", "gauge", "Open Pusher connections.", live);
  append_metric(out, "atrium_pusher_connections_opened_total", "counter", "Pusher connections accepted.", k.connections_opened);
  append_metric(out, "atrium_pusher_connections_refused_total", "counter",
       "Pusher connections refused (unknown app, protocol, capacity).", k.connections_refused);
  append_metric(out, "atrium_pusher_channels", "gauge", "Occupied Pusher channels.", channels);
  append_metric(out, "atrium_pusher_subscriptions", "gauge", "Current channel subscriptions.", subscriptions);
  append_metric(out, "atrium_pusher_subscriptions_total", "counter", "Successful subscriptions.", k.subscriptions);
  append_metric(out, "atrium_pusher_subscription_errors_total", "counter", "Refused subscriptions.", k.subscription_errors);
  append_metric(out, "atrium_pusher_room_subscriptions", "gauge",
       "Subscriptions served by a room script (each an engine client).", room_sub_of.size());
  append_metric(out, "atrium_pusher_room_joins_total", "counter", "Subscriptions that joined a room.", k.room_joins);
  append_metric(out, "atrium_pusher_room_refusals_total", "counter",
       "Subscriptions a room refused (onJoin, full, failing script).", k.room_refusals);
  append_metric(out, "atrium_pusher_users", "gauge", "Signed-in users.", users);
  append_metric(out, "atrium_pusher_signins_total", "counter", "Successful pusher:signin.", k.signins);
  append_metric(out, "atrium_pusher_messages_in_total", "counter", "Frames received from Pusher clients.", k.messages_in);
  append_metric(out, "atrium_pusher_messages_out_total", "counter", "Frames sent to Pusher clients.", k.messages_out);
  append_metric(out, "atrium_pusher_bytes_out_total", "counter", "Bytes of frames sent to Pusher clients.", k.bytes_out);
  append_metric(out, "atrium_pusher_client_events_total", "counter", "client-* events relayed.", k.client_events);
  append_metric(out, "atrium_pusher_client_events_rate_limited_total", "counter", "client-* events refused (4301).",
       k.client_events_rate_limited);
  append_metric(out, "atrium_pusher_http_events_total", "counter", "Events published through the HTTP API.",
       k.http_events_published);
  append_metric(out, "atrium_pusher_auth_failures_total", "counter",
       "Bad channel, user or HTTP API signatures.", k.auth_failures);
  for (std::size_t cls = 1; cls < k.http_by_class.size(); ++cls) {
    append_metric(out, "atrium_pusher_http_requests_total", "counter", cls == 1 ? "HTTP API requests by status class." : "",
         k.http_by_class[cls], "status=\"" + std::to_string(cls) + "xx\"");
  }
  append_metric(out, "atrium_pusher_webhook_points_total", "counter", "Webhook points reached (every app).", k.webhook_points);
  const Webhooks::Counts w = webhooks ? webhooks->counts() : Webhooks::Counts{};
  append_metric(out, "atrium_pusher_webhooks_sent_total", "counter", "Webhook POSTs delivered.", w.sent);
  append_metric(out, "atrium_pusher_webhooks_failed_total", "counter", "Webhook events given up on.", w.failed);
  append_metric(out, "atrium_pusher_webhooks_queued", "gauge", "Webhook events waiting.", w.queued);
  return out;
}

std::string PusherServer::Impl::check_invariants() const {
  std::vector<std::size_t> live(apps.size(), 0);
  std::vector<std::size_t> subscribed(apps.size(), 0);
  for (const auto& [id, c] : conns) {
    if (!c.open) {
      if (!c.channels.empty()) return "closed connection still subscribed";
      continue;
    }
    if (c.app >= apps.size()) return "connection of no app";
    ++live[c.app];
    const AppState& app = apps[c.app];
    auto s = by_socket_id.find(c.socket_id);
    if (s == by_socket_id.end() || s->second != id) return "socket_id index disagrees";
    for (const std::string& name : c.channels) {
      const Channel* ch = app.channels.find(name);
      if (!ch || !ch->subscribers.count(id)) return "connection's channel does not list it: " + name;
      ++subscribed[c.app];
    }
    if (!c.user_id.empty()) {
      auto u = app.users.find(c.user_id);
      if (u == app.users.end() || !u->second.count(id)) return "signed-in connection not in users";
    }
  }
  for (std::size_t i = 0; i < apps.size(); ++i) {
    const AppState& app = apps[i];
    if (app.connections != live[i]) return "connection count disagrees: app " + app.app.id;
    if (app.channels.subscriptions() != subscribed[i]) return "subscriptions disagree: app " + app.app.id;
    std::string problem = app.channels.check_invariants();
    if (!problem.empty()) return problem;
    for (const auto& [name, ch] : app.channels.all()) {
      for (ConnId id : ch.subscribers) {
        auto c = conns.find(id);
        if (c == conns.end() || !c->second.open || !c->second.channels.count(name)) {
          return "subscriber is not a live connection of the channel: " + name;
        }
      }
    }
    for (const auto& [user, set] : app.users) {
      if (set.empty()) return "user without connections: " + user;
      for (ConnId id : set) {
        auto c = conns.find(id);
        if (c == conns.end() || !c->second.open || c->second.user_id != user) return "users index disagrees";
      }
    }
    for (const auto& [user, set] : app.watchers) {
      if (set.empty()) return "watchers entry without connections: " + user;
    }
  }
  for (const auto& [socket, id] : by_socket_id) {
    auto c = conns.find(id);
    if (c == conns.end() || !c->second.open) return "socket_id of a gone connection";
  }
  // Channels that are rooms: one live RoomSub per subscription (joined: in the connection's
  // channels; joining: not yet), and the connection's room channels all have theirs.
  for (const auto& [key, client] : room_sub_of) {
    auto sub = room_subs.find(client);
    if (sub == room_subs.end()) return "room subscription without its engine client: " + key.second;
    const RoomSub& s = *sub->second;
    if (s.conn != key.first || s.channel != key.second) return "room subscription index disagrees: " + key.second;
    auto c = conns.find(s.conn);
    if (s.phase == RoomSub::Phase::ended) return "ended room subscription still indexed: " + s.channel;
    const bool subscribed = c != conns.end() && c->second.channels.count(s.channel);
    if (subscribed != (s.phase == RoomSub::Phase::active)) return "room subscription phase disagrees: " + s.channel;
  }
  for (const auto& [id, c] : conns) {
    for (const std::string& name : c.channels) {
      const Channel* ch = apps[c.app].channels.find(name);
      if (ch && !ch->room.empty() && !room_sub_of.count(std::make_pair(id, name)))
        return "room channel subscribed without an engine client: " + name;
    }
  }
  if (engine_depth == 0 && !room_leaves.empty()) return "room leaves not settled";
  return {};
}

}  // namespace atrium::pusher
