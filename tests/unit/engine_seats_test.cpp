// Seats held through a drop, and resume (docs/protocol.md "Seats and resume"), under the
// host clock so that graces end exactly when the test says.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "engine/replay.hpp"
#include "engine_harness.hpp"
#include "state/op.hpp"

namespace atrium::test {
namespace {

constexpr const char* kSeat = R"(
local R = {
  defaultState = { n = 0, joins = 0, leaves = 0, lastLeave = false },
  defaultMeta = { drops = 0, backs = 0 },  -- private: a drop or a resume makes no patch
  options = { patchRate = 10, reconnectGrace = 5, maxMembers = 3 },
  actions = {},
}
function R:onJoin(ctx) self.state.joins = self.state.joins + 1 end
function R:onLeave(ctx)
  self.state.leaves = self.state.leaves + 1
  self.state.lastLeave = ctx.reason
end
function R:onDrop(ctx) self.meta.drops = self.meta.drops + 1 end
function R:onReconnect(ctx) self.meta.backs = self.meta.backs + 1 end
function R:counts() return { drops = self.meta.drops, backs = self.meta.backs } end
function R.actions.bump(self) self.state.n = self.state.n + 1 return self.state.n end
function R.actions.held(self)
  local out = {}
  for m in self:members() do if not m.connected then out[#out + 1] = m.client end end
  return table.concat(out, ",")
end
function R.actions.kick(self, ctx, who) self:kick(who, "bye") end
return R)";

// An engine on the host clock with rooms/seat.lua; `pump` lets time pass.
struct Seats {
  TempRooms rooms;
  std::unique_ptr<Harness> h;
  std::int64_t now = 1000;

