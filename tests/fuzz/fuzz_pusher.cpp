// libFuzzer target: the Pusher protocol (pusher::PusherServer) fed client frames and HTTP
// API requests, one per input line, over three connections of one app. A line is a raw
// frame unless it starts with one of these (the fuzzer cannot forge HMACs, so the target
// signs for it and reaches what lies past the signature checks):
//   \x01N          switch to connection N % 3          \x02   disconnect it and reconnect
//   \x03CH|DATA    pusher:subscribe to CH, signed (channel_data DATA when given)
//   \x04USERDATA   pusher:signin, signed
//   \x05M PATH?Q\tBODY   an HTTP API request, signed (M: G/P/other); Q is k=v&k=v
//   \x06M PATH\tBODY     the same, unsigned
//   \x07           advance the clock 1.5 s and run_due()
//   \x08N          the room's side: kick the first member of chat:a (N even) or close it
// Channels chat.*, private-chat.* and presence-chat.* are rooms of rooms/chat.lua (an engine
// made once for the whole run): its onJoin refuses, its onEvent vetoes, rewrites, raises,
// kicks its sender and closes its room, so every way back from the engine is walked.
// Checks after each line: every frame sent is one JSON object with an event name, every
// HTTP status is a status, PusherServer::check_invariants and Engine::check_invariants
// hold; at the end, with every connection gone, no channel and no engine client is left.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "json/codec.hpp"
#include "pusher/pusher.hpp"
#include "pusher/signature.hpp"

using namespace atrium;
using namespace atrium::pusher;

namespace {

constexpr std::size_t kConns = 3;

constexpr const char* kChat = R"lua(
local Chat = { defaultState = { n = 0 }, defaultMeta = { muted = {} } }
function Chat:onJoin(ctx)
  local info = ctx.pusher and ctx.pusher.userInfo
  if type(info) == "table" and info.banned then return false, "banned" end
  self.state.n = self.state.n + 1
  self:emit("hello", { client = ctx.client })
end
function Chat:onLeave(ctx) self.state.n = self.state.n - 1 end
function Chat:onEvent(event, data, ctx)
  if event == "client-no" then return false end
  if event == "client-up" then return { up = true, was = data } end
  if event == "client-boom" then error("boom") end
  if event == "client-kickme" then self:kick(ctx.client, "asked") return end
  if event == "client-closeit" then self:close() return end
  if event == "client-mute" and ctx.userId then self.meta.muted[ctx.userId] = true return false end
end
return Chat
)lua";

// The engine behind the room channels, made once (an engine per input would be most of
// the time); every input ends with no member anywhere, so rooms do not outlive it.
struct RoomEngine {
  std::unique_ptr<engine::Engine> engine;
  std::size_t base_clients = 0;
  RoomEngine() {
    std::random_device rd;
    const auto dir = std::filesystem::temp_directory_path() / ("atrium-fuzz-pusher-" + std::to_string(rd()));
    std::filesystem::create_directories(dir / "rooms");
    std::ofstream(dir / "rooms" / "chat.lua", std::ios::binary) << kChat;
    engine::EngineConfig cfg;
    cfg.rooms_dir = (dir / "rooms").string();
    cfg.lua_dir = ATRIUM_SOURCE_LUA_DIR;
    cfg.cpu_budget_ms = 100;
    cfg.room_memory_bytes = 8u << 20;
    cfg.on_log = [](engine::LogLevel, std::string_view) {};
    engine = std::make_unique<engine::Engine>(cfg);
    Status started = engine->start();
    FUZZ_CHECK(started.ok(), "engine did not start: %s", started.ok() ? "" : started.error().message.c_str());
    base_clients = engine->connection_count();
  }
};

RoomEngine& shared_engine() {
  static RoomEngine* e = new RoomEngine();   // never destroyed: libFuzzer exits without unwinding
  return *e;
}

// Checks every frame and keeps the socket_id of connection_established (what the signed
// lines sign with).
struct CheckingSink final : engine::ClientSink {
  bool closed = false;
  std::string socket_id;
  void send(const SharedFrame& frame) override {
    Result<json::Value> v = json::parse(frame.view());
    FUZZ_CHECK(v.ok() && v->is_object() && v->get_string("event"), "frame: %s", fuzz::head(frame.view()).c_str());
    if (*v->get_string("event") != "pusher:connection_established") return;
    const std::string* data = v->get_string("data");
    FUZZ_CHECK(data, "connection_established without data");
    Result<json::Value> d = json::parse(*data);
    FUZZ_CHECK(d.ok() && d->is_object() && d->get_string("socket_id"), "data: %s", data->c_str());
    socket_id = *d->get_string("socket_id");
  }
  void close(int code, std::string_view) override {
    FUZZ_CHECK(code >= 4000 && code < 4400, "close code %d", code);
    closed = true;
  }
};

struct Session {
  std::int64_t now = 1'700'000'000'000;
  std::unique_ptr<PusherServer> server;
  CheckingSink sinks[kConns];
  ConnId ids[kConns] = {};
  std::size_t current = 0;

  Session() {
    Config c;
    App app;
    app.id = "1";
    app.key = "key";
    app.secret = "secret";
    app.limits.presence_members = 2;
    app.limits.client_events_per_s = 5;
    app.limits.batch_events = 3;
    app.user_authentication_timeout_ms = 60000;
    App other = app;
    other.id = "2";
    other.key = "key2";
    c.apps = {app, other};
    c.max_http_body = 4096;
    c.now_ms = [this] { return now; };
    c.random_seed = 1;   // the same input, the same run
    c.on_log = [](engine::LogLevel, std::string_view) {};
    server = std::make_unique<PusherServer>(std::move(c), shared_engine().engine.get());
    for (std::size_t i = 0; i < kConns; ++i) open(i);
  }

