// The one door into Lua: every hook, action, method and timer callback of a room goes
// through call_hook, which installs the traceback handler, arms the CPU budget, calls
// with pcall and turns the outcome into a HookResult.
#pragma once

#include <string>

#include "util/result.hpp"

struct lua_State;

namespace atrium::script {

struct Budget {
  int cpu_ms = 200;                 // wall time of one top-level call, nested calls included
  int instructions_per_check = 1000;
};

struct HookResult {
  bool ok = true;
  ErrorCode code = ErrorCode::script_error;  // when !ok: script_error or budget_exceeded
  std::string message;                       // one line for the client: "rooms/x.lua:12: boom"
  std::string traceback;                     // the full traceback, for the log only
};

// Makes what call_hook keeps in the VM (its traceback handler). Made on first use if not
// before; a VM calls this at creation so that no hook call makes it under a room's memory
// cap, outside any protected call.  [-0, +0, m]
void prepare_hook_calls(lua_State* L);

// Calls the function sitting below its nargs arguments.
// On success leaves nresults values (LUA_MULTRET allowed); on failure leaves nothing.
// A call made while another is running (a room calling into another room) runs under
// the outer call's budget.  [-(nargs+1), +(nresults|0), -]
HookResult call_hook(lua_State* L, int nargs, int nresults, const Budget& budget) noexcept;

// True while a call_hook is running (used to tell nested calls from top-level ones).
bool in_hook() noexcept;

// The error both the count hook and budget_expired's callers raise.
inline constexpr const char* kBudgetExceededMessage =
    "budget_exceeded: the call ran past its CPU budget";

// For C functions that run long without executing Lua (the count hook cannot see them):
// true when a call_hook is running and its deadline has passed. Marks that call as
// exceeded, so once the caller raises kBudgetExceededMessage the call is reported as
// budget_exceeded. Always false outside a call_hook.
bool budget_expired() noexcept;

}  // namespace atrium::script
