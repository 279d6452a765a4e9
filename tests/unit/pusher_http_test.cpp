// The Pusher HTTP API (PusherServer::http): signatures, every route, limits, isolation.
#include "pusher_harness.hpp"

using namespace pusher_test;

namespace {

std::vector<std::pair<std::string, std::string>> without(std::vector<std::pair<std::string, std::string>> q,
                                                         std::string_view key) {
  q.erase(std::remove_if(q.begin(), q.end(), [&](auto& p) { return p.first == key; }), q.end());
  return q;
}

void set(std::vector<std::pair<std::string, std::string>>& q, std::string_view key, std::string value) {
  for (auto& p : q) {
    if (p.first == key) p.second = std::move(value);
  }
}

}  // namespace

TEST_CASE("pusher http: a signed trigger is delivered; every broken signature is 401 and delivers nothing") {
  Harness h;
  auto c = h.connect();
  h.subscribe(*c, "news");
  c->take();
  const std::string body = R"({"name":"e","channels":["news"],"data":"hi"})";
  HttpResponse ok = h.api("POST", "/apps/1/events", body);
  CHECK(ok.status == 200);
  CHECK(ok.body == "{}");
  CHECK(ok.content_type == "application/json");
  CHECK(c->take().size() == 1);
  const auto good = h.last_query;

  auto expect_401 = [&](std::vector<std::pair<std::string, std::string>> q, std::string_view b, const char* why) {
    HttpResponse r = h.raw("POST", "/apps/1/events", std::move(q), b);
    CHECK_MESSAGE(r.status == 401, why);
    CHECK(c->take().empty());
  };
  {
    auto q = good;
    set(q, "auth_signature", std::string(64, '0'));
    expect_401(q, body, "wrong signature");
  }
  expect_401(without(good, "auth_signature"), body, "no signature");
  expect_401(without(good, "auth_key"), body, "no key");
  expect_401(without(good, "auth_timestamp"), body, "no timestamp");
  expect_401(without(good, "body_md5"), body, "no body_md5");
  expect_401(good, R"({"name":"e","channels":["news"],"data":"HI"})", "body_md5 mismatch");
  {
    auto q = good;
    set(q, "auth_key", "key2");
    expect_401(q, body, "another app's key");
  }
  // Signed with another secret; expired (and future) timestamps, signed right.
  CHECK(h.api("POST", "/apps/1/events", body, {}, "key1", "secret2").status == 401);
  CHECK(h.api("POST", "/apps/1/events", body, {}, "key1", "secret1", h.now / 1000 - 601).status == 401);
  CHECK(h.api("POST", "/apps/1/events", body, {}, "key1", "secret1", h.now / 1000 + 601).status == 401);
  CHECK(h.api("POST", "/apps/1/events", body, {}, "key1", "secret1", h.now / 1000 - 599).status == 200);
  CHECK(c->take().size() == 1);
  // The signature covers the method and the path.
  CHECK(h.raw("PUT", "/apps/1/events", good, body).status == 401);
  // Unknown app: 404 before anything else.
  CHECK(h.api("POST", "/apps/77/events", body).status == 404);
  CHECK(h.api("GET", "/nope").status == 404);
  CHECK(h.api("GET", "/apps/1/nope").status == 404);
}

