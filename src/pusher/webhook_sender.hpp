// The sender thread: batches wait in one FIFO lane per (app, URL) and go out one at a time
// per lane, so a batch that is being retried is never overtaken by a later one to the same
// URL, while other URLs carry on during its backoff. Failures (not 2xx, or no answer) are
// retried after retry_first_ms, doubling up to retry_max_ms, for retry_for_ms after the
// batch's first try; then it is dropped and counted as failed. A batch waiting behind a
// failing one has not been tried yet: its time starts when it is, so a receiver that is
// down for a while loses one batch per retry_for_ms of it (and what max_queued drops), not
// everything that was queued meanwhile.
//
// The loop thread only takes the mutex to queue a batch or read the counts; bodies are
// written and signed here, and the mutex is not held during a POST. Log lines are kept for
// the loop thread to hand to its sink (take_logs): a log sink need not be thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pusher/webhooks.hpp"

namespace atrium::pusher::webhook {

// Where a batch goes, and with which credentials.
struct Target {
  std::string app, url, key, secret;
};

// A batch's events (their JSON) and its time_ms, shared by the lanes of the app's URLs.
struct Batch {
  std::int64_t time_ms = 0;
  std::vector<std::string> events;
};

struct SenderConfig {
  std::int64_t retry_for_ms = 5 * 60 * 1000;
  std::int64_t retry_first_ms = 1000;
  std::int64_t retry_max_ms = 60 * 1000;
  std::size_t max_queued = 100000;     // events waiting per lane (an app's URL)
  decltype(WebhookOptions::post) post;
  // Set by the destructor before it wakes the thread: a poster that can abort a POST in
  // flight (webhook_curl.hpp) watches it.
  std::shared_ptr<std::atomic<bool>> stopping;
};

class Sender {
 public:
  explicit Sender(SenderConfig config);
  ~Sender();   // stop()
  // Stops and joins the thread (promptly: a backoff is a condition variable wait, and the
  // poster sees `stopping`); what is unsent is dropped and logged (take_logs). Idempotent.
  void stop();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Queues `batch` for `target` (loop thread). Past max_queued events in the lane its
  // oldest batches are dropped (counted as dropped, logged), but not `batch` nor one in
  // flight.
  void send(const std::shared_ptr<const Target>& target, const std::shared_ptr<const Batch>& batch);

  // Counted in events (one per URL it goes to), read together: an event is never seen
  // both queued and sent, or neither, and a failure's log line is there once it counts.
  struct Totals {
    std::uint64_t sent = 0, failed = 0, dropped = 0, queued = 0;
  };
  Totals totals() const;

  using LogLine = std::pair<engine::LogLevel, std::string>;
  bool has_logs() const { return has_logs_.load(std::memory_order_acquire); }
  std::vector<LogLine> take_logs();

 private:
  struct Entry {
    std::shared_ptr<const Target> target;
    std::shared_ptr<const Batch> batch;
    std::int64_t first_try_ms = -1;     // steady clock; -1: not tried yet
    std::int64_t next_try_ms = 0;
    std::int64_t backoff_ms = 0;
    int tries = 0;
  };
  struct Lane {
    std::deque<Entry> queue;
    std::size_t events = 0;             // in `queue`: held to max_queued
    bool in_flight = false;             // queue.front() is being posted, outside the mutex
  };

  void run();
  // The lane whose front may go now, after `last_` in key order (round robin); else null,
  // with *wake_at_ms the earliest retry (-1: none).
  std::map<std::string, Lane>::iterator next_lane(std::int64_t now_ms, std::int64_t* wake_at_ms);
  int post(const Entry& entry);          // outside the mutex; never throws
  void finish(Lane& lane, int status, std::int64_t started_ms);
  void log(engine::LogLevel level, std::string line);   // mutex held
  void note_drops(std::int64_t now_ms);                 // mutex held

  SenderConfig config_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::map<std::string, Lane> lanes_;                   // app '\0' url
  std::string last_;                                    // the lane served last
  std::uint64_t unlogged_drops_ = 0;
  std::int64_t drops_logged_ms_ = -1;
  std::vector<LogLine> logs_;
  std::atomic<bool> has_logs_{false};
  Totals totals_;
  std::thread thread_;                                  // last: starts once the rest exists
};

// The URL as logged: without a user:password@ part.
std::string url_for_log(const std::string& url);

}  // namespace atrium::pusher::webhook
