// `atrium check [DIR]` and `atrium new NAME [--dir DIR]`: tools for room authors.
#pragma once

#include <string>
#include <vector>

namespace atrium::cli {

// Loads every DIR/*.lua as the server would and prints each load error and lint finding
// as `file:line: message`. Exit code 0 when there is none, 1 otherwise, 2 on bad usage.
int run_check(const std::vector<std::string>& args);

// Writes DIR/NAME.lua (DIR defaults to rooms), a commented starter room that passes check.
// Never overwrites a file.
int run_new(const std::vector<std::string>& args);

}  // namespace atrium::cli
