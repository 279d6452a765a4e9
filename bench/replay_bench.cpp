// Record and replay costs (bench/README.md "Record and replay"): rooms/arena.lua with 16
// players under the host clock, each moving at random about twice a second, for SIM_SECONDS
// simulated seconds (default 600), recorded; then the record replayed and verified. Prints
// the recording's wall time against the same run unrecorded (what recording costs), the
// record's size, and the replay's inputs and output entries per second.
// Usage: build-rel/bench/replay_bench [SIM_SECONDS]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/replay.hpp"

namespace {

using namespace atrium;
using Clock = std::chrono::steady_clock;

struct Sink : engine::ClientSink {
  std::size_t lines = 0;
  void send(const SharedFrame&) override { ++lines; }
  void close(int, std::string_view) override {}
};

// One arena session; returns its wall time in seconds.
double run(long sim_seconds, const std::string& record) {
  engine::EngineConfig c;
  c.rooms_dir = ATRIUM_SOURCE_LUA_DIR "/../rooms";
  c.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  c.host_clock = true;
  c.seed = 1;
  c.random_seed = 2;
  c.record_path = record;
  c.on_log = [](engine::LogLevel, std::string_view) {};
  engine::Engine e(c);
  if (!e.start()) std::exit(1);
  std::vector<Sink> sinks(16);
  std::vector<engine::ClientId> ids;
  std::mt19937 rng(3);
  const auto t0 = Clock::now();
  for (Sink& s : sinks) {
    ids.push_back(e.connect(s));
    e.receive(ids.back(), R"({"op":"join","room":"arena:main","ref":1})");
  }
  for (std::int64_t now = 0; now < sim_seconds * 1000; now += 50) {  // a 20 Hz host loop
    e.set_host_time(now);
    for (engine::ClientId id : ids) {
      if (rng() % 10 != 0) continue;
      const int dx = static_cast<int>(rng() % 3) - 1, dy = static_cast<int>(rng() % 3) - 1;
      e.receive(id, "{\"op\":\"call\",\"room\":\"arena:main\",\"method\":\"move\",\"args\":[" +
                        std::to_string(dx) + "," + std::to_string(dy) + "]}");
    }
    e.run_due();
    e.end_of_pass();
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const long sim = argc > 1 ? std::atol(argv[1]) : 600;
  const std::string record =
      (std::filesystem::temp_directory_path() / ("atrium-replay-bench-" + std::to_string(::getpid()) + ".rec")).string();
  const double plain = run(sim, "");
  const double recorded = run(sim, record);
  std::printf("arena, 16 players, %ld simulated s: %.3f s unrecorded, %.3f s recorded (x%.2f)\n", sim,
              plain, recorded, recorded / plain);
  std::printf("record: %.1f MB\n", static_cast<double>(std::filesystem::file_size(record)) / 1e6);
  engine::ReplayOptions o;
  o.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  auto r = engine::replay(record, o);
  std::filesystem::remove(record);
  if (!r || !r.value().identical) {
    std::printf("replay failed: %s\n", r ? engine::describe(r.value()).c_str() : r.error().message.c_str());
    return 1;
  }
  const engine::ReplayReport& rep = r.value();
  std::printf("replay --verify: %zu inputs, %zu output entries in %.3f s: %.0f inputs/s, %.0f entries/s\n",
              rep.inputs, rep.outputs, rep.seconds, rep.inputs / rep.seconds, rep.outputs / rep.seconds);
  return 0;
}
