// Transport counters for GET /metrics and /api/status. Plain integers: one thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace atrium::net {

struct Stats {
  std::size_t connections = 0;        // open WebSocket connections and event streams
  std::uint64_t sse_streams = 0;      // event streams opened (the HTTP fallback: sse_session.hpp)
  std::uint64_t sse_slow_drops = 0;   // streams ended past the outbox cap
  std::uint64_t frames_in = 0;        // complete client messages handed to the engine
  std::uint64_t frames_out = 0;       // JSON lines written to clients
  std::uint64_t bytes_in = 0;         // payload bytes of those messages
  std::uint64_t bytes_out = 0;        // payload bytes written (lines and separators), uncompressed
  std::uint64_t ws_writes = 0;        // WebSocket messages written: frames_out / ws_writes
                                      // is how well lines coalesce
  std::uint64_t deflated_out = 0;     // messages sent compressed (permessage-deflate)
  std::uint64_t compressions = 0;     // frames compressed: once per broadcast, for all its members
  std::uint64_t deflate_saved = 0;    // bytes those saved: payload bytes less what was sent
  std::uint64_t inflated_in = 0;      // compressed client messages read
  std::uint64_t http_requests = 0;
  std::uint64_t loop_passes = 0;      // turns of the event loop: its wake-ups
  // Upgrades refused (admission.cpp), by why.
  std::uint64_t refused_origin = 0;   // 403: --allowed-origins / --require-origin
  std::uint64_t refused_token = 0;    // 401: no token under --require-auth, or a bad one
  std::uint64_t refused_per_ip = 0;   // 429: --max-connections-per-ip
  std::uint64_t refused_gate = 0;     // rooms/_connect.lua said no (or failed)
  std::uint64_t refused_url = 0;      // 400: a malformed ?join= / ?payload= (admission.cpp)
  std::uint64_t refused_http_origin = 0;  // 403 on an HTTP write route
};

}  // namespace atrium::net
