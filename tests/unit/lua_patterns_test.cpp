// The bounded pattern functions (src/script/lua_patterns.cpp): same results and errors as
// LuaJIT's own string.find/match/gmatch/gsub, and stopped by the CPU budget.
#include <doctest/doctest.h>

#include <lua.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine_harness.hpp"
#include "script/hook_call.hpp"
#include "script/lua_patterns.hpp"
#include "script/vm.hpp"

using atrium::ErrorCode;
using atrium::script::Budget;
using atrium::script::call_hook;
using atrium::script::HookResult;
using atrium::script::push_pattern_functions;

namespace {

// Runs one call on both implementations (directly under pcall, and from a Lua line so
// errors carry a position) and describes any difference. gmatch iterators are drained.
constexpr const char* harness_lua = R"lua(
local orig, mine = ...
local select, pcall, unpack, type, tostring, format = select, pcall, unpack, type, tostring, string.format
local concat = table.concat

local function pack(...) return { n = select("#", ...), ... } end
local function from_lua(f, ...)
  local r = pack(f(...))  -- not a tail call: errors get this line's position
  return unpack(r, 1, r.n)
end
local function call(via_lua, f, ...)
  if via_lua then return pack(pcall(from_lua, f, ...)) end
  return pack(pcall(f, ...))
end

local function outcome(lib, fn, via_lua, ...)
  local r = call(via_lua, lib[fn], ...)
  if fn ~= "gmatch" or not r[1] then return r end
  local it, out = r[2], { n = 1, true }
  for _ = 1, 200 do
    local round = call(via_lua, it)
    if not round[1] then
      out[out.n + 1], out[out.n + 2], out.n = "error", round[2], out.n + 2
      return out
    end
    if round.n == 1 then return out end  -- the iteration is over
    for k = 2, round.n do out.n = out.n + 1; out[out.n] = round[k] end
    out.n = out.n + 1; out[out.n] = "|"
  end
  return out
end

local function describe(r)
  local parts = {}
  for i = 1, r.n do
    local v = r[i]
    if type(v) == "string" then parts[i] = format("%q", v)
    elseif type(v) == "number" then parts[i] = format("%.17g", v)
    else parts[i] = tostring(v) end
  end
  return concat(parts, ", ")
end

return function(fn, ...)
  for _, via_lua in ipairs({ false, true }) do
    local a, b = describe(outcome(orig, fn, via_lua, ...)), describe(outcome(mine, fn, via_lua, ...))
    if a ~= b then
      return (via_lua and "from Lua: " or "under pcall: ") .. "LuaJIT " .. a .. "  /  ours " .. b
    end
  end
  return nil
end
)lua";

// Replacement values the cases refer to as R.<name>.
constexpr const char* replacements_lua = R"lua(
R = {
  up = function(s) return s:upper() end,
  none = function() end,
  falsey = function() return false end,
  truthy = function() return true end,
  tbl = { a = "A", b = false, h = 42, ["1"] = "one", [1] = "pos1", [3] = {} },
  bad = function() return {} end,
  num = function() return 1.5 end,
  swap = function(a, b) return b, a end,
  list = function(...)
    local t = {}
    for i = 1, select("#", ...) do t[i] = type((select(i, ...))) .. ":" .. tostring((select(i, ...))) end
    return table.concat(t, "+")
  end,
  fail = function() error("from the replacement") end,
  inner = function(s) return (s:gsub(".", "%0%0")) end,
}
R.mt = setmetatable({}, { __index = function(_, k) return "<" .. tostring(k) .. ">" end })
)lua";

// A lua_State with base, string and table, LuaJIT's pattern functions saved as `orig`,
// ours installed as `mine` (and in `string`), and compare(fn, ...) from harness_lua.
class Diff {
 public:
  Diff() {
    for (lua_CFunction open : {luaopen_base, luaopen_string, luaopen_table}) {
      lua_pushcfunction(L, open);
      lua_call(L, 0, 0);
    }
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);  // as the engine's VM
    run("orig = { find = string.find, match = string.match, gmatch = string.gmatch,"
        " gsub = string.gsub }");
    lua_newtable(L);  // a stand-in for the engine's core table
    push_pattern_functions(L, -1);
    lua_getfield(L, -1, "patterns");
    lua_setglobal(L, "mine");
    lua_pop(L, 1);
    run(replacements_lua);
    REQUIRE(luaL_loadstring(L, harness_lua) == 0);
    lua_getglobal(L, "orig");
    lua_getglobal(L, "mine");
    lua_call(L, 2, 1);
    lua_setglobal(L, "compare");
  }
  ~Diff() { lua_close(L); }
  Diff(const Diff&) = delete;
  Diff& operator=(const Diff&) = delete;

  void run(const std::string& code) {
    if (luaL_dostring(L, code.c_str()) != 0) FAIL(lua_tostring(L, -1));
  }

  // "" when both implementations agree on fn(<args>), args being Lua source.
  std::string difference(const std::string& fn, const std::string& args) {
    const std::string code = "return compare(\"" + fn + "\"" + (args.empty() ? "" : ", ") + args + ")";
    if (luaL_dostring(L, code.c_str()) != 0) return std::string("harness: ") + lua_tostring(L, -1);
    std::string d = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
    lua_settop(L, 0);
    return d;
  }

  std::string eval_string(const std::string& expr) {
    run("__v = " + expr);
    lua_getglobal(L, "__v");
    std::string s = lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a string)";
    lua_pop(L, 1);
    return s;
  }

  lua_State* L = luaL_newstate();
};

