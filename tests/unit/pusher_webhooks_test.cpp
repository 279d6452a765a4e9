// pusher/webhooks.hpp: batching, body and signature, the delayed member_removed and
// channel_vacated with their cancellation, retries, order, bounds and shutdown, through a
// fake poster and a clock the test turns; then once through libcurl to a socket here.
// The sender is a thread: the tests wait for what it does (with a time limit), and never
// take a fixed sleep as proof that something did not happen.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "json/codec.hpp"
#include "pusher/signature.hpp"
#include "pusher/webhooks.hpp"

using atrium::engine::LogLevel;
using atrium::json::Value;
using atrium::pusher::WebhookOptions;
using atrium::pusher::Webhooks;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kWait = std::chrono::seconds(10);   // far beyond what any step needs

// The test's own HMAC, straight from OpenSSL's one-shot HMAC(), to check the library's.
std::string openssl_hmac_hex(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", out[i]);
    hex += buf;
  }
  return hex;
}

template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = Clock::now() + kWait;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

struct Post {
  std::string url, body;
  std::map<std::string, std::string> headers;
  Clock::time_point at;
};

// Records every POST; answers with `respond` (default 200). Thread-safe.
struct Receiver {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Post> posts;
  std::function<int(const Post&, std::size_t index)> respond;

  int operator()(const std::string& url, const std::vector<WebhookOptions::Header>& headers,
                 const std::string& body) {
    Post p{url, body, {}, Clock::now()};
    for (const auto& [k, v] : headers) p.headers[k] = v;
    std::function<int(const Post&, std::size_t)> r;
    std::size_t index = 0;
    {
      std::lock_guard<std::mutex> lock(mutex);
      index = posts.size();
      posts.push_back(p);
      r = respond;
    }
    changed.notify_all();
    return r ? r(p, index) : 200;
  }

  bool wait_for(std::size_t n) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, kWait, [&] { return posts.size() >= n; });
  }
  std::vector<Post> snapshot() {
    std::lock_guard<std::mutex> lock(mutex);
    return posts;
  }
  std::vector<Post> to(const std::string& url) {
    std::vector<Post> out;
    for (const Post& p : snapshot())
      if (p.url == url) out.push_back(p);
    return out;
  }
};

struct Logs {
  std::vector<std::pair<LogLevel, std::string>> lines;   // loop thread only (the contract)
  bool has(std::string_view part) const {
    for (const auto& l : lines)
      if (l.second.find(part) != std::string::npos) return true;
    return false;
  }
};

// A Webhooks with a clock the test turns, a Receiver as the poster and app "1" posting to
// http://a/hook. The receiver and logs outlive the Webhooks (declared first).
struct Fixture {
  std::shared_ptr<Receiver> receiver = std::make_shared<Receiver>();
  std::shared_ptr<Logs> logs = std::make_shared<Logs>();
  std::int64_t now = 1'700'000'000'000;
  std::unique_ptr<Webhooks> hooks;

  explicit Fixture(std::function<void(WebhookOptions&)> tweak = {}) {
    WebhookOptions o;
    o.now_ms = [this] { return now; };
    o.post = [r = receiver](const std::string& url, const std::vector<WebhookOptions::Header>& h,
                            const std::string& body) { return (*r)(url, h, body); };
    o.on_log = [l = logs](LogLevel level, std::string_view line) { l->lines.emplace_back(level, line); };
    o.retry_first_ms = 5;
    o.retry_max_ms = 40;
    if (tweak) tweak(o);
    hooks = std::make_unique<Webhooks>(std::move(o));
    hooks->add_app("1", "key1", "secret1", {"http://a/hook"});
  }

  // Turns the clock by ms and runs what fell due.
  void advance(std::int64_t ms) {
    now += ms;
    hooks->run_due();
  }

  // Everything handed to the sender has been answered.
  bool idle() {
    return eventually([&] { return hooks->counts().queued == 0; });
  }
};

Value parse(const std::string& body) {
  auto v = atrium::json::parse(body);
  REQUIRE_MESSAGE(v.ok(), body);
  return std::move(v).value();
}

// The events of a body, each as compact JSON text: easy to compare whole.
std::vector<std::string> events_of(const std::string& body) {
  const Value v = parse(body);
  std::vector<std::string> out;
  const Value* events = v.get_array("events");
  REQUIRE(events != nullptr);
  for (const Value& e : events->items()) out.push_back(atrium::json::to_json(e));
  return out;
}

}  // namespace

