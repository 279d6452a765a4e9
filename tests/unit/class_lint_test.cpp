// The class lint (src/script/class_lint.cpp) on classes compiled in a plain Lua state:
// near misses of hooks, fields and options, onTick without a tickRate, and undeclared
// globals inside functions.
#include <doctest/doctest.h>
#include <lua.hpp>

#include <string>
#include <vector>

#include "script/class_lint.hpp"

using atrium::script::LintFinding;

namespace {

// Runs `src` with a small sandbox-like environment (a few libraries, nothing else) and
// lints the class it returns.
std::vector<LintFinding> lint(const std::string& src) {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  REQUIRE(luaL_loadstring(L, src.c_str()) == 0);
  REQUIRE(luaL_dostring(L, "return { table = table, math = math, pairs = pairs, error = error, "
                           "type = type, rawset = rawset, setmetatable = setmetatable }") == 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
  lua_setfenv(L, -2);
  REQUIRE(lua_pcall(L, 0, 1, 0) == 0);
  std::vector<LintFinding> out = atrium::script::lint_class(L, -1, src);
  CHECK(lua_gettop(L) == 1);   // the lint leaves the stack as it found it
  lua_close(L);
  return out;
}

// The finding whose message contains `text`, or nullptr.
const LintFinding* find(const std::vector<LintFinding>& all, const std::string& text) {
  for (const LintFinding& f : all)
    if (f.message.find(text) != std::string::npos) return &f;
  return nullptr;
}

std::string dump(const std::vector<LintFinding>& all) {
  std::string out;
  for (const LintFinding& f : all) out += std::to_string(f.line) + ": " + f.message + "\n";
  return out;
}

}  // namespace

TEST_CASE("a clean class has no findings") {
  const auto all = lint(R"(local R = {
  defaultState = { n = 0 }, defaultMeta = {}, options = { tickRate = 10, maxMembers = 4 },
}
local function bump(self) self.state.n = self.state.n + 1 end
function R:onJoin(ctx) bump(self) end
function R:onTick(dt) local t = {}; table.insert(t, math.floor(dt)) end
R.actions = {}
function R.actions.go(self, ctx) for k in pairs(self.state) do error(k) end end
function R:helper() return type(self) end
function R.action() end          -- a plain method of that name is allowed
R.factions = { "red", "blue" }   -- data that merely looks like a field
return R)");
  CHECK_MESSAGE(all.empty(), dump(all));
}

TEST_CASE("a hook misspelled by case or one typo is named with the hook it meant, at its line") {
  const auto all = lint("local R = {}\nfunction R:OnLeave(ctx) end\nfunction R:onjoin(ctx) end\n"
                        "function R:onLave(ctx) end\nfunction R:onJion(ctx) end\nreturn R\n");
  const LintFinding* leave = find(all, "'OnLeave'");
  REQUIRE_MESSAGE(leave, dump(all));
  CHECK(leave->line == 2);
  CHECK(leave->message == "'OnLeave' is never called: did you mean 'onLeave'?");
  REQUIRE(find(all, "'onjoin' is never called: did you mean 'onJoin'?"));
  CHECK(find(all, "'onjoin'")->line == 3);
  REQUIRE(find(all, "'onLave' is never called: did you mean 'onLeave'?"));
  CHECK(find(all, "'onLave'")->line == 4);
  CHECK(find(all, "'onJion' is never called: did you mean 'onJoin'?"));
}

TEST_CASE("near misses of actions, defaultState, defaultMeta and options are named") {
  const auto all = lint("local R = {}\nR.action = {}\nfunction R.action.go() end\n"
                        "R.defaultstate = {}\nR.defaultMetta = {}\nR.option = { maxMembers = 2 }\nreturn R\n");
  const LintFinding* action = find(all, "'action'");
  REQUIRE_MESSAGE(action, dump(all));
  CHECK(action->line == 2);
  CHECK(action->message.find("did you mean 'actions'?") != std::string::npos);
  CHECK(find(all, "'defaultstate' is never read by the engine: did you mean 'defaultState'?"));
  CHECK(find(all, "'defaultMetta' is never read by the engine: did you mean 'defaultMeta'?"));
  CHECK(find(all, "'option' is never read by the engine: did you mean 'options'?"));
  CHECK(all.size() == 4);
}