TEST_CASE("pusher http: events: channel or channels, socket_id exclusion, info, limits") {
  Harness h;
  auto a = h.connect(), b = h.connect();
  h.subscribe(*a, "x");
  h.subscribe(*b, "x");
  h.subscribe(*a, "y");
  a->take();
  b->take();
  HttpResponse r = h.api("POST", "/apps/1/events",
                         "{\"name\":\"e\",\"channel\":\"x\",\"data\":\"d\",\"socket_id\":\"" + a->socket_id + "\"}");
  CHECK(r.status == 200);
  CHECK(a->take().empty());
  CHECK(b->take().size() == 1);
  r = h.api("POST", "/apps/1/events",
            R"({"name":"e","channels":["x","y"],"data":"d","info":"subscription_count"})");
  CHECK(r.status == 200);
  json::Value info = parse(r.body);
  CHECK(info.find("channels")->find("x")->find("subscription_count")->as_number() == 2);
  CHECK(info.find("channels")->find("y")->find("subscription_count")->as_number() == 1);
  CHECK(a->take().size() == 2);
  CHECK(b->take().size() == 1);

  CHECK(h.api("POST", "/apps/1/events", R"({"channels":["x"],"data":"d"})").status == 400);
  CHECK(h.api("POST", "/apps/1/events", R"({"name":"e","data":"d"})").status == 400);
  CHECK(h.api("POST", "/apps/1/events", R"({"name":"e","channels":["x"]})").status == 400);
  CHECK(h.api("POST", "/apps/1/events", R"({"name":"e","channels":[1],"data":"d"})").status == 400);
  CHECK(h.api("POST", "/apps/1/events", R"({"name":"e","channels":["bad name"],"data":"d"})").status == 400);
  CHECK(h.api("POST", "/apps/1/events", R"(not json)").status == 400);
  CHECK(h.api("POST", "/apps/1/events", R"([1,2])").status == 400);
  CHECK(h.api("POST", "/apps/1/events", "{\"name\":\"" + std::string(201, 'n') + "\",\"channel\":\"x\",\"data\":\"d\"}")
            .status == 400);
  CHECK(h.api("POST", "/apps/1/events", "{\"name\":\"e\",\"channel\":\"x\",\"data\":\"" +
                                            std::string(100 * 1024 + 1, 'd') + "\"}")
            .status == 413);
  std::string many = "[";
  for (int i = 0; i < 101; ++i) many += (i ? ",\"c" : "\"c") + std::to_string(i) + "\"";
  CHECK(h.api("POST", "/apps/1/events", "{\"name\":\"e\",\"channels\":" + many + "],\"data\":\"d\"}").status == 400);
  CHECK(h.api("GET", "/apps/1/events").status == 405);
  CHECK(a->take().empty());
  CHECK(b->take().empty());
  // A non-string data is sent as its JSON text (the SDK always sends a string).
  CHECK(h.api("POST", "/apps/1/events", R"({"name":"e","channel":"x","data":{"k":1}})").status == 200);
  CHECK(*a->one().get_string("data") == "{\"k\":1}");
}

TEST_CASE("pusher http: bodies past max_http_body get 413") {
  Harness h;
  std::string body = "{\"name\":\"e\",\"channel\":\"x\",\"data\":\"" + std::string((1u << 20) + 10, 'd') + "\"}";
  CHECK(h.api("POST", "/apps/1/events", body).status == 413);
  CHECK(h.raw("POST", "/apps/1/events", {}, body).status == 413);
}

TEST_CASE("pusher http: batch_events") {
  Harness h;
  auto a = h.connect();
  h.subscribe(*a, "x");
  h.subscribe(*a, "presence-p", "secret1", "key1", presence_data("\"u\""));
  a->take();
  HttpResponse r = h.api("POST", "/apps/1/batch_events",
                         R"({"batch":[{"name":"a","channel":"x","data":"1"},{"name":"b","channel":"x","data":"2"}]})");
  CHECK(r.status == 200);
  CHECK(r.body == "{}");
  auto f = a->take();
  REQUIRE(f.size() == 2);
  CHECK(event_of(f[0]) == "a");
  CHECK(event_of(f[1]) == "b");
  r = h.api("POST", "/apps/1/batch_events",
            R"({"batch":[{"name":"a","channel":"x","data":"1","info":"subscription_count"},)"
            R"({"name":"b","channel":"presence-p","data":"2","info":"user_count"}]})");
  CHECK(r.status == 200);
  json::Value body = parse(r.body);
  CHECK(body.find("batch")->items()[0].find("subscription_count")->as_number() == 1);
  CHECK(body.find("batch")->items()[1].find("user_count")->as_number() == 1);
  a->take();
  // 11 events: 400 and none delivered; one bad event fails the whole batch.
  std::string batch = "{\"batch\":[";
  for (int i = 0; i < 11; ++i) batch += std::string(i ? "," : "") + R"({"name":"e","channel":"x","data":"d"})";
  CHECK(h.api("POST", "/apps/1/batch_events", batch + "]}").status == 400);
  CHECK(h.api("POST", "/apps/1/batch_events",
              R"({"batch":[{"name":"ok","channel":"x","data":"1"},{"name":"bad","data":"2"}]})")
            .status == 400);
  CHECK(h.api("POST", "/apps/1/batch_events", R"({"nobatch":1})").status == 400);
  CHECK(a->take().empty());
}

