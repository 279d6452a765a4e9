// Errors a player can be shown (docs/rooms.md "Errors a player can be shown"): whatever a
// script raises, the reply is {code, message, where} with a code of [a-z0-9_]{1,64}, a
// message without a position, at most kMaxErrorMessageBytes long, and `where` at the
// script's line; nothing the call did stays and the engine keeps serving.
#include <random>
#include <regex>

#include "engine_harness.hpp"
#include "script/hook_call.hpp"

using namespace atrium;
using namespace atrium::test;

namespace {

const char* const kRaiser = R"lua(local R = { defaultState = { n = 0 } }
R.actions = {}
function R.actions.raise(self, ctx, kind, a, b)
  self.state.n = self.state.n + 1
  if kind == "table" then error({ code = a, message = b }) end -- raise:table
  if kind == "string" then error(a) end -- raise:string
  if kind == "number" then error(42) end
  if kind == "nil" then error(nil) end
  if kind == "boolean" then error(false) end
  if kind == "function" then error(function() end) end
  if kind == "level2" then error(a, 2) end
  if kind == "trap" then
    -- The handler reads the table raw: a metamethod that would loop never runs.
    error(setmetatable({}, { __index = function() while true do end end,
                             __tostring = function() while true do end end }))
  end
  if kind == "runtime" then return nil .. "x" end
end
return R
)lua";

// The reply of raise(kind, a, b) on a fresh room, and that room's n afterwards.
struct Raised {
  json::Value reply;
  double n = -1;
};

Raised raise(FixtureEngine& f, const std::string& args) {
  static int serial = 0;
  const std::string room = "raiser:" + std::to_string(++serial);
  REQUIRE(ok(f.join(room)));
  Raised out;
  out.reply = f.call(room, "raise", args);
  out.n = f.state(room)->find("n")->as_number();
  f.h->request(*f.c, "{\"op\":\"leave\",\"room\":\"" + room + "\"}");  // a connection's rooms are capped
  return out;
}

void check_shape(const Raised& r) {
  std::string text;
  json::write(r.reply, text);
  CAPTURE(text);
  CHECK_FALSE(ok(r.reply));
  CHECK(std::regex_match(error_code(r.reply), std::regex("[a-z0-9_]{1,64}")));
  const std::string message = error_message(r.reply);
  // Cut at kMaxErrorMessageBytes; a byte that is not UTF-8 then goes out as U+FFFD (3 bytes).
  CHECK(message.size() <= 3 * script::kMaxErrorMessageBytes);
  CHECK_FALSE(std::regex_search(message, std::regex(R"(\.lua:\d+: )")));
  CHECK(message.find("stack traceback") == std::string::npos);
  CHECK(r.n == 0);  // rolled back
}

std::string js(const std::string& s) {
  std::string out;
  json::write_string(s, out);
  return out;
}

}  // namespace