TEST_CASE("webhooks: HMAC-SHA256 is OpenSSL's, as lowercase hex") {
  // RFC 4231, test case 2.
  CHECK(atrium::pusher::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string body = "{\"time_ms\":1,\"events\":[{\"name\":\"x\\u0000\"}]}";
  CHECK(atrium::pusher::hmac_sha256_hex("7ad3773142a6692b25b8", body) ==
        openssl_hmac_hex("7ad3773142a6692b25b8", body));
  CHECK(atrium::pusher::hmac_sha256_hex("", "") == openssl_hmac_hex("", ""));
}

TEST_CASE("webhooks: body shape, headers and signature") {
  Fixture f;
  const std::string odd = "quote\" backslash\\ newline\n tab\t nul" + std::string(1, '\0') + " bad\xff utf8 é";
  f.hooks->channel_occupied("1", "presence-room\"1");
  f.hooks->member_added("1", "presence-room\"1", "user\n7");
  f.hooks->client_event("1", "presence-room\"1", "client-typing", odd, "123.456", "user\n7");
  f.hooks->client_event("1", "private-x", "client-{}", "{\"a\":1}", "1.2", "");
  f.hooks->cache_miss("1", "cache-prices");
  CHECK(f.hooks->ms_until_next() == 50);
  f.advance(50);
  REQUIRE(f.receiver->wait_for(1));
  REQUIRE(f.idle());
  const Post p = f.receiver->snapshot().at(0);
  CHECK(p.url == "http://a/hook");
  CHECK(p.headers.size() == 3);
  CHECK(p.headers.at("Content-Type") == "application/json");   // pusher-http-node: ===
  CHECK(p.headers.at("X-Pusher-Key") == "key1");
  CHECK(p.headers.at("X-Pusher-Signature") == openssl_hmac_hex("secret1", p.body));

  const Value body = parse(p.body);
  REQUIRE(body.is_object());
  CHECK(body.size() == 2);
  REQUIRE(body.find("time_ms") != nullptr);
  CHECK(body.find("time_ms")->as_number() == static_cast<double>(f.now));
  const auto& events = body.get_array("events")->items();
  REQUIRE(events.size() == 5);

  CHECK(atrium::json::to_json(events[0]) == R"({"name":"channel_occupied","channel":"presence-room\"1"})");
  CHECK(atrium::json::to_json(events[1]) ==
        R"({"name":"member_added","channel":"presence-room\"1","user_id":"user\n7"})");
  const Value& ce = events[2];
  CHECK(*ce.get_string("name") == "client_event");
  CHECK(*ce.get_string("channel") == "presence-room\"1");
  CHECK(*ce.get_string("event") == "client-typing");
  // Escaped and back; the byte that is not UTF-8 comes back as U+FFFD.
  CHECK(*ce.get_string("data") == "quote\" backslash\\ newline\n tab\t nul" + std::string(1, '\0') +
                                      " bad\xEF\xBF\xBD utf8 é");
  CHECK(*ce.get_string("socket_id") == "123.456");
  CHECK(*ce.get_string("user_id") == "user\n7");
  CHECK(ce.size() == 6);
  // Not presence: no user_id; data a string even when it holds JSON.
  CHECK(atrium::json::to_json(events[3]) ==
        R"({"name":"client_event","channel":"private-x","event":"client-{}","data":"{\"a\":1}","socket_id":"1.2"})");
  CHECK(atrium::json::to_json(events[4]) == R"({"name":"cache_miss","channel":"cache-prices"})");
  CHECK(f.hooks->counts().sent == 5);
}

