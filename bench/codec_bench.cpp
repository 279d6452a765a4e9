// JSON against MessagePack (atrium.v1.msgpack) for the frames the benchmarks send most
// (bench/README.md "MessagePack"): bytes per frame, and what transcoding a frame costs, which
// the server pays once per broadcast. Then what permessage-deflate would make of them, both
// ways it can be run: a fresh compressor per message (no context takeover: the same bytes
// for every member, compressed once) and one per connection that remembers the previous
// messages (context takeover: better ratios, but compressed once per member). zlib, raw
// deflate, as RFC 7692 frames it. Not a test: it only prints.
//
//   build/bench/codec_bench [players]      (default 1000, the state scenario's members)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <zlib.h>

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

// RFC 7692 compression of one message: raw deflate, flushed with Z_SYNC_FLUSH, the 4-byte
// tail 00 00 ff ff left out. `z` is reset first unless the context is taken over.
std::size_t deflated(z_stream& z, const std::string& in, bool takeover, std::string& out) {
  if (!takeover) deflateReset(&z);
  out.resize(deflateBound(&z, in.size()) + 16);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_SYNC_FLUSH);
  return out.size() - z.avail_out - 4;
}

// A JSON frame as the benchmark sends it: as it is, or as its MessagePack twin.
std::string encoded(std::string frame, bool msgpack) {
  if (!msgpack) return frame;
  std::string bin;
  (void)atrium::json::json_to_msgpack(frame, bin);
  return bin;
}

// A sequence of state patches, consecutive intervals of the state scenario: every player
// moved in each, so each is a replace of /players with new x, y and t.
std::vector<std::string> patch_sequence(int players, int count, bool msgpack) {
  std::vector<std::string> out;
  std::uint64_t seed = 7;
  for (int k = 0; k < count; ++k) {
    Value map = Value::object();
    for (int i = 0; i < players; ++i) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      Value p = Value::object();
      p.set("x", Value(static_cast<double>((seed >> 33) % 1000)));
      p.set("y", Value(static_cast<double>((seed >> 13) % 1000)));
      p.set("t", Value(static_cast<double>(1733600000000000ull + 50000ull * k + (seed >> 50))));
      map.set("c" + std::to_string(1000 + i), std::move(p));
    }
    std::string ops = "{\"op\":\"replace\",\"path\":\"/players\",\"value\":";
    atrium::json::write(map, ops);
    ops += '}';
    out.push_back(encoded(atrium::engine::encode_patch("field:1", 1000 + k, ops), msgpack));
  }
  return out;
}

// Small frames in a row, as one member gets them: 5-move patches, or fan-out events.
std::vector<std::string> small_sequence(bool events, int count, bool msgpack) {
  std::vector<std::string> out;
  std::uint64_t seed = 11;
  for (int k = 0; k < count; ++k) {
    std::string frame;
    if (events) {
      std::string text;
      for (int i = 0; i < 100; ++i) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        text += static_cast<char>('a' + (seed >> 59));
      }
      frame = std::string(atrium::engine::encode_event_frame("bench", "m", Value(text),
                                                             "c" + std::to_string(1000 + k % 100)).view());
    } else {
      std::string ops;
      for (int i = 0; i < 5; ++i) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        if (i) ops += ',';
        ops += "{\"op\":\"replace\",\"path\":\"/players/c" + std::to_string(1000 + (seed >> 33) % 1000) +
               "\",\"value\":{\"x\":" + std::to_string((seed >> 20) % 1000) + ",\"y\":" +
               std::to_string((seed >> 40) % 1000) + ",\"t\":" + std::to_string(1733600000000000ull + k * 50000ull) + "}}";
      }
      frame = atrium::engine::encode_patch("field:1", 1000 + k, ops);
    }
    out.push_back(encoded(std::move(frame), msgpack));
  }
  return out;
}

template <class Make>
void deflate_rows(const std::string& what, Make&& make) {
  std::printf("\n| %s, deflate | level | bytes / JSON | compress, us per message |\n", what.c_str());
  std::printf("|---|--:|--:|--:|\n");
  const std::vector<std::string> json = make(false);
  double json_bytes = 0;
  for (const std::string& f : json) json_bytes += static_cast<double>(f.size());
  for (bool msgpack : {false, true}) {
    const std::vector<std::string> frames = msgpack ? make(true) : json;
    for (bool takeover : {false, true}) {
      for (int level : {1, 6}) {
        z_stream z{};
        deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        std::string out;
        double bytes = 0;
        for (const std::string& f : frames) bytes += static_cast<double>(deflated(z, f, takeover, out));
        deflateEnd(&z);
        // Time: each message of the sequence, compressed as the mode would.
        std::size_t at = 0;
        z_stream t{};
        deflateInit2(&t, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        const double us = median_us(20, [&] {
          (void)deflated(t, frames[at], takeover, out);
          at = (at + 1) % frames.size();
        });
        deflateEnd(&t);
        std::printf("| %s, %s | %d | %.2f | %.0f |\n", msgpack ? "MessagePack" : "JSON",
                    takeover ? "context takeover (per connection)" : "no context takeover (shared)", level,
                    bytes / json_bytes, us);
      }
    }
  }
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
  deflate_rows(std::to_string(players) + "-player state patches (every player moved)",
               [&](bool mp) { return patch_sequence(players, 20, mp); });
  deflate_rows("state patches of 5 moves", [](bool mp) { return small_sequence(false, 200, mp); });
  deflate_rows("fan-out events, 100 bytes of text", [](bool mp) { return small_sequence(true, 200, mp); });
  return 0;
}
