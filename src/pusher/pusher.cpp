// PusherServer's public face: configuration, the app table, and forwarding to Impl, whose
// work lives in connection.cpp (connections, fan-out), protocol.cpp (what clients send),
// http_api.cpp and metrics.cpp.
#include "pusher/pusher.hpp"

#include <chrono>
#include <cstdio>

#include "pusher/frames.hpp"
#include "pusher/impl.hpp"

namespace atrium::pusher {

Result<App> parse_app(std::string_view spec) {
  const auto first = spec.find(':');
  const auto second = first == std::string_view::npos ? first : spec.find(':', first + 1);
  if (second == std::string_view::npos) {
    return make_error(ErrorCode::bad_request, "a Pusher app is ID:KEY:SECRET");
  }
  App app;
  app.id = std::string(spec.substr(0, first));
  app.key = std::string(spec.substr(first + 1, second - first - 1));
  app.secret = std::string(spec.substr(second + 1));   // a secret may itself hold ':'
  if (app.id.empty() || app.key.empty() || app.secret.empty()) {
    return make_error(ErrorCode::bad_request, "a Pusher app is ID:KEY:SECRET, none of them empty");
  }
  // The ID and the key appear in URL paths (/apps/ID, /app/KEY): no separators in them.
  for (std::string_view part : {std::string_view(app.id), std::string_view(app.key)}) {
    for (char c : part) {
      if (c == '/' || c == '?' || c == '#' || static_cast<unsigned char>(c) <= 0x20) {
        return make_error(ErrorCode::bad_request, "a Pusher app ID or key has no '/', '?', '#' or spaces");
      }
    }
  }
  return app;
}

PusherServer::Impl::Impl(Config c, engine::Engine* e) : config(std::move(c)), engine(e) {
  if (!config.now_ms) {
    config.now_ms = [] {
      using namespace std::chrono;
      return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    };
  }
  if (!config.on_log) {
    config.on_log = [](engine::LogLevel, std::string_view line) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    };
  }
  rng.seed(config.random_seed != 0 ? config.random_seed : std::random_device{}());
  bool any_webhooks = false;
  for (App& app : config.apps) {
    AppState state;
    state.app = app;
    apps.push_back(std::move(state));
    any_webhooks = any_webhooks || !app.webhook_urls.empty();
  }
  if (any_webhooks) {
    WebhookOptions options = config.webhooks;
    if (!options.now_ms) options.now_ms = config.now_ms;
    if (!options.on_log) options.on_log = config.on_log;
    webhooks = std::make_unique<Webhooks>(std::move(options));
    for (const App& app : config.apps) {
      if (!app.webhook_urls.empty()) webhooks->add_app(app.id, app.key, app.secret, app.webhook_urls);
    }
  }
}

AppState* PusherServer::Impl::app_by_key(std::string_view key) {
  for (AppState& a : apps) {
    if (a.app.key == key) return &a;
  }
  return nullptr;
}

AppState* PusherServer::Impl::app_by_id(std::string_view id) {
  for (AppState& a : apps) {
    if (a.app.id == id) return &a;
  }
  return nullptr;
}

void PusherServer::Impl::hook(AppState& app, std::string_view kind, std::string_view channel,
                              std::string_view user_id, std::string_view event, std::string_view data,
                              std::string_view socket_id) {
  ++counters.webhook_points;
  if (config.on_webhook_point) {
    config.on_webhook_point(Config::WebhookPoint{kind, app.app.id, channel, user_id, event});
  }
  if (!webhooks || app.app.webhook_urls.empty()) return;
  const std::string_view id = app.app.id;
  if (kind == "channel_occupied") {
    webhooks->channel_occupied(id, channel);
  } else if (kind == "channel_vacated") {
    webhooks->channel_vacated(id, channel);
  } else if (kind == "member_added") {
    webhooks->member_added(id, channel, user_id);
  } else if (kind == "member_removed") {
    webhooks->member_removed(id, channel, user_id);
  } else if (kind == "client_event") {
    webhooks->client_event(id, channel, event, data, socket_id, user_id);
  } else if (kind == "cache_miss") {
    webhooks->cache_miss(id, channel);
  }
}

PusherServer::PusherServer(Config config, engine::Engine* engine)
    : impl_(std::make_unique<Impl>(std::move(config), engine)) {}
PusherServer::~PusherServer() = default;


ConnId PusherServer::connect(engine::ClientSink& sink, std::string_view app_key,
                             const std::vector<std::pair<std::string, std::string>>& query) {
  return impl_->connect(sink, app_key, query);
}
// Every entry point ends with settle_rooms(): what it ended of channels that are rooms
// leaves the engine now that no engine call is on the stack (rooms.cpp).
void PusherServer::receive(ConnId conn, std::string_view message) {
  impl_->receive(conn, message);
  impl_->settle_rooms();
}
void PusherServer::receive_binary(ConnId conn) {
  // Pusher's protocol is text only ("Binary WebSocket frames are not supported").
  auto it = impl_->conns.find(conn);
  if (it == impl_->conns.end() || !it->second.open) return;
  ++impl_->counters.messages_in;
  impl_->send(it->second, error_frame(std::nullopt, "Binary frames are not supported"));
}
void PusherServer::too_large(ConnId conn, std::size_t bytes, std::size_t limit) {
  auto it = impl_->conns.find(conn);
  if (it == impl_->conns.end() || !it->second.open) return;
  ++impl_->counters.messages_in;
  impl_->send(it->second, error_frame(std::nullopt, "Message of " + std::to_string(bytes) +
                                                        " bytes or more is over the limit of " +
                                                        std::to_string(limit) + " bytes"));
}
void PusherServer::disconnect(ConnId conn) {
  impl_->disconnect(conn);
  impl_->settle_rooms();
}
void PusherServer::close_all(int code, std::string_view reason) {
  std::vector<ConnId> open;
  for (const auto& [id, c] : impl_->conns) {
    if (c.open) open.push_back(id);
  }
  for (ConnId id : open) {
    auto it = impl_->conns.find(id);   // a close may have disconnected others meanwhile
    if (it != impl_->conns.end()) impl_->close(id, it->second, code, reason);
  }
  impl_->settle_rooms();
}
HttpResponse PusherServer::http(const HttpRequest& request) {
  HttpResponse out = impl_->http(request);
  impl_->settle_rooms();
  return out;
}
std::int64_t PusherServer::ms_until_next() const { return impl_->ms_until_next(); }
void PusherServer::run_due() { impl_->run_due(); }
std::string PusherServer::metrics() const { return impl_->metrics(); }
std::string PusherServer::check_invariants() const { return impl_->check_invariants(); }
std::size_t PusherServer::channel_count() const {
  std::size_t n = 0;
  for (const AppState& a : impl_->apps) n += a.channels.all().size();
  return n;
}
std::size_t PusherServer::connection_count() const { return impl_->conns.size(); }
std::size_t PusherServer::room_subscription_count() const { return impl_->room_sub_of.size(); }

}  // namespace atrium::pusher
