// Who a connection is, through the engine's own API (no sockets): the identity a
// transport hands to connect(), ctx.claims and ctx.user in hooks, a token's expiry on the
// engine's clock, the in-band `auth` op, and the connection gate rooms/_connect.lua
// (docs/protocol.md "Connecting: tokens, origins, TLS", docs/rooms.md "The connection gate").
#include "engine_harness.hpp"

using namespace atrium;
using namespace atrium::test;

namespace {

constexpr const char* kWho = R"(
local W = { defaultState = { n = 0 }, actions = {}, options = { reconnectGrace = 0 } }
function W.actions.who(self, ctx)
  return { userId = ctx.userId or false, role = ctx.claims and ctx.claims.role or false,
           name = ctx.user and ctx.user.name or false }
end
local left = {}
function W:onLeave(ctx) left[#left + 1] = (ctx.user and ctx.user.name or "?") .. ":" .. (ctx.claims and ctx.claims.role or "?") end
function W.actions.left(self) return table.concat(left, ",") end
return W)";

json::Value object_of(const std::string& text) { return json::parse(text).value(); }

engine::Identity identity(const std::string& user, const std::string& claims, const std::string& ctx_user,
                          std::int64_t exp = 0) {
  engine::Identity id;
  id.user_id = user;
  id.claims = object_of(claims);
  if (!ctx_user.empty()) id.user = object_of(ctx_user);
  id.expires_at_s = exp;
  return id;
}

// A verifier for the auth op: "user:role:exp" tokens; anything else is refused.
engine::TokenVerifier fake_verifier() {
  return [](std::string_view token) -> Result<engine::Identity> {
    const std::string t(token);
    const auto a = t.find(':'), b = t.rfind(':');
    if (a == std::string::npos || a == b) return make_error(ErrorCode::unauthorized, "bad token");
    return identity(t.substr(0, a), "{\"role\":\"" + t.substr(a + 1, b - a - 1) + "\"}", "",
                    std::stoll(t.substr(b + 1)));
  };
}

struct World {
  TempRooms rooms;
  std::unique_ptr<Harness> h;
  explicit World(const std::string& gate = "") {
    rooms.write("who.lua", kWho);
    if (!gate.empty()) rooms.write("_connect.lua", gate);
    h = std::make_unique<Harness>(rooms, [](engine::EngineConfig& cfg) {
      cfg.host_clock = true;
      cfg.verify_token = fake_verifier();
      cfg.cpu_budget_ms = 50;
    });
    h->engine->set_clocks(1000, 1'700'000'000'000);  // wall: 1,700,000,000 s
  }
  FakeClient& connect(engine::Identity id) {
    h->clients.push_back(std::make_unique<FakeClient>());
    FakeClient& c = *h->clients.back();
    c.id = h->engine->connect(c, std::move(id));
    auto welcome = c.take();
    REQUIRE(welcome.size() == 1);
    c.wire_id = *welcome[0].get_string("client");
    if (const std::string* u = welcome[0].get_string("userId")) user_seen = *u;
    return c;
  }
  json::Value who(FakeClient& c, const std::string& room = "who:1") {
    h->request(c, "{\"op\":\"join\",\"room\":\"" + room + "\"}");
    return result(h->request(c, "{\"op\":\"call\",\"room\":\"" + room + "\",\"method\":\"who\"}"));
  }
  void at(std::int64_t now_ms, std::int64_t wall_s) {
    h->engine->set_clocks(now_ms, wall_s * 1000);
    h->engine->run_due();
  }
  std::string user_seen;
};

}  // namespace

TEST_CASE("identity: userId, claims and the gate's user reach welcome and every hook, onLeave included") {
  World w;
  FakeClient& c = w.connect(identity("ada", R"({"role":"admin","sub":"ada"})", R"({"name":"Ada"})"));
  CHECK(w.user_seen == "ada");
  const json::Value r = w.who(c);
  CHECK(*r.get_string("userId") == "ada");
  CHECK(*r.get_string("role") == "admin");
  CHECK(*r.get_string("name") == "Ada");
  FakeClient& other = w.connect(engine::Identity{});
  CHECK(w.who(other).find("userId")->as_bool() == false);
  w.h->engine->disconnect(c.id, false);  // onLeave runs after the client is gone: it still knows who
  CHECK(result(w.h->request(other, R"({"op":"call","room":"who:1","method":"left"})")).as_string() == "Ada:admin");
}

