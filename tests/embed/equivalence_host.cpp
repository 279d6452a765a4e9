// Host equivalence (docs/embedding.md): plays a scenario as a LocalClient on an engine that
// also listens, and prints every line that client got; tests/e2e/embed.test.mjs plays the
// same scenario over a WebSocket to the same engine and compares the lines.
//   equivalence-host ROOMS_DIR LUA_DIR SCENARIO_FILE
// Prints "listening PORT", waits for a line "go ROOM" on stdin, plays SCENARIO_FILE (one
// client message a line, "$ROOM" replaced) in ROOM, each message after the previous reply
// and a quiet spell of 150 ms (so that every patch beat has passed), prints "line ..." for
// each line received and "done". Stops at end of input.
#include <atrium/atrium.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  atrium::Options o;
  o.rooms_dir = argv[1];
  o.lua_dir = argv[2];
  o.on_log = [](int, std::string_view) {};
  std::string error;
  auto engine = atrium::Engine::create(o, &error);
  if (!engine) return std::fprintf(stderr, "%s\n", error.c_str()), 1;
  const int port = engine->listen("127.0.0.1", 0, &error);
  if (port < 0) return std::fprintf(stderr, "%s\n", error.c_str()), 1;
  std::vector<std::string> scenario;
  std::ifstream in(argv[3]);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) scenario.push_back(l);
  std::printf("listening %d\n", port);
  std::fflush(stdout);

  // Serve the sockets while waiting for "go ROOM" (the test's WebSocket plays meanwhile).
  std::string command;
  std::atomic<bool> got{false};
  std::thread reader([&] {
    std::getline(std::cin, command);
    got = true;
  });
  while (!got) {
    engine->step(now_ms());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  reader.join();
  const std::string room = command.size() > 3 ? command.substr(3) : "counter:local";

  auto me = engine->connect();
  auto settle = [&](const std::string& ref) {  // until the reply, then 150 quiet ms
    std::int64_t quiet_from = -1;
    for (const std::int64_t start = now_ms(); now_ms() - start < 5000;) {
      engine->step(now_ms());
      for (std::string line; me->receive(line);) {
        std::printf("line %s\n", line.c_str());
        if (!ref.empty() && line.find("\"ref\":" + ref + ",") != std::string::npos) quiet_from = now_ms();
      }
      if (ref.empty() && quiet_from < 0) quiet_from = now_ms();
      if (quiet_from >= 0 && now_ms() - quiet_from >= 150) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  settle("");  // the welcome
  for (std::string message : scenario) {
    for (std::size_t at; (at = message.find("$ROOM")) != std::string::npos;) message.replace(at, 5, room);
    const std::size_t r = message.find("\"ref\":");
    const std::string ref = r == std::string::npos ? "" : message.substr(r + 6, message.find_first_of(",}", r) - r - 6);
    me->send(message);
    settle(ref);
  }
  std::printf("done\n");
  std::fflush(stdout);
  return 0;
}
