#include "script/class_lint.hpp"

#include <lua.hpp>

#include <algorithm>
#include <cctype>
#include <climits>
#include <map>
#include <memory>
#include <utility>

namespace atrium::script {

namespace {

// What the engine reads from a class (docs/rooms.md "What a room script is made of");
// src/engine/actions.cpp reserves the same names.
const std::vector<std::string>& known_hooks() {
  static const std::vector<std::string> hooks = {"onCreate", "onJoin",    "onLeave", "onEvent",
                                                 "onTick",   "onDestroy", "onReload", "onDrop",
                                                 "onReconnect", "onRestore"};
  return hooks;
}

const std::vector<std::string>& known_fields() {   // all of them tables
  static const std::vector<std::string> fields = {"defaultState", "defaultMeta", "options", "actions"};
  return fields;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Edits (insert, delete, substitute, swap two neighbours) from a to b: a swap is one
// slip of the fingers (`onJion`), so it counts once.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string list(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The first line where `word` stands as a whole word (1-based), or 0.
int line_of(std::string_view source, std::string_view word) {
  int line = 1;
  for (std::size_t i = 0; i + word.size() <= source.size(); ++i) {
    if (source[i] == '\n') ++line;
    if (source.compare(i, word.size(), word) != 0) continue;
    const bool start = i == 0 || !is_word_char(source[i - 1]);
    const bool end = i + word.size() == source.size() || !is_word_char(source[i + word.size()]);
    if (start && end) return line;
  }
  return 0;
}

int function_line(lua_State* L, int idx) {
  lua_Debug ar;
  lua_pushvalue(L, idx);
  if (!lua_getinfo(L, ">S", &ar)) return 0;
  return ar.linedefined > 0 ? ar.linedefined : 0;
}

void lint_options(lua_State* L, int options, std::string_view source, std::vector<LintFinding>& out) {
  lua_pushnil(L);
  while (lua_next(L, options)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const std::string key = lua_tostring(L, -2);
      const auto& known = known_options();
      if (!contains(known, key)) {
        const std::string* hint = near_miss(known, key);
        out.push_back({line_of(source, key),
                       "unknown option '" + key + "'" +
                           (hint ? " (did you mean '" + *hint + "'?)" : " (options: " + list(known) + ")")});
      }
    }
    lua_pop(L, 1);
  }
}

void lint_actions(lua_State* L, int actions, std::string_view source, std::vector<LintFinding>& out) {
  lua_pushnil(L);
  while (lua_next(L, actions)) {
    const bool named = lua_type(L, -2) == LUA_TSTRING;
    const std::string key = named ? lua_tostring(L, -2) : "?";
    if (!named)
      out.push_back({0, "actions must be named by strings (a " + std::string(luaL_typename(L, -2)) + " key)"});
    else if (!lua_isfunction(L, -1))
      out.push_back({line_of(source, key), "actions." + key + " is not a function (a " +
                                               std::string(luaL_typename(L, -1)) + ")"});
    lua_pop(L, 1);
  }
}

// A class key that is neither a hook nor a field the engine reads, at stack index `value`.
// The engine never looks at it, so a near miss of a known name is a silent mistake. A typo
// counts only when the value has the known name's type (a plain method named `action` is
// fine); a difference in case alone always counts.
void lint_unknown_key(lua_State* L, const std::string& key, int value, std::string_view source,
                      std::vector<LintFinding>& out) {
  const bool fn = lua_isfunction(L, value);
  const std::string* hook = near_miss(known_hooks(), key, fn);
  const std::string* field = hook ? nullptr : near_miss(known_fields(), key, lua_istable(L, value));
  const int line = fn ? function_line(L, value) : line_of(source, key);
  if (hook) {
    out.push_back({line, "'" + key + "' is never called: did you mean '" + *hook + "'?"});
  } else if (field) {
    out.push_back({line_of(source, key), "'" + key + "' is never read by the engine: did you mean '" + *field +
                                             "'?" + (*field == "actions" ? " (clients can call only functions in actions)" : "")});
  } else if (fn && key.size() > 2 && key.compare(0, 2, "on") == 0 && std::isupper(static_cast<unsigned char>(key[2]))) {
    out.push_back({line, "'" + key + "' is not a hook, so nothing calls it (hooks: " + list(known_hooks()) + ")"});
  } else if (const std::string* option = near_miss(known_options(), key, false)) {
    out.push_back({line_of(source, key), "'" + key + "' looks like an option: put it in options = { " +
                                             *option + " = ... }"});
  }
}

// onTick runs tickRate times a second; with no tickRate (or 0) it never runs at all.
void lint_tick(lua_State* L, int cls, std::vector<LintFinding>& out) {
  lua_pushliteral(L, "onTick");
  lua_rawget(L, cls);
  const int on_tick = lua_gettop(L);
  if (lua_isfunction(L, on_tick)) {
    lua_pushliteral(L, "options");
    lua_rawget(L, cls);
    bool set = false, zero = false;
    if (lua_istable(L, -1)) {
      lua_pushliteral(L, "tickRate");
      lua_rawget(L, -2);
      set = !lua_isnil(L, -1);
      zero = lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) <= 0;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!set || zero)
      out.push_back({function_line(L, on_tick),
                     std::string("onTick never runs: options.tickRate is ") + (set ? "0" : "not set") +
                         " (set it to the ticks per second you want: options = { tickRate = 20 })"});
  }
  lua_pop(L, 1);
}

// Pushes the environment of the first Lua function in table `t`: for a room script, its
// sandbox, whose keys are the globals it may use.  [-0, +(1|0), -]
bool push_env_of_a_function(lua_State* L, int t) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_isfunction(L, -1) && !lua_iscfunction(L, -1)) {
      lua_getfenv(L, -1);   // key, function, env
      lua_replace(L, -3);
      lua_pop(L, 1);
      return true;
    }
    lua_pop(L, 1);
  }
  return false;
}