// A Lua string literal for any bytes.
std::string lua_literal(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ') {
      out += ch;
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\%03u", c);
      out += esc;
    }
  }
  return out + "\"";
}

struct Case {
  const char* fn;
  const char* args;  // Lua source
};

// Hand-written: every feature, every documented edge, every error.
const Case hand_cases[] = {
    // find: plain text, init, plain flag, argument conversion
    {"find", R"~("hello world", "o")~"},
    {"find", R"~("hello world", "o", 6)~"},
    {"find", R"~("hello world", "o", -3)~"},
    {"find", R"~("hello world", "o", -100)~"},
    {"find", R"~("hello world", "o", 0)~"},
    {"find", R"~("hello world", "o", 100)~"},
    {"find", R"~("hello world", "l+", -3)~"},
    {"find", R"~("hello", "", 10)~"},
    {"find", R"~("hello", "", 6)~"},
    {"find", R"~("hello", "", -10)~"},
    {"find", R"~("hello", "", 10, true)~"},
    {"find", R"~("", "")~"},
    {"find", R"~("", "", 2)~"},
    {"find", R"~("", "a")~"},
    {"find", R"~("a.b", ".", 1, true)~"},
    {"find", R"~("a.b", ".", 1, false)~"},
    {"find", R"~("a.b", ".", 1, nil)~"},
    {"find", R"~("a.b", ".", nil, 0)~"},
    {"find", R"~("a.b", "%.")~"},
    {"find", R"~("a+b", "+", 1, true)~"},
    {"find", R"~("a+b", "a+b")~"},
    {"find", R"~("a)b", ")")~"},
    {"find", R"~("a]b", "]")~"},
    {"find", R"~("abcabc", "c", "2")~"},
    {"find", R"~("abcabc", "c", "0x4")~"},
    {"find", R"~("abcabc", "c", 2.9)~"},
    {"find", R"~("abcabc", "c", -1.5)~"},
    {"find", R"~("abcabc", "c", 2^31 - 1)~"},
    {"find", R"~("abcabc", "c", -2^31)~"},
    {"find", R"~("abcabc", "c", 1/0)~"},
    {"find", R"~("abcabc", "c", 0/0)~"},
    {"find", R"~("abcabc", "c", {})~"},
    {"find", R"~("abcabc", "c", "x")~"},
    {"find", R"~("abc", nil)~"},
    {"find", R"~(nil, "a")~"},
    {"find", R"~()~"},
    {"find", R"~(12345, 34)~"},
    {"find", R"~(12345, "%d+", 2)~"},
    {"find", R"~("a\0b", "\0b")~"},
    {"find", R"~("a\0b", "\0b.")~"},
    {"find", R"~("a\0b", "%z")~"},
    {"find", R"~("a\0b", "[%z]b")~"},
    {"find", R"~("a\0b", "b\0")~"},
    {"find", R"~("key = value", "(%w+)%s*=%s*(%w+)")~"},
    {"find", R"~("hello", "()ll()")~"},
    {"find", R"~("hello", "(h)(e)(l)(l)(o)")~"},
    // positions skipped without a try, and plain text with many false starts
    {"find", R"~(string.rep("ab", 200) .. "abc", "abc")~"},
    {"find", R"~(string.rep("ab", 100) .. "abc" .. string.rep("ab", 100), "abc", 50)~"},
    {"find", R"~(string.rep("a", 500), string.rep("a", 100) .. "b")~"},
    {"find", R"~(string.rep("a", 500) .. "b", string.rep("a", 100) .. "b", 1, true)~"},
    {"find", R"~("abc", "x(")~"},
    {"find", R"~("abc", "a(")~"},
    {"find", R"~("", "[a")~"},
    {"find", R"~("abc", "b", 10)~"},
    {"find", R"~("abc", "[b", 10)~"},
    {"find", R"~("a.b.c", "%.c")~"},
    {"find", R"~("a1b2", "[%d]%a")~"},
    {"find", R"~("xyz", "y+z")~"},
    // anchors
    {"find", R"~("hello", "^h")~"},
    {"find", R"~("hello", "^e")~"},
    {"find", R"~("hello", "^e", 2)~"},
    {"find", R"~("hello", "o$")~"},
    {"find", R"~("hello", "l$")~"},
    {"find", R"~("hello", "^hello$")~"},
    {"find", R"~("a$b", "$b")~"},
    {"find", R"~("a$b", "a$b")~"},
    {"find", R"~("^a", "^^a")~"},
    {"find", R"~("a^b", "a^b")~"},
    {"find", R"~("hello", "^", 3)~"},
    {"find", R"~("hello", "$")~"},
    {"find", R"~("hello", "$", 10)~"},
    // quantifiers
    {"find", R"~("aaab", "a-b")~"},
    {"find", R"~("aaab", "a*")~"},
    {"find", R"~("aaab", "a-")~"},
    {"find", R"~("b", "a?b")~"},
    {"find", R"~("ab", "a?b")~"},
    {"find", R"~("aaab", "a+b")~"},
    {"find", R"~("", "a*")~"},
    {"find", R"~("xyz", "a*")~"},
    {"find", R"~("xyz", "a+")~"},
    {"find", R"~("<a><b>", "<.->")~"},
    {"find", R"~("<a><b>", "<.*>")~"},
    {"find", R"~("aaa", "a-$")~"},
    {"find", R"~("abc", "a*?")~"},
    {"find", R"~("a*", "a**")~"},
    {"find", R"~("-", "-")~"},
    {"find", R"~("a-", "a%-")~"},
    {"find", R"~("--", "--")~"},
    // classes and sets
    {"find", "\"  \\t\\nabc123!?\", \"%s+\""},
    {"find", R"~("abc123!?", "%d+")~"},
    {"find", R"~("abc123!?", "%p+")~"},
    {"find", R"~("abcDEF", "%u+")~"},
    {"find", R"~("abcDEF", "%l+")~"},
    {"find", R"~("xyzBEEF", "%x+")~"},
    {"find", R"~("a\1b", "%c")~"},
    {"find", R"~("a\127b", "%c")~"},
    {"find", R"~("a b", "%g+")~"},
    {"find", R"~("abc 123", "%S+", 4)~"},
    {"find", R"~("abc 123", "%D+")~"},
    {"find", R"~("abc 123", "%W")~"},
    {"find", R"~("hello-world", "[%w-]+")~"},
    {"find", R"~("a-b", "[a-]+")~"},
    {"find", R"~("a-b", "[-a]+")~"},
    {"find", R"~("hello", "[a-z]+")~"},
    {"find", R"~("hello WORLD", "[^a-z]+")~"},
    {"find", R"~("a]b", "[]]")~"},
    {"find", R"~("]]a", "[^]]+")~"},
    {"find", R"~("a]b", "[%]]")~"},
    {"find", R"~("_id9 x", "[%a_][%w_]*")~"},
    {"find", R"~("a-z", "[a%-z]+")~"},
    {"find", R"~("m", "[z-a]")~"},
    {"find", R"~("5%", "[%%]")~"},
    {"find", R"~("^x", "[%^x]+")~"},
    {"find", R"~("^x", "[x^]+")~"},
    {"find", R"~("\200\201z", "[\128-\255]+")~"},
    {"find", R"~("\200\201z", "%A+")~"},
    {"find", R"~("caf\195\169", "%a+$")~"},
    // %b, %f, back-references
    {"find", R"~("f(a(b)c)d", "%b()")~"},
    {"find", R"~("((x)", "%b()")~"},
    {"find", R"~("[[a]]", "%b[]")~"},
    {"find", R"~("'abc'def'", "%b''")~"},
    {"find", R"~("x", "%bxy")~"},
    {"find", R"~("(a)(b)", "%b()%b()")~"},
    {"find", R"~("THE (quick) fox", "%f[%a]%a+")~"},
    {"find", R"~("hello world", "%f[%w]%w+", 2)~"},
    {"find", R"~("aaa", "%f[a]")~"},
    {"find", R"~("", "%f[%z]")~"},
    {"find", R"~("abc", "%f[%z]")~"},
    {"find", R"~("abc", "%f[^%z]")~"},
    {"find", R"~("a b", "%f[%s]")~"},
    {"find", R"~("say \"hi\" and 'bye'", "([\"'])(.-)%1")~"},
    {"find", R"~("abab", "(ab)%1")~"},
    {"find", R"~("aaa", "(a)%1%1")~"},
    {"find", R"~("a", "()%1")~"},
    {"find", R"~("xx", "(x*)%1")~"},
    // errors for malformed patterns
    {"find", R"~("abc", "%")~"},
    {"find", R"~("abc", "a%")~"},
    {"find", R"~("abc", "[a")~"},
    {"find", R"~("abc", "[")~"},
    {"find", R"~("abc", "[^")~"},
    {"find", R"~("abc", "[]")~"},
    {"find", R"~("abc", "[^]")~"},
    {"find", R"~("abc", "[%")~"},
    {"find", R"~("abc", "[a%")~"},
    {"find", R"~("abc", "[%]")~"},
    {"find", R"~("abc", "(")~"},
    {"find", R"~("abc", "(a")~"},
    {"find", R"~("abc", "a)")~"},
    {"find", R"~("abc", "b)")~"},
    {"find", R"~("abc", "(b))")~"},
    {"find", R"~("abc", "%1")~"},
    {"find", R"~("abc", "(a)%2")~"},
    {"find", R"~("abc", "(a)%0")~"},
    {"find", R"~("abc", "(a%1)")~"},
    {"find", R"~("abc", "%f")~"},
    {"find", R"~("abc", "%fa")~"},
    {"find", R"~("abc", "%f[a")~"},
    {"find", R"~("abc", "%b")~"},
    {"find", R"~("abc", "%ba")~"},
    {"find", R"~("abc", "x%b")~"},
    {"find", R"~("abc", "(()")~"},
    {"find", R"~("abc", "((a)")~"},
    {"find", R"~("abc", string.rep("(", 300))~"},
    {"find", R"~("abc", string.rep("()", 33))~"},
    {"find", R"~("abc", string.rep("()", 32))~"},
    {"find", R"~(string.rep("a", 300), string.rep("a?", 199))~"},
    {"find", R"~(string.rep("a", 300), string.rep("a?", 200))~"},
    {"find", R"~("aa", string.rep("a*", 198) .. "b")~"},
    {"find", R"~("", string.rep("a*", 199))~"},
    {"find", R"~("", string.rep("a*", 200))~"},
    {"find", R"~(string.rep("a", 300), string.rep("a", 250))~"},
    {"find", R"~(string.rep("a", 300), string.rep("(a)", 31))~"},
    {"find", R"~("a", string.rep("x?", 250))~"},
    // match
    {"match", R"~("  trim me  ", "^%s*(.-)%s*$")~"},
    {"match", R"~("2024-01-02", "(%d+)-(%d+)-(%d+)")~"},
    {"match", R"~("key=val", "(%w+)=(%w+)")~"},
    {"match", R"~("abc", "()")~"},
    {"match", R"~("abc", "()", 4)~"},
    {"match", R"~("abc", "", 5)~"},
    {"match", R"~("abc", ".", -1)~"},
    {"match", R"~("abc", "^(a)(b)(c)$")~"},
    {"match", R"~("abc", "(a)(b)(c)(d?)")~"},
    {"match", R"~("abc", "((a)(b))")~"},
    {"match", R"~("abc", "x")~"},
    {"match", R"~("abc", "b", 10)~"},
    {"match", R"~("abc", "(a")~"},
    {"match", R"~("abc", "%w", {})~"},
    {"match", R"~("a.b", "%.")~"},
    {"match", R"~("hello", "(h)(.)")~"},
    {"match", R"~("[[x]]", "%[(%b[])%]")~"},
    // gmatch
    {"gmatch", R"~("one two  three", "%a+")~"},
    {"gmatch", R"~("a,b,,c", "([^,]*)")~"},
    {"gmatch", R"~("abc", "")~"},
    {"gmatch", R"~("abc", ".")~"},
    {"gmatch", R"~("k1=v1, k2=v2", "(%w+)=(%w+)")~"},
    {"gmatch", R"~("aaa", "a*")~"},
    {"gmatch", R"~("abc", "^a")~"},
    {"gmatch", R"~("^a^a", "^a")~"},
    {"gmatch", R"~("abc", "()")~"},
    {"gmatch", R"~("hello", "%")~"},
    {"gmatch", R"~("hello", "(l)(")~"},
    {"gmatch", R"~("hello")~"},
    {"gmatch", R"~(nil, "x")~"},
    {"gmatch", R"~(123, 2)~"},
    {"gmatch", R"~("a1b22c333", "%d+")~"},
    {"gmatch", R"~("xaxbx", "x")~"},
    {"gmatch", R"~("", "")~"},
    {"gmatch", R"~("", "x*")~"},
    {"gmatch", R"~("a\0b\0", "[^%z]+")~"},
    {"gmatch", R"~("abc", "[")~"},
    {"gmatch", R"~("", "[")~"},
    {"gmatch", R"~("banana", "an")~"},
    {"gmatch", R"~("banana", "n(a)")~"},
    // gsub: string replacements
    {"gsub", R"~("hello world", "o", "0")~"},
    {"gsub", R"~("hello world", "(o)", "[%1]")~"},
    {"gsub", R"~("hello world", "o", "%0%0")~"},
    {"gsub", R"~("hello world", "%w+", "<%0>")~"},
    {"gsub", R"~("x = 1, y = 2", "(%w+) = (%w+)", "%2 = %1")~"},
    {"gsub", R"~("hello", "", "-")~"},
    {"gsub", R"~("hello world", "o*", "x")~"},
    {"gsub", R"~("abc", "%w*", "x")~"},
    {"gsub", R"~("abc", "^%w*", "x")~"},
    {"gsub", R"~("hello", "^h", "H")~"},
    {"gsub", R"~("hello", "^", ">")~"},
    {"gsub", R"~("hello", "$", "<")~"},
    {"gsub", R"~("", "", "x")~"},
    {"gsub", R"~("abc", "%w", "%%")~"},
    {"gsub", R"~("abc", "%w", "%")~"},
    {"gsub", R"~("abc", "%w", "a%")~"},
    {"gsub", R"~("abc", "%w", "%x%.%a")~"},
    {"gsub", R"~("abc", "%w", "%1")~"},
    {"gsub", R"~("abc", "%w", "%2")~"},
    {"gsub", R"~("abc", "(%w)", "%2")~"},
    {"gsub", R"~("abc", "(%w)", "%9")~"},
    {"gsub", R"~("abc", "()", "%1")~"},
    {"gsub", R"~("abc", "(b)()", "%2%1")~"},
    {"gsub", R"~("abc", "(b", "x")~"},
    {"gsub", R"~("abc", "%w", 5)~"},
    {"gsub", R"~("abc", "%w", 1.5)~"},
    {"gsub", R"~("abc", "%w", "a\0b")~"},
    {"gsub", R"~("a\0c", "%z", "<%0>")~"},
    // gsub: max n
    {"gsub", R"~("hello", "l", "L", 1)~"},
    {"gsub", R"~("hello", "l", "L", 0)~"},
    {"gsub", R"~("hello", "l", "L", -1)~"},
    {"gsub", R"~("hello", "l", "L", 1.9)~"},
    {"gsub", R"~("hello", "l", "L", "1")~"},
    {"gsub", R"~("hello", "l", "L", 2^32 + 1)~"},
    {"gsub", R"~("hello", "l", "L", 2^53)~"},
    {"gsub", R"~("hello", "l", "L", 1/0)~"},
    {"gsub", R"~("hello", "l", "L", 0/0)~"},
    {"gsub", R"~("hello", "l", "L", "x")~"},
    {"gsub", R"~("hello", "", "-", 3)~"},
    {"gsub", R"~("banana", "a", "o", 2)~"},
    {"gsub", R"~("banana", "n%a", "N")~"},
    {"gsub", R"~("banana", "[n", "N")~"},
    {"gsub", R"~("", "[n", "N")~"},
    {"gsub", R"~("hello", "^h", "H", 0)~"},
    {"gsub", R"~("hello", "x", "y", 0)~"},
    {"gsub", R"~("hello", "[", "y", 0)~"},
    // gsub: function and table replacements
    {"gsub", R"~("abc", "%w", R.up)~"},
    {"gsub", R"~("abc", "%w", R.none)~"},
    {"gsub", R"~("abc", "%w", R.falsey)~"},
    {"gsub", R"~("abc", "%w", R.truthy)~"},
    {"gsub", R"~("abc", "%w", R.tbl)~"},
    {"gsub", R"~("abc", "%w", R.bad)~"},
    {"gsub", R"~("abc", "%w", R.num)~"},
    {"gsub", R"~("abc", "(%w)(%w)", R.swap)~"},
    {"gsub", R"~("abc", "(a)(b)(c)", R.list)~"},
    {"gsub", R"~("abc", "()b()", R.list)~"},
    {"gsub", R"~("abc", "%w", R.list)~"},
    {"gsub", R"~("abc", "", R.list)~"},
    {"gsub", R"~("abc", "()", R.tbl)~"},
    {"gsub", R"~("hello", "(h)(e)", R.tbl)~"},
    {"gsub", R"~("abc", "%w", R.fail)~"},
    {"gsub", R"~("abc", "%w", R.inner)~"},
    {"gsub", R"~("abc", "%w", R.mt)~"},
    {"gsub", R"~("abc", "%w", {})~"},
    {"gsub", R"~("abc", "(%w", {})~"},
    {"gsub", R"~("abc", "(%w", R.up)~"},
    {"gsub", R"~("abc", "%w", true)~"},
    {"gsub", R"~("abc", "%w")~"},
    {"gsub", R"~("abc", "%w", true, "x")~"},
    {"gsub", R"~("abc", {}, "x")~"},
    {"gsub", R"~(nil, "x", "y")~"},
    {"gsub", R"~(123, 2, 7)~"},
    {"gsub", R"~(string.rep("ab", 5000), "b", "%0%0")~"},
    {"gsub", R"~(string.rep("a b ", 3000), "%s+", " ")~"},
};

// Patterns run against every subject below, with all four functions.
const char* const grid_patterns[] = {
    "a", "ab", ".", "..", "a*", "a+", "a-", "a?", "^a", "a$", "^$", "", ".-b", ".*b", "a-b",
    "%a+", "%d+", "%s*", "%w+%s*", "%p", "[ab]+", "[^ab]+", "[a-c]*", "[%d_]+", "(a)",
    "(a)(b)", "()a()", "(a*)", "(%w+)=(%w+)", "((a)b)", "(a)%1", "%b()", "%b''", "%f[%w]",
    "%f[%W]", "%f[%w]%w+", "^(.-)%s*$", "^%s*(.-)%s*$", "(.)%1", "x*", "[%a_][%w_]*", "%.",
    "%%", "[%]]", "(%d)(%d)(%d)", "(h)(.)", "%S+", ".-", "(.-),", "%z", "[^%z]", "a?b?c?",
    "(a?)(b?)", "^(a+)", "%u%l*", "%x%x",
};
const std::string_view grid_subjects[] = {
    "", "a", "ab", "aab", "abc", "hello world", "  padded  ", "a=1, bb=22", "(a(b)c)",
    "'q' 'r'", "x,y,,z", "AbC dEf 123", "aa bb aa", "tab\there", {"\0z\0", 3},
};

// A seeded generator of small patterns and subjects, malformed ones included.
class RandomCases {
 public:
  explicit RandomCases(std::uint32_t seed) : rng_(seed) {}

  std::string pattern() {
    std::string p;
    if (pick(5) == 0) p += '^';
    const int items = 1 + pick(5);
    for (int i = 0; i < items; ++i) p += item(2);
    if (pick(8) == 0) p += '$';
    if (pick(12) == 0) {
      static const char* const broken[] = {"%", "[a", "(", ")", "%f", "%b", "%9", "[%", "%b(", "%fx"};
      p += broken[pick(10)];
    }
    return p;
  }

  std::string subject() {
    static const char alphabet[] = "aabbbc  1_().x'=,";
    std::string s;
    const int len = pick(14);
    for (int i = 0; i < len; ++i) {
      const int r = pick(40);
      s += r == 0 ? '\0' : r == 1 ? '\xff' : alphabet[pick(sizeof alphabet - 1)];
    }
    return s;
  }

  std::string replacement() {
    static const char* const repls[] = {"\"<%0>\"", "\"%1\"", "\"%2-%1\"", "\"x%%y\"", "\"\"",
                                        "R.up", "R.none", "R.tbl", "7", "R.list", "\"%\"", "R.mt"};
    return repls[pick(12)];
  }

  int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint32_t>(n)); }

 private:
  std::string item(int nesting) {
    static const char* const atoms[] = {
        "a", "b", "c", ".", "%a", "%d", "%s", "%w", "%p", "%A", "%S", "%.", "%%", "[ab]",
        "[^a]", "[a-c]", "[%d_]", "[]]", "[^%s]", "x", " ", "'", "$", "^", "-"};
    static const char* const specials[] = {"()", "%1", "%2", "%b()", "%bab", "%f[%w]",
                                           "%f[%W]", "%f[a]"};
    static const char* const quantifiers[] = {"", "", "", "*", "+", "-", "?"};
    const int r = pick(10);
    if (r == 0 && nesting > 0) {
      std::string g = "(";
      const int n = 1 + pick(2);
      for (int i = 0; i < n; ++i) g += item(nesting - 1);
      return g + ")";
    }
    if (r == 1) return specials[pick(8)];
    return std::string(atoms[pick(25)]) + quantifiers[pick(7)];
  }

  std::mt19937 rng_;
};

// The engine's VM (safe libraries, JIT off) with the bounded functions installed.
class Sandbox {
 public:
  Sandbox() {
    lua_newtable(L);  // a stand-in for the engine's core table
    push_pattern_functions(L, -1);
    lua_getfield(L, -1, "patterns");
    lua_setglobal(L, "patterns");
    lua_pop(L, 1);
  }
  // Runs code as a room hook under a CPU budget of cpu_ms.
  HookResult run(const std::string& code, Budget budget) {
    REQUIRE(luaL_loadstring(L, code.c_str()) == 0);
    return call_hook(L, 0, 0, budget);
  }

  atrium::script::Vm vm{512u << 20, 512u << 20};
  lua_State* L = vm.L();
};

using Clock = std::chrono::steady_clock;

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

}  // namespace

TEST_CASE("every hand-written case gives LuaJIT's results and errors") {
  Diff d;
  int compared = 0;
  for (const Case& c : hand_cases) {
    INFO((std::string(c.fn) + "(" + c.args + ")"));
    CHECK(d.difference(c.fn, c.args) == "");
    ++compared;
  }
  CHECK(compared >= 100);
}

TEST_CASE("a grid of patterns and subjects gives LuaJIT's results") {
  Diff d;
  for (const char* p : grid_patterns) {
    for (const std::string_view subject : grid_subjects) {
      const std::string sp = lua_literal(subject) + ", " + lua_literal(p);
      INFO(("subject " + lua_literal(subject) + " pattern " + lua_literal(p)));
      CHECK(d.difference("find", sp) == "");
      CHECK(d.difference("find", sp + ", 3") == "");
      CHECK(d.difference("match", sp) == "");
      CHECK(d.difference("gmatch", sp) == "");
      CHECK(d.difference("gsub", sp + ", \"<%0>\"") == "");
      CHECK(d.difference("gsub", sp + ", R.list") == "");
    }
  }
}

TEST_CASE("every %class, [%class] and single character matches as in LuaJIT") {
  Diff d;
  d.run("ALL = {} for c = 0, 255 do ALL[#ALL + 1] = string.char(c) end ALL = table.concat(ALL)");
  for (int c = 0; c < 256; ++c) {
    const std::string ch = lua_literal(std::string(1, static_cast<char>(c)));
    INFO(("byte " + std::to_string(c)));
    CHECK(d.difference("gsub", "ALL, \"%\" .. " + ch + ", \"\"") == "");
    CHECK(d.difference("gsub", "ALL, \"[%\" .. " + ch + " .. \"]\", \"\"") == "");
    CHECK(d.difference("gsub", "ALL, \"[^%\" .. " + ch + " .. \"]\", \"\"") == "");
    CHECK(d.difference("gsub", "ALL, " + ch + ", \"\"") == "");
    CHECK(d.difference("gsub", "ALL, \"[\" .. " + ch + " .. \"-z]\", \"\"") == "");
  }
}

TEST_CASE("random small patterns and subjects give LuaJIT's results") {
  Diff d;
  RandomCases gen(20240601u);
  const auto started = Clock::now();
  int cases = 0;
  for (; cases < 10000; ++cases) {
    const std::string s = lua_literal(gen.subject());
    const std::string p = lua_literal(gen.pattern());
    const std::string sp = s + ", " + p;
    INFO(("subject " + s + " pattern " + p));
    CHECK(d.difference("find", sp + ", " + std::to_string(gen.pick(20) - 6)) == "");
    CHECK(d.difference("find", sp + ", 1, " + (gen.pick(4) == 0 ? "true" : "false")) == "");
    CHECK(d.difference("match", sp) == "");
    CHECK(d.difference("gmatch", sp) == "");
    CHECK(d.difference("gsub", sp + ", " + gen.replacement()) == "");
    CHECK(d.difference("gsub", sp + ", " + gen.replacement() + ", " +
                                   std::to_string(gen.pick(4))) == "");
  }
  MESSAGE(cases << " random cases in " << elapsed_ms(started) << " ms");
}

TEST_CASE("malformed patterns give LuaJIT's error messages") {
  Diff d;
  const struct {
    const char* pattern;
    const char* message;
  } cases[] = {
      {"%", "malformed pattern (ends with '%')"},
      {"[a", "malformed pattern (missing ']')"},
      {"[]", "malformed pattern (missing ']')"},
      {"[a%", "malformed pattern (missing ']')"},
      {"%f", "missing '[' after '%f' in pattern"},
      {"%fa", "missing '[' after '%f' in pattern"},
      {"%b", "unbalanced pattern"},
      {"%ba", "unbalanced pattern"},
      {"(a", "unfinished capture"},
      {"a)", "invalid pattern capture"},
      {"%1", "invalid capture index"},
      {"(a)%2", "invalid capture index"},
      {"(a%1)", "invalid capture index"},
      {"(((((((((((((((((((((((((((((((((a", "too many captures"},
  };
  for (const auto& c : cases) {
    INFO((std::string("pattern ") + c.pattern));
    const std::string call = "select(2, pcall(mine.match, \"abc\", " + lua_literal(c.pattern) + "))";
    CHECK(d.eval_string(call) == c.message);
    CHECK(d.difference("match", "\"abc\", " + lua_literal(c.pattern)) == "");
  }
  CHECK(d.eval_string("select(2, pcall(mine.find, string.rep(\"a\", 300), string.rep(\"a?\", 200)))") ==
        "pattern too complex");
  CHECK(d.eval_string("select(2, pcall(mine.gsub, \"a\", \"a\", R.bad))") ==
        "invalid replacement value (a table)");
  CHECK(d.eval_string("select(2, pcall(function() local r = mine.find('a', '%') return r end))")
            .find(":1: malformed pattern (ends with '%')") != std::string::npos);
}

TEST_CASE("room scripts' string and the string metatable use the bounded functions") {
  Sandbox box;
  const HookResult r = box.run(R"(
    assert(string.find == patterns.find and string.match == patterns.match)
    assert(string.gmatch == patterns.gmatch and string.gsub == patterns.gsub)
    assert(("  x  "):match("^%s*(.-)%s*$") == "x")
    assert(select(2, ("a b c"):gsub(" ", "")) == 2)
  )", Budget{});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("hostile patterns stop with budget_exceeded within the budget") {
  const char* const hostile[] = {
      R"~(return string.rep("a", 30000):find(".-.-.-.-b"))~",
      R"~(return string.rep("a", 30000):match(".-.-.-.-b"))~",
      R"~(return string.rep("a", 200000):find("a*b"))~",
      R"~(return string.rep("a", 1e6):find("a*b"))~",
      R"~(return string.rep("a", 200000):gsub("a*b", "x"))~",
      R"~(for m in string.rep("a", 200000):gmatch("a*b") do end)~",
      R"~(return string.rep("(", 100000):find("%b()"))~",
      R"~(return string.rep("a", 100000):find("(a*)%1b"))~",
      R"~(return ("x"):rep(10):gsub(".", function() return string.rep("a", 30000):find(".-.-.-.-b") end))~",
      R"~(return string.rep("b", 1e4):find("[" .. string.rep("a", 1e6) .. "b]*c"))~",
      R"~(return string.rep("b", 1e4):find(".-[" .. string.rep("a", 1e6) .. "]"))~",
      R"~(return string.rep("b", 1e4):find("[" .. string.rep("a", 1e6) .. "]"))~",
      R"~(return string.rep("a", 1e6):find(string.rep("a", 5e5) .. "%d"))~",
      R"~(local s = string.rep("a", 30000)
         for i = 1, 1e9 do pcall(string.find, s, ".-.-.-.-b") end)~",
      R"~(local s = string.rep("a", 30000)
         while true do pcall(function() return s:match(".-.-.-.-b") end) end)~",
      R"~(local s = string.rep("a", 200000)
         while true do pcall(string.gsub, s, "a*b", "") end)~",
  };
  Sandbox box;
  // Long but linear: these finish inside the budget.
  const HookResult plain = box.run(R"~(
    local s = string.rep("a", 1e6)
    assert(s:find(string.rep("a", 5e5) .. "b", 1, true) == nil)
    assert(s:find(string.rep("a", 5e5) .. "b") == nil)
    assert(#s:gsub("a", "b") == 1e6)
  )~", Budget{.cpu_ms = 500});
  CHECK_MESSAGE(plain.ok, plain.message);
  long slowest = 0;
  for (const char* code : hostile) {
    INFO((std::string(code)));
    const auto started = Clock::now();
    const HookResult r = box.run(code, Budget{.cpu_ms = 50});
    const long ms = elapsed_ms(started);
    CHECK(!r.ok);
    CHECK(r.code == ErrorCode::budget_exceeded);
    CHECK(r.message.find("budget_exceeded") != std::string::npos);
    CHECK(ms < 500);
    slowest = std::max(slowest, ms);
  }
  MESSAGE("slowest hostile call stopped after " << slowest << " ms (budget 50 ms)");
}

TEST_CASE("the matcher checks the deadline itself, without the count hook") {
  Sandbox box;
  const auto started = Clock::now();
  // A count period no script reaches: only the matcher's own checks can stop this.
  const HookResult r = box.run(R"(return string.rep("a", 30000):find(".-.-.-.-b"))",
                               Budget{.cpu_ms = 50, .instructions_per_check = 1'000'000'000});
  CHECK(r.code == ErrorCode::budget_exceeded);
  CHECK(r.message.find(atrium::script::kBudgetExceededMessage) != std::string::npos);
  CHECK(elapsed_ms(started) < 500);
  // The next call starts with a fresh budget.
  const HookResult next = box.run(R"(assert(("abc"):find("b") == 2))", Budget{.cpu_ms = 50});
  CHECK_MESSAGE(next.ok, next.message);
}

TEST_CASE("outside call_hook (the engine's own Lua) long matches run to the end") {
  Sandbox box;
  REQUIRE(luaL_loadstring(box.L, R"(return string.rep("a", 300):find(".-.-b"))") == 0);
  REQUIRE(lua_pcall(box.L, 0, 1, 0) == 0);  // ~4.5M steps: hundreds of budget checks
  CHECK(lua_isnil(box.L, -1));
  lua_pop(box.L, 1);
}

TEST_CASE("a room action with a hostile pattern gets budget_exceeded and the room keeps serving") {
  atrium::test::TempRooms rooms;
  rooms.write("pat.lua", R"(
local P = { actions = {} }
function P.actions.method(self) return (string.rep("a", 30000):find(".-.-.-.-b")) end
function P.actions.library(self) return (string.find(string.rep("a", 30000), ".-.-.-.-b")) end
function P.actions.trim(self, ctx, s) return (s:match("^%s*(.-)%s*$")) end
return P)");
  atrium::test::Harness h(rooms, 50);
  auto& a = h.connect();
  using atrium::test::error_code;
  REQUIRE(atrium::test::ok(h.request(a, R"({"op":"join","room":"pat:1"})")));
  CHECK(error_code(h.request(a, R"({"op":"call","room":"pat:1","method":"method"})")) ==
        "budget_exceeded");
  CHECK(error_code(h.request(a, R"({"op":"call","room":"pat:1","method":"library"})")) ==
        "budget_exceeded");
  auto r = h.request(a, R"({"op":"call","room":"pat:1","method":"trim","args":["  hi  "]})");
  CHECK(atrium::test::result(r).as_string() == "hi");
}
