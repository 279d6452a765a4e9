// A room's latest patches, kept so that a client that resumes gets exactly the ones it
// missed (docs/protocol.md "Seats and resume"). An interface: the engine keeps them in
// memory (make_local_patch_log); a store shared by several nodes can take its place
// without the engine changing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "util/shared_frame.hpp"

namespace atrium::engine {

// What a log keeps at most; the oldest patches go first when any bound is passed
// (EngineConfig::patch_log, the --patch-log-* flags).
struct PatchLogLimits {
  std::size_t max_patches = 256;
  std::size_t max_bytes = 64 * 1024;
  std::int64_t max_age_ms = 60000;
};

class PatchLog {
 public:
  virtual ~PatchLog() = default;
  // The patch frame that took the room to `seq` (one more than the last appended; a log
  // given another seq starts again from it), sent at now_ms.
  virtual void append(std::uint64_t seq, const SharedFrame& frame, std::int64_t now_ms) = 0;
  // The frames of seq + 1 up to `last`, in order, appended to `out`: true when the log
  // holds all of them (none are needed when seq == last), false (out unchanged) when not.
  virtual bool since(std::uint64_t seq, std::uint64_t last, std::int64_t now_ms,
                     std::vector<SharedFrame>& out) = 0;
  virtual std::size_t patches() const = 0;
  virtual std::size_t bytes() const = 0;
};

std::unique_ptr<PatchLog> make_local_patch_log(const PatchLogLimits& limits);

}  // namespace atrium::engine
