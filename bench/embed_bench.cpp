// The embedding API's costs (bench/README.md "Embedding"), through include/atrium/atrium.hpp
// only, linked against the static libatrium:
//   1. a LocalClient call round trip (send, step, receive the reply), against the same call
//      from a WebSocket client on loopback to the same engine's listen(), in one run;
//   2. 10,000 simulated seconds of rooms/arena.lua (20 Hz ticks) with 16 local players under
//      the host clock, stepped every 50 ms: wall time.
// Run: ninja -C build-rel bench/embed_bench && build-rel/bench/embed_bench
//      build-rel/bench/embed_bench 2000 arena lines.txt   (every player's lines, to compare builds)
#include <atrium/atrium.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

atrium::Options options(bool host_clock) {
  atrium::Options o;
  o.rooms_dir = ATRIUM_SOURCE_LUA_DIR "/../rooms";
  o.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  o.host_clock = host_clock;
  o.on_log = [](int, std::string_view) {};
  return o;
}

// A minimal blocking WebSocket client for loopback (RFC 6455: the handshake, masked text
// frames out, unmasked frames in, payloads under 64 KiB).
struct WsClient {
  int fd = -1;
  std::string buf;

  bool open(int port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const std::string req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n";
    return ::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size());
  }
  void send(const std::string& text) {
    std::string f;
    f.push_back(static_cast<char>(0x81));
    if (text.size() < 126) {
      f.push_back(static_cast<char>(0x80 | text.size()));
    } else {
      f.push_back(static_cast<char>(0x80 | 126));
      f.push_back(static_cast<char>(text.size() >> 8));
      f.push_back(static_cast<char>(text.size() & 0xff));
    }
    f.append(4, '\0');  // a zero mask: the payload goes as is
    f += text;
    (void)::write(fd, f.data(), f.size());
  }
  // Reads what is there without waiting; true once `needle` has arrived (and drops it all).
  bool poll_for(const std::string& needle) {
    char tmp[65536];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 0) > 0) {
      const ssize_t n = ::read(fd, tmp, sizeof tmp);
      if (n <= 0) break;
      buf.append(tmp, static_cast<std::size_t>(n));
    }
    if (buf.find(needle) == std::string::npos) return false;
    buf.clear();
    return true;
  }
  ~WsClient() {
    if (fd >= 0) ::close(fd);
  }
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

const std::string kCall = R"({"op":"call","room":"counter:bench","method":"myBumps","ref":2})";

// ns per LocalClient round trip on `engine` (which may also listen: then every step polls).
double local_round_trip_ns(atrium::Engine& engine) {
  auto local = engine.connect();
  local->send(R"({"op":"join","room":"counter:bench","ref":1})");
  engine.step(now_ms());
  std::string line;
  while (local->receive(line)) {}
  const int n = 20000;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    local->send(kCall);
    engine.step(0);
    while (local->receive(line)) {}
  }
  return seconds_since(t0) / n * 1e9;
}

void round_trips() {
  std::string error;
  auto quiet = atrium::Engine::create(options(false), &error);
  auto engine = atrium::Engine::create(options(false), &error);
  if (!quiet || !engine) {
    std::printf("cannot start: %s\n", error.c_str());
    return;
  }
  const double alone_ns = local_round_trip_ns(*quiet);
  const int port = engine->listen("127.0.0.1", 0, &error);
  const double local_ns = local_round_trip_ns(*engine);
  const std::string& call = kCall;

  WsClient ws;
  double ws_ns = -1;
  if (port > 0 && ws.open(port)) {
    auto pump = [&](const std::string& needle) {
      for (int spins = 0; spins < 1000000; ++spins) {
        engine->step(0);
        if (ws.poll_for(needle)) return true;
      }
      return false;
    };
    pump("HTTP/1.1 101");
    pump("\"op\":\"welcome\"");
    ws.send(R"({"op":"join","room":"counter:bench","ref":1})");
    pump("\"ref\":1");
    const int m = 5000;
    const auto t0 = Clock::now();
    for (int i = 0; i < m; ++i) {
      ws.send(call);
      if (!pump("\"ref\":2")) break;
    }
    ws_ns = seconds_since(t0) / m * 1e9;
  }
  std::printf("| call round trip (send, step, reply), ns | LocalClient, engine not listening | "
              "LocalClient, engine listening | WebSocket on loopback, same engine |\n");
  std::printf("|---|--:|--:|--:|\n| `counter.myBumps` | %.0f | %.0f | %.0f |\n\n", alone_ns, local_ns, ws_ns);
}

// `dump`: when set, every line each player receives goes there, "player: line" per line, so
// two builds can be compared byte for byte (bench/README.md "Embedding").
void arena_simulation(std::int64_t simulated_s, std::FILE* dump) {
  std::string error;
  auto engine = atrium::Engine::create(options(true), &error);
  if (!engine) return;
  std::vector<std::unique_ptr<atrium::LocalClient>> players;
  for (int i = 0; i < 16; ++i) {
    players.push_back(engine->connect());
    players.back()->send(R"({"op":"join","room":"arena:sim"})");
  }
  std::mt19937 rng(7);
  std::string line;
  std::size_t lines = 0;
  const std::int64_t simulated_ms = simulated_s * 1000;
  auto t0 = Clock::now();
  for (std::int64_t t = 0; t <= simulated_ms; t += 50) {
    if (t % 1000 == 0)
      for (auto& p : players)
        p->send("{\"op\":\"call\",\"room\":\"arena:sim\",\"method\":\"move\",\"args\":[" +
                std::to_string(static_cast<int>(rng() % 3) - 1) + "," +
                std::to_string(static_cast<int>(rng() % 3) - 1) + "]}");
    engine->step(t);
    for (std::size_t i = 0; i < players.size(); ++i)
      while (players[i]->receive(line)) {
        ++lines;
        if (dump) std::fprintf(dump, "%zu: %s\n", i, line.c_str());
      }
  }
  std::printf("| %lld simulated s of arena.lua (20 Hz), 16 local players, 50 ms steps | wall s | lines |\n",
              static_cast<long long>(simulated_s));
  std::printf("|---|--:|--:|\n| host clock | %.2f | %zu |\n", seconds_since(t0), lines);
}

}  // namespace

// embed_bench [SIMULATED_SECONDS [arena [DUMP_FILE]]]: 10,000 s by default; "arena" skips the
// round trips; DUMP_FILE receives every line the 16 players get (to compare two builds).
int main(int argc, char** argv) {
  const std::int64_t simulated_s = argc > 1 ? std::atoll(argv[1]) : 10000;
  if (argc < 3) round_trips();
  std::FILE* dump = argc > 3 ? std::fopen(argv[3], "w") : nullptr;
  arena_simulation(simulated_s, dump);
  if (dump) std::fclose(dump);
  return 0;
}
