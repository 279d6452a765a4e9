// Room scripts as the engine runs them: sandbox basics, budgets, timers, kicks, ticks.
#include "engine_harness.hpp"

using namespace atrium;
using namespace atrium::test;

TEST_CASE("a room script sees no os.execute, io, require or loadstring, and globals are strict") {
  TempRooms rooms;
  rooms.write("probe.lua", R"(
local P = { actions = {} }
function P.actions.look(self, ctx)
  return { os_execute = os.execute ~= nil, has_time = os.time ~= nil,
           io = rawget(_G, "io") ~= nil, require = rawget(_G, "require") ~= nil,
           loadstring = rawget(_G, "loadstring") ~= nil, dump = string.dump ~= nil }
end
function P.actions.typo(self, ctx) return undefinedThing end
function P.actions.assign(self, ctx) leaked = 1 end
return P)");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"probe:1"})")));
  auto r = h.request(a, R"({"op":"call","room":"probe:1","method":"look"})");
  REQUIRE(ok(r));
  CHECK(json::to_json(result(r)).find("true") != std::string::npos);  // has_time
  CHECK(result(r).find("os_execute")->as_bool() == false);
  CHECK(result(r).find("io")->as_bool() == false);
  CHECK(result(r).find("require")->as_bool() == false);
  CHECK(result(r).find("loadstring")->as_bool() == false);
  CHECK(result(r).find("dump")->as_bool() == false);
  auto typo = h.request(a, R"({"op":"call","room":"probe:1","method":"typo"})");
  CHECK(error_code(typo) == "script_error");
  CHECK(error_message(typo).find("undeclared global 'undefinedThing'") != std::string::npos);
  CHECK(error_code(h.request(a, R"({"op":"call","room":"probe:1","method":"assign"})")) == "script_error");
}

TEST_CASE("an action that loops forever gets budget_exceeded and the room keeps serving") {
  TempRooms rooms;
  rooms.write("spin.lua", R"(
local S = { defaultState = { n = 0 }, actions = {} }
function S.actions.spin(self) self.state.n = 1; while true do end end
function S.actions.spin_pcall(self) while true do pcall(function() while true do end end) end end
function S.actions.ok(self) return "fine" end
return S)");
  Harness h(rooms, 50);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"spin:1"})")));
  auto r = h.request(a, R"({"op":"call","room":"spin:1","method":"spin"})");
  CHECK(error_code(r) == "budget_exceeded");
  CHECK(error_code(h.request(a, R"({"op":"call","room":"spin:1","method":"spin_pcall"})")) == "budget_exceeded");
  CHECK(result(h.request(a, R"({"op":"call","room":"spin:1","method":"ok"})")).as_string() == "fine");
  CHECK(h.engine->room("spin:1")->get_object("state")->find("n")->as_number() == 0);
}

// The engine runs its shadow walk compiled (state/shadow.cpp); room code must stay in the
// interpreter, where the budget's count hook fires, however hot the walk has been.
TEST_CASE("after many compiled walks of a large state, a room's endless loops still hit the budget") {
  TempRooms rooms;
  rooms.write("big.lua", R"(
local B = { defaultState = { items = {} }, actions = {} }
function B:onCreate()
  for i = 1, 2000 do self.state.items["k" .. i] = { x = i, tag = "t" } end
end
function B.actions.touch(self, ctx, i) self.state.items["k" .. i].x = -i end
function B.actions.spin(self) local n = 0; while true do n = n + 1 end end
function B.actions.spin_pairs(self)
  local items = self.state.items
  while true do for k, v in pairs(items) do local _ = v.x end end
end
function B.actions.jit(self) return rawget(_G, "jit") ~= nil end
return B)");
  Harness h(rooms, 50);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"big:1"})")));
  for (int i = 1; i <= 30; ++i)
    REQUIRE(ok(h.request(a, R"({"op":"call","room":"big:1","method":"touch","args":[)" +
                                std::to_string(i) + "]}")));
  CHECK(h.engine->room("big:1")->get_object("state")->find("items")->find("k30")->find("x")->as_number() == -30);
  CHECK(error_code(h.request(a, R"({"op":"call","room":"big:1","method":"spin"})")) == "budget_exceeded");
  CHECK(error_code(h.request(a, R"({"op":"call","room":"big:1","method":"spin_pairs"})")) == "budget_exceeded");
  CHECK(result(h.request(a, R"({"op":"call","room":"big:1","method":"jit"})")).as_bool() == false);
  REQUIRE(ok(h.request(a, R"({"op":"call","room":"big:1","method":"touch","args":[31]})")));
  CHECK(h.engine->room("big:1")->get_object("state")->find("items")->find("k31")->find("x")->as_number() == -31);
}

