#include "pusher/webhook_delay.hpp"

#include <utility>

namespace atrium::pusher::webhook {

std::size_t DelayedEvents::hold(std::string app, std::string key, std::string event,
                                std::int64_t due_ms, std::size_t max_per_app) {
  std::size_t dropped = 0;
  auto count = per_app_.find(app);
  if (count != per_app_.end() && max_per_app > 0 && count->second >= max_per_app) {
    // Over the bound only when removals of this app pile up faster than they fall due:
    // the linear walk is paid then, not per event.
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].live && entries_[i].app == app) {
        kill(i);
        dropped = 1;
        break;
      }
    }
    pop_dead_front();
  }
  by_key_[key] = front_seq_ + entries_.size();
  ++per_app_[app];
  ++live_;
  entries_.push_back(Entry{std::move(app), std::move(key), std::move(event), due_ms, true});
  return dropped;
}

bool DelayedEvents::cancel(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return false;
  kill(static_cast<std::size_t>(it->second - front_seq_));   // erases `it` too
  pop_dead_front();
  return true;
}

std::int64_t DelayedEvents::next_due() const {
  // The front is always live (pop_dead_front after every change).
  return entries_.empty() ? -1 : entries_.front().due_ms;
}

void DelayedEvents::take_due(std::int64_t now_ms, std::vector<Due>& out) {
  while (!entries_.empty() && entries_.front().due_ms <= now_ms) {
    Entry& e = entries_.front();
    if (e.live) {
      out.push_back(Due{e.app, std::move(e.event), e.due_ms});
      kill(0);
    }
    entries_.pop_front();
    ++front_seq_;
    pop_dead_front();
  }
}

void DelayedEvents::kill(std::size_t index) {
  Entry& e = entries_[index];
  e.live = false;
  e.event.clear();
  e.event.shrink_to_fit();
  // Only the newest entry of a key is indexed: an older one must not unindex it.
  auto it = by_key_.find(e.key);
  if (it != by_key_.end() && it->second == front_seq_ + index)
    by_key_.erase(it);
  auto count = per_app_.find(e.app);
  if (count != per_app_.end() && --count->second == 0) per_app_.erase(count);
  --live_;
}

void DelayedEvents::pop_dead_front() {
  while (!entries_.empty() && !entries_.front().live) {
    entries_.pop_front();
    ++front_seq_;
  }
}

}  // namespace atrium::pusher::webhook
