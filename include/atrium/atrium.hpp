// Atrium embedded: a game or any C++ host links libatrium and runs the same rooms/*.lua as
// `atrium serve`, with members that have no socket (LocalClient) and, if it wants, its own
// clock (docs/embedding.md). This header needs nothing but the C++17 standard library, and
// compiles in hosts built with -fno-exceptions -fno-rtti. Every function is noexcept: an
// error is a result and a line through Options::on_log, never an exception, an abort or a
// write to stdout.
//
// Threads: an Engine and everything it made are used from one thread at a time (the one
// that calls step()). Several engines may live in one process, on one thread or several.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#if defined(_WIN32)
#define ATRIUM_API
#else
#define ATRIUM_API __attribute__((visibility("default")))
#endif

namespace atrium {

struct Options {
  std::string rooms_dir;            // room scripts, watched and hot-reloaded as by `atrium serve`
  std::string lua_dir;              // the engine's own lua/; empty: ATRIUM_LUA_PATH, else installed
  bool host_clock = false;          // true: time moves only through step(now_ms)
  std::uint64_t seed = 0;           // every room's math.random derives from it and the room id
  int cpu_budget_ms = 200;          // as the serve flags of the same names
  std::size_t room_memory_mb = 64;
  std::size_t memory_mb = 1024;
  int max_rooms_per_connection = 128;
  int rate = 0;                     // messages/s per client, burst the same; 0: no limit
  // Non-empty: every input and output is recorded to this file, as `atrium serve --record`
  // does; `atrium replay FILE --verify` runs it again and compares (docs/embedding.md).
  std::string record_path;
  // Every hook runs twice, the second time from the same state in tables of another layout;
  // a hook whose changes differ is logged with its line (docs/embedding.md "Synctest").
  bool synctest = false;
  // level: 0 debug, 1 info, 2 warn, 3 error. Default: stderr.
  std::function<void(int level, std::string_view line)> on_log;
};

class Engine;

// A member with no socket. Made by Engine::connect; lives as long as the host keeps it (its
// destructor closes it cleanly), and never longer than its engine.
class ATRIUM_API LocalClient {
 public:
  ~LocalClient();
  LocalClient(const LocalClient&) = delete;
  LocalClient& operator=(const LocalClient&) = delete;

  // One client message, exactly the JSON a WebSocket client sends (docs/protocol.md). It is
  // handled at the engine's next step(), in the order sent, as network input is.
  void send(std::string_view json) noexcept;
  // The next server line for this client, exactly the bytes a WebSocket client gets as one
  // JSON line (no '\n'); false when none is waiting. Lines arrive only inside step(), after
  // the hook that caused them committed: never while a hook runs.
  bool receive(std::string& line) noexcept;
  std::string id() const noexcept;   // the wire id ("c12")
  // As a clean close (onLeave reason "leave"), at the next step(). Later sends are dropped.
  void close() noexcept;

  struct State;

 private:
  friend class Engine;
  explicit LocalClient(std::shared_ptr<State> state) noexcept;
  std::shared_ptr<State> state_;
};

class ATRIUM_API Engine {
 public:
  // nullptr and *error set when the engine cannot start (missing rooms_dir, bad lua dir, ...).
  static std::unique_ptr<Engine> create(const Options& options, std::string* error) noexcept;
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // A local member; its first line is `welcome`. user_id, when given, is its userId (welcome,
  // ctx.userId), as a verified token's `sub` is for a WebSocket client. nullptr when the
  // engine has no memory left for it.
  std::unique_ptr<LocalClient> connect(std::string_view user_id = {}) noexcept;
  // Runs everything due at now_ms: input already sent, timers, ticks, patches. With
  // host_clock, now_ms is the only clock (it never goes backwards: an earlier time counts as
  // the latest one); without it, now_ms is ignored and the real clock runs.
  void step(std::int64_t now_ms) noexcept;
  // Opens the WebSocket + HTTP listener on this engine (port 0: any free port), with the
  // same routes as `atrium serve`, in either clock mode: remote players join the rooms the
  // local ones are in. Returns the port, or -1 with *error set. Sockets are served inside
  // step(), without waiting: the host's step rate is their latency. Also hot-reloads
  // rooms_dir, as `atrium serve` does.
  int listen(std::string_view host, int port, std::string* error) noexcept;
  // A function room scripts call as atrium.host.NAME(args...): the args arrive as one JSON
  // array (`[6,7,"x"]`); the JSON text returned becomes the Lua value the script gets (text
  // that is not JSON fails the script's call, as does an exception where the host has them).
  // It runs inside the script's call: it must not call this engine.
  void register_function(std::string_view name,
                         std::function<std::string(std::string_view args_json)> fn) noexcept;

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace atrium
