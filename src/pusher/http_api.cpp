// The HTTP API under /apps/ID (Pusher's "HTTP API reference", as the `pusher` npm SDK
// calls it): every request signed (auth_key, auth_timestamp within 600 s, auth_version,
// body_md5, auth_signature over "METHOD\nPATH\nsorted query"), then events,
// batch_events, channel info, presence users and terminate_connections. Errors are plain
// text with Pusher's status codes: the SDK reports the status and the body as text.
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <variant>

#include "json/codec.hpp"
#include "pusher/frames.hpp"
#include "pusher/impl.hpp"
#include "pusher/signature.hpp"

namespace atrium::pusher {

namespace {

constexpr std::int64_t kTimestampGraceS = 600;

HttpResponse text(int status, std::string body) { return {status, std::move(body), "text/plain"}; }
HttpResponse ok_json(std::string body) { return {200, std::move(body), "application/json"}; }

const std::string* query_value(const HttpRequest& r, std::string_view key) {
  for (const auto& [k, v] : r.query) {
    if (k == key) return &v;
  }
  return nullptr;
}

// "/apps/ID/a/b" -> {"ID", "a", "b"}; empty when the path is not under /apps/.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  constexpr std::string_view kPrefix = "/apps/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return out;
  path.remove_prefix(kPrefix.size());
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// Why the request's signature does not hold, or "" when it does.
std::string signature_problem(const HttpRequest& r, const App& app, std::int64_t now_ms) {
  const std::string* key = query_value(r, "auth_key");
  const std::string* timestamp = query_value(r, "auth_timestamp");
  const std::string* version = query_value(r, "auth_version");
  const std::string* signature = query_value(r, "auth_signature");
  if (!key || !timestamp || !version || !signature) {
    return "Missing auth_key, auth_timestamp, auth_version or auth_signature";
  }
  if (*key != app.key) return "Invalid auth_key";
  if (*version != "1.0") return "Unsupported auth_version (1.0 expected)";
  std::int64_t ts = 0;
  const auto [end, ec] = std::from_chars(timestamp->data(), timestamp->data() + timestamp->size(), ts);
  if (ec != std::errc() || end != timestamp->data() + timestamp->size()) return "Invalid auth_timestamp";
  const std::int64_t now_s = now_ms / 1000;
  if (ts < now_s - kTimestampGraceS || ts > now_s + kTimestampGraceS) {
    return "Timestamp expired: given " + *timestamp + ", now " + std::to_string(now_s);
  }
  const std::string* body_md5 = query_value(r, "body_md5");
  if (!r.body.empty() && !body_md5) return "Missing body_md5";
  if (body_md5 && !constant_time_equal(*body_md5, md5_hex(r.body))) return "Invalid body_md5";
  // Everything but auth_signature, sorted by key, key=value joined by '&' (values as
  // decoded: the SDK signs them before encoding).
  std::vector<std::pair<std::string_view, std::string_view>> params;
  for (const auto& [k, v] : r.query) {
    if (k != "auth_signature") params.emplace_back(k, v);
  }
  std::stable_sort(params.begin(), params.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string to_sign(r.method);
  to_sign += '\n';
  to_sign += r.path;
  to_sign += '\n';
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i) to_sign += '&';
    to_sign.append(params[i].first).append("=").append(params[i].second);
  }
  if (!constant_time_equal(*signature, hmac_sha256_hex(app.secret, to_sign))) return "Invalid signature";
  return {};
}

// The info= attributes asked for ("user_count,subscription_count").
struct InfoWanted {
  bool user_count = false, subscription_count = false;
};
InfoWanted info_of(const std::string* info) {
  InfoWanted w;
  if (!info) return w;
  std::string_view rest = *info;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    w.user_count = w.user_count || item == "user_count";
    w.subscription_count = w.subscription_count || item == "subscription_count";
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return w;
}

// {"user_count": n, "subscription_count": n} of a channel, as asked.
std::string channel_attributes(const Channel* ch, const ChannelKind& kind, InfoWanted w) {
  std::string out = "{";
  if (w.user_count && kind.presence) out += "\"user_count\":" + std::to_string(ch ? ch->members.size() : 0);
  if (w.subscription_count) {
    if (out.size() > 1) out += ',';
    out += "\"subscription_count\":" + std::to_string(ch ? ch->subscribers.size() : 0);
  }
  out += '}';
  return out;
}

// One event of /events or /batch_events, checked.
struct EventSpec {
  std::string name;
  std::string data_json;              // the data as a JSON string literal
  std::vector<std::string> channels;
  std::string socket_id;
  InfoWanted info;
  bool wants_info = false;
};

// The event, or (status, message) why not.
std::variant<EventSpec, std::pair<int, std::string>> read_event(const json::Value& v, const Limits& limits,
                                                                bool batch) {
  using Failure = std::pair<int, std::string>;
  if (!v.is_object()) return Failure{400, "An event is a JSON object"};
  EventSpec e;
  const std::string* name = v.get_string("name");
  if (!name || name->empty()) return Failure{400, "Missing event name"};
  if (name->size() > limits.name_bytes) return Failure{400, "Event name is too long"};
  e.name = *name;
  const json::Value* data = v.find("data");
  if (!data) return Failure{400, "Missing data"};
  // The SDK always sends a string; another value is taken as its JSON text.
  const std::string data_text = data->is_string() ? data->as_string() : json::to_json(*data);
  if (data_text.size() > limits.event_bytes) return Failure{413, "Event data is too large"};
  e.data_json = quoted(data_text);
  if (batch) {
    const std::string* channel = v.get_string("channel");
    if (!channel) return Failure{400, "Missing channel"};
    e.channels.push_back(*channel);
  } else if (const json::Value* list = v.get_array("channels")) {
    for (const json::Value& ch : list->items()) {
      if (!ch.is_string()) return Failure{400, "channels must be strings"};
      e.channels.push_back(ch.as_string());
    }
  } else if (const std::string* channel = v.get_string("channel")) {
    e.channels.push_back(*channel);
  }
  if (e.channels.empty()) return Failure{400, "Missing channels"};
  if (e.channels.size() > limits.channels_per_event) {
    return Failure{400, "Too many channels (at most " + std::to_string(limits.channels_per_event) + ")"};
  }
  for (const std::string& ch : e.channels) {
    // #server-to-user-ID names a user, whose ID may hold any character.
    const std::string_view user = server_to_user_id(ch);
    const bool ok = user.empty() ? valid_channel_name(ch, limits.name_bytes) : user.size() <= limits.name_bytes;
    if (!ok) return Failure{400, "Invalid channel name"};
    if (kind_of(ch).encrypted && e.channels.size() > 1) {
      return Failure{400, "Encrypted channels cannot be triggered with other channels"};
    }
  }
  if (const json::Value* socket = v.find("socket_id")) {
    if (!socket->is_string()) return Failure{400, "socket_id must be a string"};
    e.socket_id = socket->as_string();
  }
  if (const json::Value* info = v.find("info")) {
    if (!info->is_string()) return Failure{400, "info must be a string"};
    e.info = info_of(&info->as_string());
    e.wants_info = true;
  }
  return e;
}

}  // namespace

