// Where the engine's own Lua (lua/) and the bundled demo (public/) live: next to an
// installed executable (found relative to the executable's prefix), in the source tree
// for a build run from a checkout, or at the configured install path.
#pragma once

#include <optional>
#include <string>

namespace atrium::cli {

// ATRIUM_LUA_PATH when set; else <exe>/../share/atrium/lua, the source tree's lua/, or the
// install path, the first that exists (the install path when none does).
std::string find_lua_dir();

// <exe>/../share/atrium/public, the source tree's public/ or the install path, the first
// that exists; nullopt when none does (then no static files are served).
std::optional<std::string> find_public_dir();

}  // namespace atrium::cli
