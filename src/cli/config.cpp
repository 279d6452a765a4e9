// `atrium serve` settings: one table names every setting once; flags, ATRIUM_* variables
// and config-file keys are all derived from it, so the three can never drift apart.
#include "cli/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>

#include "json/codec.hpp"

namespace atrium::cli {

namespace {

Error bad(std::string message) { return make_error(ErrorCode::bad_request, std::move(message)); }

std::string quoted(std::string_view v) { return "\"" + std::string(v) + "\""; }

Result<std::uint64_t> parse_count(std::string_view v, std::uint64_t min, std::uint64_t max) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < min || n > max)
    return bad(quoted(v) + " is not a whole number in " + std::to_string(min) + ".." +
               std::to_string(max));
  return n;
}

template <class T>
Status set_count(T& field, std::string_view v, std::uint64_t min, std::uint64_t max) {
  Result<std::uint64_t> n = parse_count(v, min, max);
  if (!n) return std::move(n).error();
  field = static_cast<T>(n.value());
  return {};
}

Status set_text(std::string& field, std::string_view v) {
  if (v.empty()) return bad("must not be empty");
  field = std::string(v);
  return {};
}

Status set_log_level(ServeOptions& o, std::string_view v) {
  if (v == "debug") o.log_level = engine::LogLevel::debug;
  else if (v == "info") o.log_level = engine::LogLevel::info;
  else if (v == "warn") o.log_level = engine::LogLevel::warn;
  else if (v == "error") o.log_level = engine::LogLevel::error;
  else return bad(quoted(v) + " is not one of debug, info, warn, error");
  return {};
}

bool is_switch_value(std::string_view v) {
  return v == "on" || v == "off" || v == "true" || v == "false" || v == "1" || v == "0";
}

Status set_switch(bool& field, std::string_view v) {
  if (!is_switch_value(v)) return bad("must be on or off");
  field = v == "on" || v == "true" || v == "1";
  return {};
}

// A comma-separated list (a list setting's repeated flags are joined into one first), each
// item checked by `check`, which returns why it is wrong ("" when it is fine). The source
// that gives the list replaces what a weaker one gave.
Status set_list(std::vector<std::string>& field, std::string_view v,
                std::string (*check)(std::string_view item), std::string_view noun = "item") {
  std::vector<std::string> out;
  while (!v.empty()) {
    const std::size_t comma = v.find(',');
    std::string_view item = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    if (std::string why = check(item); !why.empty()) return bad(quoted(item) + " " + why);
    out.emplace_back(item);
  }
  if (out.empty()) return bad("must name at least one " + std::string(noun));
  field = std::move(out);
  return {};
}

// "https://a.example, https://*.example.com": exact origins (scheme://host[:port]) and
// patterns whose host starts with "*." (any subdomain, not the domain itself).
std::string check_origin(std::string_view item) {
  const std::size_t scheme = item.find("://");
  if (scheme == std::string_view::npos || scheme == 0 || item.size() == scheme + 3 ||
      item.back() == '/')
    return "is not an origin like https://app.example.com or https://*.example.com";
  return {};
}

// "ID:KEY:SECRET": three parts, none empty (the secret may hold ':').
std::string check_pusher_app(std::string_view item) {
  const std::size_t a = item.find(':');
  const std::size_t b = a == std::string_view::npos ? a : item.find(':', a + 1);
  if (b == std::string_view::npos || a == 0 || b == a + 1 || b + 1 == item.size())
    return "is not ID:KEY:SECRET";
  return {};
}

// "ID:URL", an http or https URL.
std::string check_pusher_webhook(std::string_view item) {
  const std::size_t a = item.find(':');
  if (a == std::string_view::npos || a == 0) return "is not ID:URL";
  const std::string_view url = item.substr(a + 1);
  if (url.substr(0, 7) != "http://" && url.substr(0, 8) != "https://")
    return "is not ID:URL with an http:// or https:// URL";
  return {};
}

