// Engine counters for GET /metrics (Prometheus text format).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace atrium::engine {

struct Metrics {
  std::uint64_t hook_calls = 0;
  std::uint64_t hook_errors = 0;
  std::uint64_t patches_sent = 0;       // patch frames, counted once per room flush
  std::uint64_t patch_deliveries = 0;   // patch frames times members
  std::uint64_t events_sent = 0;        // event deliveries
  std::uint64_t requests = 0;
  std::uint64_t request_errors = 0;
  std::uint64_t rate_limited = 0;       // messages refused for the rate (EngineConfig::rate)
  std::uint64_t abuse_closes = 0;       // connections closed (1008) for sustained abuse
  std::uint64_t gate_calls = 0;         // rooms/_connect.lua onConnect runs
  std::uint64_t gate_refusals = 0;      // ...that refused (or failed: it fails closed)
  std::uint64_t tokens_expired = 0;     // connections closed 4003
  std::uint64_t token_refreshes = 0;    // `auth` ops that succeeded
  std::uint64_t resumes = 0;            // `resume` ops that took a session over
  std::uint64_t resumes_failed = 0;     // ...that were refused (not_found, ...)
  std::uint64_t resume_rooms_recovered = 0;  // rooms of a resume sent only missed patches
  std::uint64_t resume_rooms_fresh = 0;      // ...sent a fresh state instead
  std::uint64_t store_commits = 0;      // group commits of durable rooms' changes
  std::uint64_t store_failures = 0;     // ...that failed (logged)
  std::uint64_t restored_rooms = 0;     // at start
  std::uint64_t restored_seats = 0;
  double restore_ms = 0;
  // Hook wall time histogram, seconds.
  static constexpr std::array<double, 10> kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                   0.005, 0.01, 0.05, 0.1, 0.5};
  std::array<std::uint64_t, kBuckets.size()> hook_time_counts{};
  std::uint64_t hook_time_count = 0;
  double hook_time_sum = 0;

  void observe_hook(double seconds);
};

}  // namespace atrium::engine
