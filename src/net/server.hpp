// The libwebsockets transport: one context, one vhost, the WebSocket endpoint on /ws and
// the HTTP API on the same port, all driven by the one thread that drives the engine.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.hpp"
#include "engine/engine.hpp"
#include "net/guest_protocol.hpp"
#include "util/result.hpp"

namespace atrium::net {

using LogSink = std::function<void(engine::LogLevel, std::string_view)>;

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;                              // 0: pick a free port (see Server::port())
  std::string public_dir;                       // static files at "/"; empty: none
  std::string web_dir;                          // the engine's own pages at "/_atrium/"
  std::string admin_token;                      // HTTP write routes; empty: open
  std::size_t max_message_bytes = 65536;        // past it: close 1009
  int heartbeat_ms = 25000;                     // ping after this silence, drop after twice it
  std::size_t outbox_bytes = 1u << 20;          // queued past it: close 1013 (slow reader)
  std::string watch_dir;                        // rooms/ to hot-reload from; empty: none
  // The coalescing window (docs/protocol.md "Notes for this server", Writes: one write per
  // connection, coalesced under light load over a short, bounded window): output for an
  // idle connection waits this long for more lines to join it in one write, and input that
  // comes meanwhile is read at the window's end, in one turn of the loop (server.cpp). 0:
  // write in the next pass, read as it comes. 2 ms: p99 under 5 ms at ~200k and ~1M
  // deliveries/s (bench/README.md, the window curve).
  int coalesce_us = 2000;
  // "poll" (lws' own loop) or "libuv" (epoll; net/event_loop.hpp says when each is better).
  std::string event_loop = "poll";
  // Who may connect (docs/protocol.md "Connecting: tokens, origins, TLS").
  std::shared_ptr<const auth::JwtVerifier> jwt;  // null: a connection that brings a token is refused
  bool require_auth = false;                    // no valid token: 401
  std::vector<std::string> allowed_origins;     // WebSocket upgrades and HTTP writes; empty: any
  bool require_origin = false;                  // no Origin header: 403
  std::string tls_cert;                         // PEM files; both set: TLS only on the port
  std::string tls_key;
  // permessage-deflate (docs/protocol.md "Compression"): agreed with a client that offers
  // it; messages of at least deflate_min_bytes go out compressed, once per broadcast.
  bool deflate = true;
  std::size_t deflate_min_bytes = 256;
  int rate = 0;                                 // messages/s per connection, burst the same; 0: off
  int max_connections_per_ip = 0;               // WebSocket connections per address; 0: off
  LogSink on_log;                               // one line each, no newline; default stderr
  // Another protocol on the same port (guest_protocol.hpp), e.g. Pusher's; null: none.
  std::shared_ptr<GuestProtocol> guest;
};

class Server {
 public:
  // Creates the context and listens. Fails (with a one-line message) when the address
  // cannot be bound. The engine must be started and must outlive the Server.
  static Result<std::unique_ptr<Server>> create(engine::Engine& engine, ServerConfig config);
  ~Server();  // destroys the context; connections still open are dropped
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port actually listened on (the real one when ServerConfig::port was 0).
  int port() const noexcept;

  // Serves until request_stop(), then shuts down: engine.shutdown() closes every client
  // with 1001, and the loop serves until they are all gone or about 2 s have passed.
  Status run();

  // Async-signal-safe and thread-safe: sets a flag and wakes the loop.
  void request_stop() noexcept;

  // The same for SIGHUP: the loop then loads ServerConfig::tls_cert and tls_key again from
  // their paths. New connections get the new certificate, established ones keep theirs; a
  // pair that cannot be used leaves the old one in place (one `error` line says why). No
  // effect without TLS.
  void request_tls_reload() noexcept;

  // One pass that does not wait (for a host that owns the loop: libatrium's step): serves
  // what the sockets have ready, then the engine's due work and the writes whose coalescing
  // window is over. Instead of run(), never with it.
  Status serve_ready();

  struct State;

 private:
  explicit Server(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace atrium::net
