// The Pusher protocol as the server's guest: settings in, a pusher::PusherServer behind
// the net::GuestProtocol interface out.
#include "cli/pusher_guest.hpp"

#include <algorithm>
#include <charconv>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pusher/pusher.hpp"

namespace atrium::cli {

namespace {

Error bad(std::string message) { return make_error(ErrorCode::bad_request, std::move(message)); }

// "/app/KEY": pusher-js' WebSocket path. "/apps/ID/...": the HTTP API.
constexpr std::string_view kWsPrefix = "/app/";
constexpr std::string_view kHttpPrefix = "/apps/";

// Room for the envelope around an event's data: {"event":...,"channel":...,"data":...}
// with a channel name of up to 200 bytes and the escaping of the data string.
constexpr std::size_t kEnvelopeBytes = 16 * 1024;

class PusherGuest final : public net::GuestProtocol {
 public:
  PusherGuest(pusher::Config config, engine::Engine& engine) {
    for (const pusher::App& app : config.apps)
      max_message_ = std::max(max_message_, app.limits.event_bytes + kEnvelopeBytes);
    server_ = std::make_unique<pusher::PusherServer>(std::move(config), &engine);
  }

  bool claims_websocket(std::string_view path) const override {
    return path.size() > kWsPrefix.size() && path.substr(0, kWsPrefix.size()) == kWsPrefix;
  }
  bool claims_http(std::string_view path) const override {
    return path.size() > kHttpPrefix.size() && path.substr(0, kHttpPrefix.size()) == kHttpPrefix;
  }
  std::size_t max_message_bytes() const override { return max_message_; }

  std::uint64_t connect(engine::ClientSink& sink, std::string_view path,
                        const Pairs& query) override {
    return server_->connect(sink, path.substr(kWsPrefix.size()), query);
  }
  void receive(std::uint64_t conn, std::string_view message) override {
    server_->receive(conn, message);
  }
  void receive_binary(std::uint64_t conn) override { server_->receive_binary(conn); }
  void too_large(std::uint64_t conn, std::size_t bytes, std::size_t limit) override {
    server_->too_large(conn, bytes, limit);
  }
  void disconnect(std::uint64_t conn) override { server_->disconnect(conn); }

  Reply http(std::string_view method, std::string_view path, const Pairs& query,
             std::string_view body) override {
    pusher::HttpRequest request{method, path, query, body};
    pusher::HttpResponse response = server_->http(request);
    return Reply{response.status, std::move(response.content_type), std::move(response.body)};
  }

  std::int64_t ms_until_next() const override { return server_->ms_until_next(); }
  void run_due() override { server_->run_due(); }

  // 4200: pusher-js reconnects at once, to the server that takes this one's place.
  void shutdown() override { server_->close_all(4200, "Server shutting down, reconnect"); }

  std::string metrics() const override { return server_->metrics(); }

 private:
  std::unique_ptr<pusher::PusherServer> server_;
  std::size_t max_message_ = 64 * 1024;
};

// "ID:rest" -> the app of that id, or an error naming the setting.
Result<pusher::App*> app_named(std::vector<pusher::App>& apps, std::string_view item,
                               std::string_view setting, std::string_view* rest) {
  const std::size_t colon = item.find(':');
  const std::string_view id = item.substr(0, colon);
  *rest = item.substr(colon + 1);
  for (pusher::App& app : apps)
    if (app.id == id) return &app;
  return bad(std::string(setting) + " \"" + std::string(item) + "\": no --pusher-app has the id \"" +
             std::string(id) + "\"");
}

Status set_limit(pusher::App& app, std::string_view name, std::string_view text) {
  pusher::Limits& limits = app.limits;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n > (1ull << 30))
    return bad("\"" + std::string(text) + "\" is not a whole number in 0..1073741824");
  if (name == "subscription-count") {
    if (n > 1) return bad("subscription-count is 0 (off) or 1 (on)");
    app.subscription_count_events = n == 1;
  } else if (name == "user-auth-timeout-ms") {
    app.user_authentication_timeout_ms = static_cast<std::int64_t>(n);
  } else if (name == "presence-members") limits.presence_members = n;
  else if (name == "member-info-bytes") limits.member_info_bytes = n;
  else if (name == "event-bytes") limits.event_bytes = n;
  else if (name == "name-bytes") limits.name_bytes = n;
  else if (name == "batch-events") limits.batch_events = n;
  else if (name == "client-events-per-s") limits.client_events_per_s = static_cast<int>(n);
  else if (name == "max-connections") limits.max_connections = n;
  else
    return bad("\"" + std::string(name) + "\" is not a limit or setting (presence-members, member-info-bytes, "
               "event-bytes, name-bytes, batch-events, client-events-per-s, max-connections, "
               "subscription-count, user-auth-timeout-ms)");
  return {};
}

}  // namespace

Result<std::shared_ptr<net::GuestProtocol>> pusher_guest(const ServeOptions& o,
                                                         engine::Engine& engine,
                                                         const net::LogSink& log) {
  if (o.pusher_apps.empty()) {
    if (!o.pusher_webhooks.empty() || !o.pusher_limits.empty())
      return bad("--pusher-webhook and --pusher-limit need a --pusher-app");
    return std::shared_ptr<net::GuestProtocol>();
  }
  pusher::Config config;
  for (const std::string& spec : o.pusher_apps) {
    Result<pusher::App> app = pusher::parse_app(spec);
    if (!app) return bad("--pusher-app: " + app.error().message);
    for (const pusher::App& other : config.apps) {
      if (other.id == app->id) return bad("--pusher-app: two apps have the id \"" + app->id + "\"");
      if (other.key == app->key) return bad("--pusher-app: two apps have the key \"" + app->key + "\"");
    }
    config.apps.push_back(std::move(app.value()));
  }
  for (const std::string& item : o.pusher_webhooks) {
    std::string_view url;
    Result<pusher::App*> app = app_named(config.apps, item, "--pusher-webhook", &url);
    if (!app) return std::move(app).error();
    app.value()->webhook_urls.emplace_back(url);
  }
  for (const std::string& item : o.pusher_limits) {
    std::string_view assignment;
    Result<pusher::App*> app = app_named(config.apps, item, "--pusher-limit", &assignment);
    if (!app) return std::move(app).error();
    const std::size_t eq = assignment.find('=');
    if (Status st = set_limit(*app.value(), assignment.substr(0, eq), assignment.substr(eq + 1)); !st)
      return bad("--pusher-limit \"" + item + "\": " + st.error().message);
  }
  config.on_log = log;
  return std::shared_ptr<net::GuestProtocol>(std::make_shared<PusherGuest>(std::move(config), engine));
}

}  // namespace atrium::cli