TEST_CASE("webhooks: events due together go in one POST per URL") {
  Fixture f;
  f.hooks->add_app("2", "key2", "secret2", {"http://b/one", "http://b/two"});
  f.hooks->cache_miss("1", "c0");
  f.advance(20);
  f.hooks->cache_miss("1", "c1");
  f.hooks->cache_miss("2", "d0");   // another app: a batch of its own
  CHECK(f.hooks->ms_until_next() == 30);
  f.advance(29);
  CHECK(f.hooks->counts().queued == 3);   // the window is still open: nothing handed over
  CHECK(f.hooks->ms_until_next() == 1);
  f.hooks->cache_miss("1", "c2");
  f.advance(1);                           // app 1's window closes; app 2's has 20 ms to go
  REQUIRE(f.receiver->wait_for(1));
  CHECK(f.hooks->ms_until_next() == 20);
  f.advance(20);
  REQUIRE(f.receiver->wait_for(3));
  f.hooks->cache_miss("1", "c3");         // after the window: the next batch
  f.advance(50);
  REQUIRE(f.receiver->wait_for(4));
  REQUIRE(f.idle());

  const auto a = f.receiver->to("http://a/hook");
  REQUIRE(a.size() == 2);
  CHECK(events_of(a[0].body) == std::vector<std::string>{R"({"name":"cache_miss","channel":"c0"})",
                                                        R"({"name":"cache_miss","channel":"c1"})",
                                                        R"({"name":"cache_miss","channel":"c2"})"});
  CHECK(events_of(a[1].body) == std::vector<std::string>{R"({"name":"cache_miss","channel":"c3"})"});
  const auto one = f.receiver->to("http://b/one");
  const auto two = f.receiver->to("http://b/two");
  REQUIRE(one.size() == 1);
  REQUIRE(two.size() == 1);
  CHECK(one[0].body == two[0].body);
  CHECK(events_of(one[0].body) == std::vector<std::string>{R"({"name":"cache_miss","channel":"d0"})"});
  CHECK(one[0].headers.at("X-Pusher-Key") == "key2");
  CHECK(one[0].headers.at("X-Pusher-Signature") == openssl_hmac_hex("secret2", one[0].body));
  CHECK(f.receiver->snapshot().size() == 4);
  CHECK(f.hooks->counts().sent == 6);     // 4 events to app 1's URL, 1 to each of app 2's
  CHECK(f.hooks->ms_until_next() == -1);
}

TEST_CASE("webhooks: member_removed and channel_vacated wait removal_delay_ms") {
  Fixture f;
  f.hooks->member_removed("1", "presence-a", "u1");
  f.hooks->channel_vacated("1", "presence-a");
  CHECK(f.hooks->ms_until_next() == 3000);
  f.advance(2999);
  CHECK(f.hooks->counts().queued == 2);
  CHECK(f.hooks->ms_until_next() == 1);
  f.advance(1);                            // due: now in a batch window of their own
  CHECK(f.hooks->ms_until_next() == 50);
  f.advance(50);
  REQUIRE(f.receiver->wait_for(1));
  REQUIRE(f.idle());
  const auto posts = f.receiver->snapshot();
  REQUIRE(posts.size() == 1);
  CHECK(events_of(posts[0].body) ==
        std::vector<std::string>{R"({"name":"member_removed","channel":"presence-a","user_id":"u1"})",
                                 R"({"name":"channel_vacated","channel":"presence-a"})"});
  CHECK(parse(posts[0].body).find("time_ms")->as_number() == static_cast<double>(f.now));
  CHECK(f.hooks->ms_until_next() == -1);
}

TEST_CASE("webhooks: a user or channel back within the delay cancels both events") {
  Fixture f;
  f.hooks->add_app("2", "key2", "secret2", {"http://b/hook"});

  SUBCASE("the same user back on the same channel") {
    f.hooks->member_removed("1", "presence-a", "u1");
    f.advance(2000);
    f.hooks->member_added("1", "presence-a", "u1");
  }
  SUBCASE("the same channel occupied again") {
    f.hooks->channel_vacated("1", "presence-a");
    f.advance(2999);
    f.hooks->channel_occupied("1", "presence-a");
  }
  SUBCASE("a page reload: member and channel both back") {
    f.hooks->member_removed("1", "presence-a", "u1");
    f.hooks->channel_vacated("1", "presence-a");
    f.advance(500);
    f.hooks->channel_occupied("1", "presence-a");
    f.hooks->member_added("1", "presence-a", "u1");
  }
  CHECK(f.hooks->counts().queued == 0);
  CHECK(f.hooks->ms_until_next() == -1);
  f.advance(10000);
  // A later event goes out alone: nothing of the above was held back anywhere.
  f.hooks->cache_miss("1", "marker");
  f.advance(50);
  REQUIRE(f.receiver->wait_for(1));
  REQUIRE(f.idle());
  const auto posts = f.receiver->snapshot();
  REQUIRE(posts.size() == 1);
  CHECK(events_of(posts[0].body) == std::vector<std::string>{R"({"name":"cache_miss","channel":"marker"})"});
}

