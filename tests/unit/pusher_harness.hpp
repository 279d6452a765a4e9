// Test harness for unit_pusher: fake sinks that record frames and closes, a fixed clock,
// signed HTTP API requests and channel auth strings computed the way the SDKs do.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "json/codec.hpp"
#include "pusher/pusher.hpp"
#include "pusher/signature.hpp"

namespace pusher_test {

using namespace atrium;
using namespace atrium::pusher;

struct FakeSink : engine::ClientSink {
  std::vector<std::string> frames;
  int close_code = 0;
  std::string close_reason;
  void send(const SharedFrame& f) override { frames.emplace_back(f.view()); }
  void close(int code, std::string_view reason) override {
    close_code = code;
    close_reason = std::string(reason);
  }
};

inline json::Value parse(std::string_view text) {
  Result<json::Value> v = json::parse(text);
  REQUIRE_MESSAGE(v.ok(), text);
  return std::move(v).value();
}

// `data` of a frame, decoded when it is a JSON string (as pusher-js does).
inline json::Value data_of(const json::Value& frame) {
  const json::Value* d = frame.find("data");
  if (!d) return json::Value();
  if (d->is_string()) {
    Result<json::Value> inner = json::parse(d->as_string());
    if (inner) return std::move(inner).value();
  }
  return *d;
}

// Disconnects when destroyed, as a transport does when the socket goes (a sink must stay
// valid until disconnect()).
struct Client {
  FakeSink sink;
  PusherServer* server = nullptr;
  ConnId id = 0;
  Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() {
    if (server) server->disconnect(id);
  }
  std::string socket_id;
  std::size_t seen = 0;      // frames already taken()

  // Frames since the last take().
  std::vector<json::Value> take() {
    std::vector<json::Value> out;
    for (; seen < sink.frames.size(); ++seen) out.push_back(parse(sink.frames[seen]));
    return out;
  }
  // The one frame since the last take() (fails when there are none or several).
  json::Value one() {
    std::vector<json::Value> f = take();
    REQUIRE_MESSAGE(f.size() == 1, (f.empty() ? std::string("no frame") : json::to_json(f.back())));
    return f[0];
  }
  std::vector<json::Value> named(std::string_view event) {
    std::vector<json::Value> out;
    for (json::Value& f : take()) {
      const std::string* e = f.get_string("event");
      if (e && *e == event) out.push_back(std::move(f));
    }
    return out;
  }
};

inline std::string event_of(const json::Value& frame) {
  const std::string* e = frame.get_string("event");
  return e ? *e : std::string();
}

struct Hook {
  std::string kind, app, channel, user_id, event;
};

struct Harness {
  std::int64_t now = 1'700'000'000'000;
  std::vector<Hook> hooks;
  std::vector<std::string> logs;
  std::unique_ptr<PusherServer> server;

  static App app(std::string id, std::string key, std::string secret) {
    App a;
    a.id = std::move(id);
    a.key = std::move(key);
    a.secret = std::move(secret);
    a.subscription_count_events = true;  // off by default (as on Pusher); the tests see it
    return a;
  }

  // `engine`: serves the channels that are rooms (rooms.hpp); none by default.
  explicit Harness(std::vector<App> apps = {app("1", "key1", "secret1"), app("2", "key2", "secret2")},
                   int activity_timeout = 120, engine::Engine* engine = nullptr) {
    Config c;
    c.apps = std::move(apps);
    c.activity_timeout_s = activity_timeout;
    c.now_ms = [this] { return now; };
    c.random_seed = 7;
    c.on_log = [this](engine::LogLevel, std::string_view line) { logs.emplace_back(line); };
    c.on_webhook_point = [this](const Config::WebhookPoint& p) {
      hooks.push_back({std::string(p.kind), std::string(p.app_id), std::string(p.channel), std::string(p.user_id),
                       std::string(p.event)});
    };
    c.webhooks.post = [](const std::string&, const std::vector<WebhookOptions::Header>&, const std::string&) {
      return 200;
    };
    server = std::make_unique<PusherServer>(std::move(c), engine);
  }

