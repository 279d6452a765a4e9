// Lint for room classes: mistakes that load without error but silently do nothing, such
// as a hook spelled `onjoin` or `onLave`, `R.action` for `R.actions`, an option spelled
// `maxmembers`, an action that is not a function, an onTick with no tickRate, or an
// undeclared global inside a function (the sandbox raises only when that line runs).
// Used at every load (findings go to the log and GET /api/status) and by `atrium check`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

struct lua_State;

namespace atrium::script {

struct LintFinding {
  int line = 0;          // 0 when no line can be named
  std::string message;
};

// Checks the class table at stack index `cls`. `source` is the script's text, used to
// name the line of a table field and to find the globals its functions use (compiled
// again in a scratch state; the globals a script may use are the keys of its functions'
// environment).  [-0, +0, m]
std::vector<LintFinding> lint_class(lua_State* L, int cls, std::string_view source);

// The option names a class may set (docs/rooms.md "What a room script is made of").
const std::vector<std::string>& known_options();

// The known name `name` most likely stands for: the same but for case, or (with
// `typos`) within a small edit distance and with the same first letter. nullptr if none.
const std::string* near_miss(const std::vector<std::string>& known, std::string_view name, bool typos = true);

}  // namespace atrium::script
