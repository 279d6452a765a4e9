// EngineConfig::rate: the per-connection token bucket, its rate_limited answers, the 1008
// close for sustained abuse, the /metrics counters, and a record of it that replays
// (docs/protocol.md "Notes for this server", Rate limit).
#include <random>

#include "engine/rate_limit.hpp"
#include "engine/replay.hpp"
#include "engine_harness.hpp"

namespace atrium::test {
namespace {

using engine::RateLimit;
using Verdict = RateLimit::Verdict;

const char* kCounter = R"(local C = { defaultState = { n = 0 } }
C.actions = {}
function C.actions.add(self, ctx) self.state.n = self.state.n + 1; return self.state.n end
return C
)";

// An engine on the host clock (time moves only when the test says) with `rate`.
struct RateEngine {
  TempRooms rooms;
  std::unique_ptr<Harness> h;
  std::int64_t now = 1000;

  explicit RateEngine(int rate, std::string record = {}) {
    rooms.write("counter.lua", kCounter);
    h = std::make_unique<Harness>(rooms, [&](engine::EngineConfig& cfg) {
      cfg.host_clock = true;
      cfg.rate = rate;
      cfg.record_path = record;
    });
    h->engine->set_host_time(now);
  }
  void advance(std::int64_t ms) {
    now += ms;
    h->engine->set_host_time(now);
  }
  // Sends `text` and returns every line it caused.
  std::vector<json::Value> send(FakeClient& c, const std::string& text) {
    h->engine->receive(c.id, text);
    return c.take();
  }
  std::string ping(FakeClient& c, int ref) {
    auto lines = send(c, "{\"op\":\"ping\",\"ref\":" + std::to_string(ref) + "}");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("ref")->as_number() == ref);
    return ok(lines[0]) ? "ok" : error_code(lines[0]);
  }
  double metric(const std::string& name) {
    const std::string text = h->engine->metrics();
    const std::size_t at = text.find("\n" + name + " ");
    REQUIRE_MESSAGE(at != std::string::npos, "no metric " << name);
    return std::stod(text.substr(at + name.size() + 2));
  }
};

}  // namespace

TEST_CASE("rate: the bucket passes a burst of `rate`, refuses the next, and refills with time") {
  RateLimit b;
  for (int i = 0; i < 5; ++i) CHECK(b.admit(5, 0) == Verdict::pass);
  CHECK(b.admit(5, 0) == Verdict::refuse);
  CHECK(b.admit(5, 199) == Verdict::refuse);  // one message per 200 ms at 5/s
  CHECK(b.admit(5, 200) == Verdict::pass);
  CHECK(b.admit(5, 200) == Verdict::refuse);
  // A long pause fills the bucket, never beyond the burst.
  for (int i = 0; i < 5; ++i) CHECK(b.admit(5, 60000) == Verdict::pass);
  CHECK(b.admit(5, 60000) == Verdict::refuse);
  // Exact in integers: 1000 ms at 3/s gives exactly 3, whatever the steps.
  RateLimit c;
  for (int i = 0; i < 3; ++i) CHECK(c.admit(3, 0) == Verdict::pass);
  int passed = 0;
  for (int t = 1; t <= 1000; ++t) passed += c.admit(3, t) == Verdict::pass;
  CHECK(passed == 3);
}

TEST_CASE("rate: 10 times the rate for 5 s is abuse; 9 times is not; closed stays closed") {
  auto run = [](RateLimit& b, int rate, int factor, int ms) {
    // `factor * rate` messages a second, a tenth of them every 100 ms.
    for (int t = 0; t < ms; t += 100)
      for (int i = 0; i < factor * rate / 10; ++i)
        if (Verdict v = b.admit(rate, t); v == Verdict::abuse || v == Verdict::closed) return t;
    return -1;
  };
  RateLimit abusive;
  const int closed_at = run(abusive, 10, 10, 20000);
  CHECK(closed_at == 5000);  // five whole seconds, then the first message after them
  CHECK(abusive.admit(10, 6000) == Verdict::closed);
  CHECK(abusive.admit(10, 600000) == Verdict::closed);

  RateLimit heavy;  // 9 times the rate, for long: refused, never closed
  CHECK(run(heavy, 10, 9, 30000) == -1);

  RateLimit paused;  // four abusive seconds, an idle one, four more: the streak restarts
  CHECK(run(paused, 10, 10, 4000) == -1);
  for (int t = 5000; t < 9000; t += 100)
    for (int i = 0; i < 10; ++i) CHECK(paused.admit(10, t) != Verdict::abuse);
}

