// Channels that are rooms (src/pusher/rooms.hpp, docs/pusher.md "Channels that are rooms"):
// a real engine on a temporary rooms/ directory, Pusher connections and native engine
// clients in the same rooms.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "engine_harness.hpp"
#include "pusher/rooms.hpp"
#include "pusher_harness.hpp"
#include "store/sqlite_store.hpp"

namespace {

using namespace atrium;
using pusher_test::data_of;
using pusher_test::event_of;
using pusher_test::presence_data;

// A room that shows what a Pusher subscription looks like to a script: it keeps each
// member's ctx.pusher in state, refuses banned users, mutes typing of muted users, rewrites
// shouts, fails on booms, and relays native members' events itself.
constexpr const char* kChat = R"(
local Chat = { defaultState = { members = {} }, defaultMeta = { muted = {} } }
function Chat:onJoin(ctx)
  local p = ctx.pusher
  if p and p.userInfo and p.userInfo.banned then return false, "banned here" end
  if p and p.userInfo and p.userInfo.selfkick then self:kick(ctx.client, "not today") end
  if p then
    self.state.members[ctx.client] = { channel = p.channel, userId = p.userId or false,
                                       ctxUser = ctx.userId or false,
                                       name = p.userInfo and p.userInfo.name or false }
  else
    self.state.members[ctx.client] = { native = true }
  end
  self:emit("hello", { client = ctx.client })
end
function Chat:onLeave(ctx)
  self.state.members[ctx.client] = nil
  self:emit("bye", { client = ctx.client, pusher = ctx.pusher ~= nil })
end
function Chat:onEvent(event, data, ctx)
  if ctx.pusher == nil then self:emit(event, data, { except = ctx.client }) return end
  if event == "client-typing" and ctx.userId and self.meta.muted[ctx.userId] then return false end
  if event == "client-shout" then return { text = string.upper(data.text), by = ctx.userId } end
  if event == "client-boom" then error("no booms") end
  if event == "client-kickme" then self:kick(ctx.client, "asked for it") return false end
  if event == "client-closeit" then self:close() return false end
end
function Chat:mute(user) self.meta.muted[user] = true return true end
Chat.actions = { announce = function(self, ctx, text) self:emit("announcement", { text = text }) end }
return Chat
)";

// A durable room: the engine holds every frame of a loop pass that changed it until the
// pass's store commit (end_of_pass), so the join's answer comes after the subscribe returned.
constexpr const char* kVault = R"(
local V = { defaultState = { n = 0 }, options = { persist = true } }
function V:onJoin(ctx) self.state.n = self.state.n + 1 end
function V:onLeave(ctx) self.state.n = self.state.n - 1 end
return V
)";

struct World {
  test::TempRooms rooms;
  std::filesystem::path store_dir = std::filesystem::temp_directory_path() /
                                    ("atrium-pusher-store-" + std::to_string(std::random_device{}()));
  std::unique_ptr<test::Harness> eng;
  std::unique_ptr<pusher_test::Harness> px;

  World() {
    rooms.write("chat.lua", kChat);
    rooms.write("vault.lua", kVault);
    rooms.write("broken.lua", "return {");   // fails to load: its channels must not open
    eng = std::make_unique<test::Harness>(rooms, [this](engine::EngineConfig& cfg) {
      cfg.open_store = [path = store_dir.string()](bool create) {
        return store::open_sqlite_store(path, store::Durability::process, create);
      };
    });
    px = std::make_unique<pusher_test::Harness>(
        std::vector<pusher::App>{pusher_test::Harness::app("1", "key1", "secret1"),
                                 pusher_test::Harness::app("2", "key2", "secret2")},
        120, eng->engine.get());
  }
  ~World() {
    px.reset();   // before the engine (Pusher connections are gone by then)
    eng.reset();
    std::error_code ec;
    std::filesystem::remove_all(store_dir, ec);
  }

