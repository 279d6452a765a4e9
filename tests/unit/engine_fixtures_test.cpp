// The hostile fixtures of tests/fixtures/rooms, each run through the engine alone: the
// offending room fails with the right code, its changes roll back, and a healthy room in
// the same engine keeps answering. (tests/e2e/fixtures.test.mjs does the same over sockets.)
#include "engine_harness.hpp"

using namespace atrium;
using namespace atrium::test;


TEST_CASE("loop_forever: budget_exceeded, state rolled back, the healthy room keeps serving") {
  FixtureEngine f({"loop_forever.lua"});
  REQUIRE(ok(f.h->request(*f.c, R"({"op":"join","room":"loop_forever:1"})")));
  CHECK(error_code(f.call("loop_forever:1", "spin")) == "budget_exceeded");
  CHECK(f.h->engine->room("loop_forever:1")->get_object("state")->find("touched")->as_bool() == false);
  CHECK(error_code(f.call("loop_forever:1", "sort_bad")) == "budget_exceeded");
  const std::string liar = error_code(f.call("loop_forever:1", "sort_liar"));
  CHECK((liar == "script_error" || liar == "budget_exceeded"));  // either way it ends
  CHECK(result(f.call("loop_forever:1", "ping")).as_string() == "pong");
  f.require_healthy_still_serves();
}

TEST_CASE("loop_in_pcall: pcall cannot swallow the budget stop, however deep the loop") {
  FixtureEngine f({"loop_in_pcall.lua"});
  REQUIRE(ok(f.h->request(*f.c, R"({"op":"join","room":"loop_in_pcall:1"})")));
  CHECK(error_code(f.call("loop_in_pcall:1", "spin")) == "budget_exceeded");
  CHECK(error_code(f.call("loop_in_pcall:1", "nested")) == "budget_exceeded");
  f.require_healthy_still_serves();
}

TEST_CASE("alloc_bomb: the bomb, a huge string.rep and a huge table.concat fail in their own room") {
  FixtureEngine f({"alloc_bomb.lua"});
  REQUIRE(ok(f.h->request(*f.c, R"({"op":"join","room":"alloc_bomb:1"})")));
  CHECK(error_code(f.call("alloc_bomb:1", "bomb")) == "budget_exceeded");
  CHECK(error_code(f.call("alloc_bomb:1", "rep")) == "budget_exceeded");
  CHECK(error_code(f.call("alloc_bomb:1", "concat")) == "budget_exceeded");
  CHECK(f.h->engine->room("alloc_bomb:1")->get_object("state")->find("touched")->as_bool() == false);
  f.require_healthy_still_serves();
}

TEST_CASE("escape_attempts: nothing outside the sandbox is reachable") {
  FixtureEngine f({"escape_attempts.lua"});
  REQUIRE(ok(f.h->request(*f.c, R"({"op":"join","room":"escape_attempts:1"})")));
  auto r = f.call("escape_attempts:1", "probe");
  REQUIRE(ok(r));
  for (const auto& [name, reached] : result(r).members()) CHECK_MESSAGE(reached.as_bool() == false, name);
}

TEST_CASE("escape_attempts: patching string, atrium or _G in one room type changes nothing for another") {
  FixtureEngine f({"escape_attempts.lua"});
  REQUIRE(ok(f.h->request(*f.c, R"({"op":"join","room":"escape_attempts:1"})")));
  CHECK(result(f.call("escape_attempts:1", "vandalize")).as_string() == "pwned");
  auto upper = f.h->request(*f.c, R"({"op":"call","room":"healthy:1","method":"upper","args":["abc"]})");
  CHECK(result(upper).as_string() == "ABC");
  CHECK(result(f.call("healthy:1", "now")).as_bool() == true);
  auto method = f.h->request(*f.c, R"({"op":"call","room":"healthy:1","method":"upper","args":["x"]})");
  CHECK(result(method).as_string() == "X");
}

TEST_CASE("syntax_error and half_written: joins get script_error naming file and line; others serve") {
  FixtureEngine f({"syntax_error.lua", "half_written.lua"});
  auto syntax = f.h->request(*f.c, R"({"op":"join","room":"syntax_error:1"})");
  CHECK(error_code(syntax) == "script_error");
  CHECK(error_message(syntax).find("syntax_error.lua:4:") != std::string::npos);
  auto half = f.h->request(*f.c, R"({"op":"join","room":"half_written:1"})");
  CHECK(error_code(half) == "script_error");
  CHECK(error_message(half).find("half_written.lua:") != std::string::npos);
  f.require_healthy_still_serves();
}

TEST_CASE("a script saved half-written over a good one keeps the good class serving until fixed") {
  FixtureEngine f({});
  f.rooms.copy_fixture("half_written.lua");  // broken first
  std::ifstream half_in("tests/fixtures/rooms/half_written.lua");
  const std::string half((std::istreambuf_iterator<char>(half_in)), std::istreambuf_iterator<char>());
  f.rooms.write("healthy.lua", half);  // the healthy type, saved half-written
  auto report = f.h->engine->reload_script("healthy.lua");
  CHECK(report.find("ok")->as_bool() == false);
  CHECK(result(f.call("healthy:1", "add")).as_number() == 1);  // the old class still serves
  f.rooms.copy_fixture("healthy.lua");
  CHECK(f.h->engine->reload_script("healthy.lua").find("ok")->as_bool() == true);
  CHECK(result(f.call("healthy:1", "add")).as_number() == 2);  // state kept across both
}
