// Lint for room classes: mistakes that load without error but silently do nothing, such
// as a hook spelled `onjoin`, an option spelled `maxmembers` or an action that is not a
// function. Used at every load (findings go to the log and GET /api/status) and by
// `atrium check`.
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
// name the line of a table field.  [-0, +0, m]
std::vector<LintFinding> lint_class(lua_State* L, int cls, std::string_view source);

// The option names a class may set (docs/rooms.md "What a room script is made of").
const std::vector<std::string>& known_options();

}  // namespace atrium::script
