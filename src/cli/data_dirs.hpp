// Where the engine's own Lua (lua/) the bundled demo (public/) and the engine's own pages (web/) live: next to an
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

// The engine's own pages and client bundles (web/: the inspector, atrium-client.mjs), served
// at /_atrium/ whatever --public is; found like the public directory.
std::optional<std::string> find_web_dir();

}  // namespace atrium::cli
