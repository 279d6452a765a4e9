#include "script/class_lint.hpp"

#include <lua.hpp>

#include <algorithm>
#include <cctype>

namespace atrium::script {

namespace {

const std::vector<std::string>& known_hooks() {
  static const std::vector<std::string> hooks = {"onCreate", "onJoin",    "onLeave", "onEvent",
                                                 "onTick",   "onDestroy", "onReload"};
  return hooks;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The known name that differs from `name` only in case, if any.
const std::string* same_but_case(const std::vector<std::string>& known, std::string_view name) {
  const std::string l = lower(name);
  for (const std::string& k : known)
    if (lower(k) == l) return &k;
  return nullptr;
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
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        const std::string* hint = same_but_case(known, key);
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

}  // namespace

const std::vector<std::string>& known_options() {
  static const std::vector<std::string> options = {"maxMembers", "serverJoinOnly", "patchRate",
                                                   "tickRate",   "reconnectGrace", "keepAlive"};
  return options;
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
    const auto& hooks = known_hooks();
    const bool is_hook = std::find(hooks.begin(), hooks.end(), key) != hooks.end();
    if (lua_isfunction(L, value) && !is_hook && key.size() > 2 && key.compare(0, 2, "on") == 0) {
      if (const std::string* hook = same_but_case(hooks, key))
        out.push_back({function_line(L, value), "'" + key + "' is never called: did you mean '" + *hook + "'?"});
      else if (std::isupper(static_cast<unsigned char>(key[2])))
        out.push_back({function_line(L, value), "'" + key + "' is not a hook, so nothing calls it (hooks: " +
                                                    list(hooks) + ")"});
    } else if (is_hook && !lua_isfunction(L, value)) {
      out.push_back({line_of(source, key), key + " must be a function"});
    } else if ((key == "defaultState" || key == "defaultMeta" || key == "options" || key == "actions") &&
               !lua_istable(L, value)) {
      out.push_back({line_of(source, key), key + " must be a table"});
    } else if (key == "options") {
      lint_options(L, value, source, out);
    } else if (key == "actions") {
      lint_actions(L, value, source, out);
    } else if (const std::string* option = same_but_case(known_options(), key)) {
      out.push_back({line_of(source, key), "'" + key + "' looks like an option: put it in options = { " +
                                               *option + " = ... }"});
    }
    lua_pop(L, 1);
  }
  std::sort(out.begin(), out.end(), [](const LintFinding& a, const LintFinding& b) { return a.line < b.line; });
  return out;
}

}  // namespace atrium::script
