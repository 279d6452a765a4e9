// Every side door into Lua that an adversarial review found (issue "No room script and
// no client can crash, hang or corrupt the server"), one test each, on the hostile
// fixtures of tests/fixtures/rooms: the offending call fails with a clear error, nothing
// it did stays, and the engine, its other rooms and the same connection keep serving.
#include "engine_harness.hpp"

using namespace atrium;
using namespace atrium::test;

namespace {

struct Hostile {
  TempRooms rooms;
  std::unique_ptr<Harness> h;
  FakeClient* c = nullptr;

  Hostile(std::initializer_list<const char*> fixtures,
          const std::function<void(engine::EngineConfig&)>& tweak = [](engine::EngineConfig& cfg) {
            cfg.cpu_budget_ms = 100;
          }) {
    rooms.copy_fixture("healthy.lua");
    for (const char* f : fixtures) rooms.copy_fixture(f);
    h = std::make_unique<Harness>(rooms, tweak);
    c = &h->connect();
    REQUIRE(ok(join("healthy:1")));
  }
  json::Value join(const std::string& room, FakeClient* who = nullptr) {
    return h->request(who ? *who : *c, "{\"op\":\"join\",\"room\":\"" + room + "\"}");
  }
  json::Value call(const std::string& room, const std::string& method, const std::string& args = "[]") {
    return h->request(*c, "{\"op\":\"call\",\"room\":\"" + room + "\",\"method\":\"" + method +
                              "\",\"args\":" + args + "}");
  }
  const json::Value* state(const std::string& room) {
    auto r = h->engine->room(room);
    REQUIRE(r.ok());
    static json::Value keep;
    keep = r.value();
    return keep.get_object("state");
  }
  void healthy_still_serves() {
    CHECK(result(call("healthy:1", "add")).is_number());
  }
};

}  // namespace

TEST_CASE("hostile 1: no message handler outlives a budget stop, and a swallowed stop still fails") {
  Hostile f({"escape_xpcall.lua"});
  REQUIRE(ok(f.join("escape_xpcall:1")));
  for (const char* action : {"handler_loops", "swallow_and_return", "pcall_and_return", "handler_recurses"}) {
    CAPTURE(action);
    const auto t0 = std::chrono::steady_clock::now();
    const json::Value reply = f.call("escape_xpcall:1", action);
    CHECK(error_code(reply) == "budget_exceeded");
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    CHECK(f.state("escape_xpcall:1")->find("touched")->as_bool() == false);
  }
  // Ordinary errors still reach a script's own handler.
  const json::Value ordinary = result(f.call("escape_xpcall:1", "ordinary"));
  REQUIRE(ordinary.is_array());
  CHECK(json::to_json(ordinary) == R"([false,"handled plain",false,"again"])");
  CHECK(result(f.call("escape_xpcall:1", "ping")).as_string() == "pong");
  f.healthy_still_serves();
}

TEST_CASE("hostile 1: the handler loop at a script's top level fails that script's load only") {
  Hostile f({"escape_xpcall_toplevel.lua"});  // start() returned: the engine serves
  const json::Value reply = f.join("escape_xpcall_toplevel:1");
  CHECK(error_code(reply) == "script_error");
  CHECK(error_message(reply).find("budget") != std::string::npos);
  f.healthy_still_serves();
}

TEST_CASE("hostile 2: re-entry through rooms, gsub, sort and __tostring ends in a script_error naming the limit") {
  Hostile f({"reentry.lua"});
  REQUIRE(ok(f.join("reentry:1")));
  for (const char* action : {"self_call", "ping_pong", "self_call_caught"}) {
    CAPTURE(action);
    const json::Value reply = f.call("reentry:1", action);
    CHECK(error_code(reply) == "script_error");
    CHECK(error_message(reply).find("nested deeper than 32") != std::string::npos);
  }
  const json::Value gsub = f.call("reentry:1", "gsub");
  CHECK(error_code(gsub) == "script_error");
  CHECK(error_message(gsub).find("nested") != std::string::npos);
  for (const char* action : {"sort", "tostring"}) {
    CAPTURE(action);
    const json::Value reply = f.call("reentry:1", action);
    CHECK(!ok(reply));
    CHECK(error_code(reply) != "");
  }
  CHECK(result(f.call("reentry:1", "twenty")).as_string() == "bottom");
  const json::Value chain = f.h->request(*f.c, R"({"op":"join","room":"reentry:chain0","payload":{"chain":1}})");
  CHECK(error_code(chain) == "script_error");
  CHECK(result(f.call("reentry:1", "ping")).as_string() == "pong");
  f.healthy_still_serves();
}

