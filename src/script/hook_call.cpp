#include "script/hook_call.hpp"

#include <lua.hpp>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

namespace atrium::script {

namespace {

using Clock = std::chrono::steady_clock;

enum class Stop { none, budget, nesting, callbacks, c_stack };

struct CallScope {
  Clock::time_point deadline;
  Stop stop = Stop::none;
  int nested = 0;                   // call_hooks inside the top-level one
  int callbacks = 0;                // CallbackScopes alive
  std::uintptr_t stack_floor = 0;   // frames below this address: the C stack is too deep
};
CallScope* g_scope = nullptr;  // one engine thread per VM: no locking by design

const char* stop_message(Stop s) {
  static const std::string nesting =
      "script_error: calls nested deeper than " + std::to_string(kMaxNestedCalls) +
      " levels (atrium.room():call and :join inside one another; two rooms calling each other?)";
  static const std::string callbacks =
      "script_error: callbacks nested deeper than " + std::to_string(kMaxCallbackDepth) +
      " levels (a function given to string.gsub that calls gsub again?)";
  switch (s) {
    case Stop::budget: return kBudgetExceededMessage;
    case Stop::nesting: return nesting.c_str();
    case Stop::callbacks: return callbacks.c_str();
    case Stop::c_stack:
      return "script_error: calls nested too deeply for the C stack (recursion through "
             "table.sort, string.gsub or metamethods?)";
    case Stop::none: break;
  }
  return "stopped";
}

// The address below which this top-level call's C frames must not go: what is left of
// the thread's stack, less a margin for the frames between two checks (count hook: a
// thousand instructions), and no more than 4 MiB in any case.
std::uintptr_t stack_floor_from(std::uintptr_t here) {
  static thread_local std::uintptr_t low = [] {
    pthread_attr_t attr;
    void* addr = nullptr;
    std::size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return std::uintptr_t{0};
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    return reinterpret_cast<std::uintptr_t>(addr);
  }();
  constexpr std::uintptr_t kMargin = 1u << 20, kMost = 4u << 20;
  if (low == 0 || here <= low + 2 * kMargin) return here > (256u << 10) ? here - (256u << 10) : 0;
  return here - std::min(here - low - kMargin, kMost);
}

std::uintptr_t frame_address() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

void on_count(lua_State* L, lua_Debug*) {
  if (!g_scope) return;
  if (g_scope->stop == Stop::none) {
    if (Clock::now() >= g_scope->deadline)
      g_scope->stop = Stop::budget;
    else if (frame_address() < g_scope->stack_floor)
      g_scope->stop = Stop::c_stack;
    else
      return;
  }
  lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
  luaL_error(L, "%s", stop_message(g_scope->stop));
}

// Stops the running call and raises. From now on the count hook fires at every
// instruction: whatever catches the error meets it again at its next one.
void stop_now(lua_State* L, Stop why) {
  if (g_scope->stop == Stop::none) g_scope->stop = why;
  lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
  luaL_error(L, "%s", stop_message(g_scope->stop));
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

HookResult stopped_result(Stop s, std::string traceback) {
  HookResult r;
  r.ok = false;
  r.code = s == Stop::budget ? ErrorCode::budget_exceeded : ErrorCode::script_error;
  r.message = stop_message(s);
  // The raised error's first line also says where it was stopped: keep it when it is
  // the stop's own message.
  if (traceback.find(r.message) != std::string::npos) r.message = first_line(traceback);
  r.traceback = traceback.empty() ? r.message : std::move(traceback);
  return r;
}

}  // namespace

void prepare_hook_calls(lua_State* L) {
  push_traceback_handler(L);
  lua_pop(L, 1);
}

bool in_hook() noexcept { return g_scope != nullptr; }

bool call_stopped() noexcept { return g_scope && g_scope->stop != Stop::none; }

bool budget_expired() noexcept {
  if (!g_scope) return false;
  if (g_scope->stop == Stop::budget) return true;
  if (g_scope->stop != Stop::none || Clock::now() < g_scope->deadline) return false;
  g_scope->stop = Stop::budget;  // the hook re-arms itself at count 1 when it next fires
  return true;
}

CallbackScope::CallbackScope(lua_State* L) {
  if (!g_scope) return;  // outside any call_hook (the engine's own use): nothing to bound
  if (g_scope->stop != Stop::none) stop_now(L, g_scope->stop);
  if (g_scope->callbacks >= kMaxCallbackDepth) stop_now(L, Stop::callbacks);
  if (frame_address() < g_scope->stack_floor) stop_now(L, Stop::c_stack);
  ++g_scope->callbacks;
  counted_ = true;
}

CallbackScope::~CallbackScope() {
  if (counted_ && g_scope) --g_scope->callbacks;
}

HookResult call_hook(lua_State* L, int nargs, int nresults, const Budget& budget) noexcept {
  const int fn = lua_gettop(L) - nargs;
  const bool nested = g_scope != nullptr;
  if (nested) {
    // Not called at all past a limit, and the whole top-level call is stopped: a room
    // that catches the error cannot call again.
    Stop why = g_scope->stop;
    if (why == Stop::none && g_scope->nested >= kMaxNestedCalls) why = Stop::nesting;
    if (why == Stop::none && frame_address() < g_scope->stack_floor) why = Stop::c_stack;
    if (why != Stop::none) {
      g_scope->stop = why;
      lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
      lua_settop(L, fn - 1);
      return stopped_result(why, {});
    }
  }
  push_traceback_handler(L);
  lua_insert(L, fn);  // handler goes under the function
  const int handler = fn;

  CallScope scope;
  if (!nested) {
    scope.deadline = Clock::now() + std::chrono::milliseconds(budget.cpu_ms);
    scope.stack_floor = stack_floor_from(frame_address());
    g_scope = &scope;
    lua_sethook(L, on_count, LUA_MASKCOUNT, budget.instructions_per_check);
  }
  ++g_scope->nested;
  const int rc = lua_pcall(L, nargs, nresults, handler);
  --g_scope->nested;
  const Stop stop = g_scope->stop;
  if (!nested) {
    lua_sethook(L, nullptr, 0, 0);
    g_scope = nullptr;
  }

  if (rc == 0 && stop == Stop::none) {
    lua_remove(L, handler);
    return HookResult{};
  }
  if (rc == 0) {  // it swallowed the stop and returned: the call still failed
    lua_settop(L, handler - 1);
    return stopped_result(stop, {});
  }
  std::string traceback;
  if (rc == LUA_ERRMEM) {
    traceback = "not enough memory";
  } else {
    const char* msg = lua_tostring(L, -1);
    traceback = msg ? msg : "(error object is not a string)";
  }
  lua_settop(L, handler - 1);  // message, handler
  if (stop != Stop::none) return stopped_result(stop, std::move(traceback));
  HookResult r;
  r.ok = false;
  r.code = rc == LUA_ERRMEM ? ErrorCode::budget_exceeded : ErrorCode::script_error;
  r.message = rc == LUA_ERRMEM ? "the room ran out of its memory budget" : first_line(traceback);
  r.traceback = std::move(traceback);
  return r;
}

}  // namespace atrium::script
