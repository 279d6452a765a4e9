// The one door into Lua: every hook, action, method and timer callback of a room goes
// through call_hook, which installs the traceback handler, arms the CPU budget, bounds
// how deep calls nest, calls with pcall and turns the outcome into a HookResult.
//
// A call can be *stopped*: it ran past its CPU budget, or it nested deeper than the
// engine allows (rooms calling rooms, C functions calling back into Lua, or the C stack
// itself). A stop is final for the whole top-level call: the error is raised again at
// every instruction, the sandbox's pcall and xpcall re-raise it (lua/atrium/prelude.lua)
// and never run a script's message handler for it, and a call that returns normally
// after swallowing it still fails.
#pragma once

#include <cstddef>
#include <string>

#include "util/result.hpp"

struct lua_State;

namespace atrium::script {

struct Budget {
  int cpu_ms = 200;                 // wall time of one top-level call, nested calls included
  int instructions_per_check = 1000;
};

// How deep calls may nest inside one top-level call (each past it is a stop).
inline constexpr int kMaxNestedCalls = 32;     // call_hook inside call_hook: room -> room
inline constexpr int kMaxCallbackDepth = 64;   // C functions calling back into Lua (gsub)

// What a failed call raised, as a client is shown it (docs/rooms.md "Errors"):
// error("text") gives message "text"; error({code = "not_your_turn", message = "..."})
// gives that code (1..64 of [a-z0-9_]; a code of docs/protocol.md becomes that code, any
// other valid one is script_code) and message; a table may carry `where` too.
struct HookResult {
  bool ok = true;
  ErrorCode code = ErrorCode::script_error;  // when !ok: script_error, budget_exceeded or a
                                             // protocol code the script named
  std::string script_code;                   // the script's own code, else empty
  std::string message;                       // the script's text, without a position
  std::string where;                         // "rooms/x.lua:12": the innermost line of a
                                             // room script ("@" chunk) when it was raised
  std::string traceback;                     // the full traceback, for the log only
};

// The longest message and where a client is sent (a script's error text is its own).
inline constexpr std::size_t kMaxErrorMessageBytes = 2048;

// Makes what call_hook keeps in the VM (its traceback handler). Made on first use if not
// before; a VM calls this at creation so that no hook call makes it under a room's memory
// cap, outside any protected call.  [-0, +0, m]
void prepare_hook_calls(lua_State* L);

// Calls the function sitting below its nargs arguments.
// On success leaves nresults values (LUA_MULTRET allowed); on failure leaves nothing.
// A call made while another is running (a room calling into another room) runs under
// the outer call's budget.  [-(nargs+1), +(nresults|0), -]
HookResult call_hook(lua_State* L, int nargs, int nresults, const Budget& budget) noexcept;

// What call_hook keeps for one Lua state while a call runs in it: the top-level call's
// scope and the innermost call's error slot. A Vm holds its state's, so engines in one
// process (on one thread or several, or one stepped from another's host function) never
// see each other's calls.
struct CallScope;
struct HookContext {
  CallScope* scope = nullptr;
  void* error = nullptr;            // the innermost call's error slot (hook_call.cpp)
};
HookContext& hook_context(lua_State* L) noexcept;

// True when the running top-level call was stopped (budget or depth): what the
// sandbox's pcall and xpcall ask before they let a script see an error.
bool call_stopped(lua_State* L) noexcept;

// The error both the count hook and budget_expired's callers raise.
inline constexpr const char* kBudgetExceededMessage =
    "budget_exceeded: the call ran past its CPU budget";

// For C functions that run long without executing Lua (the count hook cannot see them):
// true when a call_hook is running and its deadline has passed. Marks that call as
// exceeded, so once the caller raises kBudgetExceededMessage the call is reported as
// budget_exceeded. Always false outside a call_hook.
bool budget_expired(lua_State* L) noexcept;

// For C functions that call back into Lua (a gsub replacement function, a table's
// __index). Counts the nesting while it lives; constructing one past kMaxCallbackDepth,
// or with the C stack nearly used up, stops the running call and raises. Outside a
// call_hook it only counts.
class CallbackScope {
 public:
  explicit CallbackScope(lua_State* L);
  ~CallbackScope();
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  HookContext* context_;
  bool counted_ = false;
};

}  // namespace atrium::script