TEST_CASE("hostile 3: a hook cannot place a client that is going away; a leave that stays connected can") {
  for (bool clean : {true, false}) {
    CAPTURE(clean);
    Hostile f({"lobby_return.lua"});
    FakeClient& leaver = f.h->connect();
    REQUIRE(ok(f.join("lobby_return:table1", &leaver)));
    f.h->engine->disconnect(leaver.id, clean);
    // The lobby was never made for it: nobody is in it, or it is gone.
    auto lobby = f.h->engine->room("lobby_return:lobby");
    if (lobby.ok()) CHECK(lobby.value().find("members")->as_number() == 0);
    // A new connection gets nothing meant for the old one.
    FakeClient& next = f.h->connect();
    REQUIRE(ok(f.join("lobby_return:table2", &next)));
    next.take();
    REQUIRE(ok(f.h->request(*f.c, R"({"op":"join","room":"lobby_return:lobby"})")));
    f.h->advance(80);
    for (const std::string& line : next.lines) CHECK(line.find("lobby_return:lobby") == std::string::npos);
  }
  // Leaving while connected is the pattern's point: the client lands in the lobby.
  Hostile f({"lobby_return.lua"});
  FakeClient& player = f.h->connect();
  REQUIRE(ok(f.join("lobby_return:table1", &player)));
  REQUIRE(ok(f.h->request(player, R"({"op":"leave","room":"lobby_return:table1"})")));
  CHECK(f.h->engine->room("lobby_return:lobby").value().find("members")->as_number() == 1);
}

TEST_CASE("hostile 4: a room rejected and opened again in one transaction is not freed under it") {
  Hostile f({"doomed_twice.lua"});
  REQUIRE(ok(f.join("doomed_twice:1")));
  for (int i = 0; i < 40; ++i) {
    const json::Value joined = f.call("doomed_twice:1", "twice", R"(["join"])");
    CHECK(result(joined).is_array());
    const json::Value called = f.call("doomed_twice:1", "twice", R"(["call"])");
    CHECK(result(called).is_array());
  }
  CHECK(result(f.call("doomed_twice:1", "twice", R"(["call"])")).items()[2].as_number() >= 1);
  f.healthy_still_serves();
}