  explicit Seats(std::size_t log_patches = 256) {
    rooms.write("seat.lua", kSeat);
    h = std::make_unique<Harness>(rooms, [&](engine::EngineConfig& cfg) {
      cfg.host_clock = true;
      cfg.patch_log.max_patches = log_patches;
    });
    h->engine->set_host_time(now);
  }
  void pump(int ms) {
    for (int i = 0; i < ms; ++i) {
      h->engine->set_host_time(++now);
      h->engine->run_due();
      h->engine->end_of_pass();
    }
  }
  FakeClient& joined(const char* room = "seat:1") {
    FakeClient& c = h->connect();
    REQUIRE(ok(h->request(c, std::string(R"({"op":"join","room":")") + room + "\"}")));
    return c;
  }
  json::Value state(const char* room = "seat:1") { return *h->engine->room(room)->get_object("state"); }
  double n(const char* field, const char* room = "seat:1") {
    if (std::string(field) == "drops" || std::string(field) == "backs") {
      auto r = h->engine->call(room, "counts", json::Value::array());
      REQUIRE(r.ok());
      return r.value().get_object("result")->find(field)->as_number();
    }
    return state(room).find(field)->as_number();
  }
  std::string epoch(const char* room = "seat:1") { return *h->engine->room(room)->get_string("epoch"); }
  double seq(const char* room = "seat:1") { return h->engine->room(room)->find("seq")->as_number(); }
  void bump(FakeClient& c, int times) {
    for (int i = 0; i < times; ++i) {
      REQUIRE(ok(h->request(c, R"({"op":"call","room":"seat:1","method":"bump"})")));
      pump(11);  // one patch each
    }
  }
  // The session of c as its welcome said it (FakeClient keeps no welcome).
  std::string session_of(FakeClient& c) { return sessions.at(&c); }
  FakeClient& connect_keep() {
    h->clients.push_back(std::make_unique<FakeClient>());
    FakeClient& c = *h->clients.back();
    c.id = h->engine->connect(c);
    auto welcome = c.take();
    REQUIRE(welcome.size() == 1);
    c.wire_id = *welcome[0].get_string("client");
    sessions[&c] = *welcome[0].get_string("session");
    return c;
  }
  FakeClient& joined_keep(const char* room = "seat:1") {
    FakeClient& c = connect_keep();
    REQUIRE(ok(h->request(c, std::string(R"({"op":"join","room":")") + room + "\"}")));
    return c;
  }
  std::map<FakeClient*, std::string> sessions;
};

// A patch frame's ops applied to `doc`, as a client does.
void apply_ops(json::Value& doc, const json::Value& ops) {
  std::vector<state::Op> list;
  for (const json::Value& o : ops.items()) {
    const std::string& kind = *o.get_string("op");
    list.push_back(state::Op{kind == "add" ? state::OpKind::add : kind == "remove" ? state::OpKind::remove
                                                                                  : state::OpKind::replace,
                             *o.get_string("path"), o.find("value") ? *o.find("value") : json::Value()});
  }
  REQUIRE(state::apply_patch(doc, list).ok());
}

std::string resume_body(const std::string& session, const std::string& rooms_json) {
  return R"({"op":"resume","session":")" + session + R"(","rooms":)" + rooms_json + "}";
}

std::string point(const char* room, double seq, const std::string& epoch) {
  return std::string("{\"") + room + "\":{\"seq\":" + std::to_string(static_cast<long long>(seq)) +
         ",\"epoch\":\"" + epoch + "\"}}";
}

// What a resume sent before its reply, and the reply.
struct Resumed {
  std::vector<json::Value> before;
  json::Value reply;
};

Resumed resume(Seats& s, FakeClient& c, const std::string& body) {
  const json::Value reply = s.h->request_keep(c, body);
  Resumed r;
  for (json::Value& v : c.take()) {
    if (*v.get_string("op") == "reply") break;
    r.before.push_back(std::move(v));
  }
  r.reply = reply;
  return r;
}

std::vector<double> patch_seqs(const Resumed& r) {
  std::vector<double> out;
  for (const json::Value& v : r.before)
    if (*v.get_string("op") == "patch") out.push_back(v.find("seq")->as_number());
  return out;
}

}  // namespace

TEST_CASE("a drop holds the seat for reconnectGrace: no onLeave, counted, marked, then disconnect") {
  Seats s;
  FakeClient& a = s.joined_keep();
  FakeClient& b = s.joined();
  s.pump(20);
  s.h->engine->disconnect(a.id, false);
  s.pump(20);
  CHECK(s.n("leaves") == 0);
  CHECK(s.n("drops") == 1);
  const json::Value held = s.h->request(b, R"({"op":"call","room":"seat:1","method":"held"})");
  REQUIRE_MESSAGE(ok(held), json::to_json(held));
  CHECK(result(held).as_string() == a.wire_id);
  const json::Value members = s.h->engine->members("seat:1").value();
  REQUIRE(members.get_array("members")->size() == 2);
  CHECK(members.get_array("members")->items()[0].find("connected")->as_bool() == false);
  // maxMembers 3: the held seat counts, so one more fits and the next does not.
  s.joined();
  FakeClient& d = s.h->connect();
  CHECK(error_code(s.h->request(d, R"({"op":"join","room":"seat:1"})")) == "room_full");
  CHECK(s.h->engine->check_invariants().ok());
  s.pump(5000);
  CHECK(s.n("leaves") == 1);
  CHECK(*s.state().get_string("lastLeave") == "disconnect");
  CHECK(s.h->engine->check_invariants().ok());
  // The session ended with its last seat.
  FakeClient& e = s.h->connect();
  CHECK(error_code(s.h->request(e, resume_body(s.session_of(a), "{}"))) == "not_found");
}

TEST_CASE("a clean close and a room with reconnectGrace 0 leave at once; untyped rooms hold no seat") {
  Seats s;
  s.joined();  // keeps the room
  FakeClient& a = s.joined();
  s.h->engine->disconnect(a.id, true);
  CHECK(s.n("leaves") == 1);
  CHECK(*s.state().get_string("lastLeave") == "leave");
  FakeClient& u = s.joined_keep("lobby");
  s.h->engine->disconnect(u.id, false);
  FakeClient& again = s.h->connect();
  CHECK(error_code(s.h->request(again, resume_body(s.session_of(u), R"({"lobby":0})"))) == "not_found");
  CHECK(s.h->engine->check_invariants().ok());
}

TEST_CASE("resume sends exactly the missed patches: 0, 1, the log's size; one more gives a state") {
  constexpr std::size_t kLog = 8;
  for (int missed : {0, 1, static_cast<int>(kLog), static_cast<int>(kLog) + 1}) {
    CAPTURE(missed);
    Seats s(kLog);
    FakeClient& a = s.joined_keep();
    FakeClient& b = s.joined();
    s.bump(b, 2);
    const double seen = s.seq();
    const std::string epoch = s.epoch();
    a.take();
    s.h->engine->disconnect(a.id, false);
    s.bump(b, missed);
    FakeClient& a2 = s.connect_keep();
    const Resumed r = resume(s, a2, resume_body(s.session_of(a), point("seat:1", seen, epoch)));
    REQUIRE(ok(r.reply));
    const json::Value& res = result(r.reply);
    CHECK(*res.get_string("client") == a.wire_id);  // the old id, not a2's
    const json::Value& room = *res.get_object("rooms")->get_object("seat:1");
    CHECK(*room.get_string("epoch") == epoch);
    CHECK(room.find("seq")->as_number() == s.seq());
    if (missed <= static_cast<int>(kLog)) {
      CHECK(room.find("recovered")->as_bool());
      std::vector<double> want;
      for (int i = 1; i <= missed; ++i) want.push_back(seen + i);
      CHECK(patch_seqs(r) == want);
      CHECK(r.before.size() == want.size());
    } else {
      CHECK_FALSE(room.find("recovered")->as_bool());
      REQUIRE(r.before.size() == 1);
      CHECK(*r.before[0].get_string("op") == "state");
      CHECK(*r.before[0].get_object("state") == s.state());
    }
    // No onJoin/onLeave; onReconnect ran; the client goes on as a member under its old id.
    CHECK(s.n("joins") == 2);
    CHECK(s.n("leaves") == 0);
    CHECK(s.n("backs") == 1);
    s.bump(b, 1);
    const json::Value live = a2.last("patch");
    REQUIRE(!live.is_null());
    CHECK(live.find("seq")->as_number() == s.seq());
    CHECK(ok(s.h->request(a2, R"({"op":"call","room":"seat:1","method":"bump"})")));
    CHECK(s.h->engine->check_invariants().ok());
  }
}

TEST_CASE("resume: a client that never got a patch, a resume right after a resume, another epoch") {
  Seats s;
  FakeClient& b = s.joined();
  FakeClient& a = s.joined_keep();
  const std::string epoch = s.epoch();
  const double joined_at = s.seq();
  s.h->engine->disconnect(a.id, false);
  s.bump(b, 3);
  FakeClient& a2 = s.connect_keep();
  Resumed r = resume(s, a2, resume_body(s.session_of(a), point("seat:1", joined_at, epoch)));
  CHECK(patch_seqs(r) == std::vector<double>{joined_at + 1, joined_at + 2, joined_at + 3});
  // Dropped again before anything new: the next resume (same session) sends nothing twice.
  s.h->engine->disconnect(a2.id, false);
  FakeClient& a3 = s.connect_keep();
  r = resume(s, a3, resume_body(s.session_of(a), point("seat:1", s.seq(), epoch)));
  CHECK(r.before.empty());
  CHECK(result(r.reply).get_object("rooms")->get_object("seat:1")->find("recovered")->as_bool());
  // Another epoch (or a seq the room never reached): a state, never patches.
  s.h->engine->disconnect(a3.id, false);
  s.bump(b, 1);
  FakeClient& a4 = s.connect_keep();
  r = resume(s, a4, resume_body(s.session_of(a), point("seat:1", s.seq() - 1, "0123456789abcdef")));
  REQUIRE(r.before.size() == 1);
  CHECK(*r.before[0].get_string("op") == "state");
  CHECK(*r.before[0].get_string("epoch") == epoch);
  CHECK_FALSE(result(r.reply).get_object("rooms")->get_object("seat:1")->find("recovered")->as_bool());
  s.h->engine->disconnect(a4.id, false);
  FakeClient& a5 = s.connect_keep();
  r = resume(s, a5, resume_body(s.session_of(a), point("seat:1", s.seq() + 5, epoch)));
  REQUIRE(r.before.size() == 1);
  CHECK(*r.before[0].get_string("op") == "state");
  // The older {id: seq} form.
  s.h->engine->disconnect(a5.id, false);
  s.bump(b, 2);
  FakeClient& a6 = s.connect_keep();
  r = resume(s, a6, resume_body(s.session_of(a), "{\"seat:1\":" + std::to_string(static_cast<int>(s.seq()) - 2) + "}"));
  CHECK(patch_seqs(r).size() == 2);
  CHECK(s.n("leaves") == 0);
  CHECK(s.h->engine->check_invariants().ok());
}

TEST_CASE("a room destroyed and made again under the same id has a new epoch") {
  Seats s;
  FakeClient& a = s.joined();
  const std::string first = s.epoch();
  REQUIRE(ok(s.h->request(a, R"({"op":"leave","room":"seat:1"})")));
  s.pump(5);
  const json::Value reply = s.h->request(a, R"({"op":"join","room":"seat:1"})");
  REQUIRE(ok(reply));
  CHECK(*result(reply).get_string("epoch") != first);
  CHECK(*result(reply).get_string("epoch") == s.epoch());
}

TEST_CASE("resume takes over a connection still open: it is closed with 4002 and speaks for nobody") {
  Seats s;
  FakeClient& a = s.joined_keep();
  FakeClient& b = s.joined();
  s.bump(b, 1);
  FakeClient& a2 = s.connect_keep();
  const Resumed r = resume(s, a2, resume_body(s.session_of(a), point("seat:1", s.seq(), s.epoch())));
  REQUIRE(ok(r.reply));
  CHECK(a.closed_with == 4002);
  a.lines.clear();
  s.bump(b, 1);
  CHECK(a.lines.empty());                 // nothing more to the old connection
  CHECK(!a2.last("patch").is_null());     // the new one gets the room
  // The old connection's late messages and its close change nothing.
  s.h->engine->receive(a.id, R"({"op":"leave","room":"seat:1","ref":1})");
  s.h->engine->disconnect(a.id, false);
  CHECK(s.n("leaves") == 0);
  CHECK(s.n("drops") == 0);   // never held: no onDrop, no onReconnect
  CHECK(s.n("backs") == 0);
  CHECK(ok(s.h->request(a2, R"({"op":"call","room":"seat:1","method":"bump"})")));
  CHECK(s.h->engine->check_invariants().ok());
  // A clean close of the new connection is the client's leave.
  s.h->engine->disconnect(a2.id, true);
  CHECK(s.n("leaves") == 1);
}

TEST_CASE("1,000 bad resumes during a grace move nothing: the seat ends when it would have") {
  Seats s;
  FakeClient& a = s.joined_keep();
  s.joined();
  s.h->engine->disconnect(a.id, false);
  std::mt19937_64 rng(42);
  std::string real = s.session_of(a);
  for (int i = 0; i < 1000; ++i) {
    FakeClient& x = s.h->connect();
    std::string forged = real;
    forged[rng() % forged.size()] = "0123456789abcdef"[rng() % 16];
    if (forged == real) forged[0] = forged[0] == '0' ? '1' : '0';
    const std::string session = i % 3 == 0 ? forged : i % 3 == 1 ? std::string("nope") : std::string(31, 'a');
    const json::Value reply = s.h->request(x, resume_body(session, point("seat:1", 0, s.epoch())));
    CHECK(error_code(reply) == (i % 3 == 1 ? "not_found" : "not_found"));
    s.h->engine->disconnect(x.id, true);
    if (i % 100 == 0) s.pump(1);
  }
  s.pump(4990 - 10);
  CHECK(s.n("leaves") == 0);
  s.pump(30);
  CHECK(s.n("leaves") == 1);
  CHECK(s.h->engine->metrics().find("atrium_resume_failed_total 1000") != std::string::npos);
}

TEST_CASE("resume: left while away, seats not listed, and the refusals") {
  Seats s;
  FakeClient& a = s.joined_keep();
  FakeClient& b = s.joined();
  REQUIRE(ok(s.h->request(a, R"({"op":"join","room":"seat:2"})")));
  REQUIRE(ok(s.h->request(a, R"({"op":"join","room":"seat:3"})")));
  s.h->engine->disconnect(a.id, false);
  REQUIRE(ok(s.h->request(b, R"({"op":"call","room":"seat:1","method":"kick","args":[")" + a.wire_id + R"("]})")));
  s.pump(20);
  FakeClient& a2 = s.connect_keep();
  // Refused first, and nothing changes: joined already; another user's token.
  REQUIRE(ok(s.h->request(a2, R"({"op":"join","room":"seat:9"})")));
  CHECK(error_code(s.h->request(a2, resume_body(s.session_of(a), "{}"))) == "bad_request");
  FakeClient& own = s.connect_keep();
  CHECK(error_code(s.h->request(own, resume_body(s.session_of(own), "{}"))) == "bad_request");
  FakeClient& a3 = s.connect_keep();
  const Resumed r = resume(s, a3, resume_body(s.session_of(a), R"({"seat:1":{"seq":0},"seat:2":{"seq":0},"gone:1":{"seq":0}})"));
  REQUIRE(ok(r.reply));
  const json::Value& rooms = *result(r.reply).get_object("rooms");
  CHECK(*rooms.get_object("seat:1")->get_string("left") == "kicked");
  CHECK(rooms.get_object("seat:2")->find("recovered")->is_bool());
  CHECK(*rooms.get_object("gone:1")->get_string("left") == "not_member");
  CHECK(rooms.get_object("seat:3")->find("recovered")->as_bool() == false);
  bool joined3 = false;
  for (const json::Value& v : r.before)
    joined3 |= *v.get_string("op") == "joined" && *v.get_string("room") == "seat:3";
  CHECK(joined3);
  CHECK(s.h->engine->check_invariants().ok());
}

TEST_CASE("kicked from its only seat while away: the session lives out the grace to say so") {
  Seats s;
  FakeClient& a = s.joined_keep();
  FakeClient& b = s.joined();
  s.h->engine->disconnect(a.id, false);
  s.pump(1000);
  REQUIRE(ok(s.h->request(b, R"({"op":"call","room":"seat:1","method":"kick","args":[")" + a.wire_id + R"("]})")));
  s.pump(20);
  CHECK(s.h->engine->check_invariants().ok());
  FakeClient& a2 = s.connect_keep();
  const Resumed r = resume(s, a2, resume_body(s.session_of(a), R"({"seat:1":{"seq":0}})"));
  REQUIRE(ok(r.reply));
  CHECK(*result(r.reply).get_object("rooms")->get_object("seat:1")->get_string("left") == "kicked");
  CHECK(r.before.empty());
  // Without the resume the session ends when the seat's grace would have ended.
  FakeClient& c = s.joined_keep();
  s.h->engine->disconnect(c.id, false);
  s.pump(100);
  REQUIRE(ok(s.h->request(b, R"({"op":"call","room":"seat:1","method":"kick","args":[")" + c.wire_id + R"("]})")));
  s.pump(4800);
  FakeClient& c2 = s.h->connect();
  CHECK(ok(s.h->request(c2, resume_body(s.session_of(c), "{}"))));
  s.h->engine->disconnect(c2.id, false);  // its session is held again: no seat, no grace
  FakeClient& c3 = s.h->connect();
  CHECK(error_code(s.h->request(c3, resume_body(s.session_of(c), "{}"))) == "not_found");
  CHECK(s.h->engine->check_invariants().ok());
}

TEST_CASE("resume needs the session's own user") {
  TempRooms rooms;
  rooms.write("seat.lua", kSeat);
  Harness h(rooms);
  FakeClient ada, eve, ada2;
  engine::Identity who;
  who.user_id = "ada";
  ada.id = h.engine->connect(ada, who);
  const std::string session = *ada.take()[0].get_string("session");
  REQUIRE(ok(h.request(ada, R"({"op":"join","room":"seat:1"})")));
  h.engine->disconnect(ada.id, false);
  eve.id = h.engine->connect(eve, engine::Identity{});
  CHECK(error_code(h.request(eve, resume_body(session, "{}"))) == "not_allowed");
  ada2.id = h.engine->connect(ada2, who);
  CHECK(ok(h.request(ada2, resume_body(session, "{}"))));
  CHECK(h.engine->check_invariants().ok());
}

// The family: any order of drops, resumes, actions, kicks and time keeps the engine
// consistent, and every connected member that applies what it got has the room's state.
TEST_CASE("random drops, resumes, actions and time: invariants hold and every copy of the state agrees") {
  int resumed = 0, expired = 0, compared = 0;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    CAPTURE(seed);
    Seats s(6);
    std::mt19937_64 rng(seed);
    struct Player {
      FakeClient* conn;
      std::string session;
      bool online;
      json::Value state;
      double seq = 0;
      std::string epoch;
      bool gone = false;
    };
    std::vector<Player> players;
    auto absorb = [&](Player& p) {
      for (json::Value& v : p.conn->take()) {
        const std::string op = *v.get_string("op");
        if ((op == "state" || op == "joined") && *v.get_string("room") == "seat:1") {
          p.state = *v.get_object("state");
          p.seq = v.find("seq")->as_number();
          p.epoch = *v.get_string("epoch");
        } else if (op == "patch") {
          REQUIRE(v.find("seq")->as_number() == p.seq + 1);
          apply_ops(p.state, *v.get_array("ops"));
          p.seq += 1;
        } else if (op == "left") {
          p.gone = true;
        } else if (op == "reply" && v.find("result") && v.find("result")->is_object() &&
                   v.find("result")->get_string("epoch")) {
          const json::Value& r = *v.find("result");
          p.state = *r.get_object("state");
          p.seq = r.find("seq")->as_number();
          p.epoch = *r.get_string("epoch");
        }
      }
    };
    for (int step = 0; step < 400; ++step) {
      const int what = static_cast<int>(rng() % 10);
      const auto active = std::count_if(players.begin(), players.end(), [](const Player& p) { return !p.gone; });
      if (what == 0 && active < 3) {
        FakeClient& c = s.connect_keep();
        players.push_back(Player{&c, s.session_of(c), true, {}, 0, {}});
        const json::Value reply = s.h->request_keep(c, R"({"op":"join","room":"seat:1"})");
        if (!ok(reply)) players.pop_back();
        else absorb(players.back());
      } else if (!players.empty()) {
        Player& p = players[rng() % players.size()];
        if (p.gone) continue;
        if (what <= 3 && p.online) {
          absorb(p);
          REQUIRE(ok(s.h->request_keep(*p.conn, R"({"op":"call","room":"seat:1","method":"bump"})")));
        } else if (what == 4 && p.online) {
          absorb(p);
          s.h->engine->disconnect(p.conn->id, false);
          p.online = false;
        } else if (what == 5 && !p.online) {
          FakeClient& c = s.connect_keep();
          const std::string rooms = point("seat:1", p.seq, p.epoch);
          const json::Value reply = s.h->request_keep(c, resume_body(p.session, rooms));
          p.conn = &c;
          if (ok(reply)) {
            ++resumed;
            p.online = true;
            absorb(p);
          } else {
            CHECK(error_code(reply) == "not_found");  // the grace ran out
            ++expired;
            p.gone = true;
          }
        } else {
          s.pump(static_cast<int>(rng() % 700));
        }
      }
      REQUIRE(s.h->engine->check_invariants().ok());
      if (step % 8 == 7) {  // past the patch beat, every connected copy equals the room's
        s.pump(11);
        for (Player& p : players)
          if (p.online && !p.gone && s.h->engine->room("seat:1").ok()) {
            absorb(p);
            CHECK(p.state == s.state());
            ++compared;
          }
      }
    }
  }
  // The walk reaches every case: resumes that recover, graces that run out, states compared.
  MESSAGE(resumed << " resumes, " << expired << " expired sessions, " << compared << " final states compared");
  CHECK(resumed >= 20);
  CHECK(expired >= 3);
  CHECK(compared >= 200);
}

