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
#include <unordered_map>

#include "engine/engine.hpp"

namespace atrium::net {

struct ServerConfig;
struct Stats;

struct Admitted {
  bool decided = false;             // false: decide() never saw this connection
  engine::Identity identity;
  std::string ip;                   // counted against --max-connections-per-ip until released
};

class Admission {
 public:
  // LWS_CALLBACK_HTTP_CONFIRM_UPGRADE for /ws: 0 to let it go on, or -1 after writing
  // the refusal.
  int decide(lws* wsi, engine::Engine& engine, const ServerConfig& config, Stats& stats);
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
  std::unordered_map<lws*, Admitted> pending_;
  std::unordered_map<std::string, int> per_ip_;   // upgrades admitted and connections open
};

}  // namespace atrium::net