  json::Value room_state(std::string_view id) {
    Result<json::Value> r = eng->engine->room(id);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return *r->find("state");
  }
  void check() {
    px->check();
    Status s = eng->engine->check_invariants();
    CHECK_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  }
  // The presence subscription of `user` with `info` (JSON), its frames taken.
  std::unique_ptr<pusher_test::Client> member(std::string_view user, std::string_view info = R"({"name":"x"})",
                                              std::string_view channel = "presence-chat.lobby") {
    auto c = px->connect();
    px->subscribe(*c, channel, "secret1", "key1", presence_data(pusher_test::Harness::quote(user), info));
    return c;
  }
};

std::vector<json::Value> events_named(std::vector<json::Value> frames, std::string_view name) {
  std::vector<json::Value> out;
  for (json::Value& f : frames) {
    if (event_of(f) == name) out.push_back(std::move(f));
  }
  return out;
}

TEST_CASE("pusher rooms: the channel name maps to a room when the script exists") {
  auto has = [](std::string_view t) { return t == "chat" || t == "game"; };
  using pusher::route_channel;
  CHECK(route_channel("presence-chat.lobby", 0, "1", has).room == "chat:lobby");
  CHECK(route_channel("private-chat.lobby", 0, "1", has).room == "chat:lobby");
  CHECK(route_channel("chat.lobby", 0, "1", has).room == "chat:lobby");
  CHECK(route_channel("chat.lobby.2", 0, "1", has).room == "chat:lobby.2");   // split at the first '.'
  CHECK(route_channel("presence-chat.lobby", 1, "app-2", has).room == "chat:lobby@app-2");
  CHECK(route_channel("presence-other.lobby", 0, "1", has).room.empty());     // no script
  CHECK(route_channel("presence-chat", 0, "1", has).room.empty());            // no instance
  CHECK(route_channel("chat.", 0, "1", has).room.empty());
  CHECK(route_channel(".lobby", 0, "1", has).room.empty());
  CHECK(route_channel("private-encrypted-chat.lobby", 0, "1", has).room.empty());
  CHECK(route_channel("private-cache-chat.lobby", 0, "1", has).room.empty());
  CHECK(route_channel("cache-chat.lobby", 0, "1", has).room.empty());
  CHECK(route_channel("#server-to-user-chat.x", 0, "1", has).room.empty());
  // A script's channel that cannot name a room is refused, never served without the script.
  pusher::RoomRoute bad = route_channel("presence-chat.a=b", 0, "1", has);
  CHECK(bad.room.empty());
  CHECK(!bad.error.empty());
  CHECK(!route_channel("chat." + std::string(130, 'x'), 0, "1", has).error.empty());
}

TEST_CASE("pusher rooms: a presence subscription is a join that onJoin sees with ctx.pusher") {
  World w;
  test::FakeClient& native = w.eng->connect();
  CHECK(w.eng->request(native, R"({"op":"join","room":"chat:lobby"})").find("ok")->as_bool());
  native.take();

  auto alice = w.member("alice", R"({"name":"Alice"})");
  std::vector<json::Value> got = alice->take();
  REQUIRE(!got.empty());
  CHECK(event_of(got[0]) == "pusher_internal:subscription_succeeded");
  CHECK(data_of(got[0]).find("presence")->find("count")->as_number() == 1);
  // The room's own onJoin emit reaches the new subscriber after subscription_succeeded.
  REQUIRE(events_named(got, "hello").size() == 1);

  json::Value members = *w.room_state("chat:lobby").find("members");
  CHECK(members.size() == 2);
  bool seen = false;
  for (const auto& [client, m] : members.members()) {
    if (m.find("native")) continue;
    seen = true;
    CHECK(*m.get_string("channel") == "presence-chat.lobby");
    CHECK(*m.get_string("userId") == "alice");
    CHECK(*m.get_string("ctxUser") == "alice");
    CHECK(*m.get_string("name") == "Alice");
  }
  CHECK(seen);
  // The native member heard the join through the room.
  CHECK(native.last("event").get_string("event") != nullptr);
  w.check();
}

