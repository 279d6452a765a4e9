#include "script/hook_call.hpp"

#include <lua.hpp>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "script/vm.hpp"

namespace atrium::script {

using Clock = std::chrono::steady_clock;

enum class Stop { none, budget, nesting, callbacks, c_stack };

struct CallScope {
  Clock::time_point deadline;
  Stop stop = Stop::none;
  // The room script's line the stop happened at: a buffer, not a std::string, since a
  // scope is made for every top-level call and a stop is rare.
  std::array<char, 256> stop_where;   // call_hook clears its first byte only
  int nested = 0;                   // call_hooks inside the top-level one
  int callbacks = 0;                // CallbackScopes alive
  std::uintptr_t stack_floor = 0;   // frames below this address: the C stack is too deep
};

// The context of `L`: its Vm's, or, for a state made elsewhere (benchmarks, tests), the
// thread's.
HookContext& hook_context(lua_State* L) noexcept {
  if (Vm* vm = Vm::of(L)) return vm->hook_context();
  static thread_local HookContext fallback;
  return fallback;
}

namespace {

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
// thousand instructions), and no more than kMost in any case. Lua calling Lua takes no C
// stack in LuaJIT; only recursion through C does (a __tostring that formats itself,
// table.sort's comparator sorting again), and no room needs that deep. The cap also bounds
// the error's unwinding, which visits every C frame: from 4 MiB of them a stack overflow
// took 0.6 s to unwind; 256 KiB keeps it near a few milliseconds.
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
  constexpr std::uintptr_t kMargin = 1u << 20, kMost = 256u << 10;
  if (low == 0 || here <= low + 2 * kMargin) return here > (256u << 10) ? here - (256u << 10) : 0;
  return here - std::min(here - low - kMargin, kMost);
}

std::uintptr_t frame_address() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

// "rooms/x.lua:12" for the innermost frame from `level` down that runs a room script's
// line: a chunk named "@file" (the engine names its own Lua "=..."), or "" when none does
// within kMaxPositionLevels frames. Bounded because LuaJIT's lua_getstack walks from the
// top, level by level: a search through a stack overflow's 20,000 frames took the server
// 0.7 s (a 100 ms budget), and every failure runs this.
constexpr int kMaxPositionLevels = 64;

std::string script_position(lua_State* L, int level) {
  lua_Debug ar;
  for (const int last = level + kMaxPositionLevels; level < last && lua_getstack(L, level, &ar); ++level) {
    if (!lua_getinfo(L, "Sl", &ar)) continue;
    if (ar.source && ar.source[0] == '@' && ar.currentline > 0)
      return std::string(ar.source + 1) + ":" + std::to_string(ar.currentline);
  }
  return {};
}

// The first stop of a call wins; where it happened is kept for the reply and the log.
void mark_stopped(lua_State* L, Stop why) {
  HookContext& h = hook_context(L);
  if (h.scope->stop != Stop::none) return;
  h.scope->stop = why;
  try {
    const std::string where = script_position(L, 0);
    const std::size_t n = std::min(where.size(), h.scope->stop_where.size() - 1);
    where.copy(h.scope->stop_where.data(), n);
    h.scope->stop_where[n] = '\0';
  } catch (...) {  // no memory for a position: the stop stands without one
  }
}

void on_count(lua_State* L, lua_Debug*) {
  HookContext& h = hook_context(L);
  if (!h.scope) return;
  if (h.scope->stop == Stop::none) {
    if (Clock::now() >= h.scope->deadline)
      mark_stopped(L, Stop::budget);
    else if (frame_address() < h.scope->stack_floor)
      mark_stopped(L, Stop::c_stack);
    else
      return;
  }
  lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
  luaL_error(L, "%s", stop_message(h.scope->stop));
}

// Stops the running call and raises. From now on the count hook fires at every
// instruction: whatever catches the error meets it again at its next one.
void stop_now(lua_State* L, Stop why) {
  HookContext& h = hook_context(L);
  mark_stopped(L, why);
  lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
  luaL_error(L, "%s", stop_message(h.scope->stop));
}

// What the message handler of the innermost running call_hook learns of its error (made
// only when there is one: a call that succeeds builds no strings for it).
struct ErrorDetails {
  ErrorCode code = ErrorCode::script_error;
  std::string script_code, message, where;
};
using ErrorSlot = std::optional<ErrorDetails>;

bool valid_script_code(std::string_view code) {
  if (code.empty() || code.size() > 64) return false;
  return std::all_of(code.begin(), code.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// A field of the error table, read raw (no metamethod of the script's runs in the handler).
std::string raw_string_field(lua_State* L, int table, const char* key) {
  lua_pushstring(L, key);
  lua_rawget(L, table);
  std::string out;
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    out.assign(s, n);
  }
  lua_pop(L, 1);
  return out;
}

// error("text") at level 1 reads "rooms/x.lua:12: text" (a runtime error too): the
// position goes to `where`, the client's message is the text.
std::string without_position(const std::string& text) {
  const std::size_t line_end = std::min(text.find('\n'), text.size());
  for (std::size_t colon = text.find(':'); colon < line_end; colon = text.find(':', colon + 1)) {
    std::size_t digits = colon + 1;
    while (digits < line_end && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == colon + 1 || text.compare(digits, 2, ": ") != 0) continue;
    const std::string_view chunk(text.data(), colon);
    const bool is_chunk = chunk.size() > 4 && (chunk.substr(chunk.size() - 4) == ".lua" ||
                                               chunk.back() == ']');
    return is_chunk ? text.substr(digits + 2) : text;
  }
  return text;
}

// At most `most` bytes, never ending inside a UTF-8 character (a cut one would reach the
// client as U+FFFD).
std::string clipped(std::string text, std::size_t most) {
  if (text.size() <= most) return text;
  std::size_t end = most;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

// Reads the error object (index 1) into `slot` and returns the traceback's first line.
std::string describe_error(lua_State* L, ErrorDetails& slot) {
  const int type = lua_type(L, 1);
  std::string head;
  slot.where = script_position(L, 1);
  if (type == LUA_TSTRING || type == LUA_TNUMBER) {
    std::size_t n = 0;
    const char* text = lua_tolstring(L, 1, &n);
    head.assign(text, n);
    slot.message = without_position(head);
  } else if (type == LUA_TTABLE) {
    const std::string code = raw_string_field(L, 1, "code");
    std::string message = raw_string_field(L, 1, "message");
    if (std::string where = raw_string_field(L, 1, "where"); !where.empty()) slot.where = where;
    if (valid_script_code(code)) {
      const std::optional<ErrorCode> known = error_code_named(code);
      slot.code = known ? *known : ErrorCode::script_error;
      if (!known) slot.script_code = code;
    }
    if (message.empty()) message = code.empty() ? "(error table without a message)" : code;
    slot.message = message;
    head = (slot.where.empty() ? "" : slot.where + ": ") +
           (code.empty() ? "" : (valid_script_code(code) ? code : "(invalid code) " + code) + ": ") +
           message;
  } else {
    slot.message = std::string("(error object is a ") + lua_typename(L, type) + " value)";
    head = (slot.where.empty() ? "" : slot.where + ": ") + slot.message;
  }
  slot.message = clipped(std::move(slot.message), kMaxErrorMessageBytes);
  slot.where = clipped(std::move(slot.where), 256);
  return clipped(std::move(head), 2 * kMaxErrorMessageBytes);  // a log line, not a megabyte
}

// Message handler: runs before unwinding, so the failing frame is still there.
int on_error(lua_State* L) {
  std::string head;
  try {
    ErrorDetails details;
    head = describe_error(L, details);
    if (void* slot = hook_context(L).error) static_cast<ErrorSlot*>(slot)->emplace(std::move(details));
  } catch (...) {  // out of memory describing it: the message stays as raised
    const char* raised = lua_tostring(L, 1);
    head = raised ? raised : "(error object is not a string)";
  }
  luaL_traceback(L, L, head.c_str(), 1);
  return 1;
}

// Pushes on_error, made once per VM and kept in the registry: a C function pushed
// anew is a new closure, an allocation per hook call.
void push_traceback_handler(lua_State* L) {
  static const char key = 0;
  lua_pushlightuserdata(L, const_cast<char*>(&key));
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_isfunction(L, -1)) return;
  lua_pop(L, 1);
  lua_pushcfunction(L, on_error);
  lua_pushlightuserdata(L, const_cast<char*>(&key));
  lua_pushvalue(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

HookResult stopped_result(Stop s, std::string where, std::string traceback) {
  HookResult r;
  r.ok = false;
  r.code = s == Stop::budget ? ErrorCode::budget_exceeded : ErrorCode::script_error;
  r.message = stop_message(s);
  r.where = std::move(where);
  r.traceback = traceback.empty() ? (r.where.empty() ? "" : r.where + ": ") + r.message
                                  : std::move(traceback);
  return r;
}

}  // namespace

void prepare_hook_calls(lua_State* L) {
  push_traceback_handler(L);
  lua_pop(L, 1);
}

bool call_stopped(lua_State* L) noexcept {
  const HookContext& h = hook_context(L);
  return h.scope && h.scope->stop != Stop::none;
}

bool budget_expired(lua_State* L) noexcept {
  HookContext& h = hook_context(L);
  if (!h.scope) return false;
  if (h.scope->stop == Stop::budget) return true;
  if (h.scope->stop != Stop::none || Clock::now() < h.scope->deadline) return false;
  h.scope->stop = Stop::budget;  // the hook re-arms itself at count 1 when it next fires
  return true;
}

CallbackScope::CallbackScope(lua_State* L) : context_(&hook_context(L)) {
  HookContext& h = *context_;
  if (!h.scope) return;  // outside any call_hook (the engine's own use): nothing to bound
  if (h.scope->stop != Stop::none) stop_now(L, h.scope->stop);
  if (h.scope->callbacks >= kMaxCallbackDepth) stop_now(L, Stop::callbacks);
  if (frame_address() < h.scope->stack_floor) stop_now(L, Stop::c_stack);
  ++h.scope->callbacks;
  counted_ = true;
}

CallbackScope::~CallbackScope() {
  if (counted_ && context_->scope) --context_->scope->callbacks;
}

namespace {

// What call_hook answers for a call that failed or was stopped (rc: lua_pcall's), after
// ending the scope it opened. Out of line: the succeeding call is the one to keep short.
[[gnu::noinline, gnu::cold]] HookResult failed_call(lua_State* L, HookContext& h, int rc, int handler,
                                                    bool nested, ErrorSlot& slot) {
  const Stop stop = h.scope->stop;
  std::string stop_where = stop == Stop::none ? std::string() : h.scope->stop_where.data();
  if (!nested) {
    lua_sethook(L, nullptr, 0, 0);
    h.scope = nullptr;
  }
  if (rc == 0) {  // it swallowed the stop and returned: the call still failed
    lua_settop(L, handler - 1);
    return stopped_result(stop, std::move(stop_where), {});
  }
  std::string traceback;
  if (rc == LUA_ERRMEM) {
    traceback = "not enough memory";
  } else {
    const char* msg = lua_tostring(L, -1);
    traceback = msg ? msg : "(error object is not a string)";
  }
  lua_settop(L, handler - 1);  // message, handler
  if (stop != Stop::none) return stopped_result(stop, std::move(stop_where), std::move(traceback));
  HookResult r;
  r.ok = false;
  if (rc == LUA_ERRMEM) {
    r.code = ErrorCode::budget_exceeded;
    r.message = "the room ran out of its memory budget";
  } else if (slot) {
    r.code = slot->code;
    r.script_code = std::move(slot->script_code);
    r.message = std::move(slot->message);
    r.where = std::move(slot->where);
  } else {  // the handler itself failed (LUA_ERRERR)
    r.message = clipped(first_line(traceback), kMaxErrorMessageBytes);
  }
  r.traceback = std::move(traceback);
  return r;
}

}  // namespace

HookResult call_hook(lua_State* L, int nargs, int nresults, const Budget& budget) noexcept {
  HookContext& h = hook_context(L);
  const int fn = lua_gettop(L) - nargs;
  const bool nested = h.scope != nullptr;
  if (nested) {
    // Not called at all past a limit, and the whole top-level call is stopped: a room
    // that catches the error cannot call again.
    Stop why = h.scope->stop;
    if (why == Stop::none && h.scope->nested >= kMaxNestedCalls) why = Stop::nesting;
    if (why == Stop::none && frame_address() < h.scope->stack_floor) why = Stop::c_stack;
    if (why != Stop::none) {
      mark_stopped(L, why);
      lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
      lua_settop(L, fn - 1);
      return stopped_result(h.scope->stop, h.scope->stop_where.data(), {});
    }
  }
  push_traceback_handler(L);
  lua_insert(L, fn);  // handler goes under the function
  const int handler = fn;

  CallScope scope;
  scope.stop_where[0] = '\0';
  if (!nested) {
    scope.deadline = Clock::now() + std::chrono::milliseconds(budget.cpu_ms);
    scope.stack_floor = stack_floor_from(frame_address());
    h.scope = &scope;
    lua_sethook(L, on_count, LUA_MASKCOUNT, budget.instructions_per_check);
  }
  ErrorSlot slot;
  void* const outer_slot = h.error;
  h.error = &slot;
  ++h.scope->nested;
  const int rc = lua_pcall(L, nargs, nresults, handler);
  --h.scope->nested;
  h.error = outer_slot;
  if (rc == 0 && h.scope->stop == Stop::none) {
    if (!nested) {
      lua_sethook(L, nullptr, 0, 0);
      h.scope = nullptr;
    }
    lua_remove(L, handler);
    return HookResult{};
  }
  return failed_call(L, h, rc, handler, nested, slot);
}

}  // namespace atrium::script
