// `atrium serve` settings: flags, ATRIUM_* variables and the JSON config file
// (README.md "Settings"), through the pure parse_serve_options().
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "cli/config.hpp"

using atrium::ErrorCode;
using atrium::Result;
using atrium::cli::ServeOptions;
using atrium::cli::parse_serve_options;
using atrium::engine::LogLevel;

namespace {

struct World {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;

  Result<ServeOptions> parse(const std::vector<std::string>& args) const {
    return parse_serve_options(
        args,
        [this](std::string_view name) -> std::optional<std::string> {
          auto it = env.find(std::string(name));
          if (it == env.end()) return std::nullopt;
          return it->second;
        },
        [this](const std::string& path) -> Result<std::string> {
          auto it = files.find(path);
          if (it == files.end()) return atrium::make_error(ErrorCode::not_found, "no such file");
          return it->second;
        });
  }

  // The error message of a parse that must fail.
  std::string error(const std::vector<std::string>& args) const {
    Result<ServeOptions> r = parse(args);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::bad_request);
    return r.error().message;
  }
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("with nothing set, every setting has its documented default (README.md Settings)") {
  Result<ServeOptions> r = World{}.parse({});
  REQUIRE(r.ok());
  const ServeOptions& o = r.value();
  CHECK(o.rooms == "rooms");
  CHECK(o.port == 8080);
  CHECK(o.host == "127.0.0.1");
  CHECK(o.config.empty());
  CHECK_FALSE(o.public_dir.has_value());
  CHECK(o.admin_token.empty());
  CHECK(o.max_message_bytes == 65536);
  CHECK(o.heartbeat_ms == 25000);
  CHECK(o.outbox_bytes == 1048576);
  CHECK(o.cpu_budget_ms == 200);
  CHECK(o.room_memory_mb == 64);
  CHECK(o.memory_mb == 1024);
  CHECK(o.log_level == LogLevel::info);
}

TEST_CASE("--flag value and --flag=value both set a setting") {
  Result<ServeOptions> r = World{}.parse({"--port", "9000", "--host=0.0.0.0", "--rooms", "my rooms",
                                          "--log-level=debug", "--max-message-bytes", "1024"});
  REQUIRE(r.ok());
  CHECK(r->port == 9000);
  CHECK(r->host == "0.0.0.0");
  CHECK(r->rooms == "my rooms");
  CHECK(r->log_level == LogLevel::debug);
  CHECK(r->max_message_bytes == 1024);
}

TEST_CASE("--flag=value keeps an '=' inside the value and allows a value starting with --") {
  Result<ServeOptions> r = World{}.parse({"--admin-token=a=b", "--rooms=--odd"});
  REQUIRE(r.ok());
  CHECK(r->admin_token == "a=b");
  CHECK(r->rooms == "--odd");
}

TEST_CASE("port 0 is accepted: it asks for a free port") {
  Result<ServeOptions> r = World{}.parse({"--port", "0"});
  REQUIRE(r.ok());
  CHECK(r->port == 0);
}

TEST_CASE("a flag overrides the environment, which overrides the config file") {
  World w;
  w.files["atrium.json"] = R"({"port": 7000, "heartbeat-ms": 7000, "cpu-budget-ms": 70})";
  w.env["ATRIUM_CONFIG"] = "atrium.json";
  w.env["ATRIUM_PORT"] = "8000";
  w.env["ATRIUM_HEARTBEAT_MS"] = "8000";

  Result<ServeOptions> r = w.parse({"--port", "9000"});
  REQUIRE(r.ok());
  CHECK(r->port == 9000);           // flag
  CHECK(r->heartbeat_ms == 8000);   // environment over file
  CHECK(r->cpu_budget_ms == 70);    // file alone
  CHECK(r->config == "atrium.json");
}

TEST_CASE("environment names are ATRIUM_ plus the flag in upper case with underscores") {
  World w;
  w.env["ATRIUM_ADMIN_TOKEN"] = "secret";
  w.env["ATRIUM_MAX_MESSAGE_BYTES"] = "2048";
  w.env["ATRIUM_ROOM_MEMORY_MB"] = "8";
  w.env["ATRIUM_MEMORY_MB"] = "256";
  w.env["ATRIUM_OUTBOX_BYTES"] = "4096";
  w.env["ATRIUM_LOG_LEVEL"] = "warn";
  w.env["ATRIUM_PUBLIC"] = "www";
  w.env["ATRIUM_ROOMS"] = "r";
  w.env["ATRIUM_HOST"] = "::1";
  Result<ServeOptions> r = w.parse({});
  REQUIRE(r.ok());
  CHECK(r->admin_token == "secret");
  CHECK(r->max_message_bytes == 2048);
  CHECK(r->room_memory_mb == 8);
  CHECK(r->memory_mb == 256);
  CHECK(r->outbox_bytes == 4096);
  CHECK(r->log_level == LogLevel::warn);
  CHECK(r->public_dir == std::optional<std::string>("www"));
  CHECK(r->rooms == "r");
  CHECK(r->host == "::1");
}

TEST_CASE("an empty environment variable counts as unset") {
  World w;
  w.env["ATRIUM_PORT"] = "";
  w.env["ATRIUM_CONFIG"] = "";
  Result<ServeOptions> r = w.parse({});
  REQUIRE(r.ok());
  CHECK(r->port == 8080);
}

TEST_CASE("config file keys are the flag names; numbers may be JSON numbers or strings") {
  World w;
  w.files["c.json"] = R"({"admin-token": "t", "port": "9100", "outbox-bytes": 2048,
                          "public": "", "log-level": "error"})";
  Result<ServeOptions> r = w.parse({"--config", "c.json"});
  REQUIRE(r.ok());
  CHECK(r->admin_token == "t");
  CHECK(r->port == 9100);
  CHECK(r->outbox_bytes == 2048);
  CHECK(r->public_dir == std::optional<std::string>(""));  // "": serve no static files
  CHECK(r->log_level == LogLevel::error);
}

