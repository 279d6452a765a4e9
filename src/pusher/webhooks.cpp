// The loop-thread half of the webhooks: which events are sent (an app with URLs), which
// wait (member_removed, channel_vacated: webhook_delay.hpp) and which cancel each other,
// and the batching window. The POSTs are webhook_sender.hpp's.
#include "pusher/webhooks.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <map>

#include "pusher/webhook_curl.hpp"
#include "pusher/webhook_delay.hpp"
#include "pusher/webhook_events.hpp"
#include "pusher/webhook_sender.hpp"

namespace atrium::pusher {
namespace {

using webhook::Batch;
using webhook::Target;

std::int64_t system_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr std::int64_t kDropLogEveryMs = 10000;

// Keys of the delayed events: what a member_added or channel_occupied must match to cancel.
// Lengths first, so that no two (app, channel, user) make one key whatever bytes they hold.
void key_part(std::string& key, std::string_view part) {
  key.append(std::to_string(part.size())).append(1, ':').append(part);
}
std::string member_key(std::string_view app, std::string_view channel, std::string_view user) {
  std::string key = "m";
  key_part(key, app);
  key_part(key, channel);
  key_part(key, user);
  return key;
}
std::string channel_key(std::string_view app, std::string_view channel) {
  std::string key = "c";
  key_part(key, app);
  key_part(key, channel);
  return key;
}

struct App {
  std::vector<std::shared_ptr<const Target>> targets;
  std::deque<std::string> ready;      // events due, waiting for the batch window to close
  std::int64_t window_end_ms = 0;     // when `ready` goes out
};

}  // namespace

struct Webhooks::Impl {
  WebhookOptions options;
  std::map<std::string, App, std::less<>> apps;
  webhook::DelayedEvents delayed;
  std::size_t ready_count = 0;
  std::uint64_t dropped = 0;          // here; the sender counts its own
  std::uint64_t unlogged_drops = 0;
  std::int64_t drops_logged_ms = -1;
  std::vector<webhook::DelayedEvents::Due> due;   // scratch for run_due
  std::unique_ptr<webhook::Sender> sender;        // last: stopped first

  std::int64_t now() const { return options.now_ms(); }

  void log(engine::LogLevel level, std::string_view line) const {
    if (options.on_log) options.on_log(level, line);
  }

  // The sender's lines, on this thread.
  void hand_over_logs() const {
    if (!sender->has_logs()) return;
    for (const auto& [level, line] : sender->take_logs()) log(level, line);
  }

  App* find(std::string_view app) {
    auto it = apps.find(app);
    return it == apps.end() ? nullptr : &it->second;
  }

  void drop(std::uint64_t n) {
    dropped += n;
    unlogged_drops += n;
  }

  void note_drops(std::int64_t now_ms) {
    if (unlogged_drops == 0) return;
    if (drops_logged_ms >= 0 && now_ms - drops_logged_ms < kDropLogEveryMs && now_ms >= drops_logged_ms) return;
    log(engine::LogLevel::warn, "webhooks over max_queued=" + std::to_string(options.max_queued) +
                                    " per app: " + std::to_string(unlogged_drops) + " oldest events dropped");
    unlogged_drops = 0;
    drops_logged_ms = now_ms;
  }

  // An event due at `at_ms` joins its app's batch, which goes out batch_ms after its first.
  void make_ready(App& app, std::string event, std::int64_t at_ms) {
    if (app.ready.empty()) app.window_end_ms = at_ms + options.batch_ms;
    if (options.max_queued > 0 && app.ready.size() >= options.max_queued) {
      app.ready.pop_front();
      --ready_count;
      drop(1);
    }
    app.ready.push_back(std::move(event));
    ++ready_count;
  }

  void hold(std::string_view app, std::string key, std::string event) {
    drop(delayed.hold(std::string(app), std::move(key), std::move(event),
                      now() + std::max<std::int64_t>(options.removal_delay_ms, 0), options.max_queued));
  }

  void flush(App& app, std::int64_t now_ms) {
    auto batch = std::make_shared<Batch>();
    batch->time_ms = now_ms;
    batch->events.assign(std::make_move_iterator(app.ready.begin()), std::make_move_iterator(app.ready.end()));
    ready_count -= app.ready.size();
    app.ready.clear();
    const std::shared_ptr<const Batch> shared = std::move(batch);
    for (const auto& target : app.targets) sender->send(target, shared);
  }

  void run_due() {
    const std::int64_t now_ms = now();
    due.clear();
    delayed.take_due(now_ms, due);
    for (auto& d : due)
      if (App* app = find(d.app)) make_ready(*app, std::move(d.event), d.due_ms);
    due.clear();
    for (auto& [id, app] : apps)
      if (!app.ready.empty() && app.window_end_ms <= now_ms) flush(app, now_ms);
    note_drops(now_ms);
    hand_over_logs();
  }

