// Joining and leaving rooms through the engine's own API (no sockets).
#include "engine_harness.hpp"

using namespace atrium;
using namespace atrium::test;

namespace {

const char* kGuarded = R"(
local Room = {
  defaultState = { online = 0, names = atrium.array() },
  defaultMeta = { password = false },
  options = { maxMembers = 2, patchRate = 0, reconnectGrace = 0 },  -- a drop leaves at once
}
function Room:onCreate(ctx)
  if ctx and ctx.payload.password then self.meta.password = ctx.payload.password end
end
function Room:onJoin(ctx)
  self.state.online = self.state.online + 1
  if self.meta.password and ctx.payload.password ~= self.meta.password then
    return false, "wrong password"
  end
  table.insert(self.state.names, ctx.client)
end
function Room:onLeave(ctx)
  self.state.online = self.state.online - 1
  self.state.lastLeave = ctx.reason
end
return Room
)";

}  // namespace

TEST_CASE("the first frame is welcome with a client id, a session and the heartbeat") {
  TempRooms rooms;
  Harness h(rooms);
  FakeClient c;
  h.engine->connect(c);
  auto lines = c.take();
  REQUIRE(lines.size() == 1);
  CHECK(*lines[0].get_string("op") == "welcome");
  CHECK(lines[0].get_string("client")->rfind("c", 0) == 0);
  CHECK(lines[0].get_string("session")->size() == 32);
  CHECK(lines[0].find("heartbeat")->as_number() == 25000);
}

TEST_CASE("ping answers pong with the same ref") {
  TempRooms rooms;
  Harness h(rooms);
  auto& c = h.connect();
  auto reply = h.request(c, R"({"op":"ping"})");
  CHECK(ok(reply));
  CHECK(result(reply).as_string() == "pong");
}

TEST_CASE("an untyped room is pub/sub: emit reaches the other members with from, not the sender") {
  TempRooms rooms;
  Harness h(rooms);
  auto& a = h.connect();
  auto& b = h.connect();
  auto ja = h.request(a, R"({"op":"join","room":"lobby"})");
  REQUIRE(ok(ja));
  CHECK(result(ja).find("seq")->as_number() == 0);
  CHECK(result(ja).get_object("state")->size() == 0);
  // TYPE:INSTANCE with no script is not an untyped room: a typo opens nothing.
  const json::Value typo = h.request(b, R"({"op":"join","room":"nobody:here"})");
  CHECK(error_code(typo) == "not_found");
  CHECK(error_message(typo) == "no room type 'nobody': rooms/nobody.lua does not exist");
  REQUIRE(ok(h.request(b, R"({"op":"join","room":"lobby"})")));
  REQUIRE(ok(h.request(a, R"({"op":"emit","room":"lobby","event":"hi","data":{"n":1}})")));
  CHECK(a.take().empty());
  auto ev = b.last("event");
  REQUIRE(!ev.is_null());
  CHECK(*ev.get_string("event") == "hi");
  CHECK(*ev.get_string("from") == a.wire_id);
  CHECK(ev.get_object("data")->find("n")->as_number() == 1);
}

TEST_CASE("a typed join runs onJoin and returns the state at its seq; others get a patch") {
  TempRooms rooms;
  rooms.write("guarded.lua", kGuarded);
  Harness h(rooms);
  auto& a = h.connect();
  auto& b = h.connect();
  auto ja = h.request(a, R"({"op":"join","room":"guarded:x"})");
  REQUIRE(ok(ja));
  CHECK(result(ja).get_object("state")->find("online")->as_number() == 1);
  auto jb = h.request_keep(b, R"({"op":"join","room":"guarded:x"})");
  REQUIRE(ok(jb));
  CHECK(result(jb).get_object("state")->find("online")->as_number() == 2);
  CHECK(result(jb).get_object("state")->get_array("names")->size() == 2);
  auto patch = a.last("patch");
  REQUIRE(!patch.is_null());
  CHECK(patch.find("seq")->as_number() == result(jb).find("seq")->as_number());
}

