// What the CPU-budget design costs (issue 4): room code runs in LuaJIT's interpreter (the
// JIT is off for it, because count hooks do not fire inside compiled traces) under a
// count hook that reads the clock every 1,000 VM instructions. This prints:
//   1. a Lua workload in the interpreter with and without the hook, and with the JIT on;
//   2. ns per call_hook of an empty function (the door every hook goes through);
//   3. ns per empty action through the whole engine (parse, dispatch, hook, commit, reply).
//   4. us per move action in the field room (bench/rooms) with 1,000 and 100,000 players:
//      setIn (field.lua) against direct mutation (field_scan.lua).
//   5. us per say in a chat room whose messages array holds 100 or 1,000 messages, capped
//      (the oldest goes: the array shifts) or growing.
//   6. us per incoming message fanned out to a room of 100 members: an untyped room's
//      emit, and the typed room of bench/rooms/fan.lua (an action that emits): the engine's
//      share of the fan-out scenarios, without the sockets.
// Usage: build/bench/hook_bench [fanout]   (about 30 s; thread CPU time, median of 7 runs;
// "fanout": part 6 only)
#include <lua.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "json/value.hpp"
#include "script/hook_call.hpp"

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

constexpr int kSamples = 7;  // runs per figure; the median is reported

double median_seconds(const std::function<void()>& run, int samples = kSamples) {
  std::vector<double> t;
  for (int i = 0; i < samples; ++i) {
    const double t0 = cpu_seconds();
    run();
    t.push_back(cpu_seconds() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

const char* kWorkload = R"(
  local t, s = {}, 0
  for i = 1, 1000 do t[i] = 0 end
  for i = 1, 2000000 do
    t[i % 1000 + 1] = i
    s = s + t[(i * 7) % 1000 + 1] % 13
  end
  return s
)";

lua_State* new_state(bool jit) {
  lua_State* L = luaL_newstate();
  lua_pushcfunction(L, luaopen_base);
  lua_call(L, 0, 0);
  if (jit) {
    lua_pushcfunction(L, luaopen_jit);
    lua_call(L, 0, 0);
  } else {
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  }
  return L;
}

double workload(bool jit, bool budget) {
  lua_State* L = new_state(jit);
  atrium::script::Budget b;
  b.cpu_ms = 60000;
  const double s = median_seconds([&] {
    luaL_loadstring(L, kWorkload);
    if (budget) {
      auto r = atrium::script::call_hook(L, 0, 1, b);
      if (!r.ok) std::fprintf(stderr, "workload failed: %s\n", r.message.c_str());
    } else {
      lua_call(L, 0, 1);
    }
    lua_settop(L, 0);
  });
  lua_close(L);
  return s;
}

double empty_call_ns() {
  lua_State* L = new_state(false);
  luaL_loadstring(L, "return function() end");
  lua_call(L, 0, 1);
  const int fn = luaL_ref(L, LUA_REGISTRYINDEX);
  atrium::script::Budget b;
  const int n = 200000;
  const double s = median_seconds([&] {
    for (int i = 0; i < n; ++i) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
      (void)atrium::script::call_hook(L, 0, 0, b);
    }
  });
  lua_close(L);
  return s / n * 1e9;
}

struct NullSink : atrium::engine::ClientSink {
  std::size_t lines = 0;
  void send(const atrium::SharedFrame&) override { ++lines; }
  void close(int, std::string_view) override {}
};

atrium::engine::EngineConfig config_for(const std::filesystem::path& rooms_dir) {
  atrium::engine::EngineConfig cfg;
  cfg.rooms_dir = rooms_dir.string();
  cfg.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  cfg.cpu_budget_ms = 60000;
  cfg.on_log = [](atrium::engine::LogLevel, std::string_view) {};
  return cfg;
}

// An engine on the room scripts in `rooms_dir` with one client joined to `room`; when
// `fill` >= 0, the room's plain method fill(fill) has run too. `ok` says all went well.
struct BenchRoom {
  NullSink sink;
  atrium::engine::Engine engine;
  atrium::engine::ClientId client = 0;
  bool ok = false;

  BenchRoom(const std::filesystem::path& rooms_dir, const std::string& room, int fill = -1)
      : engine(config_for(rooms_dir)) {
    if (!engine.start()) return;
    client = engine.connect(sink);
    engine.receive(client, R"({"op":"join","ref":1,"room":")" + room + R"("})");
    if (fill < 0) {
      ok = true;
      return;
    }
    atrium::json::Value args = atrium::json::Value::array();
    args.push_back(fill);
    ok = static_cast<bool>(engine.call(room, "fill", args));
  }
};

double empty_action_ns() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "atrium-hook-bench";
  fs::create_directories(dir);
  std::ofstream(dir / "b.lua") << "local B = { actions = {} }\nfunction B.actions.noop() end\nreturn B\n";
  BenchRoom room(dir, "b:1");
  if (!room.ok) return -1;
  atrium::engine::Engine& e = room.engine;
  const auto id = room.client;
  const int n = 100000;
  const std::string call = R"({"op":"call","ref":2,"room":"b:1","method":"noop"})";
  const double s = median_seconds([&] {
    for (int i = 0; i < n; ++i) e.receive(id, call);
  });
  fs::remove_all(dir);
  return s / n * 1e9;
}

