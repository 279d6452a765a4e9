// Record, replay and synctest through the engine's own API (docs/embedding.md "Record and
// replay", "Synctest"). Fresh-process replays are tested end to end (tests/e2e/replay.test.mjs).
#include <fstream>
#include <random>
#include <sstream>

#include "engine/replay.hpp"
#include "engine_harness.hpp"

namespace atrium::test {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A room that depends on nothing but its inputs, with a timer, math.random, a host call,
// nested objects and removals.
const char* kSteady = R"(local S = { defaultState = { players = {}, log = atrium.array() } }
S.actions = {}
function S:onJoin(ctx)
  self.state.players[ctx.client] = { x = math.random(1, 100), tags = { a = 1, b = 2, c = 3 } }
  self:setTimeout(25, function() self.state.players[ctx.client].late = atrium.now() end)
end
function S:onLeave(ctx) self.state.players[ctx.client] = nil end
function S.actions.move(self, ctx, dx)
  local p = self.state.players[ctx.client]
  p.x = p.x + dx
  p.tags = { z = dx, y = 2, x = atrium.host.double(dx) }
  table.insert(self.state.log, dx)
  return p
end
return S
)";

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string(name) + std::to_string(std::random_device{}()))).string();
}

}  // namespace

TEST_CASE("replay: a recorded run under the host clock, random traffic and a host function replays identically") {
  TempRooms rooms;
  rooms.write("steady.lua", kSteady);
  const std::string record = temp_path("atrium-unit-record-");
  {
    Harness h(rooms, [&](engine::EngineConfig& cfg) {
      cfg.record_path = record;
      cfg.host_clock = true;
    });
    int calls = 0;
    h.engine->register_host_function("double", [&](std::string_view args) -> Result<std::string> {
      ++calls;  // a host whose answers the replay cannot recompute: they come from the record
      return std::string(args.substr(1, args.size() - 2)) + std::to_string(calls % 2);
    });
    std::mt19937 rng(7);
    std::vector<FakeClient*> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(&h.connect());
    std::int64_t now = 1000;
    for (int i = 0; i < 300; ++i) {
      FakeClient& c = *clients[rng() % clients.size()];
      const int roll = static_cast<int>(rng() % 10);
      if (roll == 0) {
        h.engine->receive(c.id, R"({"op":"join","room":"steady:a"})");
      } else if (roll == 1) {
        h.engine->receive(c.id, R"({"op":"leave","room":"steady:a"})");
      } else if (roll == 2) {
        h.engine->receive(c.id, "{\"op\":\"call\",\"room\":\"steady:a\",\"method\":\"mo");  // cut
      } else {
        h.engine->receive(c.id, "{\"op\":\"call\",\"room\":\"steady:a\",\"method\":\"move\",\"args\":[" +
                                    std::to_string(static_cast<int>(rng() % 7) - 3) + "]}");
      }
      now += static_cast<std::int64_t>(rng() % 20);
      h.engine->set_host_time(now);
      h.engine->run_due();
      h.engine->end_of_pass();
    }
    h.engine->shutdown();
  }
  engine::ReplayOptions options;
  options.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  auto report = engine::replay(record, options);
  REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message));
  CHECK_MESSAGE(report.value().identical, engine::describe(report.value()));
  CHECK(report.value().inputs > 300);
  CHECK(report.value().outputs > 200);  // entries: a patch to every member is one

  SUBCASE("an output line changed in the record is named, with its input and record line") {
    std::string text = read_all(record);
    const std::size_t at = text.find("\"op\":\"patch\"");
    REQUIRE(at != std::string::npos);
    const std::size_t record_line = static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n')) + 1;
    text.replace(at, 12, "\"op\":\"patcX\"");
    std::ofstream(record, std::ios::binary | std::ios::trunc) << text;
    auto tampered = engine::replay(record, options);
    REQUIRE(tampered.ok());
    const engine::ReplayReport& r = tampered.value();
    CHECK_FALSE(r.identical);
    CHECK(r.record_line < record_line);  // the input comes before its outputs
    CHECK(r.expected.find("\"op\":\"patcX\"") != std::string::npos);
    CHECK(r.got.find("\"op\":\"patch\"") != std::string::npos);
    CHECK(engine::describe(r).find("diverged at input " + std::to_string(r.input_number)) == 0);
  }
  SUBCASE("a script text changed in the record diverges where the change shows") {
    std::string text = read_all(record);
    const std::size_t at = text.find("p.x + dx");
    REQUIRE(at != std::string::npos);
    text.replace(at, 8, "p.x - dx");
    std::ofstream(record, std::ios::binary | std::ios::trunc) << text;
    auto tampered = engine::replay(record, options);
    REQUIRE(tampered.ok());
    const engine::ReplayReport& r = tampered.value();
    CHECK_FALSE(r.identical);
    // The first move's patch goes out at the room's next patch beat: a timers input.
    CHECK(r.input == R"({"timers":true})");
    CHECK(r.expected.find("\"op\":\"patch\"") != std::string::npos);
    CHECK(r.got.find("\"op\":\"patch\"") != std::string::npos);
  }
  std::filesystem::remove(record);
}