TEST_CASE("replay: drops, resumes and takeovers recorded replay identically") {
  TempRooms rooms;
  rooms.write("seat.lua", kSeat);
  const std::string record =
      (std::filesystem::temp_directory_path() / ("atrium-unit-seats-" + std::to_string(std::random_device{}()))).string();
  {
    Harness h(rooms, [&](engine::EngineConfig& cfg) {
      cfg.record_path = record;
      cfg.host_clock = true;
    });
    std::int64_t now = 1000;
    std::mt19937 rng(11);
    struct Seat {
      FakeClient* conn;
      std::string session;
    };
    std::vector<Seat> seats;
    auto connect = [&]() -> FakeClient& {
      h.clients.push_back(std::make_unique<FakeClient>());
      FakeClient& c = *h.clients.back();
      c.id = h.engine->connect(c);
      return c;
    };
    for (int i = 0; i < 3; ++i) {
      FakeClient& c = connect();
      seats.push_back(Seat{&c, *c.take()[0].get_string("session")});
      h.engine->receive(c.id, R"({"op":"join","room":"seat:r","ref":1})");
    }
    for (int i = 0; i < 200; ++i) {
      Seat& st = seats[rng() % seats.size()];
      const int roll = static_cast<int>(rng() % 6);
      if (roll == 0) {
        h.engine->disconnect(st.conn->id, false);
      } else if (roll == 1) {  // resume (a takeover when the old one is still open)
        FakeClient& c = connect();
        h.engine->receive(c.id, resume_body(st.session, R"({"seat:r":{"seq":0}})"));
        st.conn = &c;
      } else {
        h.engine->receive(st.conn->id, R"({"op":"call","room":"seat:r","method":"bump","ref":2})");
      }
      now += static_cast<std::int64_t>(rng() % 900);
      h.engine->set_host_time(now);
      h.engine->run_due();
      h.engine->end_of_pass();
      REQUIRE(h.engine->check_invariants().ok());
    }
    h.engine->shutdown();
  }
  engine::ReplayOptions options;
  options.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  auto report = engine::replay(record, options);
  REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message));
  CHECK_MESSAGE(report.value().identical, engine::describe(report.value()));
  CHECK(report.value().inputs > 200);
  std::filesystem::remove(record);
}

}  // namespace atrium::test
