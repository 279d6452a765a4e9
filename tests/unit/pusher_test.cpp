// The Pusher protocol (pusher/pusher.hpp) over fake sinks: the handshake, subscriptions
// of every channel kind, presence, cache channels, client events, signin, watchlists and
// the webhook points. HTTP API: pusher_http_test.cpp; random frames: pusher_random_test.cpp.
#include <chrono>
#include <mutex>
#include <thread>

#include "pusher/channels.hpp"
#include "pusher_harness.hpp"

using namespace pusher_test;

TEST_CASE("pusher: parse_app takes ID:KEY:SECRET") {
  Result<App> a = parse_app("42:abc:s3:cr:et");
  REQUIRE(a.ok());
  CHECK(a->id == "42");
  CHECK(a->key == "abc");
  CHECK(a->secret == "s3:cr:et");
  CHECK_FALSE(parse_app("42:abc").ok());
  CHECK_FALSE(parse_app("::x").ok());
  CHECK_FALSE(parse_app("4/2:abc:x").ok());
}

TEST_CASE("pusher: the signature vector of Pusher's docs") {
  CHECK(hmac_sha256_hex("7ad3773142a6692b25b8", "1234.1234:private-foobar") ==
        "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4");
  CHECK(channel_auth("278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar", "") ==
        "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4");
  CHECK(md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
}

TEST_CASE("pusher: the signature vector through a subscription") {
  // Pusher's docs: socket 1234.1234 cannot be forced, so the vector's app subscribes with
  // a signature made the same way for the socket it got.
  Harness h({Harness::app("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")});
  auto c = h.connect("278d425bdf160c739803");
  h.subscribe(*c, "private-foobar", "7ad3773142a6692b25b8", "278d425bdf160c739803");
  CHECK(c->named("pusher_internal:subscription_succeeded").size() == 1);
}

TEST_CASE("pusher: connection_established carries socket_id and activity_timeout as a JSON string") {
  Harness h({Harness::app("1", "key1", "secret1")}, 30);
  FakeSink sink;
  h.server->connect(sink, "key1", {{"protocol", "7"}, {"client", "js"}, {"version", "8.4.0"}});
  REQUIRE(sink.frames.size() == 1);
  json::Value f = parse(sink.frames[0]);
  CHECK(event_of(f) == "pusher:connection_established");
  REQUIRE(f.find("data"));
  REQUIRE(f.find("data")->is_string());
  json::Value d = data_of(f);
  REQUIRE(d.get_string("socket_id"));
  const std::string& id = *d.get_string("socket_id");
  const auto dot = id.find('.');
  REQUIRE(dot != std::string::npos);
  CHECK(dot > 0);
  CHECK(dot + 1 < id.size());
  CHECK(id.find_first_not_of("0123456789.") == std::string::npos);
  REQUIRE(d.find("activity_timeout"));
  CHECK(d.find("activity_timeout")->as_number() == 30);
  CHECK(sink.close_code == 0);
}

TEST_CASE("pusher: unknown key 4001, protocol errors 4007/4008, capacity 4100") {
  Harness h;
  auto unknown = h.connect("nope");
  CHECK(unknown->sink.close_code == 4001);
  json::Value e = unknown->one();
  CHECK(event_of(e) == "pusher:error");
  CHECK(data_of(e).find("code")->as_number() == 4001);

  auto eight = h.connect("key1", "8");
  CHECK(eight->sink.close_code == 4007);
  CHECK(data_of(eight->one()).find("code")->as_number() == 4007);
  auto junk = h.connect("key1", "7x");
  CHECK(junk->sink.close_code == 4007);
  auto four = h.connect("key1", "4");
  CHECK(four->sink.close_code == 4007);
  auto none = h.connect("key1", "");
  CHECK(none->sink.close_code == 4008);
  auto six = h.connect("key1", "6");
  CHECK(six->sink.close_code == 4007);
  auto seven = h.connect("key1", "7");
  CHECK(seven->sink.close_code == 0);
  CHECK_FALSE(seven->socket_id.empty());

  // Refused connections hold nothing; disconnect() of them is fine, twice too.
  for (Client* c : {unknown.get(), eight.get(), junk.get(), four.get(), none.get(), six.get()}) {
    c->take();
    h.send(*c, R"({"event":"pusher:ping"})");
    CHECK(c->take().empty());
    h.server->disconnect(c->id);
    h.server->disconnect(c->id);
  }
  h.server->disconnect(seven->id);
  CHECK(h.server->connection_count() == 0);
  h.check();

  App small = Harness::app("9", "k9", "s9");
  small.limits.max_connections = 2;
  Harness cap({small});
  auto a = cap.connect("k9"), b = cap.connect("k9"), c = cap.connect("k9");
  CHECK(a->sink.close_code == 0);
  CHECK(b->sink.close_code == 0);
  CHECK(c->sink.close_code == 4100);
  cap.server->disconnect(a->id);
  auto d = cap.connect("k9");
  CHECK(d->sink.close_code == 0);
  cap.check();
}

TEST_CASE("pusher: ping gets pong; pong and binary") {
  Harness h;
  auto c = h.connect();
  h.send(*c, R"({"event":"pusher:ping","data":{}})");
  json::Value pong = c->one();
  CHECK(event_of(pong) == "pusher:pong");
  h.send(*c, R"({"event":"pusher:pong","data":{}})");
  CHECK(c->take().empty());
  h.server->receive_binary(c->id);
  CHECK(event_of(c->one()) == "pusher:error");
  CHECK(c->sink.close_code == 0);
}

TEST_CASE("pusher: subscription counting is off unless the app turns it on, as on Pusher") {
  App plain = Harness::app("1", "key1", "secret1");
  plain.subscription_count_events = App().subscription_count_events;
  CHECK_FALSE(plain.subscription_count_events);
  Harness h({plain});
  auto a = h.connect(), b = h.connect();
  h.subscribe(*a, "news");
  h.subscribe(*b, "news");
  for (auto* c : {a.get(), b.get()}) {
    const auto frames = c->take();
    REQUIRE(frames.size() == 1);  // the subscription's answer, nothing about the count
    CHECK(event_of(frames[0]) == "pusher_internal:subscription_succeeded");
  }
}

TEST_CASE("pusher: public subscribe, events, unsubscribe") {
  Harness h;
  auto a = h.connect(), b = h.connect();
  h.subscribe(*a, "news");
  auto fa = a->take();
  REQUIRE(fa.size() == 2);
  CHECK(event_of(fa[0]) == "pusher_internal:subscription_succeeded");
  CHECK(*fa[0].get_string("channel") == "news");
  CHECK(event_of(fa[1]) == "pusher_internal:subscription_count");
  CHECK(data_of(fa[1]).find("subscription_count")->as_number() == 1);
  h.subscribe(*b, "news");
  CHECK(a->named("pusher_internal:subscription_count").size() == 1);
  CHECK(b->named("pusher_internal:subscription_succeeded").size() == 1);
  CHECK(h.hooks_of("channel_occupied").size() == 1);

  CHECK(h.trigger("news", "headline", "{\"x\":1}").status == 200);
  json::Value ev = a->one();
  CHECK(event_of(ev) == "headline");
  CHECK(*ev.get_string("channel") == "news");
  CHECK(*ev.get_string("data") == "{\"x\":1}");
  CHECK(event_of(b->one()) == "headline");

  h.send(*a, R"({"event":"pusher:unsubscribe","data":{"channel":"news"}})");
  CHECK(a->take().empty());
  auto counts = b->named("pusher_internal:subscription_count");
  REQUIRE(counts.size() == 1);
  CHECK(data_of(counts[0]).find("subscription_count")->as_number() == 1);
  h.trigger("news", "headline", "2");
  CHECK(a->take().empty());
  CHECK(b->take().size() == 1);
  // Unsubscribing again, or from a channel never joined: nothing.
  h.send(*a, R"({"event":"pusher:unsubscribe","data":{"channel":"news"}})");
  CHECK(a->take().empty());
  CHECK(h.hooks_of("channel_vacated").empty());
  h.server->disconnect(b->id);
  CHECK(h.hooks_of("channel_vacated").size() == 1);
  CHECK(h.server->channel_count() == 0);
  h.check();
}

TEST_CASE("pusher: subscribing twice answers twice and counts once") {
  Harness h;
  auto a = h.connect();
  h.subscribe(*a, "news");
  a->take();
  h.subscribe(*a, "news");
  auto f = a->take();
  REQUIRE(f.size() == 1);
  CHECK(event_of(f[0]) == "pusher_internal:subscription_succeeded");
  h.check();
}

TEST_CASE("pusher: private channels: good, bad, missing, null, malformed auth; wrong data types") {
  Harness h;
  auto c = h.connect();
  const std::uint64_t compares = constant_time_compares();
  h.subscribe(*c, "private-room");
  CHECK(c->named("pusher_internal:subscription_succeeded").size() == 1);
  CHECK(constant_time_compares() > compares);

  auto expect_auth_error = [&](std::string_view frame) {
    h.send(*c, frame);
    json::Value e = c->one();
    CHECK_MESSAGE(event_of(e) == "pusher:subscription_error", frame);
    CHECK(*e.get_string("channel") == "private-x");
    json::Value d = data_of(e);
    CHECK(*d.get_string("type") == "AuthError");
    CHECK(d.find("status")->as_number() == 401);
    CHECK(c->sink.close_code == 0);
  };
  const std::string good = channel_auth("key1", "secret1", c->socket_id, "private-x", "");
  expect_auth_error(R"({"event":"pusher:subscribe","data":{"channel":"private-x"}})");
  expect_auth_error(R"({"event":"pusher:subscribe","data":{"channel":"private-x","auth":null}})");
  expect_auth_error(R"({"event":"pusher:subscribe","data":{"channel":"private-x","auth":42}})");
  expect_auth_error(R"({"event":"pusher:subscribe","data":{"channel":"private-x","auth":"garbage"}})");
  expect_auth_error(R"({"event":"pusher:subscribe","data":{"channel":"private-x","auth":"key1:"}})");
  expect_auth_error(R"({"event":"pusher:subscribe","data":{"channel":"private-x","auth":"key2:)" +
                    good.substr(5) + "\"}}");
  // Another app's secret, another socket's signature.
  expect_auth_error("{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-x\",\"auth\":\"" +
                    channel_auth("key1", "secret2", c->socket_id, "private-x", "") + "\"}}");
  expect_auth_error("{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-x\",\"auth\":\"" +
                    channel_auth("key1", "secret1", "1.2", "private-x", "") + "\"}}");
  // Upper-case hex is not the signature.
  std::string upper = good;
  for (std::size_t i = 5; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  expect_auth_error("{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-x\",\"auth\":\"" + upper + "\"}}");

  // data of the wrong type, no channel, a channel of the wrong type: pusher:error.
  for (std::string_view bad : {R"({"event":"pusher:subscribe"})", R"({"event":"pusher:subscribe","data":7})",
                               R"({"event":"pusher:subscribe","data":[]})",
                               R"({"event":"pusher:subscribe","data":"not json"})",
                               R"({"event":"pusher:subscribe","data":{}})",
                               R"({"event":"pusher:subscribe","data":{"channel":5}})"}) {
    h.send(*c, bad);
    CHECK_MESSAGE(event_of(c->one()) == "pusher:error", bad);
  }
  // data as a JSON string holding the object: accepted.
  h.send(*c, "{\"event\":\"pusher:subscribe\",\"data\":" + Harness::quote("{\"channel\":\"plain\"}") + "}");
  CHECK(c->named("pusher_internal:subscription_succeeded").size() == 1);

  // Names: too long (200), a 1 MB one (not echoed back), bad characters, '#'.
  std::string long_name(201, 'a');
  h.subscribe(*c, long_name);
  json::Value e = c->one();
  CHECK(event_of(e) == "pusher:subscription_error");
  CHECK(*data_of(e).get_string("type") == "LimitReached");
  std::string huge(1 << 20, 'b');
  h.subscribe(*c, huge);
  e = c->one();
  CHECK(event_of(e) == "pusher:error");
  CHECK(c->sink.frames.back().size() < 1000);
  h.subscribe(*c, "bad name");
  CHECK(event_of(c->one()) == "pusher:subscription_error");
  h.subscribe(*c, "#server-to-user-1");
  CHECK(event_of(c->one()) == "pusher:subscription_error");
  CHECK(c->sink.close_code == 0);
  h.check();
}

TEST_CASE("pusher: presence: ids, hash, count; member_added on a user's first connection only") {
  Harness h;
  auto a = h.connect(), b = h.connect(), b2 = h.connect();
  const std::string ch = "presence-room";
  h.subscribe(*a, ch, "secret1", "key1", presence_data("\"alice\"", R"({"name":"Alice"})"));
  json::Value ok = a->one();
  CHECK(event_of(ok) == "pusher_internal:subscription_succeeded");
  json::Value p = *data_of(ok).find("presence");
  CHECK(p.find("count")->as_number() == 1);
  CHECK(p.find("ids")->items().size() == 1);
  CHECK(*p.find("hash")->find("alice")->get_string("name") == "Alice");
  CHECK(h.hooks_of("member_added").size() == 1);

  // A number user_id becomes a string.
  h.subscribe(*b, ch, "secret1", "key1", presence_data("42"));
  p = *data_of(b->one()).find("presence");
  CHECK(p.find("count")->as_number() == 2);
  CHECK(p.find("hash")->find("42"));
  json::Value added = a->one();
  CHECK(event_of(added) == "pusher_internal:member_added");
  CHECK(*data_of(added).get_string("user_id") == "42");

  // The same user again: no member_added, count still 2.
  h.subscribe(*b2, ch, "secret1", "key1", presence_data("\"42\""));
  CHECK(data_of(b2->one()).find("presence")->find("count")->as_number() == 2);
  CHECK(a->take().empty());
  CHECK(b->take().empty());
  CHECK(h.hooks_of("member_added").size() == 2);

  // No subscription_count on presence channels.
  h.server->disconnect(b->id);
  CHECK(a->take().empty());
  CHECK(h.hooks_of("member_removed").empty());
  h.send(*b2, "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"" + ch + "\"}}");
  json::Value removed = a->one();
  CHECK(event_of(removed) == "pusher_internal:member_removed");
  CHECK(*data_of(removed).get_string("user_id") == "42");
  REQUIRE(h.hooks_of("member_removed").size() == 1);
  CHECK(h.hooks_of("member_removed")[0].user_id == "42");
  h.check();
}

TEST_CASE("pusher: presence channel_data must be signed, have a user_id, fit the limits") {
  App app = Harness::app("1", "key1", "secret1");
  app.limits.presence_members = 3;
  Harness h({app});
  auto c = h.connect();
  // Missing channel_data, a channel_data that is not a string, a signature over other data.
  h.send(*c, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"presence-a\",\"auth\":\"" +
                 channel_auth("key1", "secret1", c->socket_id, "presence-a", "") + "\"}}");
  CHECK(*data_of(c->one()).get_string("type") == "AuthError");
  h.send(*c, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"presence-a\",\"channel_data\":{},\"auth\":\"" +
                 channel_auth("key1", "secret1", c->socket_id, "presence-a", "{}") + "\"}}");
  CHECK(*data_of(c->one()).get_string("type") == "AuthError");
  for (std::string_view cd : {"{}", "[]", "nope", R"({"user_id":null})", R"({"user_id":""})", R"({"user_id":[1]})",
                              R"({"user_id":{"a":1}})"}) {
    h.subscribe(*c, "presence-a", "secret1", "key1", cd);
    json::Value e = c->one();
    CHECK_MESSAGE(event_of(e) == "pusher:subscription_error", cd);
  }
  // 2 KB of user_info at most.
  std::string big = "\"" + std::string(2100, 'x') + "\"";
  h.subscribe(*c, "presence-a", "secret1", "key1", presence_data("\"u\"", big));
  json::Value e = c->one();
  CHECK(*data_of(e).get_string("type") == "LimitReached");
  // The member limit: a 4th user is refused, a 3rd's second connection is not.
  std::vector<std::unique_ptr<Client>> users;
  for (int i = 0; i < 3; ++i) {
    users.push_back(h.connect());
    h.subscribe(*users.back(), "presence-a", "secret1", "key1", presence_data("\"u" + std::to_string(i) + "\""));
    CHECK(users.back()->named("pusher_internal:subscription_succeeded").size() == 1);
  }
  h.subscribe(*c, "presence-a", "secret1", "key1", presence_data("\"u9\""));
  e = c->one();
  CHECK(event_of(e) == "pusher:subscription_error");
  CHECK(data_of(e).find("status")->as_number() == 4100);
  h.subscribe(*c, "presence-a", "secret1", "key1", presence_data("\"u1\""));
  CHECK(event_of(c->one()) == "pusher_internal:subscription_succeeded");
  h.check();
}

TEST_CASE("pusher: the default limits are soketi's: 100 members, 2 KB info") {
  Limits l;
  CHECK(l.presence_members == 100);
  CHECK(l.member_info_bytes == 2048);
  Harness h;
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 100; ++i) {
    cs.push_back(h.connect());
    h.subscribe(*cs.back(), "presence-big", "secret1", "key1", presence_data(std::to_string(i)));
  }
  CHECK(cs.back()->named("pusher_internal:subscription_succeeded").size() == 1);
  auto extra = h.connect();
  h.subscribe(*extra, "presence-big", "secret1", "key1", presence_data("\"101st\""));
  CHECK(event_of(extra->one()) == "pusher:subscription_error");
  h.check();
}