HttpResponse PusherServer::Impl::http(const HttpRequest& r) {
  auto answer = [this](HttpResponse resp) {
    ++counters.http_by_class[static_cast<std::size_t>(std::clamp(resp.status / 100, 0, 5))];
    return resp;
  };
  if (r.body.size() > config.max_http_body) return answer(text(413, "Request body too large"));
  const std::vector<std::string_view> seg = segments(r.path);
  if (seg.size() < 2 || seg[0].empty()) return answer(text(404, "Not found"));
  AppState* app = app_by_id(seg[0]);
  if (!app) return answer(text(404, "Unknown app"));
  const std::string problem = signature_problem(r, app->app, now_ms());
  if (!problem.empty()) {
    ++counters.auth_failures;
    return answer(text(401, problem));
  }
  const Limits& limits = app->app.limits;
  const bool get = r.method == "GET", post = r.method == "POST";

  auto socket_conn = [this, app](const std::string& socket_id) -> ConnId {
    if (socket_id.empty()) return 0;
    auto it = by_socket_id.find(socket_id);
    if (it == by_socket_id.end()) return 0;
    auto c = conns.find(it->second);
    return c != conns.end() && &apps[c->second.app] == app ? it->second : 0;
  };
  auto info_for = [app](const EventSpec& e) {
    std::string out;
    for (const std::string& ch : e.channels) {
      if (!out.empty()) out += ',';
      out += quoted(ch) + ":" + channel_attributes(app->channels.find(ch), kind_of(ch), e.info);
    }
    return out;
  };

  // POST /apps/ID/events
  if (seg.size() == 2 && seg[1] == "events") {
    if (!post) return answer(text(405, "Method not allowed"));
    Result<json::Value> body = json::parse(r.body);
    if (!body) return answer(text(400, "Invalid JSON body: " + body.error().message));
    auto spec = read_event(body.value(), limits, false);
    if (auto* failure = std::get_if<std::pair<int, std::string>>(&spec)) {
      return answer(text(failure->first, failure->second));
    }
    const EventSpec& e = std::get<EventSpec>(spec);
    const ConnId except = socket_conn(e.socket_id);
    std::vector<std::string> rooms_reached;
    for (const std::string& ch : e.channels) publish(*app, ch, e.name, e.data_json, except, &rooms_reached);
    if (e.wants_info) return answer(ok_json("{\"channels\":{" + info_for(e) + "}}"));
    return answer(ok_json("{}"));
  }

  // POST /apps/ID/batch_events
  if (seg.size() == 2 && seg[1] == "batch_events") {
    if (!post) return answer(text(405, "Method not allowed"));
    Result<json::Value> body = json::parse(r.body);
    if (!body) return answer(text(400, "Invalid JSON body: " + body.error().message));
    const json::Value* batch = body->is_object() ? body->get_array("batch") : nullptr;
    if (!batch) return answer(text(400, "Missing batch (an array of events)"));
    if (batch->items().size() > limits.batch_events) {
      return answer(text(400, "Batch too large (at most " + std::to_string(limits.batch_events) + " events)"));
    }
    // All checked before any is sent: a bad event fails the batch, nothing delivered.
    std::vector<EventSpec> events;
    bool wants_info = false;
    for (const json::Value& v : batch->items()) {
      auto spec = read_event(v, limits, true);
      if (auto* failure = std::get_if<std::pair<int, std::string>>(&spec)) {
        return answer(text(failure->first, failure->second));
      }
      events.push_back(std::move(std::get<EventSpec>(spec)));
      wants_info = wants_info || events.back().wants_info;
    }
    for (const EventSpec& e : events) {
      publish(*app, e.channels[0], e.name, e.data_json, socket_conn(e.socket_id));
    }
    if (!wants_info) return answer(ok_json("{}"));
    std::string out = "{\"batch\":[";
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (i) out += ',';
      out += events[i].wants_info
                 ? channel_attributes(app->channels.find(events[i].channels[0]), kind_of(events[i].channels[0]),
                                      events[i].info)
                 : "{}";
    }
    return answer(ok_json(out + "]}"));
  }

  // GET /apps/ID/channels
  if (seg.size() == 2 && seg[1] == "channels") {
    if (!get) return answer(text(405, "Method not allowed"));
    const std::string* prefix = query_value(r, "filter_by_prefix");
    const InfoWanted info = info_of(query_value(r, "info"));
    if (info.user_count && (!prefix || prefix->rfind("presence-", 0) != 0)) {
      return answer(text(400, "user_count is only available for presence channels: filter_by_prefix=presence-"));
    }
    std::vector<const std::pair<const std::string, Channel>*> found;
    for (const auto& entry : app->channels.all()) {
      if (!prefix || entry.first.rfind(*prefix, 0) == 0) found.push_back(&entry);
    }
    std::sort(found.begin(), found.end(), [](auto* a, auto* b) { return a->first < b->first; });
    std::string out = "{\"channels\":{";
    for (std::size_t i = 0; i < found.size(); ++i) {
      if (i) out += ',';
      out += quoted(found[i]->first) + ":" + channel_attributes(&found[i]->second, found[i]->second.kind, info);
    }
    return answer(ok_json(out + "}}"));
  }

  // GET /apps/ID/channels/NAME and /apps/ID/channels/NAME/users
  if ((seg.size() == 3 || (seg.size() == 4 && seg[3] == "users")) && seg[1] == "channels") {
    if (!get) return answer(text(405, "Method not allowed"));
    const std::string_view name = seg[2];
    const ChannelKind kind = kind_of(name);
    const Channel* ch = app->channels.find(name);
    if (seg.size() == 4) {
      if (!kind.presence) return answer(text(400, "Users are only available for presence channels"));
      std::string out = "{\"users\":[";
      bool first = true;
      if (ch) {
        for (const auto& [user, m] : ch->members) {
          out += first ? "" : ",";
          out += "{\"id\":" + quoted(user) + "}";
          first = false;
        }
      }
      return answer(ok_json(out + "]}"));
    }
    const InfoWanted info = info_of(query_value(r, "info"));
    if (info.user_count && !kind.presence) {
      return answer(text(400, "user_count is only available for presence channels"));
    }
    // occupied always; subscription_count always (soketi and Sockudo do; Pusher only when
    // asked, which a client asking gets too); user_count for presence channels.
    std::string out = "{\"occupied\":";
    out += ch ? "true" : "false";
    out += ",\"subscription_count\":" + std::to_string(ch ? ch->subscribers.size() : 0);
    if (kind.presence) out += ",\"user_count\":" + std::to_string(ch ? ch->members.size() : 0);
    return answer(ok_json(out + "}"));
  }

  // POST /apps/ID/users/USER/terminate_connections
  if (seg.size() == 4 && seg[1] == "users" && seg[3] == "terminate_connections") {
    if (!post) return answer(text(405, "Method not allowed"));
    auto u = app->users.find(std::string(seg[2]));
    if (u != app->users.end()) {
      const std::set<ConnId> targets = u->second;   // closing edits the set
      for (ConnId id : targets) {
        auto it = conns.find(id);
        if (it != conns.end()) close(id, it->second, 4009, "You got disconnected by the app");
      }
    }
    return answer(ok_json("{}"));
  }

  return answer(text(404, "Not found"));
}

}  // namespace atrium::pusher
