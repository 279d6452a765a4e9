// The embedding API as a host uses it (include/atrium/atrium.hpp, docs/embedding.md): rooms
// driven only through LocalClient, no socket opened, time from the host's clock. Includes
// nothing of the engine: what compiles here compiles in a host.
#include <atrium/atrium.hpp>
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// A rooms directory of its own, removed at the end.
struct Rooms {
  fs::path dir;
  Rooms() {
    std::string tmpl = (fs::temp_directory_path() / "atrium-embed-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  ~Rooms() { fs::remove_all(dir); }
  void write(const std::string& file, const std::string& text) const {
    std::ofstream(dir / file) << text;
  }
};

// A room with everything the clock drives: a patch beat, a tick, a timeout and an interval.
// Its state is one array (c[1] ticks, c[2] beats, c[3] the time of the last mark, then the
// marks): an object's key order is not yet defined across engines (docs/embedding.md).
const char* const kClock = R"lua(local C = {
  defaultState = { c = atrium.array({ 0, 0, 0 }) },
  options = { tickRate = 20, patchRate = 50 },
}
function C:onCreate()
  self:setInterval(70, function() self.state.c[2] = self.state.c[2] + 1 end)
  self:setTimeout(333, function() self:emit("late", { at = atrium.now() }) end)
end
function C:onTick() self.state.c[1] = self.state.c[1] + 1 end
C.actions = {}
function C.actions.mark(self, ctx, what)
  table.insert(self.state.c, what)
  self.state.c[3] = atrium.now()
  return atrium.now()
end
function C.actions.host(self, ctx, a, b) return atrium.host.add(a, b) end
function C.actions.roll() return { math.random(1000000), math.random(1000000) } end
function C.actions.times() return { os.time(), os.clock(), os.date("!%Y-%m-%d %H:%M:%S") } end
function C.actions.badhost(self, ctx) return atrium.host.nothing() end
function C.actions.nonjson(self, ctx) return atrium.host.broken() end
return C
)lua";

const char* const kGate = R"lua(local G = { defaultState = { n = 0 } }
function G:onJoin(ctx)
  if ctx.payload.key ~= "open" then return false, "no key" end
  self.state.n = self.state.n + 1
end
function G:onLeave(ctx) self.state.last = ctx.reason end
G.actions = {}
function G.actions.leaves(self) return self.state.last end
return G
)lua";

atrium::Options options_for(const Rooms& rooms, bool host_clock = true) {
  atrium::Options o;
  o.rooms_dir = rooms.dir.string();
  o.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  o.host_clock = host_clock;
  o.on_log = [](int, std::string_view) {};
  return o;
}

// An engine on `rooms` with the host clock (tweaked by `options` when given), or a failed check.
std::unique_ptr<atrium::Engine> start(const Rooms& rooms, atrium::Options options = {}) {
  if (options.rooms_dir.empty()) options = options_for(rooms);
  std::string error;
  auto engine = atrium::Engine::create(options, &error);
  REQUIRE_MESSAGE(engine, error);
  return engine;
}

std::vector<std::string> drain(atrium::LocalClient& c) {
  std::vector<std::string> lines;
  for (std::string line; c.receive(line);) lines.push_back(line);
  return lines;
}

bool contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const std::string& l : lines)
    if (l.find(part) != std::string::npos) return true;
  return false;
}

