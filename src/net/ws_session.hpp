// One WebSocket connection: the engine's ClientSink for it, its outbox and its receive side.
// Internal to net/; the lifetime story is at the top of ws_session.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/client_sink.hpp"
#include "engine/engine.hpp"
#include "net/server_state.hpp"
#include "util/frame_queue.hpp"

namespace atrium::net {

// The subprotocol of MessagePack connections (callback.cpp's table has it).
inline constexpr std::string_view kMsgpackProtocol = "atrium.v1.msgpack";

class WsSession final : public engine::ClientSink {
 public:
  WsSession(Server::State& server, lws* wsi) noexcept : server_(server), wsi_(wsi) {}

  // Called from the lws callback, on the loop thread. Each returns what the callback
  // returns to lws (0, or -1 to close this connection).
  // `admitted`: what Admission::decide made of the upgrade; a connection it never saw
  // (nothing decided) is closed, never let in anonymous.
  // `deflate`: permessage-deflate was agreed in the handshake (callback.cpp).
  int on_established(Admitted admitted, bool deflate);
  const std::string& ip() const noexcept { return ip_; }
  int on_receive(const void* in, std::size_t len);
  int on_writeable();
  void on_peer_close(const void* in, std::size_t len) noexcept;
  void on_closed();

  // engine::ClientSink
  void send(const SharedFrame& json_line) override;
  void close(int code, std::string_view reason) override;

  // The coalescing window is over: write what is queued now, or ask lws for WRITEABLE.
  void flush_now();

 private:
  void deliver(std::string_view message);
  void deliver_msgpack(std::string_view message);
  std::size_t message_cap() const noexcept;
  bool inflate_message(std::string_view compressed, bool text);
  SharedFrame msgpack_twin(const SharedFrame& json_line);
  void note_socket_read();
  void cull();
  void start_close(int code, std::string_view reason);
  int finish_close();
  bool can_linger() const noexcept;
  int linger();
  bool write_queued();
  bool write_shared(const SharedFrame& line);
  bool write_in_place(const SharedFrame& frame, bool compressed);
  SharedFrame compressed_form(const SharedFrame& line);
  void note_compressed(const SharedFrame& line, const SharedFrame& zip);
  bool write_mixed(std::size_t count, std::size_t total);
  bool write_joined(std::size_t count, std::size_t total);
  unsigned char* join_lines(unsigned char* p, std::size_t from, std::size_t to) const;
  bool write_separate(std::size_t count);
  bool written(bool ok, std::size_t count, std::size_t total);
  bool write_text(unsigned char* payload, std::size_t n);
  bool write_raw(unsigned char* frame, std::size_t n);
  void write_close_frame(std::string_view reason);
  void want_write();
  void request_write();   // WRITEABLE in the next turn of the loop
  bool stalled() const noexcept;

  Server::State& server_;
  lws* wsi_;
  engine::ClientId client_ = 0;         // the engine's id, or the guest's (guest_ set)
  GuestProtocol* guest_ = nullptr;      // a connection of the guest protocol, not Atrium's
  std::string ip_;                      // counted per address until on_closed

  // Outbound: lines waiting for the end of the window or the next WRITEABLE.
  FrameQueue outbox_;
  std::uint64_t write_asked_pass_ = 0;  // Server::State::pass when WRITEABLE was asked; 0: none

  std::size_t rx_bytes_ = 0;           // of the message being received, across chunks

  // What few connections need, allocated on demand so an idle one holds none of it: the
  // text of a message that spans chunks (one that fits a chunk goes to the engine straight
  // from lws' buffer) and the reason of a pending close.
  struct Rare {
    std::string rx;
    std::string close_reason;
  };
  Rare& rare() { return rare_ ? *rare_ : *(rare_ = std::make_unique<Rare>()); }
  std::unique_ptr<Rare> rare_;

  std::uint16_t close_code_ = 0;       // a close is pending (sent once the outbox drains)
  std::uint16_t peer_close_code_ = 0;  // what the client's close frame said
  std::uint32_t read_turn_ = 0;        // the last turn (server_.pass) it joined read_fds
  // UTF-8 of the text message being received, across chunks: continuation bytes still
  // owed by the last character, and the range the next one must fall in.
  std::uint8_t utf8_need_ = 0;
  std::uint8_t utf8_lo_ = 0x80;
  std::uint8_t utf8_hi_ = 0xBF;
  bool check_utf8(const unsigned char* p, std::size_t n) noexcept;
  bool connected_ = false;             // engine.connect done: disconnect owed
  bool culled_ = false;                // slow reader or gone: nothing more is written
  bool flush_queued_ = false;          // in server_.flush_queue
  bool raw_frames_ = false;            // we write frame headers ourselves (on_established)
  bool msgpack_ = false;               // atrium.v1.msgpack: binary MessagePack both ways
  bool deflate_ = false;               // permessage-deflate agreed (raw frames only)
  bool rx_compressed_ = false;         // the message being received is compressed
  bool rx_frame_ended_ = true;         // the last chunk ended a frame: the next starts one
  bool peer_closing_ = false;          // the client's close frame came
  bool close_written_ = false;         // our close frame went to lws (lingering close)
  bool lingering_ = false;             // SHUT_WR done: reading and dropping until the end
};

// Ends the coalescing window for every connection waiting on it (from the loop, once
// server.window_end_us has passed).
void flush_waiting(Server::State& server);

}  // namespace atrium::net