TEST_CASE("an option with a typo gets the option it meant") {
  const auto all = lint("return { options = {\n  maxMembrs = 2,\n  keepalive = true,\n  colour = 1 } }\n");
  CHECK(find(all, "unknown option 'maxMembrs' (did you mean 'maxMembers'?)")->line == 2);
  CHECK(find(all, "unknown option 'keepalive' (did you mean 'keepAlive'?)")->line == 3);
  CHECK(find(all, "unknown option 'colour' (options: maxMembers,"));
}

TEST_CASE("onTick without a tickRate, or with tickRate 0, never runs") {
  const auto unset = lint("local R = { options = { maxMembers = 2 } }\n\nfunction R:onTick(dt) end\nreturn R\n");
  REQUIRE(unset.size() == 1);
  CHECK(unset[0].line == 3);
  CHECK(unset[0].message == "onTick never runs: options.tickRate is not set "
                            "(set it to the ticks per second you want: options = { tickRate = 20 })");
  const auto no_options = lint("local R = {}\nfunction R:onTick(dt) end\nreturn R\n");
  CHECK(find(no_options, "options.tickRate is not set"));
  const auto zero = lint("local R = { options = { tickRate = 0 } }\nfunction R:onTick(dt) end\nreturn R\n");
  CHECK(find(zero, "onTick never runs: options.tickRate is 0"));
  CHECK(lint("local R = { options = { tickRate = 5 } }\nfunction R:onTick(dt) end\nreturn R\n").empty());
}

TEST_CASE("globals read or assigned inside functions that the environment lacks are found, with their lines") {
  const auto all = lint(R"(local R = { actions = {} }
rawset(_G, "SHARED", 1)         -- declared at load: not a mistake
local up = 0
function R:onJoin(ctx)
  count = count + 1
  tabel.insert(self.state, up + SHARED)
end
function R.onLeave(ctx)
  self.state.n = 0
end
function R.actions.go(self, ctx)
  return function() return count end
end
return R)");
  const LintFinding* count = find(all, "undeclared global 'count'");
  REQUIRE_MESSAGE(count, dump(all));
  CHECK(count->line == 5);
  CHECK(count->message == "undeclared global 'count' (read and assigned): this line fails when it runs "
                          "(declare it with local, or keep it in self.state or self.meta); also line 12");
  const LintFinding* table = find(all, "undeclared global 'tabel'");
  REQUIRE(table);
  CHECK(table->line == 6);
  CHECK(table->message.find("(did you mean 'table'?)") != std::string::npos);
  const LintFinding* self = find(all, "undeclared global 'self'");
  REQUIRE(self);
  CHECK(self->line == 9);
  CHECK(self->message.find("':'") != std::string::npos);
  CHECK_MESSAGE(all.size() == 3, dump(all));
}

TEST_CASE("an assigned global, and one the sandbox leaves out, are worded for what they are") {
  const auto all = lint("local R = {}\nfunction R:onJoin(ctx)\n  total = 1\n  io.write('x')\nend\nreturn R\n");
  const LintFinding* total = find(all, "'total'");
  REQUIRE_MESSAGE(total, dump(all));
  CHECK(total->line == 3);
  CHECK(total->message.rfind("assignment to undeclared global 'total': this line fails when it runs", 0) == 0);
  const LintFinding* io = find(all, "'io'");
  REQUIRE(io);
  CHECK(io->line == 4);
  CHECK(io->message.find("left out of the sandbox") != std::string::npos);
}