TEST_CASE("hostile 6: a strict class and metatables that raise or loop never run outside the door") {
  Hostile f({"strict_class.lua", "looping_meta.lua"});
  REQUIRE(ok(f.join("strict_class:1")));
  CHECK(result(f.call("strict_class:1", "inc")).as_number() == 1);
  CHECK(error_code(f.call("strict_class:1", "nope")) == "unknown_method");
  REQUIRE(ok(f.join("strict_class:2")));  // once a segfault: the join after an unknown action
  CHECK(error_code(f.h->request(*f.c, R"({"op":"emit","room":"strict_class:1","event":"x"})")) == "not_allowed");

  const auto t0 = std::chrono::steady_clock::now();
  const json::Value joined = f.join("looping_meta:1");
  if (ok(joined)) {
    CHECK(error_code(f.call("looping_meta:1", "nope")) == "unknown_method");
    CHECK(result(f.call("looping_meta:1", "inc")).as_number() == 1);
  } else {
    CHECK(error_code(joined) != "");
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  CHECK(f.h->engine->reload_script("looping_meta.lua").is_object());  // reload: the same lookups
  f.healthy_still_serves();
}

TEST_CASE("hostile 7 and 8: nothing shared is reachable from a timer handle, and no room's hooks are callable") {
  Hostile f({"sandbox_probe.lua", "lobby_return.lua"});
  REQUIRE(ok(f.join("sandbox_probe:1")));
  const json::Value probe = result(f.call("sandbox_probe:1", "probe"));
  REQUIRE(probe.is_object());
  for (const auto& [name, reached] : probe.members()) {
    CAPTURE(name);
    CHECK(reached.as_bool() == false);
  }
  REQUIRE(ok(f.join("lobby_return:t1")));
  for (const char* hook : {"onJoin", "onLeave", "onCreate", "onDestroy", "onTick", "onEvent", "onReload",
                           "actions", "defaultState"}) {
    CAPTURE(hook);
    const json::Value r = result(f.call("sandbox_probe:1", "call_hook", std::string(R"(["lobby_return:t1",")") + hook + "\"]"));
    REQUIRE(r.is_array());
    CHECK(r.items()[0].as_bool() == false);
    CHECK(r.items()[1].as_string().find("has no method") != std::string::npos);
  }
  CHECK(f.state("lobby_return:t1")->find("seen")->as_number() == 1);
}

TEST_CASE("hostile 12: names compare with their length: a NUL is part of an action or event name") {
  Hostile f({});
  f.rooms.write("nul.lua", R"(
local R = { defaultState = { n = 0, last = "" }, actions = {} }
function R.actions.inc(self) self.state.n = self.state.n + 1; return self.state.n end
function R:onEvent(name, data, ctx) self.state.last = name end
function R.actions.name_length(self) return #self.state.last end
return R)");
  f.h->engine->reload_script("nul.lua");
  REQUIRE(ok(f.join("nul:1")));
  CHECK(error_code(f.call("nul:1", "inc\\u0000junk")) == "unknown_method");
  CHECK(f.state("nul:1")->find("n")->as_number() == 0);
  REQUIRE(ok(f.h->request(*f.c, R"({"op":"emit","room":"nul:1","event":"poke\u0000x"})")));
  const json::Value length = f.call("nul:1", "name_length");
  INFO(json::to_json(length));
  REQUIRE(result(length).is_number());
  CHECK(result(length).as_number() == 6);
}

TEST_CASE("hostile 5: the whole VM at its memory cap: each request is answered and the engine keeps serving") {
  Hostile f({}, [](engine::EngineConfig& cfg) {
    cfg.room_memory_bytes = 8u << 20;
    cfg.memory_bytes = 24u << 20;
    cfg.cpu_budget_ms = 2000;
  });
  f.rooms.write("hog.lua", R"(
local H = { defaultState = { n = 0 }, actions = {} }
function H:onCreate()
  local hoard = {}
  self.hoard = hoard  -- an instance field: held by the room, never diffed
  pcall(function()
    while true do hoard[#hoard + 1] = { 1, 2, 3, 4, 5, 6, 7, 8 } end
  end)
end
function H.actions.ping() return "pong" end
return H)");
  f.rooms.write("small.lua", R"(
local S = { defaultState = { n = 0 }, actions = {} }
function S.actions.inc(self) self.state.n = self.state.n + 1; return self.state.n end
return S)");
  f.h->engine->reload_script("hog.lua");
  f.h->engine->reload_script("small.lua");
  int answered = 0, refused = 0;
  for (int i = 0; i < 6; ++i) {
    const json::Value r = f.join("hog:" + std::to_string(i));
    ++answered;
    if (!ok(r)) {
      ++refused;
      INFO(json::to_json(r));
      CHECK(error_code(r) == "budget_exceeded");
    }
  }
  CHECK(answered == 6);
  CHECK(refused >= 1);  // three rooms of 8 MiB cannot fit in 24
  // Many small rooms on top: each join is answered, the connection stays.
  int small_refused = 0;
  for (int i = 0; i < 300; ++i) {
    const json::Value r = f.join("small:" + std::to_string(i));
    if (!ok(r)) {
      ++small_refused;
      INFO(json::to_json(r));
      CHECK(error_code(r) == "budget_exceeded");
    }
  }
  CHECK(f.c->closed_with == 0);
  f.healthy_still_serves();
  // Leaving the hogs gives the memory back: new rooms open again.
  for (int i = 0; i < 6; ++i) f.h->request(*f.c, "{\"op\":\"leave\",\"room\":\"hog:" + std::to_string(i) + "\"}");
  CHECK(ok(f.join("small:fresh")));
  CHECK(result(f.call("small:fresh", "inc")).as_number() == 1);
  for (const std::string& line : f.h->log) CHECK(line.find("engine lua_error") == std::string::npos);
}
