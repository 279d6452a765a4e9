// A protocol served beside Atrium's own on the same port: today the Pusher Channels
// protocol (src/pusher/, wired in by cli/serve.cpp). WebSocket upgrades to the paths it
// claims become its connections instead of the engine's (same framing, heartbeat, limits
// and slow-reader rules; each line it sends is one WebSocket message, never JSON Lines);
// HTTP requests to the paths it claims are its routes, authenticated by the guest itself
// (no admin token, no Origin check). Everything is called on the loop thread. Knows
// nothing of libwebsockets, so a guest does not link it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/client_sink.hpp"

namespace atrium::net {

class GuestProtocol {
 public:
  using Pairs = std::vector<std::pair<std::string, std::string>>;  // decoded query arguments
  struct Reply {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
  };

  virtual ~GuestProtocol() = default;

  virtual bool claims_websocket(std::string_view path) const = 0;
  virtual bool claims_http(std::string_view path) const = 0;
  // Messages longer than this (or than --max-message-bytes, if that is more) are not
  // read: too_large() is called (the guest may queue a frame that says why), then the
  // connection is closed with 1009.
  virtual std::size_t max_message_bytes() const = 0;
  virtual void too_large(std::uint64_t conn, std::size_t bytes, std::size_t limit) = 0;

  // A connection to a claimed path was established (it passed the Origin and
  // per-address checks). The sink stays valid until disconnect().
  virtual std::uint64_t connect(engine::ClientSink& sink, std::string_view path,
                                const Pairs& query) = 0;
  virtual void receive(std::uint64_t conn, std::string_view message) = 0;
  virtual void receive_binary(std::uint64_t conn) = 0;
  virtual void disconnect(std::uint64_t conn) = 0;

  // "GET", "POST", ...; the path decoded, without its query; the body read whole (bodies
  // past 1 MiB are refused with 413 before this is called).
  virtual Reply http(std::string_view method, std::string_view path, const Pairs& query,
                     std::string_view body) = 0;

  // Work of its own that falls due later: ms until it (-1: none), then run_due().
  virtual std::int64_t ms_until_next() const = 0;
  virtual void run_due() = 0;
  // The server is stopping: close every connection (the server then waits, as for its own,
  // about 2 s for them to go).
  virtual void shutdown() = 0;
  // Appended to GET /metrics (Prometheus text, whole lines).
  virtual std::string metrics() const = 0;
};

}  // namespace atrium::net