TEST_CASE("unknown actions are unknown_method; plain methods are not actions") {
  TempRooms rooms;
  rooms.write("r.lua", "local R = { actions = {} }\nfunction R:secret() return 1 end\nreturn R");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"r:1"})")));
  CHECK(error_code(h.request(a, R"({"op":"call","room":"r:1","method":"secret"})")) == "unknown_method");
  CHECK(error_code(h.request(a, R"({"op":"call","room":"r:2","method":"secret"})")) == "not_member");
  CHECK(error_code(h.request(a, R"({"op":"emit","room":"r:1","event":"x"})")) == "not_allowed");
  CHECK(h.engine->call("r:1", "secret", json::Value::array())->find("result")->as_number() == 1);
}

TEST_CASE("setTimeout fires once, setInterval repeats until cancelled, a failed hook starts no timer") {
  TempRooms rooms;
  rooms.write("t.lua", R"(
local T = { defaultState = { once = 0, every = 0 }, options = { patchRate = 0 }, actions = {} }
function T:onCreate()
  self:setTimeout(10, function() self.state.once = self.state.once + 1 end)
  self.handle = self:setInterval(5, function()
    self.state.every = self.state.every + 1
    if self.state.every == 3 then self.handle:cancel() end
  end)
end
function T.actions.doomed(self)
  self:setTimeout(1, function() self.state.once = 100 end)
  error("no")
end
return T)");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"t:1"})")));
  CHECK(error_code(h.request(a, R"({"op":"call","room":"t:1","method":"doomed"})")) == "script_error");
  h.advance(60);
  auto state = *h.engine->room("t:1")->get_object("state");
  CHECK(state.find("once")->as_number() == 1);
  CHECK(state.find("every")->as_number() == 3);
}

TEST_CASE("onTick runs at tickRate with dt in seconds") {
  TempRooms rooms;
  rooms.write("tick.lua", R"(
local T = { defaultState = { ticks = 0, dt = 0 }, options = { tickRate = 100, patchRate = 0 } }
function T:onTick(dt) self.state.ticks = self.state.ticks + 1; self.state.dt = dt end
return T)");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"tick:1"})")));
  h.advance(100);
  auto state = *h.engine->room("tick:1")->get_object("state");
  CHECK(state.find("ticks")->as_number() >= 3);
  CHECK(state.find("dt")->as_number() > 0);
  CHECK(state.find("dt")->as_number() < 0.2);
}

TEST_CASE("kick sends left with the reason and runs onLeave with kicked") {
  TempRooms rooms;
  rooms.write("k.lua", R"(
local K = { defaultState = { last = false }, options = { patchRate = 0 }, actions = {} }
function K.actions.boot(self, ctx, who) self:kick(who, "be nice") end
function K:onLeave(ctx) self.state.last = ctx.reason end
return K)");
  Harness h(rooms);
  auto& a = h.connect();
  auto& b = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"k:1"})")));
  REQUIRE(ok(h.request(b, R"({"op":"join","room":"k:1"})")));
  REQUIRE(ok(h.request(a, "{\"op\":\"call\",\"room\":\"k:1\",\"method\":\"boot\",\"args\":[\"" + b.wire_id + "\"]}")));
  auto left = b.last("left");
  REQUIRE(!left.is_null());
  CHECK(*left.get_string("reason") == "kicked");
  CHECK(*left.get_string("message") == "be nice");
  CHECK(*h.engine->room("k:1")->get_object("state")->get_string("last") == "kicked");
  CHECK(error_code(h.request(b, R"({"op":"call","room":"k:1","method":"boot","args":["x"]})")) == "not_member");
}

