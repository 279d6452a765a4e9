// `atrium serve`: reads the settings, starts the engine and the server, prints the
// "atrium listening on HOST:PORT" line that tests and scripts wait for, and serves until
// SIGTERM or SIGINT.
#include "cli/serve.hpp"

#include <atomic>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/config.hpp"
#include "auth/jwt.hpp"
#include "cli/data_dirs.hpp"
#include "cli/pusher_guest.hpp"
#include "engine/engine.hpp"
#include "net/server.hpp"
#include "store/sqlite_store.hpp"
#include "util/read_file.hpp"

namespace atrium::cli {

namespace {

std::atomic<net::Server*> g_server{nullptr};   // what the signal handler stops

void on_stop_signal(int) {
  if (net::Server* server = g_server.load()) server->request_stop();
}

// SIGHUP: load the TLS certificate and key again (the server does it on its loop).
void on_reload_signal(int) {
  if (net::Server* server = g_server.load()) server->request_tls_reload();
}

// tls: SIGHUP reloads the certificate; without TLS it keeps its default action.
void install_signal_handlers(bool tls) {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  if (tls) {
    struct sigaction hup{};
    hup.sa_handler = on_reload_signal;
    sigemptyset(&hup.sa_mask);
    hup.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &hup, nullptr);
  }
  std::signal(SIGPIPE, SIG_IGN);  // a peer gone mid-write is an error return, not a death
}

std::optional<std::string> real_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

// --tls-cert and --tls-key: both or neither, and readable. The one line of why, or "".
// (Whether they hold a certificate and its key, the server says: net/tls.hpp.)
std::string tls_files_problem(const ServeOptions& o) {
  if (o.tls_cert.empty() != o.tls_key.empty())
    return o.tls_cert.empty() ? "--tls-key needs --tls-cert (the certificate it belongs to)"
                              : "--tls-cert needs --tls-key (its private key)";
  const std::pair<const char*, std::string> files[] = {{"--tls-cert", o.tls_cert},
                                                        {"--tls-key", o.tls_key}};
  for (const auto& [flag, path] : files) {
    if (path.empty()) continue;
    Result<std::string> text = read_file(path);
    if (!text) return std::string(flag) + " " + path + ": " + text.error().message;
  }
  return "";
}

// Log lines go to stderr, one each, at or above the configured level. Until the server
// listens they are held: a start that fails then ends with its one line of why, after
// only the warnings and errors (a script that did not load), not a screen of
// "script loaded" lines; a start that succeeds logs them all, in order.
struct StartupLog {
  explicit StartupLog(engine::LogLevel min) : min_level(min) {}
  ~StartupLog() { release(min_level); }   // a start cut short by an exception loses nothing
  StartupLog(const StartupLog&) = delete;
  StartupLog& operator=(const StartupLog&) = delete;
  engine::LogLevel min_level;
  bool holding = true;
  std::vector<std::pair<engine::LogLevel, std::string>> held;