TEST_CASE("a rejected join changes nothing and a room created for it is discarded") {
  TempRooms rooms;
  rooms.write("guarded.lua", kGuarded);
  Harness h(rooms);
  auto& a = h.connect();
  auto& b = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"guarded:p","payload":{"password":"s3"}})")));
  auto bad = h.request(b, R"({"op":"join","room":"guarded:p","payload":{"password":"no"}})");
  CHECK(error_code(bad) == "join_rejected");
  CHECK(error_message(bad) == "wrong password");
  auto room = h.engine->room("guarded:p");
  REQUIRE(room.ok());
  CHECK(room->get_object("state")->find("online")->as_number() == 1);
  CHECK(room->find("members")->as_number() == 1);
  CHECK(ok(h.request(b, R"({"op":"join","room":"guarded:p","payload":{"password":"s3"}})")));
}

TEST_CASE("maxMembers refuses the next join with room_full; a second join is already_member") {
  TempRooms rooms;
  rooms.write("guarded.lua", kGuarded);
  Harness h(rooms);
  auto& a = h.connect();
  auto& b = h.connect();
  auto& c = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"guarded:f"})")));
  CHECK(error_code(h.request(a, R"({"op":"join","room":"guarded:f"})")) == "already_member");
  REQUIRE(ok(h.request(b, R"({"op":"join","room":"guarded:f"})")));
  CHECK(error_code(h.request(c, R"({"op":"join","room":"guarded:f"})")) == "room_full");
}

TEST_CASE("leave runs onLeave with reason leave; a drop with no reconnectGrace gives disconnect at once") {
  TempRooms rooms;
  rooms.write("guarded.lua", kGuarded);
  Harness h(rooms);
  auto& a = h.connect();
  auto& b = h.connect();
  auto& c = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"guarded:l"})")));
  REQUIRE(ok(h.request(b, R"({"op":"join","room":"guarded:l"})")));
  REQUIRE(ok(h.request(b, R"({"op":"leave","room":"guarded:l"})")));
  CHECK(*h.engine->room("guarded:l")->get_object("state")->get_string("lastLeave") == "leave");
  CHECK(error_code(h.request(b, R"({"op":"leave","room":"guarded:l"})")) == "not_member");
  REQUIRE(ok(h.request(c, R"({"op":"join","room":"guarded:l"})")));
  h.engine->disconnect(c.id, false);
  auto state = *h.engine->room("guarded:l")->get_object("state");
  CHECK(*state.get_string("lastLeave") == "disconnect");
  CHECK(state.find("online")->as_number() == 1);
}

TEST_CASE("the last member leaving destroys the room unless onDestroy returns false") {
  TempRooms rooms;
  rooms.write("plain.lua", "return { defaultState = { n = 0 } }");
  rooms.write("sticky.lua", "local R = {}\nfunction R:onDestroy() return false end\nreturn R");
  Harness h(rooms);
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"plain:x"})")));
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"sticky:x"})")));
  REQUIRE(ok(h.request(a, R"({"op":"leave","room":"plain:x"})")));
  REQUIRE(ok(h.request(a, R"({"op":"leave","room":"sticky:x"})")));
  CHECK(h.engine->room("plain:x").error().code == ErrorCode::not_found);
  CHECK(h.engine->room("sticky:x").ok());
}

