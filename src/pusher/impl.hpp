// PusherServer's state, shared by the files that implement it: pusher.cpp (setup, the app
// table, webhook points), connection.cpp (handshake, sending, closing, fan-out),
// protocol.cpp (what clients send), http_api.cpp (the HTTP API) and metrics.cpp.
// Internal to src/pusher.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pusher/channels.hpp"
#include "pusher/pusher.hpp"
#include "pusher/webhooks.hpp"
#include "util/shared_frame.hpp"

namespace atrium::pusher {

struct Conn {
  engine::ClientSink* sink = nullptr;
  std::size_t app = 0;                     // index in Impl::apps
  bool open = false;                       // false once refused or closed: input is ignored
  std::string socket_id;
  std::set<std::string> channels;          // subscribed, in the app's registry
  std::string user_id;                     // after pusher:signin
  std::vector<std::string> watchlist;
  std::int64_t auth_deadline_ms = -1;      // user_authentication_timeout_ms
  std::int64_t rate_window_ms = 0;         // client events: the second being counted
  int rate_count = 0;
};

struct AppState {
  App app;
  ChannelRegistry channels;
  std::unordered_map<std::string, std::set<ConnId>> users;      // signed-in user -> connections
  std::unordered_map<std::string, std::set<ConnId>> watchers;   // watched user -> watching connections
  std::size_t connections = 0;
};

struct Counters {
  std::uint64_t connections_opened = 0, connections_refused = 0;
  std::uint64_t messages_in = 0, messages_out = 0, bytes_out = 0;
  std::uint64_t client_events = 0, client_events_rate_limited = 0;
  std::uint64_t subscriptions = 0, subscription_errors = 0, auth_failures = 0;
  std::uint64_t signins = 0, http_events_published = 0;
  std::array<std::uint64_t, 6> http_by_class{};                 // index: status / 100
  std::uint64_t webhook_points = 0;
};

struct PusherServer::Impl {
  Config config;
  engine::Engine* engine = nullptr;        // later: channels served by room scripts
  std::vector<AppState> apps;
  std::unordered_map<ConnId, Conn> conns;
  std::unordered_map<std::string, ConnId> by_socket_id;
  std::set<std::pair<std::int64_t, ConnId>> auth_deadlines;
  std::unique_ptr<Webhooks> webhooks;
  Counters counters;
  ConnId next_conn = 1;
  std::mt19937_64 rng;                     // socket IDs (Config::random_seed)

  Impl(Config c, engine::Engine* e);

  std::int64_t now_ms() const { return config.now_ms(); }
  void log(engine::LogLevel level, std::string_view line) const { config.on_log(level, line); }
  AppState* app_by_key(std::string_view key);
  AppState* app_by_id(std::string_view id);
  ChannelHost host_of(const AppState& app, std::string_view channel) const;

  // ---- the WebSocket side (pusher.cpp) ----
  ConnId connect(engine::ClientSink& sink, std::string_view key,
                 const std::vector<std::pair<std::string, std::string>>& query);
  void receive(ConnId id, std::string_view message);
  void disconnect(ConnId id);
  void send(Conn& c, const SharedFrame& frame);
  void send(Conn& c, std::string_view frame) { send(c, SharedFrame(frame)); }
  // pusher:error {code, message}, the close, and everything the connection held released.
  void close(ConnId id, Conn& c, int code, std::string_view reason);
  // Unsubscribes everywhere, signs out: as if the connection had gone.
  void release(ConnId id, Conn& c);
  // To every subscriber of `channel` but `except` (0: none). Returns how many got it.
  std::size_t broadcast(AppState& app, std::string_view channel, std::string_view frame, ConnId except);
  // An event from the HTTP API: to a channel's subscribers or a #server-to-user- user's
  // connections, the cache updated for cache channels.
  void publish(AppState& app, std::string_view channel, std::string_view event,
               std::string_view data_json, ConnId except);
  void unsubscribe(ConnId id, Conn& c, const std::string& channel);
  void run_due();
  std::int64_t ms_until_next() const;

  // ---- webhook points ----
  void hook(AppState& app, std::string_view kind, std::string_view channel, std::string_view user_id = {},
            std::string_view event = {}, std::string_view data = {}, std::string_view socket_id = {});

  // ---- the HTTP API (http_api.cpp) ----
  HttpResponse http(const HttpRequest& request);

  // ---- metrics.cpp ----
  std::string metrics() const;
  std::string check_invariants() const;
};

}  // namespace atrium::pusher