TEST_CASE("webhooks: not cancelled by another user, channel or app, nor once sent") {
  Fixture f;
  f.hooks->add_app("2", "key2", "secret2", {"http://b/hook"});
  f.hooks->member_removed("1", "presence-a", "u1");
  f.hooks->channel_vacated("1", "presence-a");
  f.advance(100);
  f.hooks->member_added("1", "presence-a", "u2");   // another user
  f.hooks->member_added("1", "presence-b", "u1");   // another channel
  f.hooks->member_added("2", "presence-a", "u1");   // another app
  f.hooks->channel_occupied("1", "presence-b");
  f.hooks->channel_occupied("2", "presence-a");
  f.advance(50);
  REQUIRE(f.receiver->wait_for(2));
  f.advance(2850);                                  // 3000 after the removals
  f.advance(50);
  REQUIRE(f.receiver->wait_for(3));
  f.hooks->member_added("1", "presence-a", "u1");   // after the member_removed went out
  f.hooks->channel_occupied("1", "presence-a");
  f.advance(50);
  REQUIRE(f.receiver->wait_for(4));
  REQUIRE(f.idle());

  const auto a = f.receiver->to("http://a/hook");
  REQUIRE(a.size() == 3);
  CHECK(events_of(a[0].body) ==
        std::vector<std::string>{R"({"name":"member_added","channel":"presence-a","user_id":"u2"})",
                                 R"({"name":"member_added","channel":"presence-b","user_id":"u1"})",
                                 R"({"name":"channel_occupied","channel":"presence-b"})"});
  CHECK(events_of(a[1].body) ==
        std::vector<std::string>{R"({"name":"member_removed","channel":"presence-a","user_id":"u1"})",
                                 R"({"name":"channel_vacated","channel":"presence-a"})"});
  CHECK(events_of(a[2].body) ==
        std::vector<std::string>{R"({"name":"member_added","channel":"presence-a","user_id":"u1"})",
                                 R"({"name":"channel_occupied","channel":"presence-a"})"});
  const auto b = f.receiver->to("http://b/hook");
  REQUIRE(b.size() == 1);
  CHECK(events_of(b[0].body) ==
        std::vector<std::string>{R"({"name":"member_added","channel":"presence-a","user_id":"u1"})",
                                 R"({"name":"channel_occupied","channel":"presence-a"})"});
}

TEST_CASE("webhooks: failures are retried with exponential backoff until a 2xx") {
  Fixture f([](WebhookOptions& o) {
    o.retry_first_ms = 20;
    o.retry_max_ms = 50;
  });
  // 500, no answer, a redirect (not followed: a failure), 404, then 204.
  const std::vector<int> answers = {500, 0, 302, 404, 204};
  f.receiver->respond = [answers](const Post&, std::size_t i) { return answers.at(i); };
  f.hooks->cache_miss("1", "c");
  f.advance(50);
  REQUIRE(f.receiver->wait_for(5));
  REQUIRE(f.idle());
  const auto posts = f.receiver->snapshot();
  REQUIRE(posts.size() == 5);
  const std::vector<std::int64_t> backoff = {20, 40, 50, 50};   // doubling, capped
  for (std::size_t i = 1; i < posts.size(); ++i) {
    CHECK(posts[i].body == posts[0].body);   // the same bytes, so the same signature
    CHECK(posts[i].headers == posts[0].headers);
    const auto gap = std::chrono::duration_cast<std::chrono::microseconds>(posts[i].at - posts[i - 1].at).count();
    // The sender's clock counts whole milliseconds: up to 1 ms early against this one.
    CHECK(gap >= (backoff[i - 1] - 1) * 1000);
  }
  const auto c = f.hooks->counts();
  CHECK(c.sent == 1);
  CHECK(c.failed == 0);
  CHECK(c.queued == 0);
  f.hooks->run_due();   // hands the sender's log lines over
  CHECK(f.logs->has("status=500: retrying"));
}

