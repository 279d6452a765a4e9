// The HTTP fallback (docs/protocol.md "HTTP fallback"), for networks that break WebSocket
// upgrades: the server's frames as a Server-Sent Events stream (GET /ws/events), the
// client's requests as POSTs (POST /ws/send?stream=ID). One SseSession is the engine's
// ClientSink for one stream, as a WsSession is for one WebSocket: the engine cannot tell
// them apart. Internal to net/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/client_sink.hpp"
#include "engine/engine.hpp"
#include "net/admission.hpp"
#include "net/server_state.hpp"
#include "util/frame_queue.hpp"

namespace atrium::net {

class SseSession final : public engine::ClientSink {
 public:
  SseSession(Server::State& server, lws* wsi) noexcept : server_(server), wsi_(wsi) {}
  ~SseSession() override;

  // LWS_CALLBACK_HTTP for GET /ws/events, once admission let it in: the engine connects
  // it (its welcome and URL joins queue up) and the stream's headers are asked to go out.
  void start(Admitted admitted);
  // LWS_CALLBACK_HTTP_WRITEABLE: what is queued, as `data:` events. -1: close.
  int on_writeable();
  // LWS_CALLBACK_CLOSED_HTTP: the stream is gone, which for the engine is a drop (its seats
  // are held for a resume on a new stream).
  void on_closed();
  // POST /ws/send: the body's requests, one JSON text per line, in order.
  void deliver(std::string_view body);
  // From the loop, about once a second: a comment line when the stream has been silent for
  // the heartbeat interval, so that proxies do not end an idle response.
  void keep_alive(std::int64_t now_ms);

  const std::string& id() const noexcept { return id_; }
  const std::string& ip() const noexcept { return ip_; }

  // POST /ws/send?...&close=1: the client is done, as a WebSocket closed with 1000 (its
  // rooms' onLeave at once, no seat held); the stream ends once what is queued is out.
  void close_clean();

  // engine::ClientSink
  void send(const SharedFrame& line) override;
  void close(int code, std::string_view reason) override;

 private:
  void want_write();

  Server::State& server_;
  lws* wsi_;
  engine::ClientId client_ = 0;
  bool connected_ = false;          // engine.connect done: a disconnect is owed
  std::string id_;                  // the stream's secret: POSTs name it
  std::string ip_;
  FrameQueue outbox_;
  bool headers_sent_ = false;
  bool stream_announced_ = false;   // the `event: stream` with the id went out
  bool ping_due_ = false;
  bool closing_ = false;            // write what is queued, then end the response
  bool clean_ = false;              // close_clean(): the disconnect is a leave, not a drop
  std::int64_t last_write_ms_ = 0;
};

}  // namespace atrium::net