  void write(engine::LogLevel level, std::string_view line) const {
    if (static_cast<int>(level) < static_cast<int>(min_level)) return;
    std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  }
  // Stops holding, writing what was held at `from` or above.
  void release(engine::LogLevel from) {
    holding = false;
    for (const auto& [level, line] : held)
      if (static_cast<int>(level) >= static_cast<int>(from)) write(level, line);
    held.clear();
  }
  // After a failed start: warnings and errors, or everything at --log-level debug (the
  // level that asks for lws' own account of a listener it could not make).
  void release_after_failure() {
    release(min_level == engine::LogLevel::debug ? engine::LogLevel::debug : engine::LogLevel::warn);
  }
};

net::LogSink stderr_log(const std::shared_ptr<StartupLog>& startup) {
  return [startup](engine::LogLevel level, std::string_view line) {
    if (startup->holding)
      startup->held.emplace_back(level, std::string(line));
    else
      startup->write(level, line);
  };
}

using Verifier = std::shared_ptr<const auth::JwtVerifier>;

// --jwt-secret or --jwt-public-key: the one key tokens are checked with; null when
// neither is set. A key that cannot be used stops the start (exit 2) rather than
// serving with tokens nobody can check.
Result<Verifier> token_verifier(const ServeOptions& o, const net::LogSink& log) {
  if (o.jwt_secret.empty() && o.jwt_public_key.empty()) {
    if (o.require_auth) return make_error(ErrorCode::bad_request, "--require-auth needs --jwt-secret or --jwt-public-key");
    if (!o.jwt_audience.empty() || !o.jwt_issuer.empty())
      return make_error(ErrorCode::bad_request, "--jwt-audience and --jwt-issuer need --jwt-secret or --jwt-public-key");
    return Verifier();
  }
  auth::JwtConfig jc;
  jc.secret = o.jwt_secret;
  jc.audience = o.jwt_audience;
  jc.issuer = o.jwt_issuer;
  if (!o.jwt_public_key.empty()) {
    Result<std::string> pem = read_file(o.jwt_public_key);
    if (!pem) return make_error(ErrorCode::bad_request, "--jwt-public-key " + o.jwt_public_key + ": " + pem.error().message);
    jc.public_key_pem = std::move(pem.value());
  }
  // RFC 7518 3.2: an HS256 key of fewer than 256 bits can be guessed offline from one token.
  if (!o.jwt_secret.empty() && o.jwt_secret.size() < 32)
    log(engine::LogLevel::warn, "auth weak_secret bytes=" + std::to_string(o.jwt_secret.size()) +
                                    " (--jwt-secret should be at least 32 random bytes)");
  Result<std::unique_ptr<auth::JwtVerifier>> v = auth::JwtVerifier::create(std::move(jc));
  if (!v) return std::move(v).error();
  return Verifier(std::move(v.value()));
}

std::int64_t seconds_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

engine::EngineConfig engine_config(const ServeOptions& o, const net::LogSink& log, const Verifier& jwt) {
  engine::EngineConfig c;
  if (jwt) {
    c.verify_token = [jwt](std::string_view token) -> Result<engine::Identity> {
      Result<auth::VerifiedToken> v = jwt->verify(token, seconds_now());
      if (!v) return std::move(v).error();
      engine::Identity id;
      id.user_id = std::move(v->sub);
      id.claims = std::move(v->claims);
      id.expires_at_s = v->exp_s;
      return id;
    };
  }
  c.rooms_dir = o.rooms;
  c.lua_dir = find_lua_dir();
  c.heartbeat_ms = o.heartbeat_ms;
  c.cpu_budget_ms = o.cpu_budget_ms;
  c.room_memory_bytes = o.room_memory_mb << 20;
  c.memory_bytes = o.memory_mb << 20;
  c.max_rooms_per_connection = o.max_rooms_per_connection;
  c.patch_log.max_patches = o.patch_log_count;
  c.patch_log.max_bytes = o.patch_log_bytes;
  c.patch_log.max_age_ms = o.patch_log_ms;
  c.open_store = [dir = o.data_dir, durability = o.durability == "power" ? store::Durability::power
                                                                        : store::Durability::process](bool create) {
    return store::open_sqlite_store(dir, durability, create);
  };
  c.rate = o.rate;
  c.untyped_rooms = o.untyped;
  c.log_level = o.log_level;
  c.admin_token = o.admin_token;
  c.record_path = o.record;
  c.synctest = o.synctest;
  c.on_log = log;
  return c;
}

net::ServerConfig server_config(const ServeOptions& o, const net::LogSink& log, const Verifier& jwt) {
  net::ServerConfig c;
  c.jwt = jwt;
  c.require_auth = o.require_auth;
  c.allowed_origins = o.allowed_origins;
  c.require_origin = o.require_origin;
  c.max_connections_per_ip = o.max_connections_per_ip;
  c.host = o.host;
  c.port = o.port;
  c.public_dir = o.public_dir ? *o.public_dir : find_public_dir().value_or("");
  // Not found: the install path, so that the server says what is missing.
  c.web_dir = find_web_dir().value_or(ATRIUM_INSTALL_WEB_DIR);
  c.admin_token = o.admin_token;
  c.max_message_bytes = o.max_message_bytes;
  c.heartbeat_ms = o.heartbeat_ms;
  c.outbox_bytes = o.outbox_bytes;
  c.coalesce_us = o.coalesce_us;
  c.deflate = o.deflate;
  c.deflate_min_bytes = o.deflate_min_bytes;
  c.event_loop = o.event_loop;
  c.watch_dir = o.rooms;
  c.tls_cert = o.tls_cert;
  c.tls_key = o.tls_key;
  c.on_log = log;
  return c;
}

}  // namespace