TEST_CASE("replay: identities, in-band token checks and token expiry replay without the key") {
  TempRooms rooms;
  rooms.write("who.lua", R"(local W = { defaultState = { seen = {} }, actions = {} }
function W:onJoin(ctx) self.state.seen[ctx.client] = (ctx.userId or "-") .. "/" .. (ctx.claims and ctx.claims.role or "-") .. "/" .. (ctx.user and ctx.user.name or "-") end
function W.actions.role(self, ctx) return ctx.claims and ctx.claims.role or false end
return W)");
  const std::string record = temp_path("atrium-unit-record-");
  {
    Harness h(rooms, [&](engine::EngineConfig& cfg) {
      cfg.record_path = record;
      cfg.host_clock = true;
      cfg.verify_token = [](std::string_view token) -> Result<engine::Identity> {
        if (token.rfind("ada:", 0) != 0) return make_error(ErrorCode::unauthorized, "bad signature");
        engine::Identity id;
        id.user_id = "ada";
        id.claims = json::parse("{\"role\":\"" + std::string(token.substr(4)) + "\"}").value();
        id.expires_at_s = 100;
        return id;
      };
    });
    h.engine->set_clocks(1000, 10'000);
    auto connect = [&](engine::Identity id) -> FakeClient& {
      h.clients.push_back(std::make_unique<FakeClient>());
      FakeClient& c = *h.clients.back();
      c.id = h.engine->connect(c, std::move(id));
      return c;
    };
    engine::Identity ada;
    ada.user_id = "ada";
    ada.claims = json::parse(R"({"role":"a"})").value();
    ada.user = json::parse(R"({"name":"Ada"})").value();
    ada.expires_at_s = 30;
    FakeClient& a = connect(ada);
    FakeClient& anon = connect(engine::Identity{});
    h.engine->receive(a.id, R"({"op":"join","room":"who:1","ref":1})");
    h.engine->receive(anon.id, R"({"op":"join","room":"who:1","ref":2})");
    h.engine->receive(a.id, R"({"op":"auth","token":"ada:b","ref":3})");
    h.engine->receive(a.id, R"({"op":"auth","token":"bob:x","ref":4})");
    h.engine->receive(a.id, R"({"op":"call","room":"who:1","method":"role","ref":5})");
    h.engine->set_clocks(200'000, 200'000);  // past the refreshed exp (100 s)
    h.engine->run_due();
    h.engine->end_of_pass();
    CHECK(a.closed_with == 4003);
    h.engine->shutdown();
  }
  engine::ReplayOptions options;
  options.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  auto report = engine::replay(record, options);
  REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message));
  CHECK_MESSAGE(report.value().identical, engine::describe(report.value()));
  const std::string text = read_all(record);
  CHECK(text.find(R"("ctx_user":{"name":"Ada"})") != std::string::npos);
  CHECK(text.find(R"({"auth":false,"error":"bad signature"})") != std::string::npos);
  CHECK(text.find(R"("closed":)") != std::string::npos);
  std::filesystem::remove(record);
}

// A Pusher subscription's engine client (docs/pusher.md "Channels that are rooms"): its
// ctx.pusher, its relayed events (vetoed, rewritten) and a trigger that skips it replay;
// so do joins on connect (docs/protocol.md "Joining on connect").
TEST_CASE("replay: ctx.pusher, relayed client events and an emit with except replay as recorded") {
  TempRooms rooms;
  rooms.write("chat.lua", R"(local C = { defaultState = { who = {} } }
function C:onJoin(ctx) self.state.who[ctx.client] = ctx.pusher and ctx.pusher.channel or "native" end
function C:onEvent(event, data, ctx)
  if ctx.pusher == nil then return end
  if event == "client-no" then return false end
  if event == "client-up" then return string.upper(data) end
end
return C)");
  const std::string record = temp_path("atrium-unit-record-");
  {
    Harness h(rooms, [&](engine::EngineConfig& cfg) {
      cfg.record_path = record;
      cfg.host_clock = true;
    });
    h.engine->set_clocks(1000, 10'000);
    engine::Identity sub;
    sub.user_id = "ada";
    sub.pusher = json::parse(R"({"channel":"presence-chat.x","userId":"ada"})").value();
    h.clients.push_back(std::make_unique<FakeClient>());
    FakeClient& p = *h.clients.back();
    p.id = h.engine->connect(p, std::move(sub));
    // A native client that joins on connect (/ws?join=...): its joins are part of the input.
    h.clients.push_back(std::make_unique<FakeClient>());
    FakeClient& n = *h.clients.back();
    n.id = h.engine->connect(n, engine::Identity{},
                             {engine::JoinOnConnect{"chat:x", json::Value::object()},
                              engine::JoinOnConnect{"nope:1", json::Value::object()}});
    std::vector<json::Value> first = n.take();
    REQUIRE(first.size() == 3);
    CHECK(*first[1].get_string("op") == "joined");
    CHECK(*first[2].get_string("op") == "error");
    CHECK(*first[2].get_string("room") == "nope:1");
    h.engine->receive(p.id, R"({"op":"join","room":"chat:x","ref":1})");
    n.take();
    h.engine->receive(p.id, R"({"op":"emit","room":"chat:x","event":"client-up","data":"hi"})");
    h.engine->receive(p.id, R"({"op":"emit","room":"chat:x","event":"client-no","data":"x"})");
    h.engine->receive(p.id, R"({"op":"emit","room":"chat:x","event":"client-as-is","data":{"k":1}})");
    std::vector<json::Value> got = n.take();
    REQUIRE(got.size() == 2);   // the veto held one back
    CHECK(*got[0].get_string("data") == "HI");
    CHECK(got[1].find("data")->find("k")->as_number() == 1);
    CHECK(h.engine->emit("chat:x", "news", json::Value("n"), "c" + std::to_string(p.id)).ok());
    CHECK(n.take().size() == 1);
    CHECK(p.last("event").is_null());   // the trigger skipped it
    h.engine->end_of_pass();
    h.engine->shutdown();
  }
  engine::ReplayOptions options;
  options.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  auto report = engine::replay(record, options);
  REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message));
  CHECK_MESSAGE(report.value().identical, engine::describe(report.value()));
  const std::string text = read_all(record);
  CHECK(text.find(R"("pusher":{"channel":"presence-chat.x")") != std::string::npos);
  CHECK(text.find(R"("except":"c)") != std::string::npos);
  CHECK(text.find(R"("joins":[{"room":"chat:x")") != std::string::npos);
  std::filesystem::remove(record);
}

