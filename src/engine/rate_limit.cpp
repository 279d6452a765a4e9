#include "engine/rate_limit.hpp"

#include <algorithm>

#include "json/codec.hpp"

namespace atrium::engine {

RateLimit::Verdict RateLimit::admit(int rate, std::int64_t now_ms) {
  if (closed_) return Verdict::closed;
  const std::int64_t full = static_cast<std::int64_t>(rate) * 1000;
  if (!started_) {  // a connection's first message finds a full bucket
    started_ = true;
    milli_tokens_ = full;
    last_ms_ = now_ms;
    second_start_ms_ = now_ms;
  }

  // Abuse: close the seconds that ended before this message.
  const std::int64_t since = now_ms - second_start_ms_;
  if (since >= 1000) {
    const bool next_second = since < 2000;  // no idle second in between
    const bool abusive = in_second_ >= static_cast<std::uint32_t>(kAbuseFactor) * static_cast<std::uint32_t>(rate);
    abusive_seconds_ = next_second && abusive ? static_cast<std::uint8_t>(abusive_seconds_ + 1) : 0;
    second_start_ms_ += since / 1000 * 1000;
    in_second_ = 0;
  }
  if (in_second_ < UINT32_MAX) ++in_second_;
  if (abusive_seconds_ >= kAbuseSeconds) {
    closed_ = true;
    return Verdict::abuse;
  }

  // The bucket: refill for the time since the last message, then take one.
  const std::int64_t elapsed = std::max<std::int64_t>(0, now_ms - last_ms_);
  last_ms_ = now_ms;
  milli_tokens_ = elapsed >= 1000 ? full : std::min(full, milli_tokens_ + elapsed * rate);
  if (milli_tokens_ < 1000) return Verdict::refuse;
  milli_tokens_ -= 1000;
  return Verdict::pass;
}

namespace {

// Keeps the last top-level "ref", as parse_request would.
struct RefSink final : json::MemberSink {
  std::optional<json::Value> ref;
  void member(std::string_view key, json::Value&& value) override {
    if (key == "ref") ref = std::move(value);
  }
};

}  // namespace

std::optional<json::Value> scan_ref(std::string_view text) {
  RefSink sink;
  const Result<bool> parsed = json::parse_members(text, sink);
  if (!parsed || !parsed.value() || !sink.ref) return std::nullopt;
  if (!sink.ref->is_number() && !sink.ref->is_string()) return std::nullopt;
  return std::move(sink.ref);
}

}  // namespace atrium::engine