TEST_CASE("a bad value names the flag, variable or config key it came from") {
  World w;
  CHECK(contains(w.error({"--port", "abc"}), "--port"));
  CHECK(contains(w.error({"--port", "abc"}), "\"abc\""));
  CHECK(contains(w.error({"--port", "65536"}), "0..65535"));
  CHECK(contains(w.error({"--port", "-1"}), "--port"));
  CHECK(contains(w.error({"--port", "80 "}), "--port"));
  CHECK(contains(w.error({"--heartbeat-ms", "999"}), "--heartbeat-ms"));
  CHECK(contains(w.error({"--max-message-bytes", "0"}), "--max-message-bytes"));
  CHECK(contains(w.error({"--log-level", "loud"}), "debug, info, warn, error"));
  CHECK(contains(w.error({"--rooms="}), "must not be empty"));

  w.env["ATRIUM_PORT"] = "x";
  CHECK(contains(w.error({}), "ATRIUM_PORT"));
}

TEST_CASE("unknown flags, stray arguments and missing values are refused") {
  World w;
  CHECK(contains(w.error({"--bogus"}), "unknown flag --bogus"));
  CHECK(contains(w.error({"--bogus=1"}), "unknown flag --bogus"));
  CHECK(contains(w.error({"extra"}), "unexpected argument \"extra\""));
  CHECK(contains(w.error({"-p", "1"}), "unexpected argument \"-p\""));
  CHECK(contains(w.error({"--port"}), "--port needs a value"));
  CHECK(contains(w.error({"--rooms", "--port", "1"}), "--rooms needs a value"));
}

TEST_CASE("a config file that is unreadable, not JSON or not an object is refused") {
  World w;
  CHECK(contains(w.error({"--config", "missing.json"}), "cannot read config file missing.json"));
  w.files["bad.json"] = R"({"port": )";
  CHECK(contains(w.error({"--config", "bad.json"}), "config file bad.json"));
  w.files["list.json"] = "[1, 2]";
  CHECK(contains(w.error({"--config", "list.json"}), "must hold a JSON object"));
}

TEST_CASE("a config file with an unknown key, a nested config or a bad value is refused") {
  World w;
  w.files["a.json"] = R"({"port": 1, "colour": "blue"})";
  CHECK(contains(w.error({"--config", "a.json"}), "key \"colour\" is not a setting"));
  w.files["b.json"] = R"({"config": "other.json"})";
  CHECK(contains(w.error({"--config", "b.json"}), "cannot name another config file"));
  w.files["c.json"] = R"({"port": 1.5})";
  CHECK(contains(w.error({"--config", "c.json"}), "key \"port\""));
  w.files["d.json"] = R"({"admin-token": true})";
  CHECK(contains(w.error({"--config", "d.json"}), "must be a string or a whole number"));
  w.files["e.json"] = R"({"port": "abc"})";
  CHECK(contains(w.error({"--config", "e.json"}), "key \"port\""));
}