TEST_CASE("emit with except skips one member; send reaches only its target") {
  TempRooms rooms;
  rooms.write("e.lua", R"(
local E = { actions = {} }
function E.actions.shout(self, ctx) self:emit("shout", { by = ctx.client }, { except = ctx.client }) end
function E.actions.whisper(self, ctx, to) self:send(to, "psst", 1) end
return E)");
  Harness h(rooms);
  auto& a = h.connect();
  auto& b = h.connect();
  auto& c = h.connect();
  for (auto* x : {&a, &b, &c}) REQUIRE(ok(h.request(*x, R"({"op":"join","room":"e:1"})")));
  for (auto* x : {&a, &b, &c}) x->lines.clear();
  REQUIRE(ok(h.request(a, R"({"op":"call","room":"e:1","method":"shout"})")));
  CHECK(a.last("event").is_null());
  CHECK(!b.last("event").is_null());
  CHECK(!c.last("event").is_null());
  REQUIRE(ok(h.request(a, "{\"op\":\"call\",\"room\":\"e:1\",\"method\":\"whisper\",\"args\":[\"" + c.wire_id + "\"]}")));
  CHECK(b.last("event").is_null());
  CHECK(*c.last("event").get_string("event") == "psst");
}

TEST_CASE("events an action causes for its own client come before its reply") {
  TempRooms rooms;
  rooms.write("o.lua", "local O = { actions = {} }\nfunction O.actions.hi(self) self:emit('hi', 1) return 2 end\nreturn O");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"o:1"})")));
  a.lines.clear();
  h.engine->receive(a.id, R"({"op":"call","ref":99,"room":"o:1","method":"hi"})");
  auto lines = a.take();
  REQUIRE(lines.size() == 2);
  CHECK(*lines[0].get_string("op") == "event");
  CHECK(*lines[1].get_string("op") == "reply");
}

TEST_CASE("bad JSON, deep nesting and the RapidJSON CVE number get errors, and the client stays usable") {
  TempRooms rooms;
  Harness h(rooms);
  auto& a = h.connect();
  h.engine->receive(a.id, "{nope");
  CHECK(error_code(a.last("error")) == "bad_json");
  h.engine->receive(a.id, std::string(65, '[') + std::string(65, ']'));
  CHECK(error_code(a.last("error")) == "bad_json");
  h.engine->receive(a.id, R"({"op":"ping","ref":0.0000074836628E-2147483636})");
  CHECK(!a.take().empty());
  CHECK(ok(h.request(a, R"({"op":"ping"})")));
}

TEST_CASE("reload keeps state, adds new default keys, runs onReload; a broken script keeps the old class") {
  TempRooms rooms;
  rooms.write("r.lua", R"(
local R = { defaultState = { n = 1, nested = { a = 1 } }, options = { patchRate = 0 }, actions = {} }
function R.actions.v(self) return "v1" end
return R)");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"r:1"})")));
  rooms.write("r.lua", R"(
local R = { defaultState = { n = 5, added = "yes", nested = { a = 9, b = 2 } }, options = { patchRate = 0 }, actions = {} }
function R.actions.v(self) return "v2" end
function R:onReload(previous) self.state.reloadedFrom = previous.actions.v(self) end
return R)");
  auto report = h.engine->reload();
  CHECK(json::to_json(report).find("\"ok\":true") != std::string::npos);
  CHECK(result(h.request(a, R"({"op":"call","room":"r:1","method":"v"})")).as_string() == "v2");
  auto state = *h.engine->room("r:1")->get_object("state");
  CHECK(state.find("n")->as_number() == 1);                        // state kept
  CHECK(*state.get_string("added") == "yes");                      // new key added
  CHECK(state.get_object("nested")->find("a")->as_number() == 1);  // kept
  CHECK(state.get_object("nested")->find("b")->as_number() == 2);  // added recursively
  CHECK(*state.get_string("reloadedFrom") == "v1");

  rooms.write("r.lua", "local R = {\n  this is not lua");
  auto broken = h.engine->reload();
  CHECK(json::to_json(broken).find("\"ok\":false") != std::string::npos);
  CHECK(result(h.request(a, R"({"op":"call","room":"r:1","method":"v"})")).as_string() == "v2");
  CHECK(json::to_json(h.engine->status()).find("r.lua:2:") != std::string::npos);
}

