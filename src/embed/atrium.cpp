// The embedding API (include/atrium/atrium.hpp, docs/embedding.md) over the engine: a
// LocalClient is a ClientSink that keeps its lines for the host to read, its input goes
// into the same ordered queue step() hands to the engine, and step() drives the engine's
// timers by the host's clock when it has one. Nothing here throws past the API: every
// entry catches, logs through on_log and answers with its error result.
#include "atrium/atrium.hpp"

#include <cstdlib>
#include <deque>
#include <exception>
#include <sys/stat.h>
#include <utility>
#include <vector>

#include "engine/client_sink.hpp"
#include "engine/engine.hpp"
#include "net/server.hpp"

namespace atrium {

namespace {

bool is_directory(const std::string& path) {
  struct stat st{};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Options::lua_dir, else ATRIUM_LUA_PATH, else the installed lua/, else the source tree's.
std::string lua_dir_of(const Options& o) {
  if (!o.lua_dir.empty()) return o.lua_dir;
  if (const char* env = std::getenv("ATRIUM_LUA_PATH"); env && *env) return env;
  if (is_directory(ATRIUM_INSTALL_LUA_DIR)) return ATRIUM_INSTALL_LUA_DIR;
  return ATRIUM_SOURCE_LUA_DIR;
}

// A step never runs more timer instants than this (a script chaining setTimeout(0) for
// ever would otherwise keep step() from returning); the rest waits for the next step.
constexpr int kMaxInstantsPerStep = 100000;

}  // namespace

// What a LocalClient and its engine share: the engine may outlive the client (its member
// leaves at the next step) and the client the engine (then every call does nothing).
struct LocalClient::State final : engine::ClientSink, std::enable_shared_from_this<State> {
  Engine::Impl* engine = nullptr;   // null once the engine is gone
  engine::ClientId id = 0;
  std::string wire_id;
  std::deque<SharedFrame> lines;    // what the engine sent, in order
  bool closed = false;              // by the host (close()) or by the engine

  void send(const SharedFrame& line) override { lines.push_back(line); }
  // The engine asks to close (shutdown, a slow reader): as a WebSocket would, the
  // connection goes away and the engine hears of it at the next step.
  void close(int code, std::string_view) override;
};

struct Engine::Impl {
  struct Input {
    std::shared_ptr<LocalClient::State> client;
    std::string message;            // empty: the client closed
    bool clean = true;              // a close: as code 1000/1001 (onLeave "leave")
  };

  std::unique_ptr<engine::Engine> core;
  std::unique_ptr<net::Server> server;  // after core: destroyed before it
  std::string rooms_dir;
  bool host_clock = false;
  std::int64_t now = 0;             // host_clock: the engine's time
  std::vector<Input> inputs;        // in the order sent, handled at the next step
  std::vector<std::shared_ptr<LocalClient::State>> clients;
  std::function<void(int, std::string_view)> on_log;

