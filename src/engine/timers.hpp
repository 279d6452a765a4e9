// Room timers: script setTimeout/setInterval, ticks and patch flushes, in one min-heap.
// Cancelled timers are dropped lazily when they reach the top.
#pragma once

#include <cstdint>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace atrium::engine {

using TimerId = std::uint64_t;

enum class TimerKind { script, tick, patch, token_expiry, seat };

struct TimerEvent {
  TimerId id = 0;
  TimerKind kind = TimerKind::script;
  std::string room;                 // by id: the room may be gone when it fires
  std::uint64_t client = 0;         // token_expiry, seat: the client whose token or seat runs out
  int fn_ref = -2;                  // script timers: registry ref of the callback
  std::int64_t interval_ms = 0;     // > 0: repeats
  std::int64_t due_ms = 0;
};

class Timers {
 public:
  // ev.due_ms must be set; ev.id 0 gets a new id, another id is kept (a repeating timer).
  TimerId add(TimerEvent ev);
  bool cancel(TimerId id);                    // false when unknown or already fired
  const TimerEvent* find(TimerId id) const;
  // Milliseconds from now_ms until the earliest live timer; -1 when there is none.
  std::int64_t ms_until_next(std::int64_t now_ms);
  // Pops the earliest timer due at now_ms into `out`; false when none is due.
  bool pop_due(std::int64_t now_ms, TimerEvent& out);
  std::size_t size() const { return live_.size(); }

 private:
  struct Entry {
    std::int64_t due;
    TimerId id;
    bool operator>(const Entry& o) const { return due != o.due ? due > o.due : id > o.id; }
  };
  void drop_cancelled();
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  std::unordered_map<TimerId, TimerEvent> live_;
  TimerId next_ = 1;
};

}  // namespace atrium::engine