TEST_CASE("a room that allocates without end gets budget_exceeded; it is charged, others keep working") {
  TempRooms rooms;
  rooms.write("bomb.lua", R"(
local B = { defaultState = { n = 0 }, actions = {} }
function B.actions.boom(self)
  self.state.n = 1
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 64) .. i end
end
function B.actions.hold(self, ctx, n)
  local t = {}
  for i = 1, n do t[i] = "held-" .. i end
  self.state.held = t
end
return B)");
  rooms.write("calm.lua", "local C = { actions = {} }\nfunction C.actions.hi() return 'hi' end\nreturn C");
  Harness h(rooms, 5000, 4u << 20);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"bomb:1"})")));
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"calm:1"})")));
  auto r = h.request(a, R"({"op":"call","room":"bomb:1","method":"boom"})");
  CHECK(error_code(r) == "budget_exceeded");
  CHECK(error_message(r).find("memory budget") != std::string::npos);
  CHECK(h.engine->room("bomb:1")->get_object("state")->find("n")->as_number() == 0);
  CHECK(result(h.request(a, R"({"op":"call","room":"calm:1","method":"hi"})")).as_string() == "hi");
  // What a room keeps is charged to it, not to the engine or another room.
  const double calm_before = h.engine->room("calm:1")->find("memory")->as_number();
  auto held = h.request(a, R"({"op":"call","room":"bomb:1","method":"hold","args":[20000]})");
  REQUIRE_MESSAGE(ok(held), json::to_json(held));
  CHECK(h.engine->room("bomb:1")->find("memory")->as_number() > 400000);
  CHECK(h.engine->room("calm:1")->find("memory")->as_number() <= calm_before);  // only its own garbage went
}

TEST_CASE("math.random is per room: a seed in one room does not move another room's sequence") {
  TempRooms rooms;
  rooms.write("dice.lua", R"(
local D = { actions = {} }
function D.actions.seed(self, ctx, s) math.randomseed(s) end
function D.actions.roll(self) return { math.random(1, 1000000), math.random(1, 1000000) } end
return D)");
  Harness h(rooms);
  auto& a = h.connect();
  for (const char* r : {"dice:a", "dice:b"})
    REQUIRE(ok(h.request(a, std::string(R"({"op":"join","room":")") + r + "\"}")));
  auto roll = [&](const char* room) {
    return json::to_json(result(h.request(a, std::string(R"({"op":"call","room":")") + room + R"(","method":"roll"})")));
  };
  REQUIRE(ok(h.request(a, R"({"op":"call","room":"dice:a","method":"seed","args":[42]})")));
  const std::string first = roll("dice:a");
  REQUIRE(ok(h.request(a, R"({"op":"call","room":"dice:a","method":"seed","args":[42]})")));
  REQUIRE(ok(h.request(a, R"({"op":"call","room":"dice:b","method":"seed","args":[7]})")));
  roll("dice:b");  // b's draws do not consume a's sequence
  CHECK(roll("dice:a") == first);
}

TEST_CASE("an onReload that raises rolls back its own changes and reports; the new code stays") {
  TempRooms rooms;
  rooms.write("r.lua", "local R = { defaultState = { n = 1 }, actions = {} }\n"
                       "function R.actions.v() return 1 end\nreturn R\n");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"r:1"})")));
  rooms.write("r.lua", "local R = { defaultState = { n = 1 }, actions = {} }\n"
                       "function R.actions.v() return 2 end\n"
                       "function R:onReload() self.state.n = 99; error('reload hook broke') end\nreturn R\n");
  h.engine->reload_script("r.lua");
  CHECK(result(h.request(a, R"({"op":"call","room":"r:1","method":"v"})")).as_number() == 2);
  CHECK(h.engine->room("r:1")->get_object("state")->find("n")->as_number() == 1);
  CHECK(json::to_json(h.engine->status()).find("reload hook broke") != std::string::npos);
}