TEST_CASE("synctest: a hook that follows next() order is reported with its line; steady rooms are not") {
  TempRooms rooms;
  rooms.write("steady.lua", kSteady);
  // The leader is "the first player" by next(): which one that is depends on the table's layout.
  rooms.write("leader.lua", R"(local L = { defaultState = { players = {}, leader = false } }
function L:onJoin(ctx)
  self.state.players["p" .. ctx.client] = true
  self.state.leader = next(self.state.players)
end
return L
)");
  // Time read in a hook is the input's: a second run milliseconds later reads the same.
  rooms.write("clock.lua", R"(local C = { defaultState = { at = 0, t = 0 } }
C.actions = {}
function C.actions.stamp(self, ctx)
  local n = 0
  for i = 1, 2000000 do n = n + i end  -- a few ms: the second run starts on another one
  self.state.at = atrium.now()
  self.state.t = os.time()
end
return C
)");
  Harness h(rooms, [&](engine::EngineConfig& cfg) { cfg.synctest = true; });
  h.engine->register_host_function("double", [](std::string_view args) -> Result<std::string> {
    return std::string(args.substr(1, args.size() - 2));
  });
  auto mismatches = [&] {
    return std::count_if(h.log.begin(), h.log.end(),
                         [](const std::string& l) { return l.find("synctest_mismatch") != std::string::npos; });
  };
  std::vector<FakeClient*> clients;
  for (int i = 0; i < 24; ++i) clients.push_back(&h.connect());
  for (FakeClient* c : clients) {
    CHECK(ok(h.request(*c, R"({"op":"join","room":"steady:a"})")));
    CHECK(ok(h.request(*c, R"({"op":"call","room":"steady:a","method":"move","args":[2]})")));
  }
  CHECK(ok(h.request(*clients[0], R"({"op":"join","room":"clock:a"})")));
  for (int i = 0; i < 3; ++i)
    CHECK(ok(h.request(*clients[0], R"({"op":"call","room":"clock:a","method":"stamp","args":[]})")));
  for (const std::string& l : h.log) CHECK_MESSAGE(l.find("synctest_mismatch") == std::string::npos, l);
  for (FakeClient* c : clients) CHECK(ok(h.request(*c, R"({"op":"join","room":"leader:a"})")));
  REQUIRE(mismatches() > 0);
  const auto line = std::find_if(h.log.begin(), h.log.end(),
                                 [](const std::string& l) { return l.find("synctest_mismatch") != std::string::npos; });
  CHECK(line->find("room=leader:a") != std::string::npos);
  CHECK(line->find("onJoin at rooms/leader.lua:2") != std::string::npos);
  CHECK(line->find("changed the room's state differently") != std::string::npos);
  // The second run is what was committed: the engine stayed consistent.
  CHECK(h.engine->check_invariants().ok());
}

}  // namespace atrium::test

namespace atrium::test {

TEST_CASE("replay: a record that cannot be written stops start() with the path and the reason") {
  TempRooms rooms;
  engine::EngineConfig cfg;
  cfg.rooms_dir = rooms.path();
  cfg.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  cfg.record_path = rooms.path() + "/no-such-dir/session.rec";
  cfg.on_log = [](engine::LogLevel, std::string_view) {};
  engine::Engine e(cfg);
  const Status started = e.start();
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().message.find("cannot write the record " + cfg.record_path) == 0);
  CHECK(started.error().message.find("No such file or directory") != std::string::npos);
}

}  // namespace atrium::test
