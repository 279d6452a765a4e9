#include "script/hook_call.hpp"

#include <lua.hpp>

#include <chrono>

namespace atrium::script {

namespace {

using Clock = std::chrono::steady_clock;

struct CallScope {
  Clock::time_point deadline;
  bool exceeded = false;
};
CallScope* g_scope = nullptr;  // one engine thread per VM: no locking by design

void on_count(lua_State* L, lua_Debug*) {
  if (!g_scope) return;
  if (!g_scope->exceeded && Clock::now() < g_scope->deadline) return;
  g_scope->exceeded = true;
  // Fire on every instruction from now on: a script that wraps its loop in pcall meets
  // the error again the moment pcall returns.
  lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
  luaL_error(L, "%s", kBudgetExceededMessage);
}

// Message handler: runs before unwinding, so the failing frame is still there.
int add_traceback(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  if (!msg) msg = "(error object is not a string)";
  luaL_traceback(L, L, msg, 1);
  return 1;
}

// Pushes add_traceback, made once per VM and kept in the registry: a C function pushed
// anew is a new closure, an allocation per hook call.
void push_traceback_handler(lua_State* L) {
  static const char key = 0;
  lua_pushlightuserdata(L, const_cast<char*>(&key));
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_isfunction(L, -1)) return;
  lua_pop(L, 1);
  lua_pushcfunction(L, add_traceback);
  lua_pushlightuserdata(L, const_cast<char*>(&key));
  lua_pushvalue(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

void prepare_hook_calls(lua_State* L) {
  push_traceback_handler(L);
  lua_pop(L, 1);
}

bool in_hook() noexcept { return g_scope != nullptr; }

bool budget_expired() noexcept {
  if (!g_scope) return false;
  if (!g_scope->exceeded && Clock::now() < g_scope->deadline) return false;
  g_scope->exceeded = true;  // the hook re-arms itself at count 1 when it next fires
  return true;
}

HookResult call_hook(lua_State* L, int nargs, int nresults, const Budget& budget) noexcept {
  const int fn = lua_gettop(L) - nargs;
  push_traceback_handler(L);
  lua_insert(L, fn);  // handler goes under the function
  const int handler = fn;

  const bool nested = g_scope != nullptr;
  CallScope scope;
  if (!nested) {
    scope.deadline = Clock::now() + std::chrono::milliseconds(budget.cpu_ms);
    g_scope = &scope;
    lua_sethook(L, on_count, LUA_MASKCOUNT, budget.instructions_per_check);
  }
  const int rc = lua_pcall(L, nargs, nresults, handler);
  bool exceeded = g_scope->exceeded;
  if (!nested) {
    lua_sethook(L, nullptr, 0, 0);
    g_scope = nullptr;
  }

  HookResult r;
  if (rc == 0) {
    lua_remove(L, handler);
    return r;
  }
  r.ok = false;
  if (rc == LUA_ERRMEM) {
    exceeded = true;
    r.traceback = "not enough memory";
  } else {
    const char* msg = lua_tostring(L, -1);
    r.traceback = msg ? msg : "(error object is not a string)";
  }
  r.code = exceeded ? ErrorCode::budget_exceeded : ErrorCode::script_error;
  r.message = rc == LUA_ERRMEM ? "the room ran out of its memory budget" : first_line(r.traceback);
  lua_pop(L, 2);  // message, handler
  return r;
}

}  // namespace atrium::script
