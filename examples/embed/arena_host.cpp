// A game host in text mode: it links libatrium, runs rooms/arena.lua with its own player on a
// LocalClient, and lets remote players join the same room over WebSocket (a listen-server).
// Every second it prints who is in the arena, from the room's state as its player syncs it.
//
//   c++ -std=c++17 arena_host.cpp $(pkg-config --cflags --libs atrium) -o arena-host
//   ./arena-host --rooms rooms --lua "$(pkg-config --variable=luadir atrium)" --port 8090
//
// Remote players connect to ws://127.0.0.1:PORT/ws and join "arena:main" as with
// `atrium serve`. --seconds N stops after N seconds (default: run until killed). --record FILE
// records the session for `atrium replay FILE --verify`.
#include <atrium/atrium.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// The names in a line's "name":"..." fields: enough JSON for a text-mode status line.
std::string names_in(const std::string& line) {
  std::string out;
  for (std::size_t at = line.find("\"name\":\""); at != std::string::npos;
       at = line.find("\"name\":\"", at + 1)) {
    const std::size_t start = at + 8, end = line.find('"', start);
    if (end == std::string::npos) break;
    out += (out.empty() ? "" : ", ") + line.substr(start, end - start);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  atrium::Options options;
  options.rooms_dir = "rooms";
  int port = 0;
  long seconds = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rooms")) options.rooms_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--lua")) options.lua_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--record")) options.record_path = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: arena-host [--rooms DIR] [--lua DIR] [--port N] [--seconds N] [--record FILE]\n");
      return 2;
    }
  }
  options.on_log = [](int level, std::string_view line) {
    if (level >= 2) std::fprintf(stderr, "atrium: %.*s\n", static_cast<int>(line.size()), line.data());
  };

  std::string error;
  auto engine = atrium::Engine::create(options, &error);
  if (!engine) {
    std::fprintf(stderr, "arena-host: %s\n", error.c_str());
    return 1;
  }
  const int listening = engine->listen("127.0.0.1", port, &error);
  if (listening < 0) {
    std::fprintf(stderr, "arena-host: %s\n", error.c_str());
    return 1;
  }
  std::printf("arena-host listening on 127.0.0.1:%d\n", listening);
  std::fflush(stdout);

  auto me = engine->connect("host");
  me->send(R"({"op":"join","room":"arena:main","payload":{"name":"Host"},"ref":1})");

  const std::int64_t start = now_ms();
  std::int64_t next_print = start + 1000, next_turn = start + 500;
  int turn = 0;
  std::string who;
  while (seconds < 0 || now_ms() - start < seconds * 1000) {
    engine->step(now_ms());
    for (std::string line; me->receive(line);)  // the whole state comes with a sync's reply
      if (line.rfind(R"({"op":"reply","ref":99,)", 0) == 0) who = names_in(line);
    const std::int64_t t = now_ms();
    if (t >= next_turn) {  // the host's player walks a square
      static const int dirs[4][2] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}};
      const int* d = dirs[turn++ % 4];
      me->send("{\"op\":\"call\",\"room\":\"arena:main\",\"method\":\"move\",\"args\":[" +
               std::to_string(d[0]) + "," + std::to_string(d[1]) + "]}");
      next_turn = t + 500;
    }
    if (t >= next_print) {
      std::printf("arena: %s\n", who.empty() ? "(waiting)" : who.c_str());
      std::fflush(stdout);
      me->send(R"({"op":"sync","room":"arena:main","ref":99})");
      next_print = t + 1000;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}
