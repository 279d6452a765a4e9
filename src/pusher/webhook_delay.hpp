// The events Pusher holds back (member_removed, channel_vacated): each waits under a key
// until it falls due, unless the user or the channel comes back first and cancel() drops
// it. Every event waits the same removal_delay_ms, so the order they are held in is the
// order they fall due: a FIFO with cancelled entries left as tombstones, found by key in
// O(1), rather than a priority queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace atrium::pusher::webhook {

class DelayedEvents {
 public:
  struct Due {
    std::string app;
    std::string event;        // its JSON (webhook_events.hpp)
    std::int64_t due_ms = 0;
  };

  // Holds `event` of `app` until due_ms. A key already held is held again (the newer entry
  // is the one cancel() finds). When the app already holds `max_per_app` events its oldest
  // is dropped first: returns how many were dropped (0 or 1).
  std::size_t hold(std::string app, std::string key, std::string event, std::int64_t due_ms,
                   std::size_t max_per_app);
  // Drops the newest event held under key: true when there was one.
  bool cancel(const std::string& key);
  // When the first held event falls due; -1 when none is held.
  std::int64_t next_due() const;
  // Appends the events due at now_ms to `out`, oldest first.
  void take_due(std::int64_t now_ms, std::vector<Due>& out);
  std::size_t size() const { return live_; }

 private:
  struct Entry {
    std::string app, key, event;
    std::int64_t due_ms = 0;
    bool live = true;
  };
  void kill(std::size_t index);   // entries_[index], which is live
  void pop_dead_front();

  std::deque<Entry> entries_;
  std::uint64_t front_seq_ = 0;                          // sequence number of entries_.front()
  std::unordered_map<std::string, std::uint64_t> by_key_;
  std::map<std::string, std::size_t, std::less<>> per_app_;
  std::size_t live_ = 0;
};

}  // namespace atrium::pusher::webhook