TEST_CASE("error({code, message}) answers exactly that code and message, where at the line") {
  FixtureEngine f({});
  f.script("raiser.lua", kRaiser);
  const Raised r = raise(f, R"(["table", "not_your_turn", "It is X's turn"])");
  check_shape(r);
  CHECK(error_code(r.reply) == "not_your_turn");
  CHECK(error_message(r.reply) == "It is X's turn");
  CHECK(error_where(r.reply) == "rooms/raiser.lua:5");
  f.require_healthy_still_serves();
}

TEST_CASE("every kind of error object gives a well-formed reply") {
  FixtureEngine f({});
  f.script("raiser.lua", kRaiser);
  struct Case { const char* args; const char* code; const char* message; const char* where; };
  const Case cases[] = {
      {R"(["string", "plain"])", "script_error", "plain", "rooms/raiser.lua:6"},
      {R"(["number"])", "script_error", "rooms/raiser.lua:7: 42", "rooms/raiser.lua:7"},
      {R"(["nil"])", "script_error", "(error object is a nil value)", "rooms/raiser.lua:8"},
      {R"(["boolean"])", "script_error", "(error object is a boolean value)", "rooms/raiser.lua:9"},
      {R"(["function"])", "script_error", "(error object is a function value)", "rooms/raiser.lua:10"},
      {R"(["table", "room_full", "full"])", "room_full", "full", "rooms/raiser.lua:5"},
      {R"(["table", "Bad Code", "m"])", "script_error", "m", "rooms/raiser.lua:5"},
      {R"(["table", "", "m"])", "script_error", "m", "rooms/raiser.lua:5"},
      {R"(["table", "only_code"])", "only_code", "only_code", "rooms/raiser.lua:5"},
      {R"(["table"])", "script_error", "(error table without a message)", "rooms/raiser.lua:5"},
      {R"(["trap"])", "script_error", "(error table without a message)", "rooms/raiser.lua:14"},
      {R"(["runtime"])", "script_error", "attempt to concatenate a nil value", "rooms/raiser.lua:17"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    const Raised r = raise(f, c.args);
    check_shape(r);
    CHECK(error_code(r.reply) == c.code);
    CHECK(error_where(r.reply) == c.where);
    if (std::string(c.args).find("number") == std::string::npos)
      CHECK(error_message(r.reply) == c.message);
  }
  f.require_healthy_still_serves();
}

TEST_CASE("random error tables and texts always answer in shape") {
  FixtureEngine f({});
  f.script("raiser.lua", kRaiser);
  std::mt19937 rng(20261207);
  const std::string alphabet = "abcz09_ AZ-:.\n\xc3\xa9\xff";
  auto random_text = [&](std::size_t most) {
    std::string s(rng() % most, ' ');
    for (char& ch : s) ch = alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int i = 0; i < 150; ++i) {
    const bool table = rng() % 2;
    const std::string code = random_text(i % 10 == 0 ? 100 : 12);
    const std::string text = random_text(i % 7 == 0 ? 5000 : 40);
    const std::string args = table ? "[\"table\"," + js(code) + "," + js(text) + "]"
                                   : "[\"string\"," + js(text) + "]";
    CAPTURE(args);
    const Raised r = raise(f, args);
    check_shape(r);
    const bool valid = table && std::regex_match(code, std::regex("[a-z0-9_]{1,64}"));
    if (valid) CHECK(error_code(r.reply) == code);
    else CHECK(error_code(r.reply) == "script_error");
    CHECK(error_where(r.reply) == (table ? "rooms/raiser.lua:5" : "rooms/raiser.lua:6"));
  }
  f.require_healthy_still_serves();
}

TEST_CASE("error(text, 2) and a budget stop say where, and name what ran") {
  FixtureEngine f({});
  f.script("raiser.lua", kRaiser);
  const Raised r = raise(f, R"(["level2", "blame the caller"])");
  check_shape(r);
  CHECK(error_message(r.reply) == "blame the caller");
  f.script("spinner.lua", "local S = {}\nS.actions = {}\nfunction S.actions.spin()\n  while true do end\nend\nreturn S\n");
  REQUIRE(ok(f.join("spinner:1")));
  const json::Value spun = f.call("spinner:1", "spin");
  CHECK(error_code(spun) == "budget_exceeded");
  CHECK(error_message(spun) == "action 'spin' ran past its CPU budget (100 ms)");
  CHECK(error_where(spun) == "rooms/spinner.lua:4");
  f.require_healthy_still_serves();
}

TEST_CASE("a long message is cut at 2048 bytes, never inside a character") {
  FixtureEngine f({});
  f.script("raiser.lua", kRaiser);
  std::string long_text;
  for (int i = 0; i < 3000; ++i) long_text += "\xc3\xa9";  // é, two bytes each
  const Raised r = raise(f, "[\"string\"," + js(long_text) + "]");
  check_shape(r);
  const std::string message = error_message(r.reply);
  CHECK(message.size() <= script::kMaxErrorMessageBytes);
  CHECK(message.size() >= script::kMaxErrorMessageBytes - 1);
  CHECK(message.find("\xef\xbf\xbd") == std::string::npos);  // no U+FFFD: no character was cut
}
