// Room types: every rooms/*.lua is loaded at start as a class table. A script that fails
// to load keeps the previous class serving (if any) and records the error for
// GET /api/status; reload replaces methods in the live class table.
#include <lua.hpp>

#include <algorithm>
#include <set>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/engine_impl.hpp"
#include "script/class_lint.hpp"

namespace atrium::engine {

namespace fs = std::filesystem;

namespace {

std::string iso_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Pushes t[key] read raw: options and defaults are data, so no metamethod of the
// script's runs while the engine reads them.  [-0, +1, m]
void raw_field(lua_State* L, int t, const char* key) {
  lua_pushstring(L, key);
  lua_rawget(L, t < 0 && t > LUA_REGISTRYINDEX ? t - 1 : t);
}

// Reads class.options into `out`; an ill-typed option is a load error.
Status read_options(lua_State* L, int cls, const std::string& file, RoomOptions& out) {
  RoomOptions o;
  raw_field(L, cls, "options");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    out = o;
    return {};
  }
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return make_error(ErrorCode::script_error, file + ": options must be a table");
  }
  auto number = [&](const char* key, double& v, double min) -> Status {
    raw_field(L, -1, key);
    Status s;
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < min)
        s = make_error(ErrorCode::script_error,
                       file + ": options." + key + " must be a number >= " + std::to_string(static_cast<int>(min)));
      else
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return s;
  };
  auto boolean = [&](const char* key, bool& v) -> Status {
    raw_field(L, -1, key);
    Status s;
    if (!lua_isnil(L, -1)) {
      if (!lua_isboolean(L, -1))
        s = make_error(ErrorCode::script_error, file + ": options." + key + " must be true or false");
      else
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return s;
  };
  double max_members = o.max_members, patch_rate = o.patch_rate_ms;
  Status s = number("maxMembers", max_members, 0);
  if (s) s = boolean("serverJoinOnly", o.server_join_only);
  if (s) s = number("patchRate", patch_rate, 0);
  if (s) s = number("tickRate", o.tick_rate, 0);
  if (s) s = number("reconnectGrace", o.reconnect_grace_s, 0);
  if (s) s = boolean("keepAlive", o.keep_alive);
  if (s) s = boolean("persist", o.persist);
  lua_pop(L, 1);
  if (!s) return s;
  if (o.tick_rate > 1000) return make_error(ErrorCode::script_error, file + ": options.tickRate must be <= 1000");
  o.max_members = static_cast<int>(max_members);
  o.patch_rate_ms = static_cast<int>(patch_rate);
  out = o;
  return {};
}