TEST_CASE("the coalescing window is a setting, 0 to 100 ms") {
  World w;
  auto r = w.parse({});
  REQUIRE(r);
  CHECK(r->coalesce_us == 2000);
  r = w.parse({"--coalesce-us", "2500"});
  REQUIRE(r);
  CHECK(r->coalesce_us == 2500);
  r = w.parse({"--coalesce-us", "0"});
  REQUIRE(r);
  CHECK(r->coalesce_us == 0);
  CHECK(contains(w.error({"--coalesce-us", "100001"}), "coalesce-us"));
  CHECK(contains(w.error({"--coalesce-us", "-1"}), "coalesce-us"));
}

TEST_CASE("permessage-deflate is on by default, with a threshold of at least one byte") {
  World w;
  auto r = w.parse({});
  REQUIRE(r);
  CHECK(r->deflate);
  CHECK(r->deflate_min_bytes == 256);
  r = w.parse({"--deflate", "off", "--deflate-min-bytes", "1"});
  REQUIRE(r);
  CHECK_FALSE(r->deflate);
  CHECK(r->deflate_min_bytes == 1);
  w.files["z.json"] = R"({"deflate": "off", "deflate-min-bytes": 4096})";
  r = w.parse({"--config", "z.json"});
  REQUIRE(r);
  CHECK_FALSE(r->deflate);
  CHECK(r->deflate_min_bytes == 4096);
  CHECK(contains(w.error({"--deflate", "maybe"}), "maybe"));
  CHECK(contains(w.error({"--deflate-min-bytes", "0"}), "deflate-min-bytes"));
}

TEST_CASE("the event loop is poll by default, libuv on request, nothing else") {
  World w;
  auto r = w.parse({});
  REQUIRE(r);
  CHECK(r->event_loop == "poll");
  r = w.parse({"--event-loop", "libuv"});
  REQUIRE(r);
  CHECK(r->event_loop == "libuv");
  CHECK(contains(w.error({"--event-loop", "epoll"}), "poll or libuv"));
}

TEST_CASE("a bad value in the config file is an error even when a flag overrides it") {
  World w;
  w.files["c.json"] = R"({"port": "abc"})";
  CHECK(contains(w.error({"--config", "c.json", "--port", "9000"}), "c.json"));
}

TEST_CASE("the usage text lists every setting") {
  const std::string usage = atrium::cli::serve_usage();
  for (const char* flag : {"--rooms", "--port", "--host", "--config", "--public", "--admin-token",
                           "--max-message-bytes", "--heartbeat-ms", "--outbox-bytes", "--coalesce-us", "--event-loop",
                           "--cpu-budget-ms", "--room-memory-mb", "--memory-mb", "--log-level"})
    CHECK(contains(usage, flag));
}

TEST_CASE("a switch alone is on; on/off, true/false and 1/0 also work, from flags, variables and the file") {
  World w;
  auto parsed = [&](const std::vector<std::string>& args) { return w.parse(args).value(); };
  CHECK(parsed({"--require-auth", "--port", "1"}).require_auth);
  CHECK(parsed({"--port", "1", "--require-auth"}).require_auth);
  CHECK_FALSE(parsed({"--require-auth", "off"}).require_auth);
  CHECK(parsed({"--require-auth=true"}).require_auth);
  CHECK_FALSE(parsed({"--untyped", "0"}).untyped);
  CHECK(contains(w.error({"--require-auth=maybe"}), "--require-auth: must be on or off"));
  w.env["ATRIUM_REQUIRE_ORIGIN"] = "1";
  CHECK(parsed({}).require_origin);
  w.env.clear();
  w.files["s.json"] = R"({"require-auth": true, "synctest": false})";
  CHECK(parsed({"--config", "s.json"}).require_auth);
  w.files["t.json"] = R"({"jwt-secret": true})";  // only switches take JSON booleans
  CHECK(contains(w.error({"--config", "t.json"}), "must be a string or a whole number"));
}

TEST_CASE("--allowed-origins takes a comma-separated list of origins and refuses what is not one") {
  World w;
  const ServeOptions o = w.parse({"--allowed-origins", " https://app.example.com ,https://*.example.org,http://127.0.0.1:8080"}).value();
  REQUIRE(o.allowed_origins.size() == 3);
  CHECK(o.allowed_origins[0] == "https://app.example.com");
  CHECK(o.allowed_origins[1] == "https://*.example.org");
  CHECK(o.allowed_origins[2] == "http://127.0.0.1:8080");
  CHECK(contains(w.error({"--allowed-origins", "app.example.com"}), "is not an origin"));
  CHECK(contains(w.error({"--allowed-origins", "https://app.example.com/"}), "is not an origin"));
  CHECK(contains(w.error({"--allowed-origins", ","}), "at least one origin"));
}

