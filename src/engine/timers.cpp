#include "engine/timers.hpp"

namespace atrium::engine {

TimerId Timers::add(TimerEvent ev) {
  if (ev.id == 0) ev.id = next_++;
  heap_.push(Entry{ev.due_ms, ev.id});
  const TimerId id = ev.id;
  live_.emplace(id, std::move(ev));
  return id;
}

bool Timers::cancel(TimerId id) { return live_.erase(id) > 0; }

const TimerEvent* Timers::find(TimerId id) const {
  auto it = live_.find(id);
  return it == live_.end() ? nullptr : &it->second;
}

void Timers::drop_cancelled() {
  while (!heap_.empty()) {
    auto it = live_.find(heap_.top().id);
    if (it != live_.end() && it->second.due_ms == heap_.top().due) return;
    heap_.pop();
  }
}

std::int64_t Timers::ms_until_next(std::int64_t now_ms) {
  drop_cancelled();
  if (heap_.empty()) return -1;
  const std::int64_t d = heap_.top().due - now_ms;
  return d < 0 ? 0 : d;
}

bool Timers::pop_due(std::int64_t now_ms, TimerEvent& out) {
  drop_cancelled();
  if (heap_.empty() || heap_.top().due > now_ms) return false;
  const TimerId id = heap_.top().id;
  heap_.pop();
  auto it = live_.find(id);
  out = std::move(it->second);
  live_.erase(it);
  return true;
}

}  // namespace atrium::engine