TEST_CASE("pusher http: channels, channel, users") {
  Harness h;
  auto a = h.connect(), b = h.connect();
  h.subscribe(*a, "public-1");
  h.subscribe(*a, "private-2");
  h.subscribe(*a, "presence-3", "secret1", "key1", presence_data("\"ann\""));
  h.subscribe(*b, "presence-3", "secret1", "key1", presence_data("\"bob\""));
  h.subscribe(*b, "public-1");

  HttpResponse r = h.api("GET", "/apps/1/channels");
  CHECK(r.status == 200);
  json::Value all = parse(r.body);
  CHECK(all.find("channels")->size() == 3);
  CHECK(all.find("channels")->find("public-1")->size() == 0);

  r = h.api("GET", "/apps/1/channels", {}, {{"filter_by_prefix", "presence-"}, {"info", "user_count"}});
  CHECK(r.status == 200);
  json::Value pres = parse(r.body);
  CHECK(pres.find("channels")->size() == 1);
  CHECK(pres.find("channels")->find("presence-3")->find("user_count")->as_number() == 2);
  r = h.api("GET", "/apps/1/channels", {}, {{"info", "subscription_count"}});
  CHECK(parse(r.body).find("channels")->find("public-1")->find("subscription_count")->as_number() == 2);
  CHECK(h.api("GET", "/apps/1/channels", {}, {{"info", "user_count"}}).status == 400);
  // The query is signed: tampering after signing is 401.
  r = h.api("GET", "/apps/1/channels", {}, {{"filter_by_prefix", "presence-"}});
  auto q = h.last_query;
  set(q, "filter_by_prefix", "private-");
  CHECK(h.raw("GET", "/apps/1/channels", q, {}).status == 401);

  r = h.api("GET", "/apps/1/channels/public-1");
  json::Value one = parse(r.body);
  CHECK(one.find("occupied")->as_bool());
  CHECK(one.find("subscription_count")->as_number() == 2);
  CHECK_FALSE(one.find("user_count"));
  r = h.api("GET", "/apps/1/channels/presence-3", {}, {{"info", "user_count,subscription_count"}});
  one = parse(r.body);
  CHECK(one.find("user_count")->as_number() == 2);
  CHECK(one.find("subscription_count")->as_number() == 2);
  r = h.api("GET", "/apps/1/channels/nobody-here");
  CHECK(r.status == 200);
  CHECK_FALSE(parse(r.body).find("occupied")->as_bool());
  CHECK(h.api("GET", "/apps/1/channels/public-1", {}, {{"info", "user_count"}}).status == 400);

  r = h.api("GET", "/apps/1/channels/presence-3/users");
  CHECK(r.status == 200);
  json::Value users = parse(r.body);
  REQUIRE(users.find("users")->items().size() == 2);
  CHECK(*users.find("users")->items()[0].get_string("id") == "ann");
  CHECK(h.api("GET", "/apps/1/channels/public-1/users").status == 400);
  CHECK(h.api("POST", "/apps/1/channels").status == 405);
}

TEST_CASE("pusher http: apps are isolated: same channel name, own keys") {
  Harness h;
  auto one = h.connect("key1"), two = h.connect("key2");
  h.subscribe(*one, "shared");
  h.subscribe(*two, "shared");
  one->take();
  two->take();
  const std::string body = R"({"name":"e","channel":"shared","data":"d"})";
  CHECK(h.api("POST", "/apps/2/events", body, {}, "key2", "secret2").status == 200);
  CHECK(one->take().empty());
  CHECK(two->take().size() == 1);
  // App 1's credentials on app 2's path, and the other way round.
  CHECK(h.api("POST", "/apps/2/events", body, {}, "key1", "secret1").status == 401);
  CHECK(h.api("POST", "/apps/1/events", body, {}, "key2", "secret2").status == 401);
  CHECK(one->take().empty());
  // socket_id of another app's connection excludes nobody here.
  CHECK(h.api("POST", "/apps/1/events",
              "{\"name\":\"e\",\"channel\":\"shared\",\"data\":\"d\",\"socket_id\":\"" + two->socket_id + "\"}")
            .status == 200);
  CHECK(one->take().size() == 1);
  json::Value list = parse(h.api("GET", "/apps/2/channels", {}, {}, "key2", "secret2").body);
  CHECK(list.find("channels")->size() == 1);
  // Terminating a user of app 1 leaves app 2's user of the same ID.
  auto signin = [&](Client& c, std::string key, std::string secret) {
    const std::string ud = R"({"id":"same"})";
    h.send(c, "{\"event\":\"pusher:signin\",\"data\":{\"user_data\":" + Harness::quote(ud) + ",\"auth\":" +
                  Harness::quote(user_auth(key, secret, c.socket_id, ud)) + "}}");
  };
  signin(*one, "key1", "secret1");
  signin(*two, "key2", "secret2");
  CHECK(h.api("POST", "/apps/1/users/same/terminate_connections", "{}").status == 200);
  CHECK(one->sink.close_code == 4009);
  CHECK(two->sink.close_code == 0);
  h.check();
}
