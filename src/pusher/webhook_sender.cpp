#include "pusher/webhook_sender.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <utility>

#include "pusher/webhook_events.hpp"
#include "pusher/signature.hpp"

namespace atrium::pusher::webhook {
namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Drop summaries: the first at once, then at most one per interval, so that a dead
// receiver under load does not flood the log.
constexpr std::int64_t kDropLogEveryMs = 10000;
constexpr std::size_t kMaxLogLines = 1000;

}  // namespace

std::string url_for_log(const std::string& url) {
  const std::size_t scheme = url.find("://");
  const std::size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const std::size_t end = url.find_first_of("/?#", start);
  const std::size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < start) return url;
  return url.substr(0, start) + url.substr(at + 1);
}

Sender::Sender(SenderConfig config) : config_(std::move(config)) {
  if (!config_.stopping) config_.stopping = std::make_shared<std::atomic<bool>>(false);
  config_.retry_first_ms = std::max<std::int64_t>(config_.retry_first_ms, 1);
  config_.retry_max_ms = std::max(config_.retry_max_ms, config_.retry_first_ms);
  thread_ = std::thread([this] { run(); });
}

Sender::~Sender() { stop(); }

void Sender::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    config_.stopping->store(true);
  }
  wake_.notify_all();
  thread_.join();
  // What is left is lost with the process: say how much (the owner hands logs_ on).
  std::lock_guard<std::mutex> lock(mutex_);   // for take_logs' sake: the thread is gone
  std::uint64_t left = 0;
  for (const auto& [name, lane] : lanes_)
    for (const Entry& e : lane.queue) left += e.batch->events.size();
  if (left > 0)
    log(engine::LogLevel::warn,
        "webhooks stopping: " + std::to_string(left) + " unsent events dropped");
}

void Sender::send(const std::shared_ptr<const Target>& target, const std::shared_ptr<const Batch>& batch) {
  const std::size_t n = batch->events.size();
  if (n == 0) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Lane& lane = lanes_[target->app + '\0' + target->url];
    Entry entry;
    entry.target = target;
    entry.batch = batch;
    entry.backoff_ms = config_.retry_first_ms;
    lane.queue.push_back(std::move(entry));
    lane.events += n;
    totals_.queued += n;
    // Past max_queued the oldest batches go, but not this one (it holds the newest events)
    // nor one in flight: the lane is past the bound by at most those two.
    while (config_.max_queued > 0 && lane.events > config_.max_queued) {
      const std::size_t at = lane.in_flight ? 1 : 0;
      if (lane.queue.size() < at + 2) break;
      const std::size_t dropped = lane.queue[at].batch->events.size();
      lane.queue.erase(lane.queue.begin() + static_cast<std::ptrdiff_t>(at));
      lane.events -= dropped;
      totals_.queued -= dropped;
      totals_.dropped += dropped;
      unlogged_drops_ += dropped;
    }
    note_drops(steady_ms());
  }
  wake_.notify_one();
}

void Sender::note_drops(std::int64_t now_ms) {
  if (unlogged_drops_ == 0) return;
  if (drops_logged_ms_ >= 0 && now_ms - drops_logged_ms_ < kDropLogEveryMs) return;
  log(engine::LogLevel::warn, "webhooks queue full (max_queued=" + std::to_string(config_.max_queued) +
                                  " per URL): " + std::to_string(unlogged_drops_) +
                                  " oldest events dropped");
  unlogged_drops_ = 0;
  drops_logged_ms_ = now_ms;
}

void Sender::log(engine::LogLevel level, std::string line) {
  // Bounded too, should the loop thread not come by for a while.
  if (logs_.size() >= kMaxLogLines) return;
  logs_.emplace_back(level, std::move(line));
  has_logs_.store(true, std::memory_order_release);
}

Sender::Totals Sender::totals() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return totals_;
}