TEST_CASE("serverJoinOnly refuses client joins; server code can place the client") {
  TempRooms rooms;
  rooms.write("match.lua", R"(
local M = { options = { serverJoinOnly = true }, defaultState = { players = {} } }
function M:onJoin(ctx) self.state.players[ctx.client] = ctx.payload.team or "none" end
return M)");
  rooms.write("lobby.lua", R"(
local L = { actions = {} }
function L.actions.play(self, ctx)
  return atrium.room("match:1"):join(ctx.client, { team = "red" })
end
return L)");
  Harness h(rooms);
  auto& a = h.connect();
  auto refused = h.request(a, R"({"op":"join","room":"match:1"})");
  CHECK(error_code(refused) == "server_join_only");
  CHECK(error_message(refused) == "room requires server-side join");
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"lobby:main"})")));
  auto reply = h.request_keep(a, R"({"op":"call","room":"lobby:main","method":"play"})");
  CHECK(ok(reply));
  CHECK(result(reply).as_bool() == true);
  auto joined = a.last("joined");
  REQUIRE(!joined.is_null());
  CHECK(*joined.get_string("room") == "match:1");
  CHECK(*joined.get_object("state")->get_object("players")->get_string(a.wire_id) == "red");
}

TEST_CASE("a type whose script failed to load answers joins with script_error; a typo'd type is untyped") {
  TempRooms rooms;
  rooms.write("broken.lua", "local x = = 1");
  Harness h(rooms);
  auto& a = h.connect();
  auto r = h.request(a, R"({"op":"join","room":"broken:1"})");
  CHECK(error_code(r) == "script_error");
  CHECK(error_message(r).find("broken.lua:1:") != std::string::npos);
  auto status = h.engine->status();
  bool listed = false;
  for (const auto& t : status.get_array("types")->items())
    if (*t.get_string("name") == "broken") listed = t.find("error")->is_string();
  CHECK(listed);
}

TEST_CASE("watch follows a room's patches without joining it; it needs the admin token when one is set") {
  TempRooms rooms;
  rooms.write("c.lua", R"(
local C = { defaultState = { n = 0 }, options = { patchRate = 0 }, actions = {} }
function C.actions.bump(self) self.state.n = self.state.n + 1 end
return C)");
  Harness h(rooms);
  auto& member = h.connect();
  auto& inspector = h.connect();
  CHECK(error_code(h.request(inspector, R"({"op":"watch","room":"c:1"})")) == "not_found");
  REQUIRE(ok(h.request(member, R"({"op":"join","room":"c:1"})")));
  auto w = h.request(inspector, R"({"op":"watch","room":"c:1"})");
  REQUIRE(ok(w));
  CHECK(result(w).get_object("state")->find("n")->as_number() == 0);
  CHECK(h.engine->room("c:1")->find("members")->as_number() == 1);  // not a member
  REQUIRE(ok(h.request(member, R"({"op":"call","room":"c:1","method":"bump"})")));
  auto patch = inspector.last("patch");
  REQUIRE(!patch.is_null());
  CHECK(patch.find("seq")->as_number() == result(w).find("seq")->as_number() + 1);
  CHECK(error_code(h.request(inspector, R"({"op":"call","room":"c:1","method":"bump"})")) == "not_member");
  REQUIRE(ok(h.request(inspector, R"({"op":"unwatch","room":"c:1"})")));
  REQUIRE(ok(h.request(member, R"({"op":"call","room":"c:1","method":"bump"})")));
  CHECK(inspector.last("patch").is_null());
  // The room going away tells its watchers.
  REQUIRE(ok(h.request(inspector, R"({"op":"watch","room":"c:1"})")));
  REQUIRE(ok(h.request(member, R"({"op":"leave","room":"c:1"})")));
  auto left = inspector.last("left");
  REQUIRE(!left.is_null());
  CHECK(*left.get_string("reason") == "closed");
}

