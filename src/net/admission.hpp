// Who may open a WebSocket (docs/protocol.md "Connecting: tokens, origins, TLS"): each
// upgrade is decided here, before lws accepts it, so a refused one costs no session and
// gets a plain HTTP status: 403 for an origin or the connection gate, 401 for a missing
// or bad token, 429 past the connections allowed from one address. What an admitted
// upgrade turned out to be (its identity, its address) waits here for ESTABLISHED.
// Internal to net/.
#pragma once

#include <libwebsockets.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/engine.hpp"

namespace atrium::net {

struct ServerConfig;
struct Stats;

struct Admitted {
  bool decided = false;             // false: decide() never saw this connection
  engine::Identity identity;
  std::vector<engine::JoinOnConnect> joins;  // /ws?join=ROOM&payload=JSON (joins_of_url)
  std::string ip;                   // counted against --max-connections-per-ip until released
  // An upgrade to a path of the guest protocol (guest_protocol.hpp): that path and the
  // query; empty path: Atrium's own /ws.
  std::string guest_path;
  engine::ConnectRequest::Pairs query;
};

// The joins a /ws URL asks for (docs/protocol.md "Joining on connect"): every `join=ROOM`
// in order, each with the `payload=JSON` (an object) that follows it before the next join.
// At most kMaxJoinsOnConnect. An error says what is wrong (the upgrade is refused 400).
inline constexpr std::size_t kMaxJoinsOnConnect = 32;
Result<std::vector<engine::JoinOnConnect>> joins_of_url(const engine::ConnectRequest::Pairs& query);

class Admission {
 public:
  // LWS_CALLBACK_HTTP_CONFIRM_UPGRADE for /ws: 0 to let it go on, or -1 after writing
  // the refusal.
  int decide(lws* wsi, engine::Engine& engine, const ServerConfig& config, Stats& stats);
  // The same for a path of the guest protocol: only the Origin and per-address checks (a
  // guest authenticates in its own way; tokens and rooms/_connect.lua are Atrium's).
  int decide_guest(lws* wsi, std::string_view path, const ServerConfig& config, Stats& stats);
  // LWS_CALLBACK_ESTABLISHED: what decide() admitted this connection as.
  Admitted take(lws* wsi);
  // LWS_CALLBACK_WSI_DESTROY: an upgrade decided but never established gives its place back.
  void forget(lws* wsi);
  // An established connection from `ip` is gone.
  void release(const std::string& ip);

  // The HTTP API's write routes: false when the request's Origin is not allowed (or
  // missing under --require-origin); the caller answers 403.
  static bool origin_ok(lws* wsi, const ServerConfig& config);

 private:
  int check_origin_and_address(lws* wsi, const std::string& ip, const ServerConfig& config,
                               Stats& stats);

  std::unordered_map<lws*, Admitted> pending_;
  std::unordered_map<std::string, int> per_ip_;   // upgrades admitted and connections open
};

// "a=1&b=two" as lws splits it: one pair per argument, already URL-decoded.
engine::ConnectRequest::Pairs query_args(lws* wsi);

}  // namespace atrium::net
