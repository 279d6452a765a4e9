// The rooms/ watcher: in-place saves, editor-style rename saves, deletes, temp files.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "watch/rooms_watcher.hpp"

using atrium::watch::RoomsWatcher;
namespace fs = std::filesystem;

namespace {

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

struct Dir {
  fs::path path = fs::temp_directory_path() / ("atrium-watch-" + std::to_string(std::random_device{}()));
  Dir() { fs::create_directories(path); }
  ~Dir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
  }
};

// Reads events until the watcher reports something or 1 s passes.
std::vector<std::string> wait_due(RoomsWatcher& w) {
  const auto until = now_ms() + 1000;
  while (now_ms() < until) {
    REQUIRE(w.read_events(now_ms()));
    auto due = w.take_due(now_ms());
    if (!due.empty()) return due;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

}  // namespace

TEST_CASE("an in-place save and an editor's rename save both report the script once debounced") {
  Dir d;
  RoomsWatcher w(d.path.string(), 20);
  REQUIRE(w.start());
  d.write("chat.lua", "return {}");
  auto due = wait_due(w);
  REQUIRE(due.size() == 1);
  CHECK(due[0] == "chat.lua");

  d.write(".chat.lua.tmp", "return { v = 2 }");
  fs::rename(d.path / ".chat.lua.tmp", d.path / "chat.lua");
  due = wait_due(w);
  REQUIRE(due.size() == 1);
  CHECK(due[0] == "chat.lua");
}

TEST_CASE("a burst of writes to one file is one change, reported after the quiet period") {
  Dir d;
  RoomsWatcher w(d.path.string(), 50);
  REQUIRE(w.start());
  for (int i = 0; i < 5; ++i) d.write("a.lua", "return {} -- " + std::to_string(i));
  REQUIRE(w.read_events(now_ms()));
  CHECK(w.take_due(now_ms()).empty());  // still inside the quiet period
  CHECK(w.ms_until_due(now_ms()) > 0);
  auto due = wait_due(w);
  CHECK(due == std::vector<std::string>{"a.lua"});
}

TEST_CASE("deleting a script is reported; temp and non-Lua files are not") {
  Dir d;
  d.write("gone.lua", "return {}");
  RoomsWatcher w(d.path.string(), 10);
  REQUIRE(w.start());
  d.write("notes.txt", "x");
  d.write(".hidden.lua", "x");
  d.write("chat.lua~", "x");
  fs::remove(d.path / "gone.lua");
  auto due = wait_due(w);
  CHECK(due == std::vector<std::string>{"gone.lua"});
  CHECK(RoomsWatcher::is_room_script("chat.lua"));
  CHECK(!RoomsWatcher::is_room_script("4913"));
  CHECK(!RoomsWatcher::is_room_script(".chat.lua.swp"));
}

TEST_CASE("a missing directory cannot be watched") {
  RoomsWatcher w("/nonexistent/atrium/rooms");
  CHECK(!w.start());
}
