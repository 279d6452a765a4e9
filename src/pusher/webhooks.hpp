// Pusher webhooks (docs/pusher.md "Webhooks"): channel_occupied, channel_vacated,
// member_added, member_removed, client_event and cache_miss, batched as
// {"time_ms", "events"}, signed (X-Pusher-Key, X-Pusher-Signature: hex HMAC-SHA256 of the
// body with the app's secret), POSTed to each of the app's URLs and retried with backoff
// for 5 minutes. member_removed and channel_vacated wait ~3 s and are dropped when the
// user or the channel comes back meanwhile (with the member_added/channel_occupied that
// came back), as Pusher does.
//
// The queue lives on the loop thread (every method below but the destructor is called
// there); the POSTs go out on a thread of their own, so a slow or dead receiver never
// stalls the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/engine.hpp"

namespace atrium::pusher {

struct WebhookOptions {
  std::int64_t removal_delay_ms = 3000;     // member_removed, channel_vacated
  std::int64_t batch_ms = 50;               // events due together go in one POST
  std::int64_t retry_for_ms = 5 * 60 * 1000;
  // Backoff between tries of one batch: doubles from the first up to the max.
  std::int64_t retry_first_ms = 1000;
  std::int64_t retry_max_ms = 60 * 1000;
  std::int64_t post_timeout_ms = 10000;      // the default poster's, per POST
  // Events waiting per app; past it the oldest go (logged, counted as dropped). Held at
  // each stage: delayed, batching, and at the sender per URL of the app (a batch in flight
  // and the newest batch are never dropped).
  std::size_t max_queued = 100000;
  // Milliseconds since the epoch, on the loop thread; default: the system clock.
  std::function<std::int64_t()> now_ms;
  // One POST, on the sender thread: the HTTP status, or 0 when no answer came. Default:
  // libcurl, 10 s timeout. Tests replace it.
  using Header = std::pair<std::string, std::string>;
  std::function<int(const std::string& url, const std::vector<Header>& headers,
                    const std::string& body)> post;
  // Always called on the loop thread (the sender's lines wait for the next call in): the
  // sink need not be thread-safe. Default: none.
  std::function<void(engine::LogLevel, std::string_view)> on_log;
};

class Webhooks {
 public:
  explicit Webhooks(WebhookOptions options);
  ~Webhooks();   // stops the sender thread; what is still unsent is dropped (logged)
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  // An app that has webhook URLs; events of other apps are ignored.
  void add_app(std::string app_id, std::string key, std::string secret,
               std::vector<std::string> urls);

  void channel_occupied(std::string_view app, std::string_view channel);
  void channel_vacated(std::string_view app, std::string_view channel);
  void member_added(std::string_view app, std::string_view channel, std::string_view user_id);
  void member_removed(std::string_view app, std::string_view channel, std::string_view user_id);
  // `data` as the client sent it (a JSON string value's contents, or JSON text of another
  // value, as Pusher sends it: a string); user_id only on presence channels ("" else).
  void client_event(std::string_view app, std::string_view channel, std::string_view event,
                    std::string_view data, std::string_view socket_id, std::string_view user_id);
  void cache_miss(std::string_view app, std::string_view channel);

  // Loop thread: ms until a delayed event falls due or a batch is complete (-1: none; 0
  // also when the sender has log lines to hand over), then run_due(). An event call can
  // make it shorter.
  std::int64_t ms_until_next() const;
  void run_due();

  // For /metrics, in events (an event posted to two URLs counts twice once sent): sent,
  // failed for good (after the retries), waiting (delayed, batching or being sent), and
  // dropped because an app had max_queued waiting.
  struct Counts { std::uint64_t sent = 0, failed = 0, queued = 0, dropped = 0; };
  Counts counts() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace atrium::pusher