TEST_CASE("pusher rooms: onJoin's refusal is a subscription error and leaves nothing behind") {
  World w;
  const std::size_t before = w.eng->engine->connection_count();
  auto mallory = w.member("mallory", R"({"banned":true})");
  json::Value err = mallory->one();
  CHECK(event_of(err) == "pusher:subscription_error");
  CHECK(*err.get_string("channel") == "presence-chat.lobby");
  CHECK(*data_of(err).get_string("type") == "AuthError");
  CHECK(*data_of(err).get_string("error") == "banned here");
  CHECK(data_of(err).find("status")->as_number() == 403);
  CHECK(w.px->server->channel_count() == 0);
  CHECK(w.eng->engine->connection_count() == before);
  w.check();

  // An onJoin that kicks the joiner: the subscription still gets an answer, and ends.
  auto kicked = w.member("kim", R"({"selfkick":true})");
  w.px->server->run_due();
  std::vector<json::Value> answer = kicked->take();
  REQUIRE(!answer.empty());
  REQUIRE(answer.size() == 1);
  CHECK(event_of(answer[0]) == "pusher:subscription_error");
  CHECK(*data_of(answer[0]).get_string("error") == "not today");
  CHECK(w.px->server->room_subscription_count() == 0);
  w.check();

  // A script that failed to load refuses its channels; it never serves them without itself.
  auto c = w.px->connect();
  w.px->subscribe(*c, "private-broken.x");
  json::Value broken = c->one();
  CHECK(event_of(broken) == "pusher:subscription_error");
  CHECK(*data_of(broken).get_string("type") == "ServerError");
  // A channel of a script that cannot name a room is refused outright.
  w.px->subscribe(*c, "private-chat.a=b");
  CHECK(event_of(c->one()) == "pusher:subscription_error");
  w.check();
}

TEST_CASE("pusher rooms: client events pass through onEvent, which vetoes and rewrites") {
  World w;
  test::FakeClient& native = w.eng->connect();
  w.eng->request(native, R"({"op":"join","room":"chat:lobby"})");
  auto alice = w.member("alice");
  auto bob = w.member("bob");
  // The same room by its private channel name.
  auto carol = w.px->connect();
  w.px->subscribe(*carol, "private-chat.lobby");
  alice->take();
  bob->take();
  carol->take();
  native.take();

  w.px->send(*alice, R"({"event":"client-typing","channel":"presence-chat.lobby","data":{"on":true}})");
  std::vector<json::Value> at_bob = events_named(bob->take(), "client-typing");
  REQUIRE(at_bob.size() == 1);
  CHECK(data_of(at_bob[0]).find("on")->as_bool());
  CHECK(*at_bob[0].get_string("user_id") == "alice");     // presence: who sent it
  REQUIRE(events_named(carol->take(), "client-typing").size() == 1);
  CHECK(alice->take().empty());                           // never echoed
  json::Value ev = native.last("event");
  REQUIRE(!ev.is_null());
  CHECK(*ev.get_string("event") == "client-typing");
  CHECK(ev.find("data")->find("on")->as_bool());
  CHECK(ev.get_string("from") != nullptr);

  // Muted: onEvent returns false and nobody gets it.
  REQUIRE(w.eng->engine->call("chat:lobby", "mute", json::parse(R"(["alice"])").value()).ok());
  w.px->send(*alice, R"({"event":"client-typing","channel":"presence-chat.lobby","data":{"on":true}})");
  CHECK(bob->take().empty());
  CHECK(carol->take().empty());
  CHECK(native.take().empty());
  // bob is not muted.
  w.px->send(*bob, R"({"event":"client-typing","channel":"presence-chat.lobby","data":{"on":true}})");
  CHECK(events_named(alice->take(), "client-typing").size() == 1);

  // Rewritten: what onEvent returns is what the others get.
  w.px->send(*carol, R"({"event":"client-shout","channel":"private-chat.lobby","data":{"text":"hi"}})");
  std::vector<json::Value> shout = events_named(alice->take(), "client-shout");
  REQUIRE(shout.size() == 1);
  CHECK(*data_of(shout[0]).get_string("text") == "HI");
  CHECK(*native.last("event").find("data")->get_string("text") == "HI");
  bob->take();

  // onEvent raising: the sender hears why, nobody else hears anything, the room goes on.
  w.px->send(*alice, R"({"event":"client-boom","channel":"presence-chat.lobby","data":{}})");
  std::vector<json::Value> boom = alice->take();
  REQUIRE(boom.size() == 1);
  CHECK(event_of(boom[0]) == "pusher:error");
  CHECK(json::to_json(boom[0]).find("no booms") != std::string::npos);
  CHECK(bob->take().empty());
  w.check();
}

