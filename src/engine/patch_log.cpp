// The in-memory patch log: a ring of the room's latest patch frames. The frames are the
// ones already sent (shared, not copied), so the log costs a reference per patch until
// it lets go of one.
#include "engine/patch_log.hpp"

#include <deque>

namespace atrium::engine {

namespace {

class LocalPatchLog final : public PatchLog {
 public:
  explicit LocalPatchLog(const PatchLogLimits& limits) : limits_(limits) {}

  void append(std::uint64_t seq, const SharedFrame& frame, std::int64_t now_ms) override {
    if (!entries_.empty() && seq != entries_.back().seq + 1) clear();
    entries_.push_back(Entry{seq, now_ms, frame});
    bytes_ += frame.size();
    trim(now_ms);
  }

  bool since(std::uint64_t seq, std::uint64_t last, std::int64_t now_ms,
             std::vector<SharedFrame>& out) override {
    if (seq == last) return true;
    if (seq > last) return false;
    trim(now_ms);
    if (entries_.empty() || entries_.front().seq > seq + 1 || entries_.back().seq < last) return false;
    for (std::size_t i = static_cast<std::size_t>(seq + 1 - entries_.front().seq);
         i < entries_.size() && entries_[i].seq <= last; ++i)
      out.push_back(entries_[i].frame);
    return true;
  }

  std::size_t patches() const override { return entries_.size(); }
  std::size_t bytes() const override { return bytes_; }

 private:
  struct Entry {
    std::uint64_t seq;
    std::int64_t at_ms;
    SharedFrame frame;
  };

  void trim(std::int64_t now_ms) {
    while (!entries_.empty() &&
           (entries_.size() > limits_.max_patches || bytes_ > limits_.max_bytes ||
            now_ms - entries_.front().at_ms > limits_.max_age_ms)) {
      bytes_ -= entries_.front().frame.size();
      entries_.pop_front();
    }
  }

  void clear() {
    entries_.clear();
    bytes_ = 0;
  }

  PatchLogLimits limits_;
  std::deque<Entry> entries_;
  std::size_t bytes_ = 0;
};

}  // namespace

std::unique_ptr<PatchLog> make_local_patch_log(const PatchLogLimits& limits) {
  return std::make_unique<LocalPatchLog>(limits);
}

}  // namespace atrium::engine
