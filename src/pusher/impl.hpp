// PusherServer's state, shared by the files that implement it: pusher.cpp (setup, the app
// table, webhook points), connection.cpp (handshake, sending, closing, fan-out),
// protocol.cpp (what clients send), rooms.cpp (channels that are rooms), http_api.cpp (the
// HTTP API) and metrics.cpp.
// Internal to src/pusher.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pusher/channels.hpp"
#include "pusher/pusher.hpp"
#include "pusher/rooms.hpp"
#include "pusher/webhooks.hpp"
#include "util/shared_frame.hpp"

namespace atrium::pusher {

// Reading client messages (protocol.cpp): `data` as an object (pusher-js sends one; some
// clients send it JSON-encoded in a string), and a user ID as Pusher takes it (a non-empty
// string, or a number written as a string).
std::optional<json::Value> data_object(const json::Value& message);
std::optional<std::string> user_id_of(const json::Value* v);

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
  std::uint64_t room_joins = 0, room_refusals = 0;
};

struct PusherServer::Impl {
  Config config;
  engine::Engine* engine = nullptr;        // serves channels that are rooms (rooms.cpp)
  std::vector<AppState> apps;
  std::unordered_map<ConnId, Conn> conns;
  std::unordered_map<std::string, ConnId> by_socket_id;
  std::set<std::pair<std::int64_t, ConnId>> auth_deadlines;
  std::unique_ptr<Webhooks> webhooks;
  Counters counters;
  ConnId next_conn = 1;
  std::mt19937_64 rng;                     // socket IDs (Config::random_seed)

  Impl(Config c, engine::Engine* e);
  ~Impl();

  std::int64_t now_ms() const { return config.now_ms(); }
  void log(engine::LogLevel level, std::string_view line) const { config.on_log(level, line); }
  AppState* app_by_key(std::string_view key);
  AppState* app_by_id(std::string_view id);

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
  // A channel that is a room gets it through the room; `rooms_reached` (one request's
  // channels) makes two names of one room reach it once.
  void publish(AppState& app, std::string_view channel, std::string_view event,
               std::string_view data_json, ConnId except, std::vector<std::string>* rooms_reached = nullptr);
  void unsubscribe(ConnId id, Conn& c, const std::string& channel);
  void subscribe(ConnId id, Conn& c, const json::Value& msg);   // subscribe.cpp
  // A subscription that passed every check: registered, answered, announced (presence).
  void finish_subscribe(ConnId id, Conn& c, const std::string& channel,
                        const std::optional<PresenceMember>& member, std::string_view room);
  void run_due();
  std::int64_t ms_until_next() const;

  // ---- channels that are rooms (rooms.cpp) ----
  // Room subscriptions by engine client, and by (connection, channel).
  std::map<engine::ClientId, std::unique_ptr<RoomSub>> room_subs;
  std::map<std::pair<ConnId, std::string>, engine::ClientId, std::less<>> room_sub_of;
  // Engine clients to disconnect once no engine call is on the stack (the engine is not
  // re-entrant; a RoomSub hears of the end of its subscription from inside one).
  std::vector<engine::ClientId> room_leaves;
  int engine_depth = 0;                    // engine calls (and RoomSub callbacks) on the stack
  // The last engine event translated into a channel event: a room's emit reaches every
  // member with the same bytes, so it is translated once per channel name, not per member.
  struct Translation {
    SharedFrame in, out;
    std::string channel, room;   // the subscription's: another app's same name is another room
  } last_translation;

  RoomRoute route_of(const AppState& app, std::string_view channel) const;
  // The subscription joins its room; finish_subscribe() follows when the join succeeds.
  void join_room(ConnId id, Conn& c, const std::string& channel, const std::string& room,
                 const std::optional<PresenceMember>& member);
  bool joining_room(ConnId id, std::string_view channel) const;
  // A room subscription ends (unsubscribe, disconnect): its engine client leaves the room.
  void leave_room(ConnId id, std::string_view channel);
  // What the engine sent a RoomSub.
  void room_frame(RoomSub& sub, const SharedFrame& frame);
  void room_closed(RoomSub& sub);
  // A client event on a channel that is a room: through onEvent to the room's members.
  void relay_to_room(ConnId id, std::string_view channel, std::string_view event, const json::Value* data);
  // An HTTP trigger to a room: its every member, native and Pusher, but `except`'s.
  void publish_to_room(AppState& app, const std::string& room, std::string_view event,
                       std::string_view data_json, ConnId except);
  // Pending leaves, once nothing of the engine is on the stack.
  void settle_rooms();

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
