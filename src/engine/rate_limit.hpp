// Per-connection message rate limit (docs/protocol.md "Notes for this server", Rate
// limit): a token bucket of `rate` messages per second with a burst of `rate`, and a watch
// for sustained abuse. It reads only the engine's clock (Impl::now()) and the messages, so
// a recorded session replays to the same verdicts.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "json/value.hpp"

namespace atrium::engine {

class RateLimit {
 public:
  // A connection that sends kAbuseFactor times the rate or more in each of kAbuseSeconds
  // seconds in a row is closed (1008).
  static constexpr int kAbuseFactor = 10;
  static constexpr int kAbuseSeconds = 5;

  enum class Verdict {
    pass,      // process the message
    refuse,    // over the rate: answer rate_limited, do not process
    abuse,     // sustained abuse: close the connection (1008), do not process
    closed,    // closed for abuse already: ignore the message
  };

  // One message arrives at `now_ms` (the engine's clock; it never goes backwards).
  // `rate` > 0: messages per second, and the burst.
  Verdict admit(int rate, std::int64_t now_ms);

 private:
  // The bucket, in thousandths of a message so that the refill stays exact in integers:
  // `rate` thousandths per ms, up to a full bucket of rate * 1000.
  std::int64_t milli_tokens_ = 0;
  std::int64_t last_ms_ = 0;
  // Abuse: messages counted in whole seconds from the first message; a second that ends
  // with kAbuseFactor * rate or more counts towards the streak, any other second (or an
  // idle second between) ends it.
  std::int64_t second_start_ms_ = 0;
  std::uint32_t in_second_ = 0;
  std::uint8_t abusive_seconds_ = 0;
  bool started_ = false;
  bool closed_ = false;
};

// The `ref` of a client message, as parse_request reads it (the last top-level "ref"), for
// answering a refused message. Nothing (not a JSON object, no ref, or a ref that is not a
// number or a string): nullopt.
std::optional<json::Value> scan_ref(std::string_view text);

}  // namespace atrium::engine
