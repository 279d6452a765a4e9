// The connection gate: rooms/_connect.lua, not a room type. Its onConnect(req) runs
// before a transport accepts an upgrade (Engine::admit), under the CPU budget and with a
// memory owner of its own, and decides who connects and what every hook sees as
// ctx.user (docs/rooms.md "The connection gate").
//
// It fails closed: a gate that does not load, errors, or answers something it may not,
// refuses the connection. A server whose gate is broken serves nobody new rather than
// everybody.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/engine_impl.hpp"
#include "script/lua_json.hpp"

namespace atrium::engine {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxReasonBytes = 256;

json::Value pairs_object(const ConnectRequest::Pairs& pairs) {
  json::Value out = json::Value::object();
  for (const auto& [name, value] : pairs) out.set(name, json::Value(value));
  return out;
}

json::Value request_value(const ConnectRequest& r) {
  json::Value req = json::Value::object();
  req.set("ip", json::Value(r.ip));
  req.set("origin", r.origin.empty() ? json::Value() : json::Value(r.origin));
  req.set("headers", pairs_object(r.headers));
  req.set("cookies", pairs_object(r.cookies));
  req.set("query", pairs_object(r.query));
  req.set("userId", r.user_id.empty() ? json::Value() : json::Value(r.user_id));
  req.set("claims", r.claims);
  return req;
}

Admission refused(int status, std::string reason) {
  Admission a;
  a.admitted = false;
  a.status = status;
  if (reason.size() > kMaxReasonBytes) reason.resize(kMaxReasonBytes);
  a.reason = std::move(reason);
  return a;
}

}  // namespace

void Engine::Impl::drop_gate() {
  if (gate.fn_ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, gate.fn_ref);
  gate.fn_ref = -2;
  if (gate.mem_owner) vm->release_owner(gate.mem_owner);
  gate.mem_owner = 0;
}

// Loads (or loads again) rooms/_connect.lua. A failed reload keeps nothing of the old
// gate: what the file now says is broken, and serving the old rules silently would hide
// that (a removed ban would look applied).
void Engine::Impl::load_gate(const std::string& path) {
  gate.present = true;
  gate.path = path;
  drop_gate();
  auto fail = [&](std::string message) {
    gate.error = std::move(message);
    log(LogLevel::error, "script gate_failed file=" + path + " error=\"" + gate.error +
                             "\" (every connection is refused until it loads)");
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(path + ": cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  RoomType as_type;  // compile_class names the script by it
  as_type.name = kGateScriptStem;
  as_type.path = path;
  as_type.file = script_file_of(kGateScriptStem);
  gate.mem_owner = vm->new_owner();
  const script::OwnerScope as_gate(*vm, gate.mem_owner);
  const int top = lua_gettop(L);
  bool loaded = false;
  Status compiled;
  const bool ran = guarded("gate", [&] {
    compiled = compile_class(as_type, text.str());
    if (!compiled) return;
    lua_pushliteral(L, "onConnect");
    lua_rawget(L, -2);
    if (lua_isfunction(L, -1)) {
      gate.fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      loaded = true;
    }
  });
  lua_settop(L, top);
  if (!ran) return fail(path + ": out of script memory");
  if (!compiled) return fail(compiled.error().message);
  if (!loaded) return fail(path + ": the table it returns has no function onConnect(req)");
  gate.error.clear();
  log(LogLevel::info, "script gate_loaded file=" + path);
}

json::Value Engine::Impl::gate_report() const {
  json::Value t = json::Value::object();
  t.set("name", json::Value(kGateScriptStem));
  t.set("ok", json::Value(gate.present && gate.error.empty()));
  t.set("error", !gate.present ? json::Value("the script file was deleted")
                 : gate.error.empty() ? json::Value() : json::Value(gate.error));
  return t;
}

Admission Engine::Impl::admit(const ConnectRequest& request) {
  if (!gate.present) return {};
  if (!gate.error.empty()) return refused(503, "the connection gate failed to load");
  ++metrics.gate_calls;
  begin_input();
  Admission out = refused(503, "the connection gate failed");
  const int top = lua_gettop(L);
  const script::OwnerScope as_gate(*vm, gate.mem_owner);
  const bool ran = guarded("gate", [&] {
    lua_rawgeti(L, LUA_REGISTRYINDEX, gate.fn_ref);
    script::push_value(L, request_value(request));
    vm->clear_cap_hit();
    const script::HookResult r = script::call_hook(L, 1, 2, budget);
    if (!r.ok) {
      log(LogLevel::error, "script gate_error file=" + gate.path + " error=\"" +
                               as_shown(r.where.empty() ? r.message : r.where + ": " + r.message) +
                               "\" (the connection is refused)");
      return;
    }
    const int verdict = top + 1;
    if (lua_isnil(L, verdict) || (lua_isboolean(L, verdict) && lua_toboolean(L, verdict))) {
      out = Admission{};
    } else if (lua_isboolean(L, verdict)) {  // false, "reason"
      std::string reason = "refused by the connection gate";
      if (lua_type(L, verdict + 1) == LUA_TSTRING) {
        std::size_t n = 0;
        const char* s = lua_tolstring(L, verdict + 1, &n);
        reason.assign(s, n);
      }
      out = refused(403, std::move(reason));
    } else if (lua_istable(L, verdict)) {
      auto user = script::to_value(L, verdict, "user");
      if (user && user->is_object()) {
        out = Admission{};
        out.user = std::move(user.value());
      } else {
        log(LogLevel::error, "script gate_error file=" + gate.path + " error=\"onConnect returned a " +
                                 "table that is not a JSON object: " +
                                 (user ? std::string("an array") : user.error().message) +
                                 "\" (the connection is refused)");
      }
    } else {
      log(LogLevel::error, "script gate_error file=" + gate.path +
                               " error=\"onConnect must return nil, true, a table, or false and a "
                               "reason; it returned a " + luaL_typename(L, verdict) +
                               "\" (the connection is refused)");
    }
  });
  lua_settop(L, top);
  if (!ran) out = refused(503, "the connection gate failed");
  if (!out.admitted) ++metrics.gate_refusals;
  return out;
}

Admission Engine::admit(const ConnectRequest& request) { return impl_->admit(request); }

bool Engine::has_connection_gate() const { return impl_->gate.present; }

}  // namespace atrium::engine