// The script's environment, from a function of the class or of its actions. False,
// pushing nothing, when there is none: then none of the script's code runs after loading.
bool push_script_env(lua_State* L, int cls) {
  if (push_env_of_a_function(L, cls)) return true;
  lua_pushliteral(L, "actions");
  lua_rawget(L, cls);
  const int actions = lua_gettop(L);
  if (lua_istable(L, actions) && push_env_of_a_function(L, actions)) {
    lua_remove(L, actions);
    return true;
  }
  lua_pop(L, 1);
  return false;
}

struct GlobalUse {
  std::string name;
  int line;
  bool write;
};

// Lists every global each function of `source` reads or writes, from LuaJIT's bytecode:
// the compiler has already told locals, upvalues and globals apart, and a global is a
// GGET or GSET instruction naming a string constant. Opcode numbers differ between LuaJIT
// versions, so they are read off a probe function compiled here. jit.util can read
// bytecode; the engine's VM never opens it (room code must not have it), so the source is
// compiled again in a scratch state of its own.
const char kScanGlobals[] = R"(
local util, main = ...
local funcbc, funck, funcinfo = util.funcbc, util.funck, util.funcinfo
local band, shr = bit.band, bit.rshift
local probe = funck(loadstring("local f = function() a = b end"), -1)   -- GGET b; GSET a
local GGET, GSET = band(funcbc(probe, 1), 0xff), band(funcbc(probe, 2), 0xff)
assert(GGET ~= GSET and funck(probe, -1) == "b" and funck(probe, -2) == "a")
local out = {}
local function scan(fn)
  for pc = 1, 1e9 do
    local ins = funcbc(fn, pc)
    if not ins then break end
    local op = band(ins, 0xff)
    if op == GGET or op == GSET then
      out[#out + 1] = { funck(fn, -shr(ins, 16) - 1), funcinfo(fn, pc).currentline, op == GSET }
    end
  end
  for i = -1, -1e9, -1 do       -- negative constants: strings, tables, nested functions
    local k = funck(fn, i)
    if k == nil then break end
    if type(k) == "proto" then scan(k) end
  end
end
scan(main)
return out
)";

std::vector<GlobalUse> scan_globals(std::string_view source) {
  std::vector<GlobalUse> uses;
  std::unique_ptr<lua_State, void (*)(lua_State*)> state(luaL_newstate(), lua_close);
  lua_State* S = state.get();
  if (!S) return uses;
  for (lua_CFunction open : {luaopen_base, luaopen_bit, luaopen_jit}) {
    lua_pushcfunction(S, open);
    lua_call(S, 0, 0);
  }
  luaJIT_setmode(S, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);   // a short scan: no traces worth their memory
  lua_getfield(S, LUA_REGISTRYINDEX, "_PRELOAD");   // luaopen_jit puts "jit.util" there
  if (!lua_istable(S, -1)) return uses;
  lua_getfield(S, -1, "jit.util");
  if (!lua_isfunction(S, -1) || lua_pcall(S, 0, 1, 0) != 0) return uses;
  const int util = lua_gettop(S);
  if (luaL_loadbuffer(S, kScanGlobals, sizeof kScanGlobals - 1, "=class_lint") != 0) return uses;
  lua_pushvalue(S, util);
  if (luaL_loadbuffer(S, source.data(), source.size(), "=script") != 0) return uses;
  if (lua_pcall(S, 2, 1, 0) != 0 || !lua_istable(S, -1)) return uses;
  const int n = static_cast<int>(lua_objlen(S, -1));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(S, -1, i);
    lua_rawgeti(S, -1, 1);
    lua_rawgeti(S, -2, 2);
    lua_rawgeti(S, -3, 3);
    if (lua_type(S, -3) == LUA_TSTRING)
      uses.push_back({lua_tostring(S, -3), static_cast<int>(lua_tointeger(S, -2)), lua_toboolean(S, -1) != 0});
    lua_pop(S, 4);
  }
  return uses;
}

// Standard Lua and LuaJIT globals a room script does not get (lua/atrium/prelude.lua).
bool left_out_of_sandbox(const std::string& name) {
  static const std::vector<std::string> names = {
      "io",      "debug",   "require", "package", "load",      "loadstring", "dofile", "loadfile",
      "getfenv", "setfenv", "newproxy", "coroutine", "ffi", "jit", "module", "gcinfo"};
  return contains(names, name);
}