int run_serve(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(serve_usage().c_str(), stdout);
      return 0;
    }
  }
  Result<ServeOptions> options = parse_serve_options(args, real_env, read_file);
  if (!options) {
    std::fprintf(stderr, "atrium: %s\n", options.error().message.c_str());
    return 2;
  }
  const ServeOptions& o = options.value();
  const auto startup = std::make_shared<StartupLog>(o.log_level);
  const net::LogSink log = stderr_log(startup);
  // A mistyped --rooms must not serve a server where every TYPE:INSTANCE is refused and
  // only untyped rooms open: say so and stop.
  std::error_code ec;
  if (!std::filesystem::is_directory(o.rooms, ec)) {
    std::fprintf(stderr, "atrium: --rooms %s: %s\n", o.rooms.c_str(),
                 std::filesystem::exists(o.rooms, ec) ? "is not a directory" : "no such directory");
    return 2;
  }
  // TLS that cannot start must not start a plain server in its place.
  if (const std::string problem = tls_files_problem(o); !problem.empty()) {
    std::fprintf(stderr, "atrium: %s\n", problem.c_str());
    return 2;
  }

  Result<Verifier> jwt = token_verifier(o, log);
  if (!jwt) {
    std::fprintf(stderr, "atrium: %s\n", jwt.error().message.c_str());
    return 2;
  }

  engine::Engine engine(engine_config(o, log, jwt.value()));
  if (Status started = engine.start(); !started) {
    // A setup that cannot work as given (the engine's Lua missing, a record file, a durable
    // rooms' file damaged past what SQLite recovers): 2, as for bad settings.
    startup->release_after_failure();
    std::fprintf(stderr, "atrium: %s\n", started.error().message.c_str());
    return 2;
  }
  Result<std::shared_ptr<net::GuestProtocol>> pusher = pusher_guest(o, engine, log);
  if (!pusher) {
    startup->release_after_failure();
    std::fprintf(stderr, "atrium: %s\n", pusher.error().message.c_str());
    return 2;
  }
  net::ServerConfig server_settings = server_config(o, log, jwt.value());
  server_settings.guest = std::move(pusher.value());
  Result<std::unique_ptr<net::Server>> server = net::Server::create(engine, std::move(server_settings));
  if (!server) {
    startup->release_after_failure();
    std::fprintf(stderr, "atrium: %s\n", server.error().message.c_str());
    return 1;
  }
  startup->release(engine::LogLevel::debug);
  g_server.store(server->get());
  install_signal_handlers(!o.tls_cert.empty());
  // Tests and scripts wait for this exact line (tests/e2e/helpers.mjs matches it).
  std::printf("atrium listening on %s:%d\n", o.host.c_str(), (*server)->port());
  std::fflush(stdout);

  const Status served = (*server)->run();
  g_server.store(nullptr);
  server.value().reset();  // closes what is left before the engine goes
  if (!served) {
    std::fprintf(stderr, "atrium: %s\n", served.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace atrium::cli