TEST_CASE("watch with an admin token configured refuses a missing or wrong token") {
  TempRooms rooms;
  engine::EngineConfig cfg;
  cfg.rooms_dir = rooms.path();
  cfg.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  cfg.admin_token = "s3cret";
  cfg.on_log = [](engine::LogLevel, std::string_view) {};
  engine::Engine e(cfg);
  REQUIRE(e.start().ok());
  FakeClient c;
  c.id = e.connect(c);
  e.receive(c.id, R"({"op":"join","ref":1,"room":"lobby"})");
  e.receive(c.id, R"({"op":"watch","ref":2,"room":"lobby"})");
  e.receive(c.id, R"({"op":"watch","ref":3,"room":"lobby","token":"nope"})");
  e.receive(c.id, R"({"op":"watch","ref":4,"room":"lobby","token":"s3cret"})");
  auto lines = c.take();
  std::map<double, std::string> codes;
  for (auto& l : lines)
    if (l.find("ref")) codes[l.find("ref")->as_number()] = ok(l) ? "ok" : error_code(l);
  CHECK(codes[2] == "unauthorized");
  CHECK(codes[3] == "unauthorized");
  CHECK(codes[4] == "ok");
}

TEST_CASE("--untyped off: ids without a TYPE are not_found; typed rooms still open") {
  TempRooms rooms;
  rooms.write("guarded.lua", kGuarded);
  Harness h(rooms, [](engine::EngineConfig& cfg) { cfg.untyped_rooms = false; });
  auto& a = h.connect();
  const json::Value lobby = h.request(a, R"({"op":"join","room":"lobby"})");
  CHECK(error_code(lobby) == "not_found");
  CHECK(error_message(lobby).find("--untyped off") != std::string::npos);
  CHECK(ok(h.request(a, R"({"op":"join","room":"guarded:1","payload":{"password":"open sesame"}})")));
}

TEST_CASE("--max-rooms-per-connection: client joins and server-side placements count; a leave frees a slot") {
  TempRooms rooms;
  rooms.write("placer.lua", R"(
local P = { actions = {} }
function P.actions.place(self, ctx, id)
  local ok, why = atrium.room(id):join(ctx.client, {})
  return { ok, why or "" }
end
return P)");
  Harness h(rooms, [](engine::EngineConfig& cfg) { cfg.max_rooms_per_connection = 3; });
  auto& a = h.connect();
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"placer:1"})")));
  REQUIRE(ok(h.request(a, R"({"op":"join","room":"r1"})")));
  const json::Value placed = h.request(a, R"({"op":"call","room":"placer:1","method":"place","args":["r2"]})");
  CHECK(json::to_json(result(placed)) == R"([true,""])");
  const json::Value fourth = h.request(a, R"({"op":"join","room":"r3"})");
  CHECK(error_code(fourth) == "not_allowed");
  CHECK(error_message(fourth).find("--max-rooms-per-connection") != std::string::npos);
  const json::Value refused = h.request(a, R"({"op":"call","room":"placer:1","method":"place","args":["r3"]})");
  REQUIRE(result(refused).is_array());
  CHECK(result(refused).items()[0].as_bool() == false);
  CHECK(result(refused).items()[1].as_string().find("--max-rooms-per-connection") != std::string::npos);
  REQUIRE(ok(h.request(a, R"({"op":"leave","room":"r1"})")));
  CHECK(ok(h.request(a, R"({"op":"join","room":"r3"})")));
  // Watching is not membership: it takes no slot.
  CHECK(ok(h.request(a, R"({"op":"watch","room":"r2"})")));
}

TEST_CASE("a connection in thousands of rooms leaves them all when it drops, and each room goes") {
  TempRooms rooms;
  Harness h(rooms, [](engine::EngineConfig& cfg) { cfg.max_rooms_per_connection = 100000; });
  auto& a = h.connect();
  auto& b = h.connect();
  for (int i = 0; i < 3000; ++i) REQUIRE(ok(h.request(a, "{\"op\":\"join\",\"room\":\"r" + std::to_string(i) + "\"}")));
  REQUIRE(ok(h.request(b, R"({"op":"join","room":"r7"})")));
  h.engine->disconnect(a.id, false);
  CHECK(h.engine->rooms().find("rooms")->size() == 1);  // r7 stays: b is in it
  CHECK(ok(h.request(b, R"({"op":"emit","room":"r7","event":"still"})")));
}