std::vector<Sender::LogLine> Sender::take_logs() {
  std::lock_guard<std::mutex> lock(mutex_);
  has_logs_.store(false, std::memory_order_release);
  return std::exchange(logs_, {});
}

std::map<std::string, Sender::Lane>::iterator Sender::next_lane(std::int64_t now_ms, std::int64_t* wake_at_ms) {
  *wake_at_ms = -1;
  if (lanes_.empty()) return lanes_.end();
  // Round robin from the lane after the one served last, so that one busy URL does not
  // starve the others.
  auto start = lanes_.upper_bound(last_);
  if (start == lanes_.end()) start = lanes_.begin();
  auto it = start;
  do {
    Lane& lane = it->second;
    if (!lane.queue.empty() && !lane.in_flight) {
      const std::int64_t at = lane.queue.front().next_try_ms;
      if (at <= now_ms) return it;
      if (*wake_at_ms < 0 || at < *wake_at_ms) *wake_at_ms = at;
    }
    if (++it == lanes_.end()) it = lanes_.begin();
  } while (it != start);
  return lanes_.end();
}

void Sender::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    const std::int64_t now = steady_ms();
    note_drops(now);
    std::int64_t wake_at = -1;
    auto it = next_lane(now, &wake_at);
    if (it == lanes_.end()) {
      if (wake_at < 0) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::milliseconds(wake_at)));
      }
      continue;
    }
    last_ = it->first;
    Lane& lane = it->second;     // std::map: stays valid while the mutex is released
    lane.in_flight = true;
    const Entry entry = lane.queue.front();   // a copy: send() may erase behind it
    lock.unlock();
    const std::int64_t started = steady_ms();
    const int status = post(entry);
    lock.lock();
    lane.in_flight = false;
    finish(lane, status, started);
  }
}

int Sender::post(const Entry& entry) {
  try {
    // Written again for each try: the same events and time_ms give the same bytes.
    const std::string body = webhook::body(entry.batch->time_ms, entry.batch->events);
    const std::string signature = hmac_sha256_hex(entry.target->secret, body);
    if (signature.empty()) return 0;
    const std::vector<WebhookOptions::Header> headers = {
        {"Content-Type", "application/json"},   // exactly: pusher-http-node compares with ===
        {"X-Pusher-Key", entry.target->key},
        {"X-Pusher-Signature", signature},
    };
    return config_.post ? config_.post(entry.target->url, headers, body) : 0;
  } catch (...) {
    // A poster that throws is a failed POST, retried as any other.
    return 0;
  }
}

void Sender::finish(Lane& lane, int status, std::int64_t started_ms) {
  Entry& e = lane.queue.front();
  const std::size_t n = e.batch->events.size();
  ++e.tries;
  if (e.first_try_ms < 0) e.first_try_ms = started_ms;
  const bool ok = status >= 200 && status < 300;
  const std::int64_t now = steady_ms();
  const std::int64_t retry_at = now + e.backoff_ms;
  if (!ok && retry_at - e.first_try_ms <= config_.retry_for_ms && !stop_) {
    if (e.tries == 1)
      log(engine::LogLevel::info, "webhook app=" + e.target->app + " url=" + url_for_log(e.target->url) +
                                      " status=" + std::to_string(status) + ": retrying");
    e.next_try_ms = retry_at;
    e.backoff_ms = std::min(e.backoff_ms * 2, config_.retry_max_ms);
    return;
  }
  if (ok) {
    totals_.sent += n;
  } else if (!stop_) {
    totals_.failed += n;
    log(engine::LogLevel::warn, "webhook app=" + e.target->app + " url=" + url_for_log(e.target->url) +
                                    " failed after " + std::to_string(e.tries) + " tries (last status " +
                                    std::to_string(status) + "): " + std::to_string(n) + " events dropped");
  } else {
    return;   // stopping: the destructor counts it among the unsent
  }
  lane.events -= n;
  totals_.queued -= n;
  lane.queue.pop_front();
}

}  // namespace atrium::pusher::webhook
