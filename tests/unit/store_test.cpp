// Durable rooms: the SQLite store on its own, the output gate, and a restore, through the
// engine's API (docs/rooms.md "Durable rooms"). Restarts and kill -9 over real processes are
// in tests/e2e/durable.test.mjs.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "engine_harness.hpp"
#include "store/sqlite_store.hpp"

namespace atrium::test {
namespace {

struct TempDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("atrium-store-" + std::to_string(std::random_device{}()));
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

constexpr const char* kLedger = R"(
local L = {
  defaultState = { n = 0, restores = 0 },
  defaultMeta = { secret = 0 },
  options = { persist = true, patchRate = 10, reconnectGrace = 30 },
  actions = {},
}
function L.actions.add(self)
  self.state.n = self.state.n + 1
  self.meta.secret = self.meta.secret + 2
  return self.state.n
end
function L:secret() return self.meta.secret end
function L:onRestore() self.state.restores = self.state.restores + 1 end
return L)";

std::function<void(engine::EngineConfig&)> with_store(const TempDir& dir) {
  return [path = dir.path.string()](engine::EngineConfig& cfg) {
    cfg.open_store = [path](bool create) { return store::open_sqlite_store(path, store::Durability::process, create); };
  };
}

}  // namespace

TEST_CASE("the SQLite store: nothing made until asked, then rooms, changes and seats read back") {
  TempDir dir;
  auto none = store::open_sqlite_store(dir.path.string(), store::Durability::process, false);
  REQUIRE(none.ok());
  CHECK(none.value() == nullptr);
  CHECK_FALSE(std::filesystem::exists(dir.path));
  {
    auto opened = store::open_sqlite_store(dir.path.string(), store::Durability::power, true);
    REQUIRE(opened.ok());
    engine::RoomStore& s = *opened.value();
    CHECK_FALSE(s.pending());
    s.snapshot(engine::StoredRoom{"t:1", "t", "00ff", 3, 1, R"({"a":1})", R"({"m":2})", {}});
    s.change("t:1", engine::StoredChange{2, 4, R"([{"op":"replace","path":"/a","value":2}])", "[]"});
    s.seat(engine::StoredSeat{"t:1", 7, std::string(32, 'a'), "ada"});
    s.snapshot(engine::StoredRoom{"t:2", "t", "0011", 0, 1, "{}", "{}", {}});
    s.drop("t:2");
    CHECK(s.pending());
    REQUIRE(s.commit().ok());
    CHECK_FALSE(s.pending());
    CHECK(s.bytes() > 0);
  }
  auto again = store::open_sqlite_store(dir.path.string(), store::Durability::process, false);
  REQUIRE(again.ok());
  REQUIRE(again.value());
  auto world = again.value()->load();
  REQUIRE(world.ok());
  REQUIRE(world.value().rooms.size() == 1);
  const engine::StoredRoom& r = world.value().rooms[0];
  CHECK(r.id == "t:1");
  CHECK(r.epoch == "00ff");
  CHECK(r.seq == 3);
  CHECK(r.state == R"({"a":1})");
  REQUIRE(r.changes.size() == 1);
  CHECK(r.changes[0].seq == 4);
  REQUIRE(world.value().seats.size() == 1);
  CHECK(world.value().seats[0].client == 7);
  CHECK(world.value().seats[0].user_id == "ada");
}

TEST_CASE("a file that is not a database is refused with its name") {
  TempDir dir;
  std::filesystem::create_directories(dir.path);
  std::ofstream(dir.path / "atrium.db") << std::string(8192, 'x');
  auto opened = store::open_sqlite_store(dir.path.string(), store::Durability::process, false);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().message.find("atrium.db") != std::string::npos);
}

TEST_CASE("the output gate: a durable change's reply waits for the pass's commit; others do not wait") {
  TempDir dir;
  TempRooms rooms;
  rooms.write("ledger.lua", kLedger);
  Harness h(rooms, with_store(dir));
  FakeClient& a = h.connect();
  h.engine->receive(a.id, R"({"op":"join","room":"ledger:1","ref":1})");
  CHECK(a.lines.empty());  // the join made the room and its seat: both wait for the commit
  h.engine->end_of_pass();
  REQUIRE(a.lines.size() == 1);
  CHECK(a.lines[0].find(R"("ref":1,"ok":true)") != std::string::npos);
  h.engine->receive(a.id, R"({"op":"call","room":"ledger:1","method":"add","ref":2})");
  h.engine->receive(a.id, R"({"op":"ping","ref":3})");
  CHECK(a.lines.size() == 1);  // held, in order
  h.engine->end_of_pass();
  REQUIRE(a.lines.size() == 3);
  CHECK(a.lines[1].find(R"("ref":2,"ok":true,"result":1)") != std::string::npos);
  CHECK(a.lines[2].find(R"("ref":3)") != std::string::npos);
  // A request that changes nothing durable is not held.
  h.engine->receive(a.id, R"({"op":"ping","ref":4})");
  CHECK(a.lines.size() == 4);
}

TEST_CASE("a durable room comes back with state, meta, epoch, seq and its held seat; onRestore runs") {
  TempDir dir;
  TempRooms rooms;
  rooms.write("ledger.lua", kLedger);
  std::string epoch, session, client;
  double seq = 0;
  {
    Harness h(rooms, with_store(dir));
    FakeClient& a = h.connect();
    h.engine->receive(a.id, R"({"op":"join","room":"ledger:1","ref":1})");
    h.engine->end_of_pass();
    REQUIRE(ok(a.last("reply", 1)));
    for (int i = 0; i < 300; ++i) {  // past a snapshot (every 256 changes)
      h.engine->receive(a.id, R"({"op":"call","room":"ledger:1","method":"add"})");
      h.engine->end_of_pass();
    }
    h.advance(20);
    h.engine->end_of_pass();
    const json::Value room = h.engine->room("ledger:1").value();
    epoch = *room.get_string("epoch");
    seq = room.find("seq")->as_number();
    client = a.wire_id;
    // No clean shutdown: the engine is simply gone, as after kill -9.
  }
  Harness h(rooms, with_store(dir));
  const json::Value room = h.engine->room("ledger:1").value();
  CHECK(*room.get_string("epoch") == epoch);
  CHECK(room.find("seq")->as_number() >= seq);
  CHECK(room.get_object("state")->find("n")->as_number() == 300);
  CHECK(room.get_object("state")->find("restores")->as_number() == 1);
  CHECK(h.engine->call("ledger:1", "secret", json::Value::array()).value().find("result")->as_number() == 600);
  const json::Value members = h.engine->members("ledger:1").value();
  REQUIRE(members.get_array("members")->size() == 1);
  CHECK(*members.get_array("members")->items()[0].get_string("client") == client);
  CHECK(members.get_array("members")->items()[0].find("connected")->as_bool() == false);
  CHECK(h.engine->check_invariants().ok());
  // A new client is not given a restored client's id.
  FakeClient& b = h.connect();
  CHECK(b.wire_id != client);
}

}  // namespace atrium::test
