// A whole file as bytes, or why not (one line: strerror's words).
#pragma once

#include <string>

#include "util/result.hpp"

namespace atrium {

// not_found when it cannot be opened; internal when reading fails (a directory, say).
Result<std::string> read_file(const std::string& path);

}  // namespace atrium