// One move action through the engine in a room of `players` players, in microseconds:
// bench/rooms/<file> (field.lua writes with setIn, field_scan.lua mutates self.state),
// with a plain method added that fills the room without as many joins.
double move_us(const char* file, int players, int calls) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "atrium-hook-bench-field";
  fs::create_directories(dir);
  std::ifstream in(fs::path(ATRIUM_SOURCE_LUA_DIR) / ".." / "bench" / "rooms" / file);
  std::string code((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t ret = code.rfind("return Field");
  if (ret == std::string::npos) return -1;
  code.insert(ret, "function Field:fill(n)\n"
                   "  local players = self.state.players\n"
                   "  for i = 1, n do players['p' .. i] = { x = i, y = i, t = 0 } end\n"
                   "end\n");
  std::ofstream(dir / "field.lua") << code;
  BenchRoom room(dir, "field:1", players - 1);
  if (!room.ok) return -1;
  atrium::engine::Engine& e = room.engine;
  const auto id = room.client;
  int i = 0;
  const double s = median_seconds([&] {
    for (int c = 0; c < calls; ++c, ++i) {
      e.receive(id, R"({"op":"call","ref":2,"room":"field:1","method":"move","args":[)" +
                        std::to_string(i) + "," + std::to_string(i) + "," +
                        std::to_string(1700000000000 + i) + "]}");  // t moves too, as live
    }
    e.run_due();                                    // lets the patch out
  });
  fs::remove_all(dir);
  return s / calls * 1e6;
}

// One `say` through the engine in a chat room whose log already holds `cap` messages and
// keeps the last `cap` (table.insert, then table.remove of the oldest: the log shifts) or,
// with `grow`, keeps them all. In microseconds. Direct mutation of an array of records:
// the commonest shape of a web room's state.
double say_us(int cap, bool grow, int calls) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "atrium-hook-bench-chat";
  fs::create_directories(dir);
  std::ofstream(dir / "chat.lua") << R"(
local Chat = { defaultState = { messages = atrium.array(), online = 0 }, actions = {} }
function Chat:fill(n)
  local m = self.state.messages
  for i = 1, n do m[i] = { user = "c" .. i, text = "message number " .. i, ts = 1700000000000 + i } end
end
function Chat.actions.say(self, ctx, text, cap)
  local m = self.state.messages
  table.insert(m, { user = ctx.client, text = text, ts = 1700000000000 + #m })
  if cap > 0 and #m > cap then table.remove(m, 1) end
end
return Chat
)";
  BenchRoom room(dir, "chat:1", cap);
  if (!room.ok) return -1;
  atrium::engine::Engine& e = room.engine;
  const auto id = room.client;
  const std::string limit = grow ? "0" : std::to_string(cap);
  int i = 0;
  const double s = median_seconds([&] {
    for (int c = 0; c < calls; ++c, ++i)
      e.receive(id, R"({"op":"call","ref":2,"room":"chat:1","method":"say","args":["hello )" +
                        std::to_string(i) + R"(",)" + limit + "]}");
    e.run_due();
  });
  fs::remove_all(dir);
  return s / calls * 1e6;
}

