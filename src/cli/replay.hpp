// `atrium replay FILE [--verify] [--out OUT]`: runs a record of `atrium serve --record`
// (or of an embedding host's Options::record_path) again and compares every output.
#pragma once

#include <string>
#include <vector>

namespace atrium::cli {

// Exit code 0 when every output line of the replay equals the record's, 1 when one
// differs (the first difference is printed: input, record line, both lines) or the record
// cannot be read, 2 on bad usage.
int run_replay(const std::vector<std::string>& args);

}  // namespace atrium::cli