  std::unique_ptr<Client> connect(std::string key = "key1", std::string protocol = "7") {
    auto c = std::make_unique<Client>();
    std::vector<std::pair<std::string, std::string>> q{{"client", "js"}, {"version", "8.4.0"}};
    if (!protocol.empty()) q.emplace_back("protocol", protocol);
    c->id = server->connect(c->sink, key, q);
    c->server = server.get();
    if (c->sink.close_code == 0) {
      json::Value hello = c->one();
      REQUIRE(event_of(hello) == "pusher:connection_established");
      c->socket_id = data_of(hello).get_string("socket_id") ? *data_of(hello).get_string("socket_id") : "";
    }
    return c;
  }

  void send(Client& c, std::string_view text) { server->receive(c.id, text); }

  void subscribe(Client& c, std::string_view channel, std::string_view secret = "secret1",
                 std::string_view key = "key1", std::string_view channel_data = {}) {
    std::string data = "{\"channel\":" + quote(channel);
    if (channel.rfind("private-", 0) == 0 || channel.rfind("presence-", 0) == 0) {
      data += ",\"auth\":" + quote(channel_auth(key, secret, c.socket_id, channel, channel_data));
    }
    if (!channel_data.empty()) data += ",\"channel_data\":" + quote(channel_data);
    data += "}";
    send(c, "{\"event\":\"pusher:subscribe\",\"data\":" + data + "}");
  }

  static std::string quote(std::string_view s) {
    std::string out;
    json::write_string(s, out);
    return out;
  }

  // A request signed as the `pusher` SDK signs it; `tweak` edits the query before signing
  // is checked (after the signature is made).
  HttpResponse api(std::string method, std::string path, std::string body = {},
                   std::vector<std::pair<std::string, std::string>> extra = {},
                   std::string key = "key1", std::string secret = "secret1",
                   std::int64_t timestamp_s = -1) {
    std::vector<std::pair<std::string, std::string>> q = {
        {"auth_key", key},
        {"auth_timestamp", std::to_string(timestamp_s >= 0 ? timestamp_s : now / 1000)},
        {"auth_version", "1.0"}};
    if (!body.empty()) q.emplace_back("body_md5", md5_hex(body));
    for (auto& e : extra) q.push_back(e);
    auto sorted = q;
    std::sort(sorted.begin(), sorted.end());
    std::string to_sign = method + "\n" + path + "\n";
    for (std::size_t i = 0; i < sorted.size(); ++i) to_sign += (i ? "&" : "") + sorted[i].first + "=" + sorted[i].second;
    q.emplace_back("auth_signature", hmac_sha256_hex(secret, to_sign));
    last_query = q;
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.query = q;
    r.body = body;
    return server->http(r);
  }
  std::vector<std::pair<std::string, std::string>> last_query;

  HttpResponse raw(std::string_view method, std::string_view path,
                   std::vector<std::pair<std::string, std::string>> query, std::string_view body) {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.query = std::move(query);
    r.body = body;
    return server->http(r);
  }

  HttpResponse trigger(std::string_view channel, std::string_view event, std::string_view data,
                       std::string extra_members = {}) {
    std::string body = "{\"name\":" + quote(event) + ",\"channels\":[" + quote(channel) + "],\"data\":" + quote(data) +
                       extra_members + "}";
    return api("POST", "/apps/1/events", body);
  }

  void check() {
    const std::string problem = server->check_invariants();
    CHECK_MESSAGE(problem.empty(), problem);
  }

  std::vector<Hook> hooks_of(std::string_view kind) const {
    std::vector<Hook> out;
    for (const Hook& h : hooks) {
      if (h.kind == kind) out.push_back(h);
    }
    return out;
  }
};

inline std::string presence_data(std::string_view user_id_json, std::string_view info_json = {}) {
  std::string d = "{\"user_id\":" + std::string(user_id_json);
  if (!info_json.empty()) d += ",\"user_info\":" + std::string(info_json);
  return d + "}";
}

}  // namespace pusher_test