TEST_CASE("webhooks: retries end retry_for_ms after the first try: failed and dropped") {
  Fixture f([](WebhookOptions& o) {
    o.retry_first_ms = 10;
    o.retry_max_ms = 1000;
    o.retry_for_ms = 1000;
  });
  f.receiver->respond = [](const Post&, std::size_t) { return 503; };
  f.hooks->cache_miss("1", "c1");
  f.hooks->cache_miss("1", "c2");
  f.advance(50);
  REQUIRE(eventually([&] { return f.hooks->counts().failed == 2; }));
  const auto c = f.hooks->counts();
  CHECK(c.sent == 0);
  CHECK(c.queued == 0);
  const auto posts = f.receiver->snapshot();
  CHECK(posts.size() >= 3);   // at 0, 10, 30, 70, 150, 310, 630 ms, unless the machine stalls
  CHECK(f.hooks->ms_until_next() == 0);   // log lines to hand over
  f.hooks->run_due();
  CHECK(f.logs->has("failed after"));
  CHECK(f.hooks->ms_until_next() == -1);
  // Dropped for good: the next batch is not stuck behind it.
  f.receiver->respond = nullptr;
  f.hooks->cache_miss("1", "c3");
  f.advance(50);
  REQUIRE(eventually([&] { return f.hooks->counts().sent == 1; }));
  CHECK(events_of(f.receiver->snapshot().back().body) ==
        std::vector<std::string>{R"({"name":"cache_miss","channel":"c3"})"});
}

TEST_CASE("webhooks: a batch being retried is not overtaken on its URL; other URLs go on") {
  Fixture f([](WebhookOptions& o) {
    o.retry_first_ms = 5;
    o.retry_max_ms = 20;
  });
  f.hooks->add_app("1", "key1", "secret1", {"http://a/hook", "http://b/hook"});
  // a fails until b has had both batches: so b must not wait for a's retries.
  std::atomic<int> b_posts{0};
  f.receiver->respond = [&b_posts](const Post& p, std::size_t) {
    if (p.url == "http://b/hook") {
      ++b_posts;
      return 200;
    }
    return b_posts.load() >= 2 ? 200 : 500;
  };
  f.hooks->cache_miss("1", "first");
  f.advance(50);
  REQUIRE(eventually([&] { return f.receiver->to("http://a/hook").size() >= 1; }));
  f.hooks->cache_miss("1", "second");
  f.advance(50);
  REQUIRE(eventually([&] { return f.hooks->counts().sent == 4; }));
  REQUIRE(f.idle());

  const auto a = f.receiver->to("http://a/hook");
  REQUIRE(a.size() >= 3);   // failed at least once, then both batches
  const std::string first = R"({"name":"cache_miss","channel":"first"})";
  const std::string second = R"({"name":"cache_miss","channel":"second"})";
  for (std::size_t i = 0; i + 1 < a.size(); ++i) CHECK(events_of(a[i].body) == std::vector<std::string>{first});
  CHECK(events_of(a.back().body) == std::vector<std::string>{second});
  const auto b = f.receiver->to("http://b/hook");
  REQUIRE(b.size() == 2);
  CHECK(events_of(b[0].body) == std::vector<std::string>{first});
  CHECK(events_of(b[1].body) == std::vector<std::string>{second});
}

TEST_CASE("webhooks: apps without URLs, and unknown apps, are ignored") {
  Fixture f;
  f.hooks->add_app("2", "key2", "secret2", {});
  for (const char* app : {"2", "3"}) {
    f.hooks->channel_occupied(app, "c");
    f.hooks->member_added(app, "presence-c", "u");
    f.hooks->member_removed(app, "presence-c", "u");
    f.hooks->channel_vacated(app, "c");
    f.hooks->client_event(app, "private-c", "client-x", "{}", "1.1", "");
    f.hooks->cache_miss(app, "c");
  }
  CHECK(f.hooks->counts().queued == 0);
  CHECK(f.hooks->ms_until_next() == -1);
  // Added again without URLs: app 1 goes silent too, with what it was batching.
  f.hooks->cache_miss("1", "batching");
  CHECK(f.hooks->counts().queued == 1);
  f.hooks->add_app("1", "key1", "secret1", {});
  CHECK(f.hooks->counts().queued == 0);
  f.hooks->cache_miss("1", "c");
  CHECK(f.hooks->counts().queued == 0);
  CHECK(f.hooks->ms_until_next() == -1);
  f.advance(10000);
  CHECK(f.receiver->snapshot().empty());
}

