// `atrium serve`: reads the settings, starts the engine and the server, prints the
// "atrium listening on HOST:PORT" line that tests and scripts wait for, and serves until
// SIGTERM or SIGINT.
#include "cli/serve.hpp"

#include <atomic>
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
#include "cli/data_dirs.hpp"
#include "engine/engine.hpp"
#include "net/server.hpp"

namespace atrium::cli {

namespace {

std::atomic<net::Server*> g_server{nullptr};   // what the signal handler stops

void on_stop_signal(int) {
  if (net::Server* server = g_server.load()) server->request_stop();
}

void install_signal_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a peer gone mid-write is an error return, not a death
}

std::optional<std::string> real_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

Result<std::string> read_whole_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(ErrorCode::not_found, std::strerror(errno));
  std::string text;
  char buf[16384];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) return make_error(ErrorCode::internal, std::strerror(err));  // a directory, say
  return text;
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

engine::EngineConfig engine_config(const ServeOptions& o, const net::LogSink& log) {
  engine::EngineConfig c;
  c.rooms_dir = o.rooms;
  c.lua_dir = find_lua_dir();
  c.heartbeat_ms = o.heartbeat_ms;
  c.cpu_budget_ms = o.cpu_budget_ms;
  c.room_memory_bytes = o.room_memory_mb << 20;
  c.memory_bytes = o.memory_mb << 20;
  c.max_rooms_per_connection = o.max_rooms_per_connection;
  c.untyped_rooms = o.untyped;
  c.log_level = o.log_level;
  c.admin_token = o.admin_token;
  c.record_path = o.record;
  c.synctest = o.synctest;
  c.on_log = log;
  return c;
}

net::ServerConfig server_config(const ServeOptions& o, const net::LogSink& log) {
  net::ServerConfig c;
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
  c.event_loop = o.event_loop;
  c.watch_dir = o.rooms;
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
  Result<ServeOptions> options = parse_serve_options(args, real_env, read_whole_file);
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

  engine::Engine engine(engine_config(o, log));
  if (Status started = engine.start(); !started) {
    startup->release_after_failure();
    std::fprintf(stderr, "atrium: %s\n", started.error().message.c_str());
    return 1;
  }
  Result<std::unique_ptr<net::Server>> server = net::Server::create(engine, server_config(o, log));
  if (!server) {
    startup->release_after_failure();
    std::fprintf(stderr, "atrium: %s\n", server.error().message.c_str());
    return 1;
  }
  startup->release(engine::LogLevel::debug);
  g_server.store(server->get());
  install_signal_handlers();
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