TEST_CASE("rate and per-address limits are whole numbers, 0 for none") {
  World w;
  const ServeOptions o = w.parse({"--rate", "50", "--max-connections-per-ip", "10"}).value();
  CHECK(o.rate == 50);
  CHECK(o.max_connections_per_ip == 10);
  CHECK(w.parse({}).value().rate == 0);
  CHECK(contains(w.error({"--rate", "-1"}), "--rate"));
}

TEST_CASE("the patch log's bounds are settings; the defaults are those of docs/protocol.md") {
  World w;
  const ServeOptions d = w.parse({}).value();
  CHECK(d.patch_log_count == 256);
  CHECK(d.patch_log_bytes == 65536);
  CHECK(d.patch_log_ms == 60000);
  const ServeOptions o =
      w.parse({"--patch-log-count", "0", "--patch-log-bytes=1024", "--patch-log-ms", "5000"}).value();
  CHECK(o.patch_log_count == 0);
  CHECK(o.patch_log_bytes == 1024);
  CHECK(o.patch_log_ms == 5000);
  CHECK(contains(w.error({"--patch-log-count", "-3"}), "--patch-log-count"));
  CHECK(contains(w.error({"--patch-log-ms", "soon"}), "--patch-log-ms"));
}

TEST_CASE("Pusher apps, webhooks and limits are lists: a flag given again adds, a stronger source replaces") {
  World w;
  Result<ServeOptions> r = w.parse({"--pusher-app", "1:key1:secret1", "--pusher-app=2:key2:se:cret",
                                    "--pusher-webhook", "1:http://127.0.0.1:9/hook",
                                    "--pusher-limit", "2:presence-members=200"});
  REQUIRE(r.ok());
  CHECK(r->pusher_apps == std::vector<std::string>{"1:key1:secret1", "2:key2:se:cret"});
  CHECK(r->pusher_webhooks == std::vector<std::string>{"1:http://127.0.0.1:9/hook"});
  CHECK(r->pusher_limits == std::vector<std::string>{"2:presence-members=200"});

  w.env["ATRIUM_PUSHER_APPS"] = "a:ka:sa, b:kb:sb";  // a list's variable is plural
  w.files["c.json"] = R"({"pusher-app": ["f:kf:sf", "g:kg:sg"], "pusher-webhook": "f:https://h.example/w"})";
  Result<ServeOptions> from_env = w.parse({"--config", "c.json"});
  REQUIRE(from_env.ok());
  CHECK(from_env->pusher_apps == std::vector<std::string>{"a:ka:sa", "b:kb:sb"});  // beats the file
  CHECK(from_env->pusher_webhooks == std::vector<std::string>{"f:https://h.example/w"});
  w.env.erase("ATRIUM_PUSHER_APPS");
  Result<ServeOptions> from_file = w.parse({"--config", "c.json"});
  REQUIRE(from_file.ok());
  CHECK(from_file->pusher_apps == std::vector<std::string>{"f:kf:sf", "g:kg:sg"});
  Result<ServeOptions> from_flag = w.parse({"--config", "c.json", "--pusher-app", "z:kz:sz"});
  REQUIRE(from_flag.ok());
  CHECK(from_flag->pusher_apps == std::vector<std::string>{"z:kz:sz"});
}

TEST_CASE("a Pusher app, webhook or limit in the wrong form is refused, naming it") {
  World w;
  CHECK(w.error({"--pusher-app", "1:key"}).find("\"1:key\" is not ID:KEY:SECRET") != std::string::npos);
  CHECK(w.error({"--pusher-app", "1::secret"}).find("is not ID:KEY:SECRET") != std::string::npos);
  CHECK(w.error({"--pusher-app", ":k:s"}).find("is not ID:KEY:SECRET") != std::string::npos);
  CHECK(w.error({"--pusher-app", "1:k:"}).find("is not ID:KEY:SECRET") != std::string::npos);
  CHECK(w.error({"--pusher-webhook", "1:ftp://x"}).find("http:// or https://") != std::string::npos);
  CHECK(w.error({"--pusher-webhook", "nourl"}).find("is not ID:URL") != std::string::npos);
  CHECK(w.error({"--pusher-limit", "1:presence-members"}).find("is not ID:name=value") != std::string::npos);
  CHECK(w.error({"--pusher-app", ","}).find("--pusher-app") != std::string::npos);
  w.files["c.json"] = R"({"pusher-app": [1, 2]})";
  CHECK(w.error({"--config", "c.json"}).find("list of strings") != std::string::npos);
}