TEST_CASE("webhooks: max_queued per app drops the oldest events") {
  SUBCASE("in one batch") {
    Fixture f([](WebhookOptions& o) { o.max_queued = 3; });
    for (int i = 0; i < 5; ++i) f.hooks->cache_miss("1", "c" + std::to_string(i));
    CHECK(f.hooks->counts().queued == 3);
    CHECK(f.hooks->counts().dropped == 2);
    f.advance(50);
    REQUIRE(f.receiver->wait_for(1));
    CHECK(events_of(f.receiver->snapshot()[0].body) ==
          std::vector<std::string>{R"({"name":"cache_miss","channel":"c2"})",
                                   R"({"name":"cache_miss","channel":"c3"})",
                                   R"({"name":"cache_miss","channel":"c4"})"});
    CHECK(f.logs->has("max_queued=3"));
  }
  SUBCASE("held back") {
    Fixture f([](WebhookOptions& o) { o.max_queued = 3; });
    for (int i = 0; i < 5; ++i) f.hooks->member_removed("1", "presence-a", "u" + std::to_string(i));
    f.hooks->member_added("1", "presence-a", "u0");   // its removal was dropped: this one goes out
    CHECK(f.hooks->counts().dropped == 2);
    f.advance(50);
    REQUIRE(f.receiver->wait_for(1));
    f.advance(3000);
    REQUIRE(f.receiver->wait_for(2));
    REQUIRE(f.idle());
    const auto posts = f.receiver->snapshot();
    CHECK(events_of(posts[0].body) ==
          std::vector<std::string>{R"({"name":"member_added","channel":"presence-a","user_id":"u0"})"});
    CHECK(events_of(posts[1].body) ==
          std::vector<std::string>{R"({"name":"member_removed","channel":"presence-a","user_id":"u2"})",
                                   R"({"name":"member_removed","channel":"presence-a","user_id":"u3"})",
                                   R"({"name":"member_removed","channel":"presence-a","user_id":"u4"})"});
  }
  SUBCASE("waiting to be sent") {
    Fixture f([](WebhookOptions& o) { o.max_queued = 3; });
    // The first POST hangs until released: the batches behind it pile up.
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    f.receiver->respond = [&](const Post&, std::size_t i) {
      if (i == 0) {
        std::unique_lock<std::mutex> lock(m);
        cv.wait_for(lock, kWait, [&] { return open; });
      }
      return 200;
    };
    f.hooks->cache_miss("1", "b1");
    f.advance(50);
    REQUIRE(f.receiver->wait_for(1));   // in flight: the poster's, never dropped
    for (int i = 2; i <= 5; ++i) {
      f.hooks->cache_miss("1", "b" + std::to_string(i));
      f.advance(50);
    }
    const auto c = f.hooks->counts();
    CHECK(c.dropped == 2);
    CHECK(c.queued == 3);
    {
      std::lock_guard<std::mutex> lock(m);
      open = true;
    }
    cv.notify_all();
    REQUIRE(f.receiver->wait_for(3));
    REQUIRE(f.idle());
    const auto posts = f.receiver->snapshot();
    REQUIRE(posts.size() == 3);
    CHECK(events_of(posts[0].body) == std::vector<std::string>{R"({"name":"cache_miss","channel":"b1"})"});
    CHECK(events_of(posts[1].body) == std::vector<std::string>{R"({"name":"cache_miss","channel":"b4"})"});
    CHECK(events_of(posts[2].body) == std::vector<std::string>{R"({"name":"cache_miss","channel":"b5"})"});
    CHECK(f.hooks->counts().sent == 3);
    f.hooks->run_due();
    CHECK(f.logs->has("max_queued=3"));
  }
}

TEST_CASE("webhooks: the destructor returns at once, whatever the receiver does") {
  auto logs = std::make_shared<Logs>();
  std::atomic<int> calls{0};
  double seconds = 0;

  SUBCASE("a failing receiver, the next try a minute away") {
    Fixture f([&](WebhookOptions& o) {
      o.retry_first_ms = 60000;
      o.on_log = [logs](LogLevel level, std::string_view line) { logs->lines.emplace_back(level, line); };
    });
    f.receiver->respond = [&](const Post&, std::size_t) {
      ++calls;
      return 500;
    };
    f.hooks->cache_miss("1", "c");
    f.hooks->member_removed("1", "presence-a", "u");   // not yet due
    f.advance(50);
    REQUIRE(eventually([&] { return calls.load() == 1; }));
    const auto start = Clock::now();
    f.hooks.reset();
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    CHECK(logs->has("1 unsent events dropped"));
    CHECK(logs->has("1 events not yet due dropped"));
  }
  SUBCASE("a slow receiver with many batches queued") {
    Fixture f;
    f.receiver->respond = [&](const Post&, std::size_t) {
      ++calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));   // the receiver's slowness
      return 200;
    };
    for (int i = 0; i < 50; ++i) {
      f.hooks->cache_miss("1", "c");
      f.advance(50);
    }
    REQUIRE(eventually([&] { return calls.load() >= 1; }));
    const auto start = Clock::now();
    f.hooks.reset();   // waits for the POST in flight, not for the 5 s of the rest
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    CHECK(calls.load() < 50);
  }
  CHECK(seconds < 1.0);
}