TEST_CASE("pusher: encrypted channels: authorized like private, data untouched, no client events") {
  Harness h;
  auto a = h.connect(), b = h.connect();
  h.subscribe(*a, "private-encrypted-x");
  CHECK(a->named("pusher_internal:subscription_succeeded").size() == 1);
  h.send(*b, R"({"event":"pusher:subscribe","data":{"channel":"private-encrypted-x","auth":"key1:00"}})");
  CHECK(event_of(b->one()) == "pusher:subscription_error");
  const std::string cipher = R"({"nonce":"AAAA","ciphertext":"BBBB=="})";
  h.trigger("private-encrypted-x", "secret", cipher);
  json::Value ev = a->one();
  CHECK(*ev.get_string("data") == cipher);
  h.send(*a, R"({"event":"client-hi","channel":"private-encrypted-x","data":{}})");
  CHECK(event_of(a->one()) == "pusher:error");
  // Encrypted events go to one channel at a time (the SDK refuses more).
  HttpResponse r = h.api("POST", "/apps/1/events",
                         R"({"name":"e","channels":["private-encrypted-x","other"],"data":"x"})");
  CHECK(r.status == 400);
  h.check();
}

TEST_CASE("pusher: cache channels replay the last event or send cache_miss") {
  Harness h;
  for (std::string ch : {"cache-a", "private-cache-a", "presence-cache-a", "private-encrypted-cache-a"}) {
    CAPTURE(ch);
    auto first = h.connect();
    const bool presence = ch.rfind("presence-", 0) == 0;
    h.subscribe(*first, ch, "secret1", "key1", presence ? presence_data("\"1\"") : "");
    auto f = first->take();
    REQUIRE(f.size() >= 2);
    CHECK(event_of(f[0]) == "pusher_internal:subscription_succeeded");
    CHECK(event_of(f[1]) == "pusher:cache_miss");
    CHECK(*f[1].get_string("channel") == ch);
    REQUIRE_FALSE(h.hooks_of("cache_miss").empty());
    CHECK(h.hooks_of("cache_miss").back().channel == ch);
    h.trigger(ch, "price", "{\"v\":1}");
    h.trigger(ch, "price", "{\"v\":2}");
    first->take();
    auto second = h.connect();
    h.subscribe(*second, ch, "secret1", "key1", presence ? presence_data("\"2\"") : "");
    f = second->take();
    REQUIRE(f.size() >= 2);
    CHECK(event_of(f[1]) == "price");
    CHECK(*f[1].get_string("data") == "{\"v\":2}");
  }
  // The cache outlives the subscribers, for 30 minutes.
  auto late = h.connect();
  h.subscribe(*late, "cache-a");
  CHECK(late->named("price").size() == 1);
  h.now += 31 * 60 * 1000;
  auto later = h.connect();
  h.subscribe(*later, "cache-a");
  CHECK(later->named("pusher:cache_miss").size() == 1);
  h.check();
}