// The names in the class's `actions` table whose values are functions, sorted (for
// GET /api/status and the inspector). Raw reads: lua_next never runs a metamethod.
std::vector<std::string> declared_actions(lua_State* L, int cls) {
  std::vector<std::string> names;
  lua_pushliteral(L, "actions");
  lua_rawget(L, cls);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) {
        std::size_t n = 0;
        const char* name = lua_tolstring(L, -2, &n);
        names.emplace_back(name, n);
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

// What clients are shown: the rooms directory by its own name only ("rooms/chat.lua" for
// --rooms /srv/game/rooms), never the server's path. Logs, lint warnings, tracebacks and
// GET /api/status use the path as given (RoomType::path), so an editor's jump-to-line works.
std::string Engine::Impl::shown_rooms_dir() const {
  std::error_code ec;
  fs::path dir = fs::absolute(config.rooms_dir, ec).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  const std::string name = dir.filename().string();
  return name.empty() ? "rooms" : name;
}

std::string Engine::Impl::as_shown(std::string text) const {
  const std::string dir = (fs::path(config.rooms_dir) / "").string();
  if (text.compare(0, dir.size(), dir) == 0) text.replace(0, dir.size(), shown_rooms_dir() + "/");
  return text;
}

std::string Engine::Impl::script_file_of(std::string_view type_name) const {
  return shown_rooms_dir() + "/" + std::string(type_name) + ".lua";
}

RoomType* Engine::Impl::find_type(std::string_view name) {
  if (name.empty()) return nullptr;
  auto it = types.find(std::string(name));
  return it == types.end() ? nullptr : it->second.get();
}

void Engine::Impl::load_all_types() {
  std::error_code ec;
  if (!fs::is_directory(config.rooms_dir, ec)) {
    log(LogLevel::warn, "script rooms_dir_missing dir=" + config.rooms_dir);
    return;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(config.rooms_dir, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".lua") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    if (p.stem() == kGateScriptStem) load_gate(p.string());  // not a room type (gate.cpp)
    else load_type(p.stem().string(), p.string());
  }
}

// Loads rooms/NAME.lua: read, compile_class, read_options, lint, then install the class
// (a first load) or swap_in (a reload: live rooms keep their class table). Any failure
// keeps whatever was serving and records the error.
void Engine::Impl::load_type(const std::string& name, const std::string& path) {
  if (!valid_type_name(name)) {
    log(LogLevel::warn, "script type_skipped file=" + path + " reason=\"file name is not a valid room TYPE\"");
    return;
  }
  auto& slot = types[name];
  if (!slot) {
    slot = std::make_unique<RoomType>();
    slot->name = name;
  }
  RoomType& type = *slot;
  type.path = path;
  type.file = script_file_of(name);
  type.deleted = false;

  auto fail = [&](std::string message) {
    type.error = std::move(message);
    log(LogLevel::error, "script load_failed type=" + name + " error=\"" + type.error + "\"" +
                             (type.class_ref >= 0 ? " (the previous version keeps serving)" : ""));
  };

  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(type.path + ": cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  const std::string src = text.str();
  if (recorder) recorder->script(fs::path(path).filename().string(), src);

  const int top = lua_gettop(L);
  if (Status s = compile_class(type, src); !s) return fail(s.error().message);
  const int fresh = lua_gettop(L);
  RoomOptions options;
  if (Status s = read_options(L, fresh, type.path, options); !s) {
    lua_settop(L, top);
    return fail(s.error().message);
  }
  std::vector<std::string> actions = declared_actions(L, fresh);
  type.warnings.clear();
  for (const script::LintFinding& f : script::lint_class(L, fresh, src)) {
    type.warnings.push_back(type.path + ":" + std::to_string(f.line ? f.line : 1) + ": " + f.message);
    log(LogLevel::warn, "script lint type=" + name + " " + type.warnings.back());
  }
  int previous = LUA_NOREF;
  if (type.class_ref < 0) {
    type.class_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else if (Status s = swap_in(type, fresh, previous); !s) {
    lua_settop(L, top);
    return fail(s.error().message);
  }
  lua_settop(L, top);
  type.options = options;
  type.actions = std::move(actions);
  ++type.version;
  type.loaded_at = iso_now();
  type.error.clear();
  log(LogLevel::info, "script loaded type=" + name + " file=" + type.path +
                          " version=" + std::to_string(type.version));
  if (previous != LUA_NOREF) {
    refresh_live_rooms(type, previous);
    luaL_unref(L, LUA_REGISTRYINDEX, previous);
  }
}

// Compiles `src` (text only: a binary chunk is refused), runs it through the door in a
// fresh sandbox environment and leaves the class table it returned.  [-0, +(1|0), m]
Status Engine::Impl::compile_class(const RoomType& type, const std::string& src) {
  const int top = lua_gettop(L);
  const std::string chunk = "@" + type.path;
  if (luaL_loadbufferx(L, src.data(), src.size(), chunk.c_str(), "t") != 0) {
    std::string msg = lua_tostring(L, -1);
    lua_settop(L, top);
    return make_error(ErrorCode::script_error, msg);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, prelude_ref);
  lua_getfield(L, -1, "makeEnv");
  lua_pushlstring(L, type.name.data(), type.name.size());
  if (const int rc = lua_pcall(L, 1, 1, 0); rc != 0) {
    std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "makeEnv failed";
    lua_settop(L, top);
    return make_error(rc == LUA_ERRMEM ? ErrorCode::budget_exceeded : ErrorCode::script_error,
                      type.path + ": " + msg);
  }
  lua_setfenv(L, -3);
  lua_pop(L, 1);  // prelude
  script::HookResult r = script::call_hook(L, 0, 1, budget);
  if (!r.ok) {
    lua_settop(L, top);
    // A stop raised outside the script's own lines (in a handler the sandbox ran) has no
    // position: say whose script it was.
    return make_error(ErrorCode::script_error, (r.where.empty() ? type.path : r.where) + ": " + r.message);
  }
  if (!lua_istable(L, -1)) {
    lua_settop(L, top);
    const auto last_line = 1 + std::count(src.begin(), src.end(), '\n') - (!src.empty() && src.back() == '\n');
    return make_error(ErrorCode::script_error,
                      type.path + ":" + std::to_string(last_line) +
                          ": the script must return its class table (end it with `return` and the table)");
  }
  return {};
}

// The swap: a reload puts the fresh class's methods into the live class table (at
// `fresh`), so every live room runs the new code at its next call, and leaves in
// `previous` a registry ref to a copy of the class as it was (onReload's argument). Both
// steps walk the script's tables, so they go through the door (budget, protected call).
// [-0, +0, m]
Status Engine::Impl::swap_in(RoomType& type, int fresh, int& previous) {
  const int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, prelude_ref);
  const int prelude = lua_gettop(L);
  lua_getfield(L, prelude, "snapshot");
  lua_rawgeti(L, LUA_REGISTRYINDEX, type.class_ref);
  script::HookResult snap = script::call_hook(L, 1, 1, budget);
  if (!snap.ok) {
    lua_settop(L, top);
    return make_error(ErrorCode::script_error, type.path + ": the class could not be swapped in: " + snap.message);
  }
  previous = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, prelude, "replaceMethods");
  lua_rawgeti(L, LUA_REGISTRYINDEX, type.class_ref);
  lua_pushvalue(L, fresh);
  script::HookResult swapped = script::call_hook(L, 2, 0, budget);
  lua_settop(L, top);
  if (!swapped.ok) {
    luaL_unref(L, LUA_REGISTRYINDEX, previous);
    previous = LUA_NOREF;
    return make_error(ErrorCode::script_error, type.path + ": the class could not be swapped in: " + swapped.message);
  }
  return {};
}

// After a reload: every live room of the type gets the keys new in defaultState and
// defaultMeta (a patch reaches members), then onReload(previousClass) as its own
// transaction: if it raises, only its changes roll back, and the new code stays.
void Engine::Impl::refresh_live_rooms(RoomType& type, int previous_ref) {
  std::vector<std::string> ids;
  for (auto& [id, room] : rooms)
    if (room->type == &type && !room->doomed) ids.push_back(id);
  for (const std::string& id : ids) {
    Room* room = find_room(id);
    if (!room) continue;
    const int top = lua_gettop(L);
    Status merged = transact([&]() -> Status {
      touch(*room);
      lua_rawgeti(L, LUA_REGISTRYINDEX, prelude_ref);
      lua_getfield(L, -1, "mergeDefaults");
      push_box(*room);
      lua_rawgeti(L, LUA_REGISTRYINDEX, type.class_ref);
      HookOutcome o = invoke(*room, 2, 0, "mergeDefaults");
      lua_settop(L, top);
      if (!o.result.ok)
        return make_error(ErrorCode::script_error, type.path + ": new defaults do not apply: " + o.result.message);
      return {};
    });
    if (!merged) log(LogLevel::warn, "script reload_defaults_failed room=" + id + " " + merged.error().message);
    Status reloaded = hook_transaction(*room, "onReload", [&] {
      lua_rawgeti(L, LUA_REGISTRYINDEX, previous_ref);
      return 1;
    });
    if (!reloaded) {
      type.error = "onReload failed in " + id + ": " + reloaded.error().message;
      log(LogLevel::warn, "script on_reload_failed room=" + id + " error=\"" + reloaded.error().message + "\"");
    }
  }
}

namespace {

json::Value type_report(const RoomType& type) {
  json::Value t = json::Value::object();
  t.set("name", json::Value(type.name));
  t.set("ok", json::Value(type.error.empty() && !type.deleted));
  t.set("error", type.deleted ? json::Value("the script file was deleted")
                 : type.error.empty() ? json::Value() : json::Value(type.error));
  return t;
}

}  // namespace

json::Value Engine::Impl::reload_one(const std::string& file_name) {
  const fs::path path = fs::path(config.rooms_dir) / file_name;
  if (path.stem() == kGateScriptStem && path.extension() == ".lua") {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
      load_gate(path.string());
    } else if (gate.present) {
      drop_gate();
      gate = Gate{};
      log(LogLevel::info, "script gate_deleted file=" + path.string() + " (connections are no longer gated)");
      json::Value t = gate_report();
      return t;
    }
    return gate_report();
  }
  const std::string name = path.stem().string();
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    load_type(name, path.string());
  } else if (RoomType* type = find_type(name)) {
    if (recorder) recorder->script_gone(path.filename().string());
    type->deleted = true;  // live rooms keep serving; new joins get not_found
    log(LogLevel::info, "script deleted type=" + name + " file=" + type->path);
  }
  RoomType* type = find_type(name);
  if (type) {
    json::Value report = type_report(*type);
    forget_deleted_types();
    return report;
  }
  json::Value t = json::Value::object();
  t.set("name", json::Value(name));
  t.set("ok", json::Value(false));
  t.set("error", json::Value("not a room script"));
  return t;
}

