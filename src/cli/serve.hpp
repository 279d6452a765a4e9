// `atrium serve`: settings in, engine and server up, serve until SIGTERM/SIGINT.
#pragma once

#include <string>
#include <vector>

namespace atrium::cli {

// args: what follows `serve`. Returns the exit code: 0 after a clean shutdown, 2 for bad
// settings (one line on stderr), 1 when the engine or the listener cannot start.
int run_serve(const std::vector<std::string>& args);

}  // namespace atrium::cli