TEST_CASE("pusher: client events: not echoed, subscribers only, private/presence only, rate 4301") {
  Harness h;
  auto a = h.connect(), b = h.connect(), outsider = h.connect();
  h.subscribe(*a, "private-chat");
  h.subscribe(*b, "private-chat");
  h.subscribe(*a, "public");
  a->take();
  b->take();
  h.send(*a, R"({"event":"client-typing","channel":"private-chat","data":{"who":"a"}})");
  CHECK(a->take().empty());
  json::Value got = b->one();
  CHECK(event_of(got) == "client-typing");
  CHECK(*data_of(got).get_string("who") == "a");
  CHECK_FALSE(got.find("user_id"));
  REQUIRE(h.hooks_of("client_event").size() == 1);
  CHECK(h.hooks_of("client_event")[0].event == "client-typing");

  h.send(*outsider, R"({"event":"client-typing","channel":"private-chat","data":{}})");
  CHECK(event_of(outsider->one()) == "pusher:error");
  CHECK(b->take().empty());
  h.send(*a, R"({"event":"client-typing","channel":"public","data":{}})");
  CHECK(event_of(a->one()) == "pusher:error");
  h.send(*a, R"({"event":"client-typing","data":{}})");
  CHECK(event_of(a->one()) == "pusher:error");

  // 10 a second; the 11th is refused with 4301 and the connection stays.
  for (int i = 0; i < 9; ++i) h.send(*a, R"({"event":"client-n","channel":"private-chat","data":1})");
  CHECK(b->take().size() == 9);
  h.send(*a, R"({"event":"client-n","channel":"private-chat","data":1})");
  json::Value limited = a->one();
  CHECK(event_of(limited) == "pusher:error");
  CHECK(data_of(limited).find("code")->as_number() == 4301);
  CHECK(b->take().empty());
  CHECK(a->sink.close_code == 0);
  h.now += 1000;
  h.send(*a, R"({"event":"client-n","channel":"private-chat","data":1})");
  CHECK(b->take().size() == 1);
  // Too large.
  h.now += 1000;
  h.send(*a, "{\"event\":\"client-big\",\"channel\":\"private-chat\",\"data\":\"" + std::string(101 * 1024, 'x') + "\"}");
  CHECK(event_of(a->one()) == "pusher:error");
  h.check();
}