// The clock room's scenario: inputs at fixed times, stepped in increments of `step_ms`
// (and at each input's time, as a host steps when its input happens). The lines of one
// client, then of the other, each in order.
std::vector<std::string> clock_scenario(int step_ms) {
  Rooms rooms;
  rooms.write("clock.lua", kClock);
  atrium::Options options = options_for(rooms);
  options.seed = 7;  // the room's epoch is in the lines: the same in every run under a seed
  auto engine = start(rooms, options);
  auto a = engine->connect();
  auto b = engine->connect("bea");
  const std::map<std::int64_t, std::pair<atrium::LocalClient*, std::string>> inputs = {
      {0, {a.get(), R"({"op":"join","room":"clock:1","ref":1})"}},
      {5, {b.get(), R"({"op":"join","room":"clock:1","ref":1})"}},
      {149, {a.get(), R"({"op":"call","room":"clock:1","method":"mark","args":["x"],"ref":2})"}},
      {777, {b.get(), R"({"op":"call","room":"clock:1","method":"mark","args":["y"],"ref":3})"}},
      {1900, {a.get(), R"({"op":"leave","room":"clock:1","ref":4})"}},
  };
  std::vector<std::string> out;
  // The welcome's session is a random secret (not part of what the clock decides).
  auto masked = [](std::string l) {
    const std::size_t at = l.find("\"session\":\"");
    if (at != std::string::npos) l.replace(at + 11, 32, 32, 'x');
    return l;
  };
  // Each client's own lines, in order (how a step interleaves reading two clients is the
  // test's, not the engine's).
  std::vector<std::string> out_b;
  auto collect = [&] {
    for (const std::string& l : drain(*a)) out.push_back("a " + masked(l));
    for (const std::string& l : drain(*b)) out_b.push_back("b " + masked(l));
  };
  std::int64_t t = 0;
  auto next_input = inputs.begin();
  for (bool last = false; !last;) {
    last = t == 2500;
    while (next_input != inputs.end() && next_input->first == t) {
      next_input->second.first->send(next_input->second.second);
      ++next_input;
    }
    engine->step(t);
    collect();
    std::int64_t next = std::min<std::int64_t>(t + step_ms, 2500);
    if (next_input != inputs.end() && next_input->first < next) next = next_input->first;
    t = next;
  }
  out.insert(out.end(), out_b.begin(), out_b.end());
  if (std::getenv("ATRIUM_DUMP")) {
    std::ofstream dump("/tmp/atrium-dump-" + std::to_string(step_ms) + ".txt");
    for (const std::string& l : out) dump << l << "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("a LocalClient joins, calls and gets the state as patches, as the wire has them") {
  Rooms rooms;
  rooms.write("gate.lua", kGate);
  auto engine = start(rooms);
  auto a = engine->connect("ada");
  CHECK(a->id() == "c1");
  const std::vector<std::string> hello = drain(*a);
  REQUIRE(hello.size() == 1);
  CHECK(hello[0].rfind(R"({"op":"welcome",)", 0) == 0);
  CHECK(contains(hello, R"("userId":"ada")"));

  a->send(R"({"op":"join","room":"gate:1","payload":{"key":"no"},"ref":1})");
  CHECK(drain(*a).empty());  // handled at the next step, never inside send
  engine->step(0);
  CHECK(drain(*a) == std::vector<std::string>{
                         R"({"op":"reply","ref":1,"ok":false,"error":{"code":"join_rejected","message":"no key"}})"});

  a->send(R"({"op":"join","room":"gate:1","payload":{"key":"open"},"ref":2})");
  a->send(R"({"op":"call","room":"gate:1","method":"nope","ref":3})");
  a->send("not json");
  engine->step(0);
  const std::vector<std::string> lines = drain(*a);
  REQUIRE(lines.size() == 3);
  // The epoch is random per room incarnation (docs/protocol.md "Seats and resume").
  const std::regex reply(R"(\{"op":"reply","ref":2,"ok":true,"result":\{"room":"gate:1","epoch":"[0-9a-f]{16}","seq":1,"state":\{"n":1\}\}\})");
  CHECK(std::regex_match(lines[0], reply));
  CHECK(lines[1].find(R"("code":"unknown_method")") != std::string::npos);
  CHECK(lines[2].find(R"("code":"bad_json")") != std::string::npos);
}

TEST_CASE("close() leaves cleanly; a client outliving its engine is harmless") {
  Rooms rooms;
  rooms.write("gate.lua", kGate);
  auto engine = start(rooms);
  auto a = engine->connect();
  auto b = engine->connect();
  for (auto* c : {a.get(), b.get()}) c->send(R"({"op":"join","room":"gate:1","payload":{"key":"open"}})");
  engine->step(0);
  b->close();
  b->send(R"({"op":"call","room":"gate:1","method":"leaves"})");  // dropped: closed
  a->send(R"({"op":"call","room":"gate:1","method":"leaves","ref":9})");
  engine->step(1);
  CHECK(contains(drain(*a), R"({"op":"reply","ref":9,"ok":true,"result":"leave"})"));
  engine.reset();
  a->send("{}");
  std::string line;
  while (a->receive(line)) {}
  a->close();  // nothing left to tell: no crash, no leak (ASan)
}

TEST_CASE("the host clock drives timers, ticks and patch beats: any step size, the same lines") {
  const std::vector<std::string> by_ms = clock_scenario(1);
  REQUIRE(by_ms.size() > 20);
  CHECK(contains(by_ms, R"("event":"late","data":{"at":333})"));
  CHECK(contains(by_ms, R"({"op":"reply","ref":2,"ok":true,"result":149})"));
  for (int step : {7, 16, 1000}) {
    CAPTURE(step);
    const std::vector<std::string> other = clock_scenario(step);
    for (std::size_t i = 0; i < std::min(other.size(), by_ms.size()); ++i)
      if (other[i] != by_ms[i]) {
        CAPTURE(i);
        CHECK(other[i] == by_ms[i]);  // the first line that differs
        break;
      }
    CHECK(other.size() == by_ms.size());
  }
}

TEST_CASE("atrium.host.NAME calls the host; its failures are the script's") {
  Rooms rooms;
  rooms.write("clock.lua", kClock);
  atrium::Options options = options_for(rooms);
  options.seed = 7;  // the room's epoch is in the lines: the same in every run under a seed
  auto engine = start(rooms, options);
  std::vector<std::string> seen;
  engine->register_function("add", [&](std::string_view args) {
    seen.emplace_back(args);
    return std::string("{\"sum\":5}");
  });
  engine->register_function("broken", [](std::string_view) { return std::string("{not json"); });
  auto a = engine->connect();
  a->send(R"({"op":"join","room":"clock:h","ref":1})");
  a->send(R"({"op":"call","room":"clock:h","method":"host","args":[2,3],"ref":2})");
  a->send(R"({"op":"call","room":"clock:h","method":"badhost","ref":3})");
  a->send(R"({"op":"call","room":"clock:h","method":"nonjson","ref":4})");
  engine->step(0);
  const std::vector<std::string> lines = drain(*a);
  CHECK(seen == std::vector<std::string>{"[2,3]"});
  CHECK(contains(lines, R"({"op":"reply","ref":2,"ok":true,"result":{"sum":5}})"));
  CHECK(contains(lines, R"("ref":3,"ok":false,"error":{"code":"script_error","message":"atrium.host.nothing: the host registered no such function")"));
  CHECK(contains(lines, R"("ref":4,"ok":false,"error":{"code":"script_error","message":"atrium.host.broken answered text that is not JSON)"));
}

TEST_CASE("two engines in one thread keep to themselves, and a bad start is an error") {
  Rooms rooms;
  rooms.write("gate.lua", kGate);
  auto one = start(rooms);
  auto two = start(rooms);
  auto a = one->connect();
  auto b = two->connect();
  CHECK(a->id() == b->id());  // each engine numbers its own clients
  for (int i = 0; i < 3; ++i) {
    a->send(R"({"op":"join","room":"gate:1","payload":{"key":"open"},"ref":1})");
    b->send(R"({"op":"join","room":"gate:1","payload":{"key":"open"},"ref":1})");
    one->step(i);
    two->step(i);
  }
  const std::vector<std::string> la = drain(*a), lb = drain(*b);
  CHECK(la.size() == lb.size());
  CHECK(contains(la, R"("state":{"n":1})"));

  atrium::Options bad = options_for(rooms);
  bad.rooms_dir = (rooms.dir / "missing").string();
  std::string error;
  CHECK_FALSE(atrium::Engine::create(bad, &error));
  CHECK(error.find("rooms_dir") != std::string::npos);
  bad = options_for(rooms);
  bad.lua_dir = (rooms.dir / "no-lua").string();
  CHECK_FALSE(atrium::Engine::create(bad, &error));
  CHECK(error.find("engine's Lua") != std::string::npos);
}

TEST_CASE("an engine stepped from another's host function keeps its own calls and budget") {
  Rooms rooms;
  rooms.write("clock.lua", kClock);
  rooms.write("spin.lua", "local S = {}\nS.actions = {}\nfunction S.actions.spin() while true do end end\n"
                          "function S.actions.fine() return 1 end\nreturn S\n");
  atrium::Options o = options_for(rooms);
  o.cpu_budget_ms = 50;
  auto outer = start(rooms, o);
  auto inner = start(rooms, o);
  auto in_client = inner->connect();
  in_client->send(R"({"op":"join","room":"spin:1"})");
  inner->step(0);
  std::vector<std::string> inner_lines;
  outer->register_function("add", [&](std::string_view) {
    // The inner engine's call is stopped by its own budget; the outer call goes on.
    in_client->send(R"({"op":"call","room":"spin:1","method":"spin","ref":7})");
    in_client->send(R"({"op":"call","room":"spin:1","method":"fine","ref":8})");
    inner->step(1);
    for (std::string line; in_client->receive(line);) inner_lines.push_back(line);
    return std::string("42");
  });
  auto c = outer->connect();
  c->send(R"({"op":"join","room":"clock:o","ref":1})");
  c->send(R"({"op":"call","room":"clock:o","method":"host","args":[1,2],"ref":2})");
  outer->step(0);
  CHECK(contains(drain(*c), R"({"op":"reply","ref":2,"ok":true,"result":42})"));
  CHECK(contains(inner_lines, R"("ref":7,"ok":false,"error":{"code":"budget_exceeded")"));
  CHECK(contains(inner_lines, R"({"op":"reply","ref":8,"ok":true,"result":1})"));
}

TEST_CASE("Options::seed: a room draws the same numbers in every engine, another room others") {
  Rooms rooms;
  rooms.write("clock.lua", kClock);
  auto rolls = [&](std::uint64_t seed, const std::string& room) {
    atrium::Options o = options_for(rooms);
    o.seed = seed;
    auto engine = start(rooms, o);
    auto c = engine->connect();
    c->send(R"({"op":"join","room":")" + room + R"("})");
    c->send(R"({"op":"call","room":")" + room + R"(","method":"roll","ref":5})");
    engine->step(0);
    for (const std::string& l : drain(*c))
      if (l.find(R"("ref":5)") != std::string::npos) return l;
    return std::string();
  };
  const std::string first = rolls(42, "clock:a");
  CHECK(first.find(R"("ok":true,"result":[)") != std::string::npos);
  CHECK(rolls(42, "clock:a") == first);
  CHECK(rolls(42, "clock:b") != first);
  CHECK(rolls(43, "clock:a") != first);
}

TEST_CASE("under the host clock, os.time, os.clock and os.date are the host's time too") {
  Rooms rooms;
  rooms.write("clock.lua", kClock);
  atrium::Options options = options_for(rooms);
  options.seed = 7;  // the room's epoch is in the lines: the same in every run under a seed
  auto engine = start(rooms, options);
  auto c = engine->connect();
  c->send(R"({"op":"join","room":"clock:t"})");
  engine->step(86400000 + 1500);  // one day and 1.5 s after the epoch
  c->send(R"({"op":"call","room":"clock:t","method":"times","ref":3})");
  engine->step(86400000 + 2250);
  CHECK(contains(drain(*c), R"({"op":"reply","ref":3,"ok":true,"result":[86402,86402.25,"1970-01-02 00:00:02"]})"));
}