namespace {

// One HTTP/1.1 server connection at a time on 127.0.0.1, port chosen by the kernel. The
// first request is answered 200; the second is read and left unanswered (a receiver that
// hangs) until the server is destroyed.
class TinyServer {
 public:
  TinyServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }

  int port() const { return port_; }

  // The raw requests (head and body) received so far.
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  bool wait_for_requests(std::size_t n) {
    return eventually([&] { return requests().size() >= n; });
  }

 private:
  // poll() in short steps, so that the destructor never waits long.
  bool readable(int fd) {
    const auto deadline = Clock::now() + kWait;
    while (!stop_ && Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }

  void serve() {
    for (int n = 0; n < 2 && !stop_; ++n) {
      if (!readable(listener_)) return;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      std::string request;
      char buf[4096];
      // Head, then Content-Length bytes of body.
      std::size_t want = std::string::npos;
      while (want == std::string::npos || request.size() < want) {
        if (!readable(fd)) break;
        const ssize_t got = ::read(fd, buf, sizeof buf);
        if (got <= 0) break;
        request.append(buf, static_cast<std::size_t>(got));
        const std::size_t head_end = request.find("\r\n\r\n");
        if (want == std::string::npos && head_end != std::string::npos) {
          std::size_t length = 0;
          const std::size_t at = lower(request).find("\r\ncontent-length:");
          if (at != std::string::npos && at < head_end) length = std::stoul(request.substr(at + 17));
          want = head_end + 4 + length;
        }
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(request);
      }
      if (n == 0) {
        const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        (void)!::write(fd, answer.data(), answer.size());
      } else {
        while (!stop_)   // hangs: never answers
          if (readable(fd) && ::read(fd, buf, sizeof buf) <= 0) break;
      }
      ::close(fd);
    }
  }

  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("webhooks: the libcurl poster, to a server on 127.0.0.1") {
  TinyServer server;
  std::int64_t now = 1'700'000'000'000;
  WebhookOptions o;
  o.now_ms = [&now] { return now; };
  o.retry_first_ms = 60000;   // a failure would show as sent == 0, not as a second request
  auto hooks = std::make_unique<Webhooks>(std::move(o));
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/pusher/webhooks";
  hooks->add_app("1", "key1", "secret1", {url});
  hooks->channel_occupied("1", "presence-\"room\"");
  now += 50;
  hooks->run_due();
  REQUIRE(eventually([&] { return hooks->counts().sent == 1; }));
  REQUIRE(server.requests().size() == 1);

  const std::string request = server.requests()[0];
  const std::size_t head_end = request.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  const std::string head = request.substr(0, head_end + 2);
  const std::string body = request.substr(head_end + 4);
  CHECK(head.rfind("POST /pusher/webhooks HTTP/1.1\r\n", 0) == 0);
  CHECK(head.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
  CHECK(head.find("\r\nX-Pusher-Key: key1\r\n") != std::string::npos);
  CHECK(head.find("\r\nX-Pusher-Signature: " + openssl_hmac_hex("secret1", body) + "\r\n") != std::string::npos);
  CHECK(head.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
  CHECK(head.find("Expect:") == std::string::npos);
  CHECK(body == "{\"time_ms\":" + std::to_string(now) +
                    R"(,"events":[{"name":"channel_occupied","channel":"presence-\"room\""}]})");

  // A second webhook the server reads and never answers: shutting down does not wait out
  // libcurl's 10 s timeout.
  hooks->cache_miss("1", "c");
  now += 50;
  hooks->run_due();
  REQUIRE(server.wait_for_requests(2));
  const auto start = Clock::now();
  hooks.reset();
  CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 1.0);
}