TEST_CASE("pusher rooms: the room's emits reach subscribers; native events reach them through the script") {
  World w;
  test::FakeClient& native = w.eng->connect();
  w.eng->request(native, R"({"op":"join","room":"chat:lobby"})");
  auto alice = w.member("alice");
  alice->take();
  CHECK(w.eng->request(native, R"({"op":"call","room":"chat:lobby","method":"announce","args":["doors open"]})")
            .find("ok")
            ->as_bool());
  std::vector<json::Value> got = events_named(alice->take(), "announcement");
  REQUIRE(got.size() == 1);
  CHECK(*got[0].get_string("channel") == "presence-chat.lobby");
  CHECK(got[0].find("data")->is_string());                // Pusher's data is a JSON string
  CHECK(*data_of(got[0]).get_string("text") == "doors open");

  w.eng->request(native, R"({"op":"emit","room":"chat:lobby","event":"wave","data":{"hand":"left"}})");
  std::vector<json::Value> wave = events_named(alice->take(), "wave");
  REQUIRE(wave.size() == 1);
  CHECK(*data_of(wave[0]).get_string("hand") == "left");
  CHECK(wave[0].find("user_id") == nullptr);             // not from a presence member
  w.check();
}

TEST_CASE("pusher rooms: HTTP triggers reach native members, once per room, socket_id excluded") {
  World w;
  test::FakeClient& native = w.eng->connect();
  w.eng->request(native, R"({"op":"join","room":"chat:lobby"})");
  auto alice = w.member("alice");
  auto bob = w.member("bob");
  alice->take();
  bob->take();
  native.take();

  std::string body = R"({"name":"order.shipped","channels":["presence-chat.lobby","private-chat.lobby"],)"
                     R"("data":"{\"id\":7}","socket_id":")" + bob->socket_id + R"("})";
  CHECK(w.px->api("POST", "/apps/1/events", body).status == 200);
  std::vector<json::Value> at_native = native.take();
  REQUIRE(at_native.size() == 1);                        // two names of one room: once
  CHECK(*at_native[0].get_string("event") == "order.shipped");
  CHECK(at_native[0].find("data")->find("id")->as_number() == 7);   // the JSON the string held
  std::vector<json::Value> at_alice = alice->take();
  REQUIRE(at_alice.size() == 1);
  CHECK(event_of(at_alice[0]) == "order.shipped");
  CHECK(data_of(at_alice[0]).find("id")->as_number() == 7);
  CHECK(bob->take().empty());                            // its socket_id was excluded

  // A trigger to a room nobody is in is not an error.
  CHECK(w.px->trigger("presence-chat.empty", "x", "{}").status == 200);
  w.check();
}

TEST_CASE("pusher rooms: kicks, closes and disconnects end the subscription on both sides") {
  World w;
  test::FakeClient& native = w.eng->connect();
  w.eng->request(native, R"({"op":"join","room":"chat:lobby"})");
  auto alice = w.member("alice");
  auto bob = w.member("bob");
  alice->take();
  bob->take();
  native.take();

  json::Value members = *w.eng->engine->members("chat:lobby")->find("members");
  std::string alice_client;
  for (const json::Value& m : members.items()) {
    if (m.get_string("userId") && *m.get_string("userId") == "alice") alice_client = *m.get_string("client");
  }
  REQUIRE(!alice_client.empty());
  REQUIRE(w.eng->engine->kick("chat:lobby", alice_client, "be nice").ok());
  w.px->server->run_due();   // the engine client leaves once nothing of the engine runs
  std::vector<json::Value> left = events_named(alice->take(), "atrium:left");
  REQUIRE(left.size() == 1);
  CHECK(*data_of(left[0]).get_string("reason") == "kicked");
  CHECK(*data_of(left[0]).get_string("message") == "be nice");
  CHECK(events_named(bob->take(), "pusher_internal:member_removed").size() == 1);
  // alice is no longer subscribed: her client events are refused.
  w.px->send(*alice, R"({"event":"client-typing","channel":"presence-chat.lobby","data":{}})");
  CHECK(event_of(alice->one()) == "pusher:error");
  w.check();

  // bob's connection goes: onLeave runs, the native member hears it.
  native.take();
  const std::size_t before = w.eng->engine->connection_count();
  bob.reset();
  CHECK(w.eng->engine->connection_count() == before - 1);
  std::vector<json::Value> bye;
  for (json::Value& f : native.take()) {
    if (f.get_string("event") && *f.get_string("event") == "bye") bye.push_back(f);
  }
  REQUIRE(bye.size() == 1);
  CHECK(bye[0].find("data")->find("pusher")->as_bool());
  CHECK(w.room_state("chat:lobby").find("members")->size() == 1);

  // The room closes: the subscriber hears it, and is subscribed no more.
  auto carol = w.member("carol");
  carol->take();
  REQUIRE(w.eng->engine->close("chat:lobby").ok());
  w.px->server->run_due();
  std::vector<json::Value> closed = events_named(carol->take(), "atrium:left");
  REQUIRE(closed.size() == 1);
  CHECK(*data_of(closed[0]).get_string("reason") == "closed");
  CHECK(w.px->server->channel_count() == 0);
  w.check();
}

