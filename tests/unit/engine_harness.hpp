// Test harness for the engine: a temporary rooms/ directory, an Engine on it, and
// in-memory clients that record every line the engine sends them.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "json/codec.hpp"

namespace atrium::test {

class TempRooms {
 public:
  TempRooms() {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("atrium-unit-" + std::to_string(rd()));
    std::filesystem::create_directories(dir_ / "rooms");
  }
  ~TempRooms() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void write(const std::string& name, const std::string& lua) const {
    std::ofstream(dir_ / "rooms" / name, std::ios::binary) << lua;
  }
  // Copies tests/fixtures/rooms/NAME (tests run from the project root).
  void copy_fixture(const std::string& name) const {
    std::ifstream in("tests/fixtures/rooms/" + name, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "missing fixture " << name);
    std::ofstream(dir_ / "rooms" / name, std::ios::binary) << in.rdbuf();
  }
  std::string path() const { return (dir_ / "rooms").string(); }

 private:
  std::filesystem::path dir_;
};

class FakeClient : public engine::ClientSink {
 public:
  void send(const SharedFrame& line) override { lines.emplace_back(line.view()); }
  void close(int code, std::string_view) override { closed_with = code; }

  // Every line received so far, parsed; clears the inbox.
  std::vector<json::Value> take() {
    std::vector<json::Value> out;
    for (const std::string& l : lines) {
      auto v = json::parse(l);
      REQUIRE_MESSAGE(v.ok(), "engine sent a line that is not JSON: " << l);
      out.push_back(std::move(v.value()));
    }
    lines.clear();
    return out;
  }
  // The last line with op == `op` (and ref == ref when ref >= 0), or null.
  json::Value last(const std::string& op, double ref = -1) {
    json::Value found;
    for (json::Value& v : take()) {
      const std::string* o = v.get_string("op");
      if (!o || *o != op) continue;
      if (ref >= 0) {
        const json::Value* r = v.find("ref");
        if (!r || !r->is_number() || r->as_number() != ref) continue;
      }
      found = v;
    }
    return found;
  }

  std::vector<std::string> lines;
  int closed_with = 0;
  engine::ClientId id = 0;
  std::string wire_id;
};

class Harness {
 public:
  explicit Harness(const TempRooms& rooms, int cpu_budget_ms = 200,
                   std::size_t room_memory_bytes = 64u << 20)
      : Harness(rooms, [&](engine::EngineConfig& cfg) {
          cfg.cpu_budget_ms = cpu_budget_ms;
          cfg.room_memory_bytes = room_memory_bytes;
        }) {}

  // Any other setting: `tweak` changes the defaults before the engine starts.
  Harness(const TempRooms& rooms, const std::function<void(engine::EngineConfig&)>& tweak) {
    engine::EngineConfig cfg;
    cfg.rooms_dir = rooms.path();
    cfg.lua_dir = ATRIUM_SOURCE_LUA_DIR;
    tweak(cfg);
    cfg.on_log = [this](engine::LogLevel, std::string_view line) { log.emplace_back(line); };
    engine = std::make_unique<engine::Engine>(cfg);
    auto started = engine->start();
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
  }

  FakeClient& connect() {
    clients.push_back(std::make_unique<FakeClient>());
    FakeClient& c = *clients.back();
    c.id = engine->connect(c);
    auto welcome = c.take();
    REQUIRE(welcome.size() == 1);
    c.wire_id = *welcome[0].get_string("client");
    return c;
  }

  // Sends a request with the next ref and returns its reply.
  json::Value request(FakeClient& c, std::string body) {
    const double ref = ++next_ref;
    body.insert(1, "\"ref\":" + std::to_string(static_cast<int>(ref)) + ",");
    engine->receive(c.id, body);
    json::Value reply = c.last("reply", ref);
    REQUIRE_MESSAGE(!reply.is_null(), "no reply to " << body);
    return reply;
  }

  // Like request, but keeps every other line in the client's inbox.
  json::Value request_keep(FakeClient& c, std::string body) {
    const double ref = ++next_ref;
    body.insert(1, "\"ref\":" + std::to_string(static_cast<int>(ref)) + ",");
    engine->receive(c.id, body);
    for (const std::string& l : c.lines) {
      auto v = json::parse(l);
      if (v && v->get_string("op") && *v->get_string("op") == "reply" && v->find("ref")->as_number() == ref)
        return v.value();
    }
    FAIL("no reply to " << body);
    return {};
  }

  // Lets timers (patch batching, ticks, setTimeout) come due.
  void advance(int ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      engine->run_due();
    }
    engine->run_due();
  }

  std::unique_ptr<engine::Engine> engine;
  std::vector<std::unique_ptr<FakeClient>> clients;
  std::vector<std::string> log;
  double next_ref = 0;
};

inline bool ok(const json::Value& reply);
inline std::string error_code(const json::Value& reply);
inline const json::Value& result(const json::Value& reply);

// An engine serving tests/fixtures/rooms/healthy.lua (the bystander that must not notice
// the hostile rooms) and the named fixtures, with one connection in healthy:1.
struct FixtureEngine {
  TempRooms rooms;
  std::unique_ptr<Harness> h;
  FakeClient* c = nullptr;

  explicit FixtureEngine(std::initializer_list<const char*> fixtures,
                         const std::function<void(engine::EngineConfig&)>& tweak =
                             [](engine::EngineConfig& cfg) {
                               cfg.cpu_budget_ms = 100;
                               cfg.room_memory_bytes = 8u << 20;
                             }) {
    rooms.copy_fixture("healthy.lua");
    for (const char* f : fixtures) rooms.copy_fixture(f);
    h = std::make_unique<Harness>(rooms, tweak);
    c = &h->connect();
    REQUIRE(ok(join("healthy:1")));
  }
  // A room type of the test's own, loaded as a save into rooms/ would load it.
  void script(const std::string& file, const std::string& lua) {
    rooms.write(file, lua);
    h->engine->reload_script(file);
  }
  json::Value join(const std::string& room, FakeClient* who = nullptr) {
    return h->request(who ? *who : *c, "{\"op\":\"join\",\"room\":\"" + room + "\"}");
  }
  json::Value call(const std::string& room, const std::string& method, const std::string& args = "[]") {
    return h->request(*c, "{\"op\":\"call\",\"room\":\"" + room + "\",\"method\":\"" + method +
                              "\",\"args\":" + args + "}");
  }
  // The room's state as GET /api/rooms/:id shows it (valid until the next call).
  const json::Value* state(const std::string& room) {
    auto r = h->engine->room(room);
    REQUIRE(r.ok());
    last_room_ = r.value();
    return last_room_.get_object("state");
  }
  void require_healthy_still_serves() { CHECK(result(call("healthy:1", "add")).is_number()); }

 private:
  json::Value last_room_;
};

inline bool ok(const json::Value& reply) {
  const json::Value* v = reply.find("ok");
  return v && v->is_bool() && v->as_bool();
}
inline std::string error_code(const json::Value& reply) {
  const json::Value* e = reply.get_object("error");
  return e && e->get_string("code") ? *e->get_string("code") : "";
}
inline std::string error_message(const json::Value& reply) {
  const json::Value* e = reply.get_object("error");
  return e && e->get_string("message") ? *e->get_string("message") : "";
}
inline std::string error_where(const json::Value& reply) {
  const json::Value* e = reply.get_object("error");
  return e && e->get_string("where") ? *e->get_string("where") : "";
}
inline const json::Value& result(const json::Value& reply) {
  static const json::Value none;
  const json::Value* r = reply.find("result");
  return r ? *r : none;
}

}  // namespace atrium::test