json::Value Engine::Impl::reload_all() {
  std::error_code ec;
  for (auto& [name, type] : types) {
    if (type->deleted || fs::exists(type->path, ec)) continue;
    if (recorder) recorder->script_gone(fs::path(type->path).filename().string());
    type->deleted = true;
  }
  if (gate.present && !fs::exists(gate.path, ec)) {
    drop_gate();
    gate = Gate{};
  }
  load_all_types();
  json::Value list = json::Value::array();
  for (auto& [name, type] : types) list.push_back(type_report(*type));
  if (gate.present) list.push_back(gate_report());
  forget_deleted_types();
  json::Value out = json::Value::object();
  out.set("types", std::move(list));
  return out;
}

// A deleted script's type stays while rooms of it live (they keep serving its code), and
// goes once none does: from GET /api/status, the inspector and the registry.
void Engine::Impl::forget_deleted_types() {
  if (std::none_of(types.begin(), types.end(), [](const auto& t) { return t.second->deleted; }))
    return;
  std::set<const RoomType*> in_use;
  for (const auto& [id, room] : rooms) in_use.insert(room->type);
  for (const auto& room : displaced) in_use.insert(room->type);
  for (auto it = types.begin(); it != types.end();) {
    RoomType& type = *it->second;
    if (!type.deleted || in_use.count(&type)) {
      ++it;
      continue;
    }
    if (type.class_ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, type.class_ref);
    log(LogLevel::info, "script forgotten type=" + type.name + " (deleted, no live rooms)");
    it = types.erase(it);
  }
}

}  // namespace atrium::engine
