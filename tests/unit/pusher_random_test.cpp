// Thousands of random and mutated frames over many connections of two apps, HTTP triggers
// and disconnects in between: never a crash, every frame that asks for an answer gets one,
// the registries agree after every step, and nothing is left once everyone is gone.
#include <cstdlib>
#include <random>

#include "pusher_harness.hpp"

using namespace pusher_test;

namespace {

struct Fuzzer {
  Harness& h;
  std::mt19937_64 rng;

  std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng() % n); }
  bool chance(int percent) { return static_cast<int>(rng() % 100) < percent; }

  std::string channel() {
    static const char* names[] = {"a", "b", "private-a", "private-b", "presence-a", "presence-b",
                                  "private-encrypted-a", "cache-a", "private-cache-a", "presence-cache-a",
                                  "private-encrypted-cache-a", "bad name", "#server-to-user-1", ""};
    if (chance(3)) return std::string(chance(50) ? 201 : 70000, 'c');
    return names[pick(std::size(names))];
  }

  std::string user_id_json() {
    static const char* ids[] = {"\"u1\"", "\"u2\"", "\"u3\"", "7", "8.5", "\"\"", "null", "[1]", "{}"};
    return ids[pick(std::size(ids))];
  }

  std::string subscribe(const Client& c) {
    const std::string ch = channel();
    const bool presence = ch.rfind("presence-", 0) == 0;
    std::string channel_data;
    if (presence) {
      channel_data = chance(80) ? "{\"user_id\":" + user_id_json() +
                                      (chance(50) ? ",\"user_info\":{\"n\":\"" + std::string(pick(3000), 'i') + "\"}"
                                                  : std::string()) +
                                      "}"
                                : "garbage";
    }
    std::string data = "{\"channel\":" + Harness::quote(ch);
    if (chance(85)) {
      std::string auth = channel_auth(chance(90) ? "key1" : "key2", chance(85) ? "secret1" : "secret2", c.socket_id,
                                      ch, channel_data);
      data += ",\"auth\":" + (chance(90) ? Harness::quote(auth) : std::string(chance(50) ? "null" : "17"));
    }
    if (presence && chance(90)) data += ",\"channel_data\":" + Harness::quote(channel_data);
    data += "}";
    if (chance(10)) data = Harness::quote(data);
    return "{\"event\":\"pusher:subscribe\",\"data\":" + data + "}";
  }

  std::string signin(const Client& c) {
    std::string ud = "{\"id\":" + user_id_json();
    if (chance(50)) ud += ",\"watchlist\":[\"u1\",\"u2\",\"u3\",5]";
    ud += "}";
    const std::string auth = chance(85) ? user_auth("key1", "secret1", c.socket_id, ud) : "key1:nope";
    return "{\"event\":\"pusher:signin\",\"data\":{\"user_data\":" + Harness::quote(ud) +
           ",\"auth\":" + Harness::quote(auth) + "}}";
  }

  std::string random_json(int depth = 0) {
    switch (pick(depth > 3 ? 5 : 7)) {
      case 0: return "null";
      case 1: return chance(50) ? "true" : "false";
      case 2: return std::to_string(static_cast<long long>(rng() % 2000000) - 1000000);
      case 3: return Harness::quote(std::string(pick(20), static_cast<char>('a' + pick(26))));
      case 4: return "\"pusher:subscribe\"";
      case 5: {
        std::string out = "[";
        for (std::size_t i = 0, n = pick(4); i < n; ++i) out += (i ? "," : "") + random_json(depth + 1);
        return out + "]";
      }
      default: {
        static const char* keys[] = {"event", "data", "channel", "auth", "channel_data", "user_data", "x"};
        std::string out = "{";
        for (std::size_t i = 0, n = pick(5); i < n; ++i) {
          out += (i ? ",\"" : "\"") + std::string(keys[pick(std::size(keys))]) + "\":" + random_json(depth + 1);
        }
        return out + "}";
      }
    }
  }

  std::string mutate(std::string s) {
    for (std::size_t i = 0, n = 1 + pick(4); i < n && !s.empty(); ++i) {
      const std::size_t at = pick(s.size());
      switch (pick(3)) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.erase(at, 1 + pick(4)); break;
        default: s.insert(at, 1, "{}[]\",:\\"[pick(8)]); break;
      }
    }
    return s;
  }

  std::string frame(const Client& c) {
    static const char* events[] = {"pusher:ping", "pusher:pong", "pusher:unsubscribe", "pusher:nope", "client-x"};
    switch (pick(10)) {
      case 0:
      case 1: return subscribe(c);
      case 2:
        return "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":" + Harness::quote(channel()) + "}}";
      case 3:
        return "{\"event\":\"client-" + std::to_string(pick(3)) + "\",\"channel\":" + Harness::quote(channel()) +
               ",\"data\":" + random_json() + "}";
      case 4: return signin(c);
      case 5: return "{\"event\":\"" + std::string(events[pick(std::size(events))]) + "\",\"data\":" + random_json() + "}";
      case 6: return random_json();
      case 7: {
        std::string junk(pick(64), '\0');
        for (char& ch : junk) ch = static_cast<char>(rng());
        return junk;
      }
      default: return mutate(chance(50) ? subscribe(c) : signin(c));
    }
  }
};

