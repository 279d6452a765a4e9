// The Pusher Channels protocol (version 7) on Atrium's port: what Laravel Echo, pusher-js
// and the `pusher` server SDKs speak (docs/pusher.md). Transport-agnostic like the engine:
// net/ hands it WebSocket connections to /app/KEY and HTTP requests under /apps/, on the
// loop thread; it answers through engine::ClientSink and returned responses. Nothing here
// is thread-safe; one thread (the engine's) drives it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/client_sink.hpp"
#include "engine/engine.hpp"
#include "pusher/webhooks.hpp"

namespace atrium::pusher {

// Per-app limits; the defaults are soketi's.
struct Limits {
  std::size_t presence_members = 100;       // members of one presence channel
  std::size_t member_info_bytes = 2048;     // a presence member's user_info, as JSON
  std::size_t event_bytes = 100 * 1024;     // an event's data (client event or HTTP trigger)
  std::size_t name_bytes = 200;             // a channel or event name
  std::size_t batch_events = 10;            // events in one batch_events request
  int client_events_per_s = 10;             // per connection; past it: error 4301
  std::size_t max_connections = 0;          // per app; 0: no limit (past it: 4100)
  std::size_t channels_per_event = 100;     // channels of one HTTP trigger (Pusher's limit)
  std::size_t watchlist_ids = 100;          // a signed-in user's watchlist (Pusher's limit)
};

struct App {
  std::string id;
  std::string key;
  std::string secret;
  Limits limits;
  std::vector<std::string> webhook_urls;    // --pusher-webhook ID:URL
  // pusher_internal:subscription_count to the subscribers of a non-presence channel each
  // time its count changes: Pusher's "subscription counting", off unless an app turns it
  // on, as on Pusher (a frame per subscriber per change: N^2 frames when N join).
  bool subscription_count_events = false;
  // When > 0: a connection must pusher:signin within this many ms or is closed with 4009
  // ("Connection not authorized within timeout", Pusher's "authorized connections").
  std::int64_t user_authentication_timeout_ms = 0;
};

// "ID:KEY:SECRET" (the flag's and ATRIUM_PUSHER_APPS' form): the app, or why not.
Result<App> parse_app(std::string_view spec);

struct Config {
  std::vector<App> apps;
  int activity_timeout_s = 120;             // announced in connection_established
  std::size_t max_http_body = 1u << 20;     // HTTP API bodies past it: 413
  // Milliseconds since the epoch (the wall clock); tests set it. Default: the system clock.
  std::function<std::int64_t()> now_ms;
  // Where log lines go (one line each, no newline). Default: stderr.
  std::function<void(engine::LogLevel, std::string_view)> on_log;
  // Seeds the socket IDs' generator; 0: std::random_device. Tests and the fuzzer fix it
  // so that a run repeats.
  std::uint64_t random_seed = 0;
  // The Webhooks object's options (tests pass a fake `post`); it is made only when some
  // app has webhook_urls. now_ms and on_log default to the ones above.
  WebhookOptions webhooks;
  // Sees every webhook point as it is reached, whether or not the app has webhook URLs
  // (tests; a log of what would be posted). Kinds: channel_occupied, channel_vacated,
  // member_added, member_removed, client_event, cache_miss. The views live for the call.
  struct WebhookPoint {
    std::string_view kind, app_id, channel, user_id, event;
  };
  std::function<void(const WebhookPoint&)> on_webhook_point;
};

// A connection of the Pusher endpoint (not an engine ClientId).
using ConnId = std::uint64_t;

struct HttpRequest {
  std::string_view method;                  // "GET", "POST", ...
  std::string_view path;                    // "/apps/ID/events", decoded, no query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in request order
  std::string_view body;
};

struct HttpResponse {
  int status = 200;
  std::string body;                         // JSON, or a plain-text error as Pusher sends
  std::string content_type = "application/json";
};

class PusherServer {
 public:
  // `engine` may be null (no channel is then served by a room script).
  PusherServer(Config config, engine::Engine* engine);
  ~PusherServer();
  PusherServer(const PusherServer&) = delete;
  PusherServer& operator=(const PusherServer&) = delete;

  // A WebSocket to /app/KEY was established. `query` is its query string's pairs
  // (protocol, client, version). Sends pusher:connection_established, or pusher:error and
  // a close (4001 unknown app, 4007 unsupported protocol, 4100 over capacity). The sink
  // stays valid until disconnect(); every frame sent is one WebSocket text message.
  ConnId connect(engine::ClientSink& sink, std::string_view app_key,
                 const std::vector<std::pair<std::string, std::string>>& query);
  void receive(ConnId conn, std::string_view message);
  void receive_binary(ConnId conn);
  // The transport will not read a message of `bytes` bytes (over its cap of `limit`) and
  // closes the connection with 1009 next: a pusher:error says why first.
  void too_large(ConnId conn, std::size_t bytes, std::size_t limit);
  void disconnect(ConnId conn);
  // Shutdown or restart: pusher:error and a close with `code` to every open connection
  // (4200: pusher-js reconnects at once, to whichever server answers then).
  void close_all(int code = 4200, std::string_view reason = "Server restarting, reconnect");

  // The HTTP API under /apps/ (signature checked here).
  HttpResponse http(const HttpRequest& request);

  // Work due later (delayed webhooks, ...): ms until it (-1: none), then run_due().
  std::int64_t ms_until_next() const;
  void run_due();

  // Prometheus text for GET /metrics (atrium_pusher_*).
  std::string metrics() const;

  // "" when the registries agree with each other (every subscription of a connection is in
  // its channel and back, presence counts match, ...), else what does not. Tests, fuzzer.
  std::string check_invariants() const;
  // Channels with subscribers, over every app; live connections (not yet disconnect()ed).
  std::size_t channel_count() const;
  std::size_t connection_count() const;
  // Subscriptions served by a room (each an engine client), joined or joining.
  std::size_t room_subscription_count() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace atrium::pusher