  void log(int level, std::string_view line) const {
    if (on_log) on_log(level, line);
  }
  void queue_close(const std::shared_ptr<LocalClient::State>& c, bool clean) {
    inputs.push_back({c, {}, clean});
  }
  // Runs everything due up to `until` in time order, the clock at each timer's instant, so
  // that steps of 1 ms or of 1000 ms give the same lines.
  void run_timers_until(std::int64_t until);
  void step(std::int64_t now_ms);
};

void LocalClient::State::close(int code, std::string_view) {
  if (closed || !engine) return;
  closed = true;
  engine->queue_close(shared_from_this(), code == 1000 || code == 1001);
}

void Engine::Impl::run_timers_until(std::int64_t until) {
  for (int instants = 0; instants < kMaxInstantsPerStep; ++instants) {
    const std::int64_t wait = core->ms_until_next();
    if (wait < 0 || now + wait > until) return;
    now += wait;
    core->set_host_time(now);
    core->run_due();
    core->end_of_pass();
  }
  log(2, "embed step_cut instants=" + std::to_string(kMaxInstantsPerStep) +
             " (timers keep coming due at the same instant: setTimeout(0) in a loop?)");
}

void Engine::Impl::step(std::int64_t now_ms) {
  if (host_clock) {
    run_timers_until(now_ms);
    if (now_ms > now) now = now_ms;
    core->set_host_time(now);
  }
  std::vector<Input> batch;
  batch.swap(inputs);
  for (Input& in : batch) {
    if (in.message.empty()) {
      core->disconnect(in.client->id, in.clean);
      in.client->engine = nullptr;
      std::erase(clients, in.client);
    } else if (!in.client->closed) {
      core->receive(in.client->id, in.message);
    }
  }
  core->run_due();
  core->end_of_pass();
  if (server) {
    if (Status s = server->serve_ready(); !s) log(3, "embed serve_failed what=" + s.error().message);
  }
}

// ---------------------------------------------------------------------------------------
// LocalClient

LocalClient::LocalClient(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

LocalClient::~LocalClient() { close(); }

void LocalClient::send(std::string_view json) noexcept {
  State& s = *state_;
  if (s.closed || !s.engine) return;
  try {
    if (json.empty()) json = " ";  // an empty message is bad JSON on the wire too, not a close
    s.engine->inputs.push_back({state_, std::string(json)});
  } catch (...) {
    s.engine->log(3, "embed send_dropped client=" + s.wire_id + " (out of memory)");
  }
}

bool LocalClient::receive(std::string& line) noexcept {
  State& s = *state_;
  if (s.lines.empty()) return false;
  try {
    line.assign(s.lines.front().view());
  } catch (...) {
    return false;
  }
  s.lines.pop_front();
  return true;
}

std::string LocalClient::id() const noexcept {
  try {
    return state_->wire_id;
  } catch (...) {
    return {};
  }
}

void LocalClient::close() noexcept {
  State& s = *state_;
  if (s.closed || !s.engine) return;
  s.closed = true;
  try {
    s.engine->queue_close(state_, true);
  } catch (...) {
    s.engine->log(3, "embed close_dropped client=" + s.wire_id + " (out of memory)");
  }
}

// ---------------------------------------------------------------------------------------
// Engine

Engine::Engine(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

Engine::~Engine() {
  if (!impl_) return;
  try {
    impl_->core->shutdown();  // every member gets left "closed"; sockets get 1001
    if (impl_->server) (void)impl_->server->serve_ready();
    impl_->server.reset();
  } catch (...) {
  }
  for (auto& c : impl_->clients) c->engine = nullptr;
}

std::unique_ptr<Engine> Engine::create(const Options& o, std::string* error) noexcept {
  auto fail = [&](std::string why) -> std::unique_ptr<Engine> {
    if (error) *error = std::move(why);
    return nullptr;
  };
  try {
    if (!is_directory(o.rooms_dir)) return fail("rooms_dir is not a directory: " + o.rooms_dir);
    auto impl = std::make_unique<Impl>();
    impl->host_clock = o.host_clock;
    impl->rooms_dir = o.rooms_dir;
    impl->on_log = o.on_log;
    engine::EngineConfig c;
    c.rooms_dir = o.rooms_dir;
    c.lua_dir = lua_dir_of(o);
    c.host_clock = o.host_clock;
    c.seed = o.seed;
    c.cpu_budget_ms = o.cpu_budget_ms;
    c.room_memory_bytes = o.room_memory_mb << 20;
    c.memory_bytes = o.memory_mb << 20;
    c.record_path = o.record_path;
    c.synctest = o.synctest;
    c.max_rooms_per_connection = o.max_rooms_per_connection;
    c.rate = o.rate;
    if (o.on_log) {
      auto sink = o.on_log;
      c.on_log = [sink](engine::LogLevel level, std::string_view line) {
        sink(static_cast<int>(level), line);
      };
    }
    impl->core = std::make_unique<engine::Engine>(std::move(c));
    if (Status s = impl->core->start(); !s) return fail(s.error().message);
    return std::unique_ptr<Engine>(new Engine(std::move(impl)));
  } catch (const std::exception& e) {
    return fail(std::string("the engine could not start: ") + e.what());
  } catch (...) {
    return fail("the engine could not start");
  }
}

std::unique_ptr<LocalClient> Engine::connect(std::string_view user_id) noexcept {
  try {
    auto state = std::make_shared<LocalClient::State>();
    state->engine = impl_.get();
    impl_->clients.push_back(state);
    state->id = impl_->core->connect(*state, std::string(user_id));
    state->wire_id = "c" + std::to_string(state->id);
    return std::unique_ptr<LocalClient>(new LocalClient(std::move(state)));
  } catch (...) {
    impl_->log(3, "embed connect_failed (out of memory)");
    return nullptr;
  }
}

void Engine::step(std::int64_t now_ms) noexcept {
  try {
    impl_->step(now_ms);
  } catch (const std::exception& e) {
    impl_->log(3, std::string("embed step_failed what=") + e.what());
  } catch (...) {
    impl_->log(3, "embed step_failed");
  }
}

int Engine::listen(std::string_view host, int port, std::string* error) noexcept {
  auto fail = [&](std::string why) {
    if (error) *error = std::move(why);
    return -1;
  };
  try {
    if (impl_->server) return fail("this engine listens already, on port " + std::to_string(impl_->server->port()));
    net::ServerConfig c;
    c.host = std::string(host);
    c.port = port;
    c.coalesce_us = 0;          // step() is the loop: what a pass queues goes out in the next
    c.watch_dir = impl_->rooms_dir;  // hot reload, as `atrium serve` does
    if (impl_->on_log) {
      auto sink = impl_->on_log;
      c.on_log = [sink](engine::LogLevel level, std::string_view line) {
        sink(static_cast<int>(level), line);
      };
    }
    auto made = net::Server::create(*impl_->core, std::move(c));
    if (!made) return fail(made.error().message);
    impl_->server = std::move(made.value());
    return impl_->server->port();
  } catch (const std::exception& e) {
    return fail(std::string("cannot listen: ") + e.what());
  } catch (...) {
    return fail("cannot listen");
  }
}

void Engine::register_function(std::string_view name,
                               std::function<std::string(std::string_view)> fn) noexcept {
  try {
    impl_->core->register_host_function(
        std::string(name), [fn = std::move(fn)](std::string_view args) -> Result<std::string> {
          return fn(args);
        });
  } catch (...) {
    impl_->log(3, "embed register_function_failed name=" + std::string(name));
  }
}

}  // namespace atrium