TEST_CASE("pusher rooms: onEvent that kicks its sender or closes the room, from inside the relay") {
  World w;
  auto alice = w.member("alice");
  auto bob = w.member("bob");
  alice->take();
  bob->take();
  w.px->send(*alice, R"({"event":"client-kickme","channel":"presence-chat.lobby","data":{}})");
  std::vector<json::Value> left = events_named(alice->take(), "atrium:left");
  REQUIRE(left.size() == 1);
  CHECK(*data_of(left[0]).get_string("message") == "asked for it");
  CHECK(events_named(bob->take(), "client-kickme").empty());   // vetoed as well
  w.check();
  w.px->send(*bob, R"({"event":"client-closeit","channel":"presence-chat.lobby","data":{}})");
  CHECK(events_named(bob->take(), "atrium:left").size() == 1);
  CHECK(w.px->server->channel_count() == 0);
  CHECK(w.px->server->room_subscription_count() == 0);
  w.check();
}

TEST_CASE("pusher rooms: a durable room answers at the end of the pass; an unsubscribe before that lets the join go") {
  World w;
  auto a = w.px->connect();
  w.px->subscribe(*a, "private-vault.x");
  CHECK(a->take().empty());                       // held with the pass's store commit
  CHECK(w.px->server->room_subscription_count() == 1);
  w.check();
  w.eng->engine->end_of_pass();                   // the commit: the answer goes out
  std::vector<json::Value> answer = a->take();
  REQUIRE(!answer.empty());
  CHECK(event_of(answer[0]) == "pusher_internal:subscription_succeeded");
  CHECK(w.room_state("vault:x").find("n")->as_number() == 1);

  auto b = w.px->connect();
  w.px->subscribe(*b, "private-vault.x");
  CHECK(b->take().empty());
  w.px->send(*b, R"({"event":"pusher:unsubscribe","data":{"channel":"private-vault.x"}})");
  CHECK(w.px->server->room_subscription_count() == 1);   // only a's
  w.eng->engine->end_of_pass();
  w.px->server->run_due();
  CHECK(b->take().empty());                       // the late answer goes nowhere
  w.check();
  CHECK(w.room_state("vault:x").find("n")->as_number() == 1);   // b joined and left again
}

TEST_CASE("pusher rooms: channels without a script and other apps stay apart") {
  World w;
  const std::size_t before = w.eng->engine->connection_count();
  auto a = w.member("alice", R"({"name":"A"})", "presence-other.lobby");
  CHECK(event_of(a->one()) == "pusher_internal:subscription_succeeded");
  CHECK(w.eng->engine->connection_count() == before);    // served by Pusher alone

  auto b = w.px->connect("key2");
  w.px->subscribe(*b, "private-chat.lobby", "secret2", "key2");
  CHECK(event_of(b->take().at(0)) == "pusher_internal:subscription_succeeded");
  CHECK(w.eng->engine->room("chat:lobby@2").ok());
  CHECK(!w.eng->engine->room("chat:lobby").ok());
  w.check();
}

