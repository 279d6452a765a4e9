// `atrium replay`: runs a record (recorder.hpp) again in a fresh engine under its
// recorded clocks, seeds and script texts, and compares what every client gets with what
// the record says they got (docs/embedding.md "Record and replay").
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace atrium::engine {

struct ReplayOptions {
  std::string lua_dir;                     // the engine's own lua/
  bool verify = true;                      // stop at the first output that differs
  std::string out_path;                    // non-empty: the replay's output entries go here
  std::function<void(std::string_view)> on_log;  // the engine's log lines; default: dropped
};

struct ReplayReport {
  std::size_t inputs = 0;                  // inputs run
  std::size_t outputs = 0;                 // output entries the replay produced
  bool identical = true;                   // every output entry equals the record's
  // When not identical: the first input whose outputs differ, where it is in the record,
  // and the first differing entry on each side ("" when that side has none).
  std::size_t input_number = 0;            // 1-based, counting inputs
  std::size_t record_line = 0;             // 1-based line of the record
  std::string input;                       // that input's entry
  std::string expected;
  std::string got;
  std::string note;                        // why, when the difference is not an output
  std::string engine_version;              // of the engine that recorded
  double seconds = 0;                      // wall time of the run
};

// Errors: the record cannot be read or is not one (bad header, unknown format, a line that
// is not JSON), or the engine cannot start.
Result<ReplayReport> replay(const std::string& record_path, const ReplayOptions& options);

// The report as lines for a terminal: what diverged and where, or the totals.
std::string describe(const ReplayReport& report);

}  // namespace atrium::engine