TEST_CASE("a new script file is a new room type; a deleted one keeps its live rooms but takes no joins") {
  TempRooms rooms;
  Harness h(rooms);
  auto& a = h.connect();
  rooms.write("fresh.lua", "local F = { defaultState = { ok = true } }\nreturn F\n");
  CHECK(h.engine->reload_script("fresh.lua").find("ok")->as_bool() == true);
  auto j = h.request(a, R"({"op":"join","room":"fresh:1"})");
  REQUIRE(ok(j));
  CHECK(result(j).get_object("state")->find("ok")->as_bool() == true);
  std::filesystem::remove(rooms.path() + "/fresh.lua");
  h.engine->reload_script("fresh.lua");
  CHECK(h.engine->room("fresh:1").ok());  // the live room keeps serving
  auto refused = h.request(a, R"({"op":"join","room":"fresh:2"})");
  CHECK(error_code(refused) == "not_found");  // never an open untyped room
}

TEST_CASE("a tick or timer callback that loops forever is stopped and the room keeps ticking") {
  TempRooms rooms;
  rooms.write("t.lua", R"(
local T = { defaultState = { ticks = 0 }, options = { tickRate = 50, patchRate = 0 } }
local calls = 0   -- a module local: not rolled back, so only the second tick loops
function T:onTick()
  calls = calls + 1
  self.state.ticks = self.state.ticks + 1
  if calls == 2 then while true do end end
end
function T:onCreate() self:setTimeout(1, function() while true do end end) end
return T)");
  Harness h(rooms, 30);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"t:1"})")));
  h.advance(300);
  // The looping tick was stopped and rolled back; the ticks after it went on.
  CHECK(h.engine->room("t:1")->get_object("state")->find("ticks")->as_number() >= 4);
  bool stopped = false;
  for (const std::string& line : h.log) stopped |= line.find("code=budget_exceeded") != std::string::npos;
  CHECK(stopped);
}

TEST_CASE("the array marker is shared by every room, so no script can reach or change it") {
  // Before: getmetatable(atrium.array()) was the marker itself. One room could give it an
  // __newindex and swallow every other room's appends to its arrays.
  TempRooms rooms;
  rooms.write("spoil.lua", R"(
local S = { actions = {} }
function S.actions.spoil(self)
  local mt = getmetatable(atrium.array())
  mt.__newindex = function() end
end
function S.actions.peek(self)
  return { meta = getmetatable(atrium.array()), unmark = pcall(setmetatable, atrium.array(), nil) }
end
return S)");
  rooms.write("list.lua", R"(
local L = { defaultState = { items = atrium.array() }, actions = {} }
function L.actions.add(self, ctx, v)
  local items = self.state.items
  items[#items + 1] = v
  return #items
end
return L)");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"spoil:1"})")));
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"list:1"})")));
  auto spoiled = h.request(a, R"({"op":"call","room":"spoil:1","method":"spoil"})");
  CHECK(error_code(spoiled) == "script_error");
  auto added = h.request(a, R"({"op":"call","room":"list:1","method":"add","args":["x"]})");
  REQUIRE(ok(added));
  CHECK(result(added).as_number() == 1);
  CHECK(h.engine->room("list:1")->get_object("state")->get_array("items")->size() == 1);
  auto peek = h.request(a, R"({"op":"call","room":"spoil:1","method":"peek"})");
  REQUIRE_MESSAGE(ok(peek), json::to_json(peek));
  CHECK(result(peek).find("meta")->as_bool() == false);    // hidden, like the string metatable
  CHECK(result(peek).find("unmark")->as_bool() == false);  // and not to be taken off
}