TEST_CASE("rate: scan_ref reads the top-level ref and finds none in garbage") {
  using engine::scan_ref;
  auto ref = [](std::string_view text) { return scan_ref(text); };
  REQUIRE(ref(R"({"op":"ping","ref":7})"));
  CHECK(ref(R"({"op":"ping","ref":7})")->as_number() == 7);
  CHECK(ref(R"( { "ref" : "a\"b" , "x":[1,{"ref":2}] } )")->as_string() == "a\"b");
  CHECK(ref(R"({"ref":1,"ref":2})")->as_number() == 2);  // the last one wins, as in a parse
  CHECK(ref(R"({"x":{"ref":3}})") == std::nullopt);      // not top level
  CHECK(ref(R"({"x":"\"ref\":3"})") == std::nullopt);    // inside a string
  CHECK(ref(R"({"ref":null})") == std::nullopt);
  CHECK(ref(R"({"ref":true})") == std::nullopt);
  CHECK(ref(R"({"ref":[1]})") == std::nullopt);
  CHECK(ref(R"({"ref":1e999})") == std::nullopt);         // the parser's number rules
  CHECK(ref(R"({"ref":7)") == std::nullopt);              // unterminated
  CHECK(ref(R"({"ref":7,"x":[1,2})") == std::nullopt);    // mismatched brackets
  CHECK(ref(R"({"ref":7}x)") == std::nullopt);            // trailing garbage
  CHECK(ref(R"([{"ref":7}])") == std::nullopt);
  CHECK(ref("") == std::nullopt);
  CHECK(ref("\xff\xfe{") == std::nullopt);
  CHECK(ref(std::string(100, '[')) == std::nullopt);
  CHECK(ref("{\"ref\":\"\xff\"}") == std::nullopt);       // not UTF-8
  CHECK(ref("{\"ref\":\"a\\") == std::nullopt);           // an escape at the very end
  // Deep nesting as the parser allows it: 64 levels in all.
  const std::string deep63 = "{\"ref\":5,\"x\":" + std::string(63, '[') + std::string(63, ']') + "}";
  const std::string deep64 = "{\"ref\":5,\"x\":" + std::string(64, '[') + std::string(64, ']') + "}";
  CHECK(ref(deep63)->as_number() == 5);
  CHECK(ref(deep64) == std::nullopt);
  // Random bytes never crash it (ASan/UBSan builds check the reads).
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string s = "{\"ref\":1,";
    const int n = static_cast<int>(rng() % 40);
    for (int j = 0; j < n; ++j) s += "{}[]\",:\\ab1 \x80"[rng() % 14];
    (void)scan_ref(s);
    (void)scan_ref(s.substr(rng() % s.size()));
  }
}

TEST_CASE("rate: the engine answers over-rate requests rate_limited, with their ref") {
  RateEngine r(3);
  FakeClient& c = r.h->connect();
  FakeClient& other = r.h->connect();
  CHECK(r.ping(c, 1) == "ok");
  CHECK(r.ping(c, 2) == "ok");
  CHECK(r.ping(c, 3) == "ok");
  // The 4th in the same instant: refused, answered with its ref.
  auto lines = r.send(c, R"({"op":"ping","ref":"four"})");
  REQUIRE(lines.size() == 1);
  CHECK(*lines[0].get_string("op") == "reply");
  CHECK(lines[0].find("ref")->as_string() == "four");
  CHECK_FALSE(ok(lines[0]));
  CHECK(error_code(lines[0]) == "rate_limited");
  CHECK(error_message(lines[0]).find("3 messages per second") != std::string::npos);
  // No ref: an error frame, as for any request without one.
  lines = r.send(c, R"({"op":"ping"})");
  REQUIRE(lines.size() == 1);
  CHECK(*lines[0].get_string("op") == "error");
  CHECK(error_code(lines[0]) == "rate_limited");
  // Garbage over the rate has no ref: an error frame too.
  lines = r.send(c, "{\"op\":\"ping\",\"ref\":9,");
  REQUIRE(lines.size() == 1);
  CHECK(*lines[0].get_string("op") == "error");
  CHECK(error_code(lines[0]) == "rate_limited");
  // Binary messages count as messages.
  r.h->engine->receive_binary(c.id);
  lines = c.take();
  REQUIRE(lines.size() == 1);
  CHECK(error_code(lines[0]) == "rate_limited");
  // Per connection: another client is not affected.
  CHECK(r.ping(other, 10) == "ok");
  // A third of a second later, one more message fits (3/s).
  r.advance(333);
  CHECK(r.ping(c, 5) == "rate_limited");
  r.advance(1);
  CHECK(r.ping(c, 6) == "ok");
  CHECK(r.ping(c, 7) == "rate_limited");
  r.advance(1000);
  CHECK(r.ping(c, 8) == "ok");
  CHECK(r.ping(c, 9) == "ok");
  CHECK(r.ping(c, 10) == "ok");
  CHECK(r.ping(c, 11) == "rate_limited");
  CHECK(c.closed_with == 0);
  CHECK(r.metric("atrium_rate_limited_total") == 7);
  CHECK(r.metric("atrium_rate_abuse_closes_total") == 0);
  CHECK(r.metric("atrium_requests_total") == 8);  // refused messages are not requests
}