// Random subscribes, unsubscribes, client events, triggers, kicks, room closes, native
// emits and disconnects: after every step both sides agree with themselves, and the engine
// holds exactly the native clients and one client per live room subscription.
TEST_CASE("pusher rooms: random operations keep the engine and the Pusher side consistent") {
  World w;
  std::mt19937 rng(20261207);
  const std::vector<std::string> channels = {"presence-chat.a", "private-chat.a", "chat.a", "presence-chat.b",
                                             "private-other.a"};
  std::vector<std::unique_ptr<pusher_test::Client>> pushers;
  std::vector<test::FakeClient*> natives;
  const std::size_t base = w.eng->engine->connection_count();
  for (int step = 0; step < 1500; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op == 0 || pushers.empty()) {
      pushers.push_back(w.px->connect());
    } else if (op == 1 && pushers.size() > 1) {
      pushers.erase(pushers.begin() + static_cast<long>(rng() % pushers.size()));
    } else if (op <= 4) {
      auto& c = *pushers[rng() % pushers.size()];
      const std::string& ch = channels[rng() % channels.size()];
      const bool banned = rng() % 8 == 0;
      const std::string user = "u" + std::to_string(rng() % 6);
      w.px->subscribe(c, ch, "secret1", "key1",
                      ch.rfind("presence-", 0) == 0
                          ? presence_data(pusher_test::Harness::quote(user), banned ? R"({"banned":true})" : "{}")
                          : std::string());
    } else if (op == 5) {
      auto& c = *pushers[rng() % pushers.size()];
      w.px->send(c, R"({"event":"pusher:unsubscribe","data":{"channel":")" + channels[rng() % channels.size()] +
                        R"("}})");
    } else if (op == 6) {
      auto& c = *pushers[rng() % pushers.size()];
      static const char* events[] = {"client-typing", "client-shout", "client-boom", "client-x",
                                     "client-kickme", "client-closeit"};
      w.px->send(c, std::string(R"({"event":")") + events[rng() % 6] + R"(","channel":")" +
                        channels[rng() % channels.size()] + R"(","data":{"text":"t"}})");
      w.px->now += 1000;   // past the client-event rate
    } else if (op == 7) {
      w.px->trigger(channels[rng() % channels.size()], "news", R"({"n":1})");
    } else if (op == 8) {
      const std::string room = rng() % 2 ? "chat:a" : "chat:b";
      if (rng() % 4 == 0) {
        (void)w.eng->engine->close(room);
      } else if (Result<json::Value> m = w.eng->engine->members(room); m && m->find("members")->size() > 0) {
        const json::Value& list = *m->find("members");
        const json::Value& victim = list.items()[rng() % list.size()];
        (void)w.eng->engine->kick(room, *victim.get_string("client"), "out");
      }
      w.px->server->run_due();
    } else {
      if (natives.size() < 3 || rng() % 2) {
        test::FakeClient& n = w.eng->connect();
        w.eng->engine->receive(n.id, rng() % 2 ? R"({"op":"join","room":"chat:a"})" : R"({"op":"join","room":"chat:b"})");
        natives.push_back(&n);
      } else {
        test::FakeClient& n = *natives[rng() % natives.size()];
        w.eng->engine->receive(n.id, R"({"op":"emit","room":"chat:a","event":"wave","data":1})");
      }
    }
    w.eng->engine->end_of_pass();
    w.px->server->run_due();
    w.check();
    for (auto& c : pushers) c->take();
    for (test::FakeClient* n : natives) n->take();
    // One engine client per subscription served by a room, nothing left over.
    REQUIRE(w.eng->engine->connection_count() == base + natives.size() + w.px->server->room_subscription_count());
  }
  // The walk did reach the interesting states.
  const std::string metrics = w.px->server->metrics();
  CHECK(metrics.find("atrium_pusher_room_joins_total 0\n") == std::string::npos);
  CHECK(metrics.find("atrium_pusher_room_refusals_total 0\n") == std::string::npos);
  pushers.clear();
  w.px->server->run_due();
  CHECK(w.eng->engine->connection_count() == base + natives.size());
  w.check();
}

}  // namespace