// One incoming message fanned out to `members` - 1 others, in microseconds: an untyped
// room's emit, or (typed) a call of fan.lua's say, which emits to all but the caller. The
// sinks only count, so this is the engine's part: parse, dispatch, (hook,) encode, and a
// queue push per member.
double fanout_us(bool typed, int members, int calls) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "atrium-hook-bench-fan";
  fs::create_directories(dir);
  fs::copy_file(fs::path(ATRIUM_SOURCE_LUA_DIR) / ".." / "bench" / "rooms" / "fan.lua",
                dir / "fan.lua", fs::copy_options::overwrite_existing);
  const std::string room = typed ? "fan:1" : "plain";
  std::vector<NullSink> sinks(static_cast<std::size_t>(members));
  atrium::engine::Engine e(config_for(dir));
  std::vector<atrium::engine::ClientId> ids;
  if (!e.start()) return -1;
  for (NullSink& sink : sinks) {
    ids.push_back(e.connect(sink));
    e.receive(ids.back(), R"({"op":"join","ref":1,"room":")" + room + R"("})");
  }
  const std::string text = std::string(40, 'x');  // ~100-byte messages, as bench/load sends
  const std::string message =
      typed ? R"({"op":"call","room":"fan:1","method":"say","args":[")" + text + R"("]})"
            : R"({"op":"emit","room":"plain","event":"m","data":")" + text + R"("})";
  const std::size_t before = sinks[1].lines;
  const double s = median_seconds([&] {
    for (int c = 0; c < calls; ++c) e.receive(ids[0], message);
  });
  fs::remove_all(dir);
  if (sinks[1].lines - before != static_cast<std::size_t>(kSamples * calls)) return -1;  // not fanned out
  return s / calls * 1e6;
}

// Parts 1 to 5.
void print_budget_sections() {
  const double interp = workload(false, false);
  const double hooked = workload(false, true);
  const double jit = workload(true, false);
  std::printf("## Budget design\n\n");
  std::printf("| Lua workload (2M loop iterations, table reads and writes) | ms | vs interpreter |\n");
  std::printf("|---|--:|--:|\n");
  std::printf("| interpreter, no hook | %.1f | 1.00 |\n", interp * 1e3);
  std::printf("| interpreter + count hook with clock check (what rooms run) | %.1f | %.2f |\n",
              hooked * 1e3, hooked / interp);
  std::printf("| JIT on, no hook (cannot be stopped: not used for room code) | %.1f | %.2f |\n\n", jit * 1e3, jit / interp);
  std::printf("| per call | ns |\n|---|--:|\n");
  std::printf("| call_hook of an empty function | %.0f |\n", empty_call_ns());
  std::printf("| empty action through the engine (parse, dispatch, hook, commit, reply) | %.0f |\n",
              empty_action_ns());
  std::printf("\n## A move in the field room (bench/rooms), us per action through the engine\n\n");
  std::printf("| players | field.lua (setIn) | field_scan.lua (self.state) |\n|--:|--:|--:|\n");
  for (const int players : {1000, 100000}) {
    const int scan_calls = players > 10000 ? 5 : 100;
    std::printf("| %d | %.1f | %.0f |\n", players, move_us("field.lua", players, 2000),
                move_us("field_scan.lua", players, scan_calls));
  }
  std::printf("\n## A say in a chat room (messages in an array), us per action through the engine\n\n");
  std::printf("| messages | log capped (shifts) | log grows |\n|--:|--:|--:|\n");
  for (const int cap : {100, 1000})
    std::printf("| %d | %.1f | %.1f |\n", cap, say_us(cap, false, 200), say_us(cap, true, 200));
}

}  // namespace

int main(int argc, char** argv) {
  const bool fanout_only = argc > 1 && std::string(argv[1]) == "fanout";
  if (!fanout_only) print_budget_sections();
  std::printf("\n## Fan-out of one incoming message to 99 members, us through the engine\n\n");
  std::printf("| untyped room, emit | typed room (fan.lua), action that emits |\n|--:|--:|\n");
  std::printf("| %.2f | %.2f |\n", fanout_us(false, 100, 20000), fanout_us(true, 100, 20000));
  return 0;
}