// A frame that may rightly get no answer: pusher:pong, pusher:unsubscribe, a client event
// (relayed to others, not to its sender).
bool ignorable(std::string_view frame) {
  Result<json::Value> v = json::parse(frame);
  if (!v || !v->is_object()) return false;
  const std::string* e = v->get_string("event");
  return e && (*e == "pusher:pong" || *e == "pusher:unsubscribe" || e->rfind("client-", 0) == 0);
}

}  // namespace

TEST_CASE("pusher: random frames over many connections: no crash, answers, consistent, empty at the end") {
  const char* seed_env = std::getenv("PUSHER_RANDOM_SEED");
  const std::uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 10) : 20261207;
  CAPTURE(seed);
  App one = Harness::app("1", "key1", "secret1");
  one.limits.presence_members = 3;                 // reached often
  App two = Harness::app("2", "key2", "secret2");
  two.user_authentication_timeout_ms = 3000;
  Harness h({one, two});
  Fuzzer f{h, std::mt19937_64(seed)};

  std::vector<std::unique_ptr<Client>> clients;
  auto open = [&] { clients.push_back(h.connect(f.chance(80) ? "key1" : (f.chance(90) ? "key2" : "nokey"))); };
  for (int i = 0; i < 40; ++i) open();

  int answered = 0, sent = 0;
  for (int step = 0; step < 20000; ++step) {
    Client& c = *clients[f.pick(clients.size())];
    const bool live = c.sink.close_code == 0;
    const std::size_t before = c.sink.frames.size();
    const std::string frame = f.frame(c);
    h.send(c, frame);
    ++sent;
    if (live && !ignorable(frame)) {
      const bool got = c.sink.frames.size() > before || c.sink.close_code != 0;
      CHECK_MESSAGE(got, frame.substr(0, 200));
      answered += got;
    }
    if (f.chance(2)) {
      h.trigger(f.channel(), "server-event", "{\"n\":" + std::to_string(step) + "}",
                f.chance(50) ? ",\"socket_id\":" + Harness::quote(c.socket_id) : "");
    }
    if (f.chance(1)) h.api("GET", "/apps/1/channels", {}, {{"info", "subscription_count"}});
    if (f.chance(1)) h.api("POST", "/apps/1/users/u1/terminate_connections", "{}");
    if (f.chance(2) || c.sink.close_code != 0) {
      // Closed ones are replaced (the transport disconnects them), and some live ones go.
      std::size_t gone = f.pick(clients.size());
      if (c.sink.close_code != 0) {
        for (std::size_t i = 0; i < clients.size(); ++i) {
          if (clients[i].get() == &c) gone = i;
        }
      }
      clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(gone));   // disconnects
      open();
    }
    if (f.chance(5)) {
      h.now += static_cast<std::int64_t>(f.pick(1500));
      h.server->run_due();
    }
    if (step % 50 == 0) {
      const std::string problem = h.server->check_invariants();
      REQUIRE_MESSAGE(problem.empty(), problem);
    }
    // Every frame any sink got is one JSON object with an event name.
    for (const auto& cl : clients) {
      for (std::size_t i = cl->seen; i < cl->sink.frames.size(); ++i) {
        Result<json::Value> v = json::parse(cl->sink.frames[i]);
        REQUIRE_MESSAGE((v.ok() && v->is_object() && v->get_string("event")), cl->sink.frames[i].substr(0, 200));
      }
      cl->seen = cl->sink.frames.size();
    }
  }
  MESSAGE("frames sent: " << sent << ", answered: " << answered);
  CHECK(answered > sent / 2);
  h.check();
  clients.clear();
  CHECK(h.server->connection_count() == 0);
  CHECK(h.server->channel_count() == 0);
  h.check();
  const std::string m = h.server->metrics();
  CHECK(m.find("atrium_pusher_connections 0\n") != std::string::npos);
  CHECK(m.find("atrium_pusher_subscriptions 0\n") != std::string::npos);
  CHECK(m.find("atrium_pusher_users 0\n") != std::string::npos);
}
