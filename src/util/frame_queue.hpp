// A connection's outbox: the lines queued for it, in order, as references to shared frames.
// Queuing is a push of a reference; writing takes lines from the front.
//
// Slots: a drained queue keeps its slots, so steady traffic allocates nothing per line (issue
// 6: no allocation per delivery). A queue that once held a burst gives the memory back, but
// only after kSmallDrains drains in a row used under a quarter of it: a connection whose
// batches swing between 10 and 40 lines must not free and regrow its slots every pass,
// which is what a plain "keep up to N slots" rule did at ~1M deliveries/s (30 lines a batch
// against 32 kept slots: seven reallocations per pass per connection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/shared_frame.hpp"

namespace atrium {

class FrameQueue {
 public:
  // A queue of up to this many slots (8 bytes each) is never shrunk.
  static constexpr std::size_t kKeptSlots = 32;
  // Drains in a row that used under a quarter of the slots before they are given back.
  static constexpr std::uint8_t kSmallDrains = 8;

  bool empty() const noexcept { return head_ == lines_.size(); }
  std::size_t size() const noexcept { return lines_.size() - head_; }
  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t capacity() const noexcept { return lines_.capacity(); }
  // The i-th unwritten line (0: the oldest).
  const SharedFrame& operator[](std::size_t i) const noexcept { return lines_[head_ + i]; }

  void push(const SharedFrame& line) {
    lines_.push_back(line);
    bytes_ += line.size();
  }

  // The oldest `count` lines were written: release them.
  void drop_front(std::size_t count) {
    for (std::size_t i = head_; i < head_ + count; ++i) {
      bytes_ -= lines_[i].size();
      lines_[i] = SharedFrame();
    }
    head_ += static_cast<std::uint32_t>(count);
    if (head_ == lines_.size()) {
      drained();
    } else if (head_ >= 64 && head_ * 2 >= lines_.size()) {
      // A queue that never drains must not grow without bound at the front.
      lines_.erase(lines_.begin(), lines_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  // Drops every line and the slots (a culled connection).
  void release() noexcept {
    std::vector<SharedFrame>().swap(lines_);
    head_ = 0;
    bytes_ = 0;
    small_drains_ = 0;
  }

 private:
  void drained() {
    const std::size_t used = lines_.size();
    head_ = 0;
    lines_.clear();
    if (lines_.capacity() <= kKeptSlots || used * 4 >= lines_.capacity()) {
      small_drains_ = 0;
      return;
    }
    if (++small_drains_ < kSmallDrains) return;
    small_drains_ = 0;
    std::vector<SharedFrame>().swap(lines_);
  }

  // 40 bytes in all, as the plain vector, head and byte count were: every idle connection
  // holds one (bench/README.md "Idle memory").
  std::vector<SharedFrame> lines_;
  std::uint32_t head_ = 0;  // lines_[head_..] are unwritten (bounded by the outbox cap)
  std::uint8_t small_drains_ = 0;
  std::size_t bytes_ = 0;   // of the unwritten lines
};

}  // namespace atrium