  std::int64_t ms_until_next() const {
    if (sender->has_logs()) return 0;
    std::int64_t next = delayed.next_due();
    for (const auto& [id, app] : apps)
      if (!app.ready.empty() && (next < 0 || app.window_end_ms < next)) next = app.window_end_ms;
    if (next < 0) return -1;
    return std::max<std::int64_t>(next - now(), 0);
  }
};

namespace {

// No exception reaches the loop thread: what fails (memory) is logged and the event lost.
template <class F>
void guarded(Webhooks::Impl& impl, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    try {
      impl.log(engine::LogLevel::error, std::string("webhooks: ") + e.what());
    } catch (...) {
    }
  } catch (...) {
  }
}

}  // namespace

Webhooks::Webhooks(WebhookOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  impl.options = std::move(options);
  if (!impl.options.now_ms) impl.options.now_ms = system_ms;
  webhook::SenderConfig config;
  config.retry_for_ms = impl.options.retry_for_ms;
  config.retry_first_ms = impl.options.retry_first_ms;
  config.retry_max_ms = impl.options.retry_max_ms;
  config.max_queued = impl.options.max_queued;
  config.stopping = std::make_shared<std::atomic<bool>>(false);
  config.post = impl.options.post;
  if (!config.post) {
    auto curl = std::make_shared<webhook::CurlPoster>(config.stopping, impl.options.post_timeout_ms);
    config.post = [curl](const std::string& url, const std::vector<WebhookOptions::Header>& headers,
                         const std::string& body) { return curl->post(url, headers, body); };
  }
  impl.sender = std::make_unique<webhook::Sender>(std::move(config));
}

Webhooks::~Webhooks() {
  if (!impl_) return;
  const std::uint64_t waiting = impl_->delayed.size() + impl_->ready_count;
  impl_->sender->stop();   // joins the thread
  try {
    impl_->hand_over_logs();
    if (waiting > 0)
      impl_->log(engine::LogLevel::warn,
                 "webhooks stopping: " + std::to_string(waiting) + " events not yet due dropped");
  } catch (...) {
  }
}

void Webhooks::add_app(std::string app_id, std::string key, std::string secret,
                       std::vector<std::string> urls) {
  guarded(*impl_, [&] {
    if (urls.empty()) {
      // Nothing to send to: its events are ignored from now on, those batching too.
      auto it = impl_->apps.find(app_id);
      if (it != impl_->apps.end()) {
        impl_->ready_count -= it->second.ready.size();
        impl_->apps.erase(it);
      }
      return;
    }
    App& app = impl_->apps[app_id];
    app.targets.clear();
    for (std::string& url : urls)
      app.targets.push_back(std::make_shared<const Target>(Target{app_id, std::move(url), key, secret}));
  });
}

void Webhooks::channel_occupied(std::string_view app, std::string_view channel) {
  guarded(*impl_, [&] {
    App* a = impl_->find(app);
    if (!a) return;
    // Back before its channel_vacated went out: Pusher sends neither.
    if (impl_->delayed.cancel(channel_key(app, channel))) return;
    impl_->make_ready(*a, webhook::channel_event("channel_occupied", channel), impl_->now());
  });
}

void Webhooks::channel_vacated(std::string_view app, std::string_view channel) {
  guarded(*impl_, [&] {
    if (!impl_->find(app)) return;
    impl_->hold(app, channel_key(app, channel), webhook::channel_event("channel_vacated", channel));
  });
}

void Webhooks::member_added(std::string_view app, std::string_view channel, std::string_view user_id) {
  guarded(*impl_, [&] {
    App* a = impl_->find(app);
    if (!a) return;
    // The same user back before the member_removed went out (a page reload): neither.
    if (impl_->delayed.cancel(member_key(app, channel, user_id))) return;
    impl_->make_ready(*a, webhook::member_event("member_added", channel, user_id), impl_->now());
  });
}

void Webhooks::member_removed(std::string_view app, std::string_view channel, std::string_view user_id) {
  guarded(*impl_, [&] {
    if (!impl_->find(app)) return;
    impl_->hold(app, member_key(app, channel, user_id), webhook::member_event("member_removed", channel, user_id));
  });
}

void Webhooks::client_event(std::string_view app, std::string_view channel, std::string_view event,
                            std::string_view data, std::string_view socket_id, std::string_view user_id) {
  guarded(*impl_, [&] {
    App* a = impl_->find(app);
    if (!a) return;
    impl_->make_ready(*a, webhook::client_event(channel, event, data, socket_id, user_id), impl_->now());
  });
}

void Webhooks::cache_miss(std::string_view app, std::string_view channel) {
  guarded(*impl_, [&] {
    App* a = impl_->find(app);
    if (!a) return;
    impl_->make_ready(*a, webhook::channel_event("cache_miss", channel), impl_->now());
  });
}

std::int64_t Webhooks::ms_until_next() const {
  try {
    return impl_->ms_until_next();
  } catch (...) {
    return 0;   // a now_ms that throws: let run_due() log it
  }
}

void Webhooks::run_due() {
  guarded(*impl_, [&] { impl_->run_due(); });
}

Webhooks::Counts Webhooks::counts() const {
  const auto sender = impl_->sender->totals();
  Counts c;
  c.sent = sender.sent;
  c.failed = sender.failed;
  c.queued = impl_->delayed.size() + impl_->ready_count + sender.queued;
  c.dropped = impl_->dropped + sender.dropped;
  return c;
}

}  // namespace atrium::pusher
