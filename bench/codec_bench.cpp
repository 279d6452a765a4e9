// JSON against MessagePack (atrium.v1.msgpack) for the frames the benchmarks send most
// (bench/README.md "MessagePack"): bytes per frame, and what transcoding a frame costs, which
// the server pays once per broadcast. Not a test: it only prints.
//
//   build/bench/codec_bench [players]      (default 1000, the state scenario's members)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "engine/protocol.hpp"
#include "json/codec.hpp"
#include "json/messagepack.hpp"

using atrium::json::Value;

namespace {

double cpu_us() {   // thread CPU time: a shared VM's wall clock measures the neighbours
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// The median of 15 batches of `runs` calls of fn, in microseconds per call.
template <class Fn>
double median_us(int runs, Fn&& fn) {
  std::vector<double> batches;
  for (int b = 0; b < 15; ++b) {
    const double t0 = cpu_us();
    for (int i = 0; i < runs; ++i) fn();
    batches.push_back((cpu_us() - t0) / runs);
  }
  std::sort(batches.begin(), batches.end());
  return batches[batches.size() / 2];
}

void row(const char* what, const std::string& json, int runs) {
  std::string bin;
  if (!atrium::json::json_to_msgpack(json, bin)) std::abort();
  const double transcode = median_us(runs, [&] {
    std::string out;
    (void)atrium::json::json_to_msgpack(json, out);
  });
  const double parse = median_us(runs, [&] { (void)atrium::json::parse(json); });
  std::printf("| %s | %zu | %zu | %.2f | %.1f | %.1f |\n", what, json.size(), bin.size(),
              static_cast<double>(bin.size()) / static_cast<double>(json.size()), transcode, parse);
}

}  // namespace

int main(int argc, char** argv) {
  const int players = argc > 1 ? std::atoi(argv[1]) : 1000;
  // The state scenario's patch (bench/rooms/field.lua, atrium-load --mode state): most
  // players moved in the interval, so the patch is one replace of /players, each entry
  // {x, y, t} with x, y in 0..999 and t a microsecond timestamp.
  Value map = Value::object();
  std::uint64_t seed = 42;
  for (int i = 0; i < players; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    Value p = Value::object();
    p.set("x", Value(static_cast<double>((seed >> 33) % 1000)));
    p.set("y", Value(static_cast<double>((seed >> 13) % 1000)));
    p.set("t", Value(static_cast<double>(1733600000000000ull + (seed >> 40))));
    map.set("c" + std::to_string(1000 + i), std::move(p));
  }
  std::string ops = "{\"op\":\"replace\",\"path\":\"/players\",\"value\":";
  atrium::json::write(map, ops);
  ops += '}';
  const std::string patch = atrium::engine::encode_patch("field:1", 123456, ops);
  // A few players moved: a patch of single replaces.
  std::string few;
  for (int i = 0; i < 5; ++i) {
    if (i) few += ',';
    few += "{\"op\":\"replace\",\"path\":\"/players/c" + std::to_string(1000 + i) +
           "\",\"value\":{\"x\":417,\"y\":23,\"t\":1733600000123456}}";
  }
  const std::string small_patch = atrium::engine::encode_patch("field:1", 123457, few);
  // The fan-out scenario's event: a 100-byte message relayed to the room.
  const std::string event =
      atrium::engine::encode_event_frame("bench", "m", Value(std::string(100, 'x')), "c1017").view().data();

  std::printf("| frame | JSON bytes | MessagePack bytes | MessagePack / JSON | transcode, us | JSON parse alone, us |\n");
  std::printf("|---|--:|--:|--:|--:|--:|\n");
  row(("state patch, " + std::to_string(players) + " players").c_str(), patch, 20);
  row("state patch, 5 moves", small_patch, 2000);
  row("fan-out event, 100-byte text", event, 5000);
  return 0;
}