// "ID:name=value".
std::string check_pusher_limit(std::string_view item) {
  const std::size_t a = item.find(':');
  const std::size_t eq = item.find('=');
  if (a == std::string_view::npos || a == 0 || eq == std::string_view::npos || eq < a + 2 ||
      eq + 1 == item.size())
    return "is not ID:name=value (e.g. 1:presence-members=200)";
  return {};
}

constexpr std::uint64_t kMaxMs = 3'600'000;          // one hour
constexpr std::uint64_t kMaxBytes = 1ull << 34;      // 16 GiB
constexpr std::uint64_t kMaxMb = 1ull << 20;         // 1 TiB

struct Setting {
  std::string_view name;     // the flag without dashes and the config-file key
  std::string_view arg;      // for the usage text
  std::string_view help;
  Status (*apply)(ServeOptions&, std::string_view);
  bool list = false;         // a flag may be given again, adding to the list
};

// README.md "Settings" lists these with their defaults: keep the two tables in step.
const Setting kSettings[] = {
    {"rooms", "DIR", "room scripts (default: rooms)",
     [](ServeOptions& o, std::string_view v) { return set_text(o.rooms, v); }},
    {"port", "N", "listen port, 0 picks a free one (default: 8080)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.port, v, 0, 65535); }},
    {"host", "H", "listen address (default: 127.0.0.1; 0.0.0.0 to expose)",
     [](ServeOptions& o, std::string_view v) { return set_text(o.host, v); }},
    {"config", "FILE", "JSON config file: {\"port\": 9000, \"admin-token\": \"...\"}",
     [](ServeOptions& o, std::string_view v) { return set_text(o.config, v); }},
    {"public", "DIR", "static files served at / (default: the bundled demo; \"\": none)",
     [](ServeOptions& o, std::string_view v) -> Status {
       o.public_dir = std::string(v);
       return {};
     }},
    {"admin-token", "T", "bearer token for HTTP write routes (default: none, routes open)",
     [](ServeOptions& o, std::string_view v) -> Status {
       o.admin_token = std::string(v);
       return {};
     }},
    {"max-message-bytes", "N", "largest client message, 1009 past it (default: 65536)",
     [](ServeOptions& o, std::string_view v) {
       return set_count(o.max_message_bytes, v, 1, 1ull << 30);
     }},
    {"heartbeat-ms", "N", "ping interval; silent for two = dropped (default: 25000)",
     [](ServeOptions& o, std::string_view v) {
       return set_count(o.heartbeat_ms, v, 1000, kMaxMs);
     }},
    {"outbox-bytes", "N", "per-connection outbox cap, 1013 past it (default: 1048576)",
     [](ServeOptions& o, std::string_view v) {
       return set_count(o.outbox_bytes, v, 1024, kMaxBytes);
     }},
    {"coalesce-us", "N", "the coalescing window: output waits this long for more, input is read once per window (default: 2000)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.coalesce_us, v, 0, 100000); }},
    {"deflate", "on|off", "permessage-deflate with clients that offer it, compressed once per broadcast (default: on)",
     [](ServeOptions& o, std::string_view v) { return set_switch(o.deflate, v); }},
    {"deflate-min-bytes", "N", "messages shorter than this go out uncompressed (default: 256)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.deflate_min_bytes, v, 1, kMaxBytes); }},
    {"event-loop", "L", "poll, or libuv (epoll) for thousands of connections (default: poll)",
     [](ServeOptions& o, std::string_view v) -> Status {
       if (v != "poll" && v != "libuv") return bad("must be poll or libuv");
       o.event_loop = std::string(v);
       return {};
     }},
    {"cpu-budget-ms", "N", "CPU budget per hook call (default: 200)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.cpu_budget_ms, v, 1, kMaxMs); }},
    {"room-memory-mb", "N", "Lua memory cap per room (default: 64)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.room_memory_mb, v, 1, kMaxMb); }},
    {"memory-mb", "N", "Lua memory cap for the engine (default: 1024)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.memory_mb, v, 1, kMaxMb); }},
    {"max-rooms-per-connection", "N", "rooms one connection may be in at once, server-side placements included (default: 128)",
     [](ServeOptions& o, std::string_view v) {
       return set_count(o.max_rooms_per_connection, v, 1, 1u << 20);
     }},
    {"data", "DIR", "where durable rooms (options.persist) are kept, DIR/atrium.db, made when first needed (default: atrium-data)",
     [](ServeOptions& o, std::string_view v) -> Status {
       if (v.empty()) return bad("must not be empty");
       o.data_dir = std::string(v);
       return {};
     }},
    {"durability", "D", "process: a committed change survives the process dying; power: also a power loss, one fsync per commit (default: process)",
     [](ServeOptions& o, std::string_view v) -> Status {
       if (v != "process" && v != "power") return bad("must be process or power");
       o.durability = std::string(v);
       return {};
     }},
    {"patch-log-count", "N", "patches each room keeps for clients that resume (default: 256)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.patch_log_count, v, 0, 1u << 24); }},
    {"patch-log-bytes", "N", "bytes of patches each room keeps for clients that resume (default: 65536)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.patch_log_bytes, v, 0, kMaxBytes); }},
    {"patch-log-ms", "N", "how long a room keeps a patch for clients that resume (default: 60000)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.patch_log_ms, v, 0, kMaxMs); }},
    {"untyped", "on|off", "rooms whose id has no TYPE: prefix, plain pub/sub (default: on)",
     [](ServeOptions& o, std::string_view v) { return set_switch(o.untyped, v); }},
    {"synctest", "on|off", "run every hook twice from the same state and log hooks whose changes differ (default: off)",
     [](ServeOptions& o, std::string_view v) { return set_switch(o.synctest, v); }},
    {"record", "FILE", "record every input and output to FILE, for atrium replay (default: none)",
     [](ServeOptions& o, std::string_view v) { return set_text(o.record, v); }},
    {"jwt-secret", "S", "HS256 secret: connections may bring a token (default: none)",
     [](ServeOptions& o, std::string_view v) { return set_text(o.jwt_secret, v); }},
    {"jwt-public-key", "FILE", "PEM public key: RS256 (RSA) or ES256 (P-256) tokens (default: none)",
     [](ServeOptions& o, std::string_view v) { return set_text(o.jwt_public_key, v); }},
    {"jwt-audience", "A", "a token's aud must contain A (default: not checked)",
     [](ServeOptions& o, std::string_view v) { return set_text(o.jwt_audience, v); }},
    {"jwt-issuer", "I", "a token's iss must be I (default: not checked)",
     [](ServeOptions& o, std::string_view v) { return set_text(o.jwt_issuer, v); }},
    {"require-auth", "on|off", "refuse upgrades without a valid token with 401 (default: off)",
     [](ServeOptions& o, std::string_view v) { return set_switch(o.require_auth, v); }},
    {"allowed-origins", "LIST", "comma-separated origins, https://*.example.com patterns (default: any)",
     [](ServeOptions& o, std::string_view v) { return set_list(o.allowed_origins, v, check_origin, "origin"); }},
    {"require-origin", "on|off", "refuse requests with no Origin header with 403 (default: off)",
     [](ServeOptions& o, std::string_view v) { return set_switch(o.require_origin, v); }},
    {"tls-cert", "FILE", "PEM certificate chain: wss:// and https:// on the port (default: none)",
     [](ServeOptions& o, std::string_view v) { return set_text(o.tls_cert, v); }},
    {"tls-key", "FILE", "PEM private key of --tls-cert",
     [](ServeOptions& o, std::string_view v) { return set_text(o.tls_key, v); }},
    {"rate", "N", "messages per second per connection, burst N; 0: no limit (default: 0)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.rate, v, 0, 1000000); }},
    {"max-connections-per-ip", "N", "WebSocket connections from one address, 429 past it; 0: no limit (default: 0)",
     [](ServeOptions& o, std::string_view v) { return set_count(o.max_connections_per_ip, v, 0, 1000000); }},
    {"pusher-app", "ID:KEY:SECRET", "serve the Pusher Channels protocol for this app at /app/KEY and /apps/ID (repeatable; default: none)",
     [](ServeOptions& o, std::string_view v) { return set_list(o.pusher_apps, v, check_pusher_app); },
     true},
    {"pusher-webhook", "ID:URL", "POST that app's Pusher webhooks to URL (repeatable; default: none)",
     [](ServeOptions& o, std::string_view v) { return set_list(o.pusher_webhooks, v, check_pusher_webhook); },
     true},
    {"pusher-limit", "ID:NAME=N", "a Pusher limit of that app, e.g. 1:presence-members=200 (repeatable; docs/pusher.md)",
     [](ServeOptions& o, std::string_view v) { return set_list(o.pusher_limits, v, check_pusher_limit); },
     true},
    {"log-level", "L", "debug, info, warn or error (default: info)", set_log_level},
};


const Setting* find_setting(std::string_view name) {
  for (const Setting& s : kSettings)
    if (s.name == name) return &s;
  return nullptr;
}

// "admin-token" -> "ATRIUM_ADMIN_TOKEN"; a list is plural: "pusher-app" -> "ATRIUM_PUSHER_APPS"
// (a comma-separated list).
std::string env_name(const Setting& s) {
  std::string out = "ATRIUM_";
  for (char c : s.name)
    out.push_back(c == '-' ? '_' : c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  if (s.list) out.push_back('S');
  return out;
}

Status apply(const Setting& s, ServeOptions& o, std::string_view value, const std::string& where) {
  Status st = s.apply(o, value);
  if (!st) return bad(where + ": " + st.error().message);
  return {};
}

// A config-file value as the text a flag would carry: strings as they are, integers in
// decimal. Anything else is refused rather than guessed at.
Result<std::string> config_text(const json::Value& v, const Setting& s) {
  if (v.is_string()) return v.as_string();
  if (v.is_array() && s.list) {  // ["1:key:secret", "2:key2:secret2"]
    std::string joined;
    for (const json::Value& item : v.items()) {
      if (!item.is_string()) return bad("must be a list of strings");
      if (!joined.empty()) joined.push_back(',');
      joined += item.as_string();
    }
    return joined;
  }
  if (v.is_bool() && s.arg == "on|off") return std::string(v.as_bool() ? "on" : "off");
  if (v.is_number() && std::isfinite(v.as_number()) && std::trunc(v.as_number()) == v.as_number() &&
      std::fabs(v.as_number()) < 1e15)
    return std::to_string(static_cast<long long>(v.as_number()));
  return bad("must be a string or a whole number");
}

Status apply_file(const std::string& path, const FileReader& read_file, ServeOptions& o) {
  Result<std::string> text = read_file(path);
  if (!text) return bad("cannot read config file " + path + ": " + text.error().message);
  Result<json::Value> doc = json::parse(text.value());
  if (!doc) return bad("config file " + path + ": " + doc.error().message);
  if (!doc->is_object()) return bad("config file " + path + ": must hold a JSON object");
  for (const json::Value::Member& m : doc->members()) {
    const std::string where = "config file " + path + ": key " + quoted(m.first);
    const Setting* s = find_setting(m.first);
    if (!s) return bad(where + " is not a setting (see atrium serve --help)");
    if (s->name == "config") return bad(where + " cannot name another config file");
    Result<std::string> value = config_text(m.second, *s);
    if (!value) return bad(where + ": " + value.error().message);
    if (Status st = apply(*s, o, value.value(), where); !st) return st;
  }
  return {};
}

struct Flag {
  const Setting* setting;
  std::string value;
};

Result<std::vector<Flag>> parse_flags(const std::vector<std::string>& args) {
  std::vector<Flag> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg.size() <= 2 || arg.substr(0, 2) != "--")
      return bad("unexpected argument " + quoted(arg) + " (see atrium serve --help)");
    const std::string_view body = arg.substr(2);
    const std::size_t eq = body.find('=');
    const std::string_view name = body.substr(0, eq);
    const Setting* s = find_setting(name);
    if (!s) return bad("unknown flag --" + std::string(name) + " (see atrium serve --help)");
    if (eq != std::string_view::npos) {
      flags.push_back({s, std::string(body.substr(eq + 1))});
      continue;
    }
    // A switch alone is on: "--require-auth --port 0"; "--require-auth off" still works.
    if (s->arg == "on|off") {
      const bool valued = i + 1 < args.size() && is_switch_value(args[i + 1]);
      flags.push_back({s, valued ? args[++i] : std::string("on")});
      continue;
    }
    // "--rooms --port 1" is a forgotten value, not a directory named "--port".
    if (i + 1 >= args.size() || std::string_view(args[i + 1]).substr(0, 2) == "--")
      return bad("--" + std::string(name) + " needs a value");
    flags.push_back({s, args[++i]});
  }
  return flags;
}

}  // namespace

Result<ServeOptions> parse_serve_options(const std::vector<std::string>& args,
                                         const EnvLookup& env, const FileReader& read_file) {
  Result<std::vector<Flag>> flags = parse_flags(args);
  if (!flags) return std::move(flags).error();
  auto env_value = [&env](const Setting& s) -> std::optional<std::string> {
    std::optional<std::string> v = env ? env(env_name(s)) : std::nullopt;
    if (v && v->empty()) return std::nullopt;
    return v;
  };

  ServeOptions options;
  // The file first, so that the environment and then the flags override it.
  std::optional<std::string> config_path = env_value(*find_setting("config"));
  for (const Flag& f : flags.value())
    if (f.setting->name == "config") config_path = f.value;
  if (config_path && !config_path->empty()) {
    if (Status st = apply_file(*config_path, read_file, options); !st) return std::move(st).error();
  }
  for (const Setting& s : kSettings) {
    if (std::optional<std::string> v = env_value(s)) {
      if (Status st = apply(s, options, *v, env_name(s)); !st) return std::move(st).error();
    }
  }
  // A list setting's flags are applied once, their values joined.
  std::vector<Flag> merged;
  for (const Flag& f : flags.value()) {
    auto same = std::find_if(merged.begin(), merged.end(),
                             [&f](const Flag& m) { return m.setting == f.setting; });
    if (f.setting->list && same != merged.end()) same->value += "," + f.value;
    else merged.push_back(f);
  }
  for (const Flag& f : merged) {
    if (Status st = apply(*f.setting, options, f.value, "--" + std::string(f.setting->name)); !st)
      return std::move(st).error();
  }
  return options;
}

std::string serve_usage() {
  std::string out =
      "usage: atrium serve [options]\n"
      "\n"
      "Serves the room scripts in --rooms over WebSocket (/ws) and HTTP on one port.\n"
      "Every option is also an environment variable (--admin-token: ATRIUM_ADMIN_TOKEN)\n"
      "and a key of the JSON config file ({\"admin-token\": \"...\"}); flags override the\n"
      "environment, which overrides the file. --flag=value and --flag value both work.\n"
      "A repeatable option is a list: its variable is plural and comma-separated\n"
      "(ATRIUM_PUSHER_APPS=\"1:key:secret,2:key2:secret2\"), its key a JSON array.\n"
      "\n"
      "options:\n";
  for (const Setting& s : kSettings) {
    std::string left = "  --" + std::string(s.name) + " " + std::string(s.arg);
    if (left.size() < 26) left.resize(26, ' ');
    else left += "  ";
    out += left + std::string(s.help) + "\n";
  }
  out += "  -h, --help              this text\n";
  return out;
}

}  // namespace atrium::cli