TEST_CASE("pusher: client events on presence channels carry the sender's user_id") {
  Harness h;
  auto a = h.connect(), b = h.connect();
  h.subscribe(*a, "presence-p", "secret1", "key1", presence_data("\"ann\""));
  h.subscribe(*b, "presence-p", "secret1", "key1", presence_data("\"bob\""));
  a->take();
  b->take();
  h.send(*a, R"({"event":"client-wave","channel":"presence-p","data":"hi"})");
  json::Value got = b->one();
  CHECK(*got.get_string("user_id") == "ann");
  CHECK(*got.get_string("data") == "hi");
  CHECK(h.hooks_of("client_event")[0].user_id == "ann");
}

TEST_CASE("pusher: signin, server-to-user events, terminate_connections") {
  Harness h;
  auto a = h.connect(), a2 = h.connect(), other = h.connect();
  auto signin = [&](Client& c, std::string user_data) {
    h.send(c, "{\"event\":\"pusher:signin\",\"data\":{\"user_data\":" + Harness::quote(user_data) +
                  ",\"auth\":" + Harness::quote(user_auth("key1", "secret1", c.socket_id, user_data)) + "}}");
  };
  signin(*a, R"({"id":"u1","name":"A"})");
  json::Value ok = a->one();
  CHECK(event_of(ok) == "pusher:signin_success");
  CHECK(*data_of(ok).get_string("user_data") == R"({"id":"u1","name":"A"})");
  signin(*a2, R"({"id":"u1"})");
  CHECK(event_of(a2->one()) == "pusher:signin_success");
  signin(*a, R"({"id":"u1"})");
  CHECK(event_of(a->one()) == "pusher:error");   // already signed in

  // pusher-js subscribes to #server-to-user-ID after signin (empty auth): only its own.
  h.send(*a, R"({"event":"pusher:subscribe","data":{"auth":"","channel":"#server-to-user-u1"}})");
  CHECK(event_of(a->one()) == "pusher_internal:subscription_succeeded");
  h.send(*other, R"({"event":"pusher:subscribe","data":{"auth":"","channel":"#server-to-user-u1"}})");
  CHECK(event_of(other->one()) == "pusher:subscription_error");
  CHECK(h.server->channel_count() == 0);

  CHECK(h.trigger("#server-to-user-u1", "note", "hello").status == 200);
  json::Value note = a->one();
  CHECK(event_of(note) == "note");
  CHECK(*note.get_string("channel") == "#server-to-user-u1");
  CHECK(a2->take().size() == 1);
  CHECK(other->take().empty());

  CHECK(h.api("POST", "/apps/1/users/u1/terminate_connections", "{}").status == 200);
  CHECK(a->sink.close_code == 4009);
  CHECK(a2->sink.close_code == 4009);
  CHECK(other->sink.close_code == 0);
  h.trigger("#server-to-user-u1", "note", "gone");
  h.check();

  // A bad signature closes with 4009 (Pusher: connection not authorized).
  h.send(*other, R"({"event":"pusher:signin","data":{"user_data":"{\"id\":\"x\"}","auth":"key1:00"}})");
  CHECK(other->sink.close_code == 4009);
  // user_data without an id.
  auto c = h.connect();
  signin(*c, R"({"name":"no id"})");
  CHECK(c->sink.close_code == 4009);
  auto d = h.connect();
  h.send(*d, R"({"event":"pusher:signin","data":{}})");
  CHECK(d->sink.close_code == 4009);
  h.check();
}

TEST_CASE("pusher: connections that must sign in are closed with 4009 after the timeout") {
  App app = Harness::app("1", "key1", "secret1");
  app.user_authentication_timeout_ms = 5000;
  Harness h({app});
  auto lazy = h.connect(), quick = h.connect();
  CHECK(h.server->ms_until_next() == 5000);
  const std::string ud = R"({"id":"q"})";
  h.send(*quick, "{\"event\":\"pusher:signin\",\"data\":{\"user_data\":" + Harness::quote(ud) + ",\"auth\":" +
                     Harness::quote(user_auth("key1", "secret1", quick->socket_id, ud)) + "}}");
  h.now += 5000;
  CHECK(h.server->ms_until_next() == 0);
  h.server->run_due();
  CHECK(lazy->sink.close_code == 4009);
  CHECK(quick->sink.close_code == 0);
  CHECK(h.server->ms_until_next() == -1);
  h.check();
}

TEST_CASE("pusher: watchlist online and offline events") {
  Harness h;
  auto signin = [&](Client& c, std::string user_data) {
    h.send(c, "{\"event\":\"pusher:signin\",\"data\":{\"user_data\":" + Harness::quote(user_data) +
                  ",\"auth\":" + Harness::quote(user_auth("key1", "secret1", c.socket_id, user_data)) + "}}");
  };
  auto bob = h.connect();
  signin(*bob, R"({"id":"bob"})");
  bob->take();
  auto alice = h.connect();
  signin(*alice, R"({"id":"alice","watchlist":["bob","carol"]})");
  auto f = alice->take();
  REQUIRE(f.size() == 2);
  CHECK(event_of(f[0]) == "pusher:signin_success");
  CHECK(event_of(f[1]) == "pusher_internal:watchlist_events");
  json::Value events = *data_of(f[1]).find("events");
  REQUIRE(events.items().size() == 1);
  CHECK(*events.items()[0].get_string("name") == "online");
  CHECK(events.items()[0].find("user_ids")->items()[0].as_string() == "bob");

  auto carol = h.connect(), carol2 = h.connect();
  signin(*carol, R"({"id":"carol"})");
  auto online = alice->named("pusher_internal:watchlist_events");
  REQUIRE(online.size() == 1);
  CHECK(data_of(online[0]).find("events")->items()[0].find("user_ids")->items()[0].as_string() == "carol");
  signin(*carol2, R"({"id":"carol"})");
  CHECK(alice->take().empty());   // not her first connection
  h.server->disconnect(carol->id);
  CHECK(alice->take().empty());   // not her last
  h.server->disconnect(carol2->id);
  auto offline = alice->named("pusher_internal:watchlist_events");
  REQUIRE(offline.size() == 1);
  CHECK(*data_of(offline[0]).find("events")->items()[0].get_string("name") == "offline");
  h.server->disconnect(alice->id);
  h.server->disconnect(bob->id);
  h.check();
}

TEST_CASE("pusher: webhook points come at the right moments") {
  Harness h;
  auto a = h.connect(), b = h.connect();
  h.subscribe(*a, "presence-w", "secret1", "key1", presence_data("\"1\""));
  h.subscribe(*b, "presence-w", "secret1", "key1", presence_data("\"1\""));
  h.subscribe(*b, "cache-w");
  std::vector<std::string> kinds;
  for (const Hook& hk : h.hooks) kinds.push_back(hk.kind + " " + hk.channel + " " + hk.user_id);
  CHECK(kinds == std::vector<std::string>{"channel_occupied presence-w ", "member_added presence-w 1",
                                          "channel_occupied cache-w ", "cache_miss cache-w "});
  h.hooks.clear();
  h.server->disconnect(a->id);
  CHECK(h.hooks.empty());
  h.server->disconnect(b->id);
  kinds.clear();
  for (const Hook& hk : h.hooks) kinds.push_back(hk.kind + " " + hk.channel + " " + hk.user_id);
  CHECK(kinds == std::vector<std::string>{"channel_vacated cache-w ", "member_removed presence-w 1",
                                          "channel_vacated presence-w "});
  for (const Hook& hk : h.hooks) CHECK(hk.app == "1");
}

TEST_CASE("pusher: the Webhooks object is made for apps with URLs and sees the calls") {
  App app = Harness::app("1", "key1", "secret1");
  app.webhook_urls = {"http://127.0.0.1:1/hook"};
  Harness h({app});
  auto a = h.connect();
  h.subscribe(*a, "news");
  h.server->disconnect(a->id);
  // The webhook sender is another part's: here only that the server runs with it and
  // forwards the timing calls.
  CHECK(h.server->ms_until_next() >= -1);
  h.server->run_due();
  CHECK(h.hooks.size() == 2);
  CHECK(h.server->metrics().find("atrium_pusher_webhook_points_total 2") != std::string::npos);
}

TEST_CASE("pusher: apps are isolated: same channel name, different subscribers and secrets") {
  Harness h;
  auto one = h.connect("key1"), two = h.connect("key2");
  h.subscribe(*one, "private-shared", "secret1", "key1");
  h.subscribe(*two, "private-shared", "secret1", "key1");   // app 1's secret on app 2
  CHECK(event_of(two->one()) == "pusher:subscription_error");
  h.subscribe(*two, "private-shared", "secret2", "key2");
  CHECK(two->named("pusher_internal:subscription_succeeded").size() == 1);
  one->take();
  h.trigger("private-shared", "e", "for app 1");
  CHECK(one->take().size() == 1);
  CHECK(two->take().empty());
  h.send(*one, R"({"event":"client-x","channel":"private-shared","data":1})");
  CHECK(two->take().empty());
}

TEST_CASE("pusher: unknown events and bad JSON get pusher:error, never a close") {
  Harness h;
  auto c = h.connect();
  for (std::string_view bad : {"", "{", "[]", "42", "\"s\"", "null", R"({"data":{}})", R"({"event":7})",
                               R"({"event":"pusher:nope"})", R"({"event":"whatever"})",
                               R"({"event":"pusher:unsubscribe","data":3})"}) {
    h.send(*c, bad);
    CHECK_MESSAGE(event_of(c->one()) == "pusher:error", bad);
  }
  CHECK(c->sink.close_code == 0);
}

TEST_CASE("pusher: metrics name the atrium_pusher_ series") {
  Harness h;
  auto c = h.connect();
  h.subscribe(*c, "a");
  h.api("GET", "/apps/1/channels");
  h.raw("GET", "/apps/1/channels", {}, {});
  const std::string m = h.server->metrics();
  CHECK(m.find("atrium_pusher_connections 1\n") != std::string::npos);
  CHECK(m.find("atrium_pusher_channels 1\n") != std::string::npos);
  CHECK(m.find("atrium_pusher_subscriptions 1\n") != std::string::npos);
  CHECK(m.find("atrium_pusher_http_requests_total{status=\"2xx\"} 1") != std::string::npos);
  CHECK(m.find("atrium_pusher_http_requests_total{status=\"4xx\"} 1") != std::string::npos);
  CHECK(m.find("atrium_pusher_messages_in_total 1") != std::string::npos);
  CHECK(m.find("atrium_pusher_auth_failures_total 1") != std::string::npos);
}

TEST_CASE("pusher: close_all sends 4200 to everyone and leaves nothing behind") {
  Harness h;
  auto a = h.connect(), b = h.connect("key2");
  h.subscribe(*a, "presence-x", "secret1", "key1", presence_data("\"1\""));
  h.subscribe(*b, "news", "secret2", "key2");
  a->take();
  b->take();
  h.server->close_all();
  CHECK(a->sink.close_code == 4200);
  CHECK(b->sink.close_code == 4200);
  CHECK(data_of(a->one()).find("code")->as_number() == 4200);
  CHECK(h.server->channel_count() == 0);
  h.check();
}

TEST_CASE("pusher: webhooks reach the poster through the Webhooks object, signed with the app's key") {
  struct Posted {
    std::mutex mu;
    std::vector<std::string> bodies;
    std::vector<std::string> keys;
  };
  auto posted = std::make_shared<Posted>();
  std::int64_t now = 1'700'000'000'000;
  Config c;
  App app = Harness::app("1", "key1", "secret1");
  app.webhook_urls = {"http://hooks.invalid/pusher"};
  c.apps = {app, Harness::app("2", "key2", "secret2")};
  c.now_ms = [&now] { return now; };
  c.on_log = [](engine::LogLevel, std::string_view) {};
  c.webhooks.post = [posted](const std::string&, const std::vector<WebhookOptions::Header>& headers,
                             const std::string& body) {
    std::lock_guard<std::mutex> lock(posted->mu);
    posted->bodies.push_back(body);
    for (const auto& [k, v] : headers) {
      if (k == "X-Pusher-Key") posted->keys.push_back(v);
    }
    return 200;
  };
  PusherServer server(std::move(c), nullptr);
  FakeSink s1, s2;
  const ConnId a = server.connect(s1, "key1", {{"protocol", "7"}});
  const ConnId b = server.connect(s2, "key2", {{"protocol", "7"}});
  server.receive(a, R"({"event":"pusher:subscribe","data":{"channel":"news"}})");
  server.receive(b, R"({"event":"pusher:subscribe","data":{"channel":"news"}})");   // no URLs: nothing
  CHECK(server.ms_until_next() >= 0);
  now += 10'000;
  server.run_due();
  auto body_with = [&](std::string_view what) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> lock(posted->mu);
        for (const std::string& body : posted->bodies) {
          if (body.find(what) != std::string::npos) return true;
        }
      }
      server.run_due();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  CHECK(body_with("channel_occupied"));
  server.disconnect(a);
  server.disconnect(b);
  now += 10'000;
  server.run_due();
  CHECK(body_with("channel_vacated"));
  std::lock_guard<std::mutex> lock(posted->mu);
  for (const std::string& key : posted->keys) CHECK(key == "key1");
  CHECK(posted->bodies.size() == 2);
}

TEST_CASE("pusher: cached events of channels nobody asks for again are swept after their 30 minutes") {
  pusher::ChannelRegistry registry;
  const std::int64_t t0 = 1'000'000;
  for (int i = 0; i < 100; ++i)
    registry.cache("cache-" + std::to_string(i), "e", "{}", t0);
  CHECK(registry.cached_count() == 100);
  registry.cache("cache-late", "e", "{}", t0 + pusher::ChannelRegistry::kCacheTtlMs - 1);  // a sweep: none expired yet
  CHECK(registry.cached_count() == 101);
  registry.cache("cache-later", "e", "{}", t0 + pusher::ChannelRegistry::kCacheTtlMs + 60'000);
  CHECK(registry.cached_count() == 2);  // the 100 are gone; the late one is still fresh
  CHECK(registry.cached("cache-late", t0 + pusher::ChannelRegistry::kCacheTtlMs + 60'000) != nullptr);
  CHECK(registry.cached("cache-5", t0 + pusher::ChannelRegistry::kCacheTtlMs + 60'000) == nullptr);
}