// Reports each global a function of the script reads or assigns that its sandbox does not
// declare: the sandbox raises "undeclared global" only when that line runs, which for a
// hook may be long after the save. One finding per name, at its first line.
void lint_globals(lua_State* L, int cls, std::string_view source, std::vector<LintFinding>& out) {
  if (!push_script_env(L, cls)) return;
  const int env = lua_gettop(L);
  std::vector<std::string> declared;
  lua_pushnil(L);
  while (lua_next(L, env)) {
    if (lua_type(L, -2) == LUA_TSTRING) declared.emplace_back(lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  // near_miss takes the first of equally near names, and lua_next order differs between
  // processes: sorted, the hint is the same in every run of `atrium check`.
  std::sort(declared.begin(), declared.end());

  struct Uses {
    std::vector<int> lines;
    bool read = false, written = false;
  };
  std::map<std::string, Uses> undeclared;
  for (const GlobalUse& use : scan_globals(source)) {
    if (contains(declared, use.name)) continue;
    Uses& u = undeclared[use.name];
    (use.write ? u.written : u.read) = true;
    if (std::find(u.lines.begin(), u.lines.end(), use.line) == u.lines.end()) u.lines.push_back(use.line);
  }
  for (auto& [name, u] : undeclared) {
    std::sort(u.lines.begin(), u.lines.end());
    std::string message = !u.written ? "undeclared global '" + name + "'"
                          : u.read   ? "undeclared global '" + name + "' (read and assigned)"
                                     : "assignment to undeclared global '" + name + "'";
    message += ": this line fails when it runs";
    const std::string* hint = u.written ? nullptr : near_miss(declared, name);
    if (left_out_of_sandbox(name))
      message += " ('" + name + "' is left out of the sandbox: docs/rooms.md \"The sandbox\")";
    else if (name == "self")
      message += " (a function declared with '.' has no self: write function Room:name(...) with ':')";
    else if (hint)
      message += " (did you mean '" + *hint + "'?)";
    else
      message += " (declare it with local, or keep it in self.state or self.meta)";
    if (u.lines.size() > 1) {
      message += u.lines.size() > 2 ? "; also lines " : "; also line ";
      for (std::size_t i = 1; i < u.lines.size(); ++i) message += (i > 1 ? ", " : "") + std::to_string(u.lines[i]);
    }
    out.push_back({u.lines.front(), message});
  }
}

}  // namespace

const std::vector<std::string>& known_options() {
  static const std::vector<std::string> options = {"maxMembers", "serverJoinOnly", "patchRate",
                                                   "tickRate",   "reconnectGrace", "keepAlive",
                                                   "persist"};
  return options;
}

// Typos allowed: one edit for names of up to 7 letters, two for longer ones, and the first
// letter kept (few typos hit it, and it keeps `factions` from standing for `actions`).
const std::string* near_miss(const std::vector<std::string>& known, std::string_view name, bool typos) {
  const std::string l = lower(name);
  for (const std::string& k : known)
    if (lower(k) == l) return &k;
  if (!typos || l.empty()) return nullptr;
  const std::string* best = nullptr;
  std::size_t best_distance = SIZE_MAX;
  for (const std::string& k : known) {
    const std::string lk = lower(k);
    if (lk.empty() || lk[0] != l[0]) continue;
    const std::size_t d = edit_distance(l, lk);
    if (d <= (lk.size() <= 7 ? 1u : 2u) && d < best_distance) {
      best = &k;
      best_distance = d;
    }
  }
  return best;
}

std::vector<LintFinding> lint_class(lua_State* L, int cls, std::string_view source) {
  std::vector<LintFinding> out;
  if (cls < 0 && cls > LUA_REGISTRYINDEX) cls = lua_gettop(L) + cls + 1;
  lua_pushnil(L);
  while (lua_next(L, cls)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 1);
      continue;
    }
    const std::string key = lua_tostring(L, -2);
    const int value = lua_gettop(L);
    if (contains(known_hooks(), key)) {
      if (!lua_isfunction(L, value)) out.push_back({line_of(source, key), key + " must be a function"});
    } else if (contains(known_fields(), key)) {
      if (!lua_istable(L, value))
        out.push_back({line_of(source, key), key + " must be a table"});
      else if (key == "options")
        lint_options(L, value, source, out);
      else if (key == "actions")
        lint_actions(L, value, source, out);
    } else {
      lint_unknown_key(L, key, value, source, out);
    }
    lua_pop(L, 1);
  }
  lint_tick(L, cls, out);
  lint_globals(L, cls, source, out);
  // Findings came in lua_next order, which differs between processes; by line, then by text,
  // two on one line (options = { a = 1, b = 2 }) come out the same in every run.
  std::sort(out.begin(), out.end(), [](const LintFinding& a, const LintFinding& b) {
    return a.line != b.line ? a.line < b.line : a.message < b.message;
  });
  return out;
}

}  // namespace atrium::script