  void open(std::size_t i) {
    sinks[i].closed = false;
    ids[i] = server->connect(sinks[i], "key", {{"protocol", "7"}});
  }

  HttpResponse http(std::string_view spec, bool sign) {
    // "M PATH?Q\tBODY"
    const char m = spec.empty() ? 'G' : spec[0];
    const std::string method = m == 'G' ? "GET" : m == 'P' ? "POST" : "DELETE";
    spec.remove_prefix(std::min<std::size_t>(spec.size(), 2));
    const auto tab = spec.find('\t');
    std::string_view target = spec.substr(0, tab);
    const std::string body(tab == std::string_view::npos ? std::string_view() : spec.substr(tab + 1));
    const auto q = target.find('?');
    const std::string path(target.substr(0, q));
    std::vector<std::pair<std::string, std::string>> query;
    if (q != std::string_view::npos) {
      std::string_view rest = target.substr(q + 1);
      while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view kv = rest.substr(0, amp);
        const auto eq = kv.find('=');
        query.emplace_back(std::string(kv.substr(0, eq)),
                           eq == std::string_view::npos ? std::string() : std::string(kv.substr(eq + 1)));
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
      }
    }
    if (sign) {
      query.emplace_back("auth_key", "key");
      query.emplace_back("auth_timestamp", std::to_string(now / 1000));
      query.emplace_back("auth_version", "1.0");
      if (!body.empty()) query.emplace_back("body_md5", md5_hex(body));
      auto sorted = query;
      std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
      std::string to_sign = method + "\n" + path + "\n";
      for (std::size_t i = 0; i < sorted.size(); ++i) to_sign += (i ? "&" : "") + sorted[i].first + "=" + sorted[i].second;
      query.emplace_back("auth_signature", hmac_sha256_hex("secret", to_sign));
    }
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.body = body;
    return server->http(r);
  }

  void line(std::string_view l) {
    if (l.empty()) return;
    switch (l[0]) {
      case '\x01':
        current = l.size() > 1 ? static_cast<unsigned char>(l[1]) % kConns : 0;
        return;
      case '\x02':
        server->disconnect(ids[current]);
        open(current);
        return;
      case '\x03': {
        const std::string_view rest = l.substr(1);
        const auto bar = rest.find('|');
        const std::string ch(rest.substr(0, bar));
        const std::string data(bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1));
        std::string frame = "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":";
        json::write_string(ch, frame);
        frame += ",\"auth\":";
        json::write_string(channel_auth("key", "secret", sinks[current].socket_id, ch,
                                        ch.rfind("presence-", 0) == 0 ? data : std::string()),
                           frame);
        if (bar != std::string_view::npos) {
          frame += ",\"channel_data\":";
          json::write_string(data, frame);
        }
        frame += "}}";
        server->receive(ids[current], frame);
        return;
      }
      case '\x04': {
        const std::string ud(l.substr(1));
        std::string frame = "{\"event\":\"pusher:signin\",\"data\":{\"user_data\":";
        json::write_string(ud, frame);
        frame += ",\"auth\":";
        json::write_string(user_auth("key", "secret", sinks[current].socket_id, ud), frame);
        frame += "}}";
        server->receive(ids[current], frame);
        return;
      }
      case '\x05':
      case '\x06': {
        const HttpResponse r = http(l.substr(1), l[0] == '\x05');
        FUZZ_CHECK(r.status >= 200 && r.status < 600, "status %d", r.status);
        if (r.status == 200) {
          Result<json::Value> v = json::parse(r.body);
          FUZZ_CHECK(v.ok() && v->is_object(), "body: %s", fuzz::head(r.body).c_str());
        }
        return;
      }
      case '\x07':
        now += 1500;
        server->run_due();
        return;
      case '\x08': {
        engine::Engine& e = *shared_engine().engine;
        if (l.size() > 1 && static_cast<unsigned char>(l[1]) % 2 == 1) {
          (void)e.close("chat:a");
        } else if (Result<json::Value> m = e.members("chat:a"); m && m->find("members")->size() > 0) {
          (void)e.kick("chat:a", *m->find("members")->items()[0].get_string("client"), "out");
        }
        server->run_due();   // the engine clients of ended subscriptions leave here
        return;
      }
      default:
        server->receive(ids[current], l);
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  Session s;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto nl = text.find('\n', start);
    const std::string_view l = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    s.line(l);
    const std::string problem = s.server->check_invariants();
    FUZZ_CHECK(problem.empty(), "%s after line: %s", problem.c_str(), fuzz::head(l).c_str());
    const Status engine_ok = shared_engine().engine->check_invariants();
    FUZZ_CHECK(engine_ok.ok(), "engine: %s after line: %s", engine_ok.ok() ? "" : engine_ok.error().message.c_str(),
               fuzz::head(l).c_str());
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  for (std::size_t i = 0; i < kConns; ++i) s.server->disconnect(s.ids[i]);
  FUZZ_CHECK(s.server->channel_count() == 0, "channels left: %zu", s.server->channel_count());
  FUZZ_CHECK(s.server->connection_count() == 0, "connections left: %zu", s.server->connection_count());
  FUZZ_CHECK(s.server->check_invariants().empty(), "%s", s.server->check_invariants().c_str());
  s.server.reset();
  engine::Engine& e = *shared_engine().engine;
  e.end_of_pass();
  FUZZ_CHECK(e.connection_count() == shared_engine().base_clients, "engine clients left: %zu",
             e.connection_count() - shared_engine().base_clients);
  FUZZ_CHECK(e.rooms().find("rooms")->size() == 0, "rooms left: %s", json::to_json(e.rooms()).c_str());
  return 0;
}
