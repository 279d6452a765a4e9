// libFuzzer target: the HTTP API's routes and bodies (net::HttpApi, which knows nothing of
// libwebsockets) against a started engine. Input: the first byte picks the method (GET,
// POST, DELETE, other), then the percent-decoded path up to the first '\n', then the body.
// A path the API does not own() is not handed to it (the transport serves it as a file).
// After each request: the response body is JSON (or /metrics text), the status is an HTTP
// status, and Engine::check_invariants holds; then every room is closed so each input
// starts from the same engine (connection "c1", room types counter and chat).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "engine/engine.hpp"
#include "fuzz_common.hpp"
#include "json/codec.hpp"
#include "net/http_api.hpp"

using namespace atrium;

namespace {

class NullClient final : public engine::ClientSink {
 public:
  void send(const SharedFrame&) override {}
  void close(int, std::string_view) override {}
};

constexpr const char* kCounter = R"lua(
local Counter = { defaultState = { n = 0, log = atrium.array() } }
Counter.actions = {}
function Counter.actions.add(self, ctx, by)
  self.state.n = self.state.n + (tonumber(by) or 1)
  return self.state.n
end
function Counter.actions.push(self, ctx, v)
  table.insert(self.state.log, v)
  return #self.state.log
end
function Counter.actions.fail(self, ctx, msg) error(tostring(msg)) end
return Counter
)lua";

constexpr const char* kChat = R"lua(
local Chat = { defaultState = { lines = atrium.array() } }
function Chat:onJoin(ctx) return true end
function Chat:onEvent(event, data, ctx)
  table.insert(self.state.lines, { event = event, data = data })
end
Chat.actions = {}
function Chat.actions.say(self, ctx, text) self.state.last = text return true end
return Chat
)lua";

struct World {
  std::filesystem::path dir;
  std::unique_ptr<engine::Engine> engine;
  NullClient client;
  net::Stats stats;
  std::unique_ptr<net::HttpApi> open_api;
  std::unique_ptr<net::HttpApi> guarded_api;

  World() {
    std::random_device rd;
    dir = std::filesystem::temp_directory_path() / ("atrium-fuzz-http-" + std::to_string(rd()));
    std::filesystem::create_directories(dir / "rooms");
    std::ofstream(dir / "rooms" / "counter.lua", std::ios::binary) << kCounter;
    std::ofstream(dir / "rooms" / "chat.lua", std::ios::binary) << kChat;
    engine::EngineConfig cfg;
    cfg.rooms_dir = (dir / "rooms").string();
    cfg.lua_dir = ATRIUM_SOURCE_LUA_DIR;
    cfg.cpu_budget_ms = 100;
    cfg.room_memory_bytes = 8u << 20;
    cfg.on_log = [](engine::LogLevel, std::string_view) {};
    engine = std::make_unique<engine::Engine>(cfg);
    Status started = engine->start();
    if (!started) {
      std::fprintf(stderr, "fuzz_http: engine did not start: %s\n", started.error().message.c_str());
      std::abort();
    }
    engine->connect(client);  // "c1"
    open_api = std::make_unique<net::HttpApi>(*engine, stats, "", nullptr);
    guarded_api = std::make_unique<net::HttpApi>(*engine, stats, "s3cret", nullptr);
  }
  ~World() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

World& world() {
  static World* w = new World();  // never destroyed: libFuzzer exits without unwinding
  return *w;
}

void close_all_rooms(engine::Engine& engine) {
  const json::Value list = engine.rooms();
  const json::Value* rooms = list.get_array("rooms");
  if (!rooms) return;
  for (const json::Value& r : rooms->items())
    if (const std::string* id = r.get_string("id")) (void)engine.close(*id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  World& w = world();
  static constexpr net::HttpMethod kMethods[] = {net::HttpMethod::get, net::HttpMethod::post,
                                                 net::HttpMethod::del, net::HttpMethod::other};
  const net::HttpMethod method = kMethods[data[0] % 4];
  const std::string_view rest = fuzz::as_text(data + 1, size - 1);
  const std::size_t nl = rest.find('\n');
  const std::string_view path = rest.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);

  // The admin token check, on the body as an Authorization header.
  const bool allowed = w.guarded_api->authorized(method, body);
  if (method != net::HttpMethod::get && allowed) {
    std::string_view t = body.substr(body.find(' ') + 1);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    FUZZ_CHECK(t == "s3cret", "authorized a wrong token: %s", fuzz::head(body).c_str());
  }

  if (!net::HttpApi::owns(path)) return 0;
  net::HttpRequest request{method, path, body};
  net::HttpResponse response(16);
  w.open_api->handle(request, response);
  FUZZ_CHECK(response.status >= 200 && response.status <= 599, "status %d", response.status);
  if (path != "/metrics" || response.status != 200) {
    // A room's state may be 64 levels deep, and a response wraps it in a few more.
    Result<json::Value> parsed = json::parse(response.body(), json::ParseOptions{json::kMaxDepth + 4});
    FUZZ_CHECK(parsed.ok() && parsed->is_object(), "response is not a JSON object: %s\n  path: %s",
               fuzz::head(response.body()).c_str(), fuzz::head(path).c_str());
  }
  w.engine->run_due();
  w.engine->end_of_pass();
  Status inv = w.engine->check_invariants();
  FUZZ_CHECK(inv.ok(), "engine invariant broken: %s\n  path: %s\n  body: %s",
             inv.error().message.c_str(), fuzz::head(path).c_str(), fuzz::head(body).c_str());
  close_all_rooms(*w.engine);
  w.engine->end_of_pass();
  inv = w.engine->check_invariants();
  FUZZ_CHECK(inv.ok(), "engine invariant broken after closing the rooms: %s",
             inv.error().message.c_str());
  return 0;
}