TEST_CASE("rate: a refused call is not processed") {
  RateEngine r(2);
  FakeClient& c = r.h->connect();
  REQUIRE(ok(r.h->request(c, R"({"op":"join","room":"counter:1"})")));
  CHECK(result(r.h->request(c, R"({"op":"call","room":"counter:1","method":"add"})")).as_number() == 1);
  auto lines = r.send(c, R"({"op":"call","room":"counter:1","method":"add","ref":99})");
  REQUIRE(lines.size() == 1);
  CHECK(error_code(lines[0]) == "rate_limited");
  CHECK(lines[0].find("ref")->as_number() == 99);
  auto room = r.h->engine->room("counter:1");
  REQUIRE(room.ok());
  CHECK(room.value().get_object("state")->find("n")->as_number() == 1);
  r.advance(500);
  CHECK(result(r.h->request(c, R"({"op":"call","room":"counter:1","method":"add"})")).as_number() == 2);
}

TEST_CASE("rate: 10 times the rate for 5 s closes with 1008; 9 times does not") {
  RateEngine r(4);
  FakeClient& abuser = r.h->connect();
  FakeClient& heavy = r.h->connect();
  for (int step = 0; step < 100 && abuser.closed_with == 0; ++step) {  // every 100 ms
    for (int i = 0; i < 4; ++i) r.h->engine->receive(abuser.id, R"({"op":"ping","ref":1})");  // 40/s
    for (int i = 0; i < 4 && step % 10 < 9; ++i) r.h->engine->receive(heavy.id, R"({"op":"ping","ref":1})");
    abuser.take();
    heavy.take();
    if (abuser.closed_with == 0) r.advance(100);
  }
  CHECK(abuser.closed_with == 1008);
  CHECK(r.now - 1000 == 5000);  // after five whole seconds of it
  CHECK(heavy.closed_with == 0);  // 36/s, 9 times the rate: refused a lot, never closed
  // Closed: what it still sends (until the transport is gone) is ignored, unanswered.
  r.advance(2000);
  r.h->engine->receive(abuser.id, R"({"op":"ping","ref":2})");
  CHECK(abuser.take().empty());
  CHECK(r.metric("atrium_rate_abuse_closes_total") == 1);
  CHECK(r.metric("atrium_rate_limited_total") > 100);
  r.h->engine->disconnect(abuser.id, false);
  CHECK(r.h->engine->connection_count() == 1);
  CHECK(r.h->engine->check_invariants().ok());
}

TEST_CASE("rate: 0 is no limit") {
  RateEngine r(0);
  FakeClient& c = r.h->connect();
  for (int i = 0; i < 5000; ++i) r.h->engine->receive(c.id, R"({"op":"ping","ref":1})");
  const auto lines = c.take();
  REQUIRE(lines.size() == 5000);
  for (const auto& l : lines) REQUIRE(ok(l));
  CHECK(c.closed_with == 0);
  CHECK(r.metric("atrium_rate_limited_total") == 0);
}

TEST_CASE("rate: a record with refusals and an abuse close replays identically") {
  const std::string record = (std::filesystem::temp_directory_path() /
                              ("atrium-unit-rate-record-" + std::to_string(std::random_device{}()))).string();
  {
    RateEngine r(5, record);
    FakeClient& a = r.h->connect();
    FakeClient& b = r.h->connect();
    REQUIRE(ok(r.h->request(b, R"({"op":"join","room":"counter:1"})")));
    for (int step = 0; step < 80; ++step) {
      for (int i = 0; i < 6; ++i) r.h->engine->receive(a.id, R"({"op":"ping","ref":3})");
      r.h->engine->receive(b.id, R"({"op":"call","room":"counter:1","method":"add","ref":4})");
      r.h->engine->receive(b.id, R"({"op":"call","room":"counter:1","method":"add","ref":5})");
      r.advance(100);
      r.h->engine->run_due();
      r.h->engine->end_of_pass();
    }
    CHECK(a.closed_with == 1008);
    r.h->engine->disconnect(a.id, false);
    r.h->engine->shutdown();
  }
  engine::ReplayOptions options;
  options.lua_dir = ATRIUM_SOURCE_LUA_DIR;
  auto report = engine::replay(record, options);
  std::filesystem::remove(record);
  REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error().message));
  CHECK_MESSAGE(report.value().identical, engine::describe(report.value()));
}

}  // namespace atrium::test
