// Transport counters for GET /metrics and /api/status. Plain integers: one thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace atrium::net {

struct Stats {
  std::size_t connections = 0;        // open WebSocket connections
  std::uint64_t frames_in = 0;        // complete client messages handed to the engine
  std::uint64_t frames_out = 0;       // JSON lines written to clients
  std::uint64_t bytes_in = 0;         // payload bytes of those messages
  std::uint64_t bytes_out = 0;        // payload bytes written (lines and separators)
  std::uint64_t ws_writes = 0;        // WebSocket messages written: frames_out / ws_writes
                                      // is how well lines coalesce
  std::uint64_t http_requests = 0;
  std::uint64_t loop_passes = 0;      // turns of the event loop: its wake-ups
};

}  // namespace atrium::net