TEST_CASE("identity: a token that runs out closes its connection with 4003 on the engine's clock") {
  World w;
  FakeClient& c = w.connect(identity("ada", "{}", "", 1'700'000'010));  // 10 s left
  FakeClient& forever = w.connect(identity("bob", "{}", ""));
  w.at(9'000, 1'700'000'008);
  CHECK(c.closed_with == 0);
  w.at(11'100, 1'700'000'010);
  CHECK(c.closed_with == 4003);
  CHECK(forever.closed_with == 0);
  CHECK(w.h->engine->metrics().find("atrium_tokens_expired_total 1") != std::string::npos);
}

TEST_CASE("identity: auth refreshes the token of the same user; another user, an anonymous connection or a bad token change nothing") {
  World w;
  FakeClient& c = w.connect(identity("ada", R"({"role":"a"})", "", 1'700'000'010));
  CHECK(ok(w.h->request(c, R"({"op":"auth","token":"ada:b:1700000100"})")));
  CHECK(*w.who(c).get_string("role") == "b");
  w.at(20'000, 1'700'000'020);
  CHECK(c.closed_with == 0);  // the old expiry no longer holds
  CHECK(error_code(w.h->request(c, R"({"op":"auth","token":"mallory:x:1700009999"})")) == "unauthorized");
  CHECK(error_code(w.h->request(c, R"({"op":"auth","token":"garbage"})")) == "unauthorized");
  CHECK(error_code(w.h->request(c, R"({"op":"auth"})")) == "bad_request");
  CHECK(*w.who(c).get_string("role") == "b");
  FakeClient& anon = w.connect(engine::Identity{});
  CHECK(error_code(w.h->request(anon, R"({"op":"auth","token":"ada:a:1700009999"})")) == "unauthorized");
  w.at(101'000, 1'700'000'101);
  CHECK(c.closed_with == 4003);  // the refreshed expiry
}

TEST_CASE("gate: onConnect admits with a user, refuses with 403 and a reason, and sees the whole request") {
  World w(R"(
local G = {}
function G.onConnect(req)
  if req.query.ban then return false, "banned: " .. req.ip end
  if req.cookies.csrf ~= req.headers["x-csrf-token"] then return false end
  return { name = req.query.name, claimsRole = req.claims and req.claims.role or false, user = req.userId or false }
end
return G)");
  engine::ConnectRequest req;
  req.ip = "10.0.0.7";
  req.query = {{"name", "ada"}};
  req.cookies = {{"csrf", "t1"}};
  req.headers = {{"x-csrf-token", "t1"}};
  req.user_id = "u1";
  req.claims = object_of(R"({"role":"admin"})");
  engine::Admission a = w.h->engine->admit(req);
  REQUIRE(a.admitted);
  CHECK(*a.user.get_string("name") == "ada");
  CHECK(*a.user.get_string("claimsRole") == "admin");
  CHECK(*a.user.get_string("user") == "u1");
  req.headers = {{"x-csrf-token", "forged"}};
  a = w.h->engine->admit(req);
  CHECK_FALSE(a.admitted);
  CHECK(a.status == 403);
  CHECK(a.reason == "refused by the connection gate");
  req.query.push_back({"ban", "1"});
  a = w.h->engine->admit(req);
  CHECK(a.status == 403);
  CHECK(a.reason == "banned: 10.0.0.7");
}

TEST_CASE("gate: it fails closed on an error, a budget stop, a wrong answer or a failed load, and the engine goes on") {
  World w(R"(
local G = {}
function G.onConnect(req)
  if req.query.mode == "error" then error("boom") end
  if req.query.mode == "spin" then while true do end end
  if req.query.mode == "string" then return "yes" end
  if req.query.mode == "array" then return { 1, 2 } end
  if req.query.mode == "hog" then local t = {} while true do t[#t + 1] = string.rep("x", 1000) .. #t end end
  return true
end
return G)");
  for (const char* mode : {"error", "spin", "string", "array", "hog"}) {
    CAPTURE(mode);
    engine::ConnectRequest req;
    req.query = {{"mode", mode}};
    const engine::Admission a = w.h->engine->admit(req);
    CHECK_FALSE(a.admitted);
    CHECK(a.status == 503);
  }
  CHECK(w.h->engine->admit(engine::ConnectRequest{}).admitted);
  CHECK(w.h->engine->check_invariants().ok());
  // A broken save refuses everyone; a good one lets them in; deleting the file opens.
  w.rooms.write("_connect.lua", "this is not lua");
  json::Value report = w.h->engine->reload_script("_connect.lua");
  CHECK(report.find("ok")->as_bool() == false);
  engine::Admission a = w.h->engine->admit(engine::ConnectRequest{});
  CHECK(a.status == 503);
  CHECK(a.reason == "the connection gate failed to load");
  w.rooms.write("_connect.lua", "local G = {}\nfunction G.onConnect() return { v = 2 } end\nreturn G\n");
  CHECK(w.h->engine->reload_script("_connect.lua").find("ok")->as_bool());
  CHECK(w.h->engine->admit(engine::ConnectRequest{}).user.find("v")->as_number() == 2);
  std::filesystem::remove(w.rooms.path() + "/_connect.lua");
  w.h->engine->reload_script("_connect.lua");
  a = w.h->engine->admit(engine::ConnectRequest{});
  CHECK(a.admitted);
  CHECK(a.user.is_null());
  // The gate is not a room type.
  FakeClient& c = w.connect(engine::Identity{});
  CHECK(error_code(w.h->request(c, R"({"op":"join","room":"_connect:1"})")) == "not_found");
}
