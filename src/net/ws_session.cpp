// One WebSocket connection.
//
// lws hands each connection zeroed C memory (the pss), so the callback news one WsSession
// on ESTABLISHED and deletes it on CLOSED; the pss only holds the pointer. The engine keeps
// a ClientSink& to it between connect() (ESTABLISHED) and disconnect() (CLOSED), and may
// call send() or close() from any callback of any connection: both only queue, because a
// wsi may be written or closed only from its own callbacks (lws 4.1: lws_write() only from
// that wsi's WRITEABLE, and never close another wsi synchronously from inside a callback),
// or, for a raw write, from the loop between turns (flush_now).
//
// Outbound: one write at the end of the coalescing window (flush_now) or per WRITEABLE,
// carrying everything queued as one text message of
// JSON Lines (docs/protocol.md "Transport", and "Notes for this server", Writes). A
// lone line goes out in place from its SharedFrame headroom, framed once for all the
// connections it goes to (ws_frame.hpp); several are joined in the server's scratch
// buffer. Queuing a line is a push of a reference (util/frame_queue.hpp). A connection of
// the guest protocol (guest_protocol.hpp: Pusher's clients read one JSON object per
// message) gets the same write, its lines framed as separate messages (write_separate).
// On a connection that agreed permessage-deflate (permessage_deflate.hpp), a line of at
// least --deflate-min-bytes goes out compressed, as a message of its own, compressed once
// by the first connection that sends it for all of them (compressed_form, write_mixed).
// Compressed client messages are gathered whole and inflated by the server's one inflater
// (inflate_message).
//
// Slow readers: a connection whose queue passes --outbox-bytes while its socket is not
// draining (a WRITEABLE asked for kStallPasses passes ago has not come) has its queue
// dropped and is closed with 1013. A queue that grows within a pass or two is the server's
// own backlog, not the client's fault (a burst, a busy loop under load), and is let
// through up to kHardCapFactor times the cap, which bounds the memory either way.
//
// Coalescing: when output starts queuing on an idle connection, WRITEABLE is asked for only
// at the end of the server's coalescing window (ServerConfig::coalesce_us; one window for
// all, kept by the loop in server.cpp), so that the lines of several passes leave in one
// write. A connection that is already behind, has a lot queued or is closing does not wait.
//
// Closing: close() lets what is queued drain, then the next WRITEABLE writes the close frame
// itself and closes lingering: shutdown(SHUT_WR) sends FIN after the frame, and the socket
// stays open, its input read and dropped, until the client closes its side (its close
// frame, or FIN: lws then closes) or kLingerSecs pass. Why: a socket closed with unread
// input (a client still sending: the rest of an over-size message, a flood) sends RST, and
// the client's kernel drops what it had not yet handed over, our close frame with it (the
// client sees 1006). Returning -1, as before, left that to lws: it sends the frame and
// waits up to 5 s for the client's answer, but it does not wait for FIN (4.1.6 half-closes
// and closes in one go), and when input made it close a second time before the frame was
// out (on_receive refusing one chunk after another) it sent none. What on_receive refuses
// (1009, bad UTF-8) now starts such a close and drops the rest of the input. A client that
// never becomes writeable again is dropped by a timeout after kCloseGraceSecs. Under TLS
// (no half-close of the plain socket under a TLS stream) and for a stream lws frames
// itself, the old way stays: lws sends the frame and closes. Closes lws decides on its own
// (a protocol error) do not come through here: lws 4.1.6 half-closes and closes at once.
// That is also why the server checks UTF-8 itself and lws does not
// (LWS_SERVER_OPTION_VALIDATE_UTF8 is off: server.cpp): lws closed a bad text frame before
// its close frame was even written when more of the frame followed.
// (docs/design.md 4.3)
#include "net/ws_session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "engine/protocol.hpp"
#include "json/messagepack.hpp"
#include "net/ws_frame.hpp"

namespace atrium::net {

namespace {

std::string wire_id(engine::ClientId id) { return "c" + std::to_string(id); }

// Past this much queued (or half the outbox cap), waiting out the coalescing window gains
// nothing.
constexpr std::size_t kFlushEarlyBytes = 64 * 1024;

// See the top of the file.
constexpr std::uint64_t kStallPasses = 3;
constexpr std::size_t kHardCapFactor = 4;

// How long a lingering close waits for the client to close its side (see the top).
constexpr int kLingerSecs = 2;

// The server's scratch strings for compression give back what one rare large message grew
// them to (--max-message-bytes may be up to 1 GiB).
constexpr std::size_t kScratchKeepBytes = 1u << 20;
void keep_small(std::string& scratch) {
  if (scratch.capacity() > kScratchKeepBytes) std::string().swap(scratch);
}

}  // namespace

int WsSession::on_established(Admitted admitted, bool deflate) {
  if (!admitted.decided) {
    server_.log(engine::LogLevel::error, "net ws_unadmitted (an upgrade that skipped admission: closed)");
    return -1;
  }
  ip_ = std::move(admitted.ip);
  // We frame messages ourselves only where lws would send them unchanged: a connection of
  // its own (not a stream inside HTTP/2). Raw writes pass by extensions, and the only one
  // lws may have active here changes nothing anyway (callback.cpp, "permessage-deflate").
  raw_frames_ = lws_get_network_wsi(wsi_) == wsi_;
  // permessage-deflate, agreed in the handshake (callback.cpp), only ever on such a one.
  deflate_ = deflate && raw_frames_;
  // The subprotocol the client chose: MessagePack both ways (docs/protocol.md "MessagePack").
  const lws_protocols* protocol = lws_get_protocol(wsi_);
  msgpack_ = protocol && protocol->name && std::string_view(protocol->name) == kMsgpackProtocol;
  if (!admitted.guest_path.empty()) {
    guest_ = server_.config.guest.get();
    if (!guest_) return -1;  // admitted for a guest that is gone: cannot happen
    client_ = guest_->connect(*this, admitted.guest_path, admitted.query);
  } else {
    client_ = server_.engine.connect(*this, std::move(admitted.identity), std::move(admitted.joins));
  }
  connected_ = true;
  ++server_.stats.connections;
  server_.log(engine::LogLevel::debug, "net ws_open client=" + wire_id(client_));
  return 0;
}

int WsSession::on_receive(const void* in, std::size_t len) {
  if (culled_ || close_code_) return 0;  // closing: what the client says no longer matters
  // permessage-deflate: RSV1 on a message's first frame says it is compressed, and only
  // there (RFC 7692 6); a frame starts on the first chunk after one that ended a frame.
  const bool first = lws_is_first_fragment(wsi_);
  const bool frame_start = first || rx_frame_ended_;
  rx_frame_ended_ = lws_remaining_packet_payload(wsi_) == 0;
  if (deflate_ && frame_start) {
    const bool rsv1 = (lws_get_reserved_bits(wsi_) & 0x40) != 0;
    if (first) {
      rx_compressed_ = rsv1;
    } else if (rsv1) {
      if (rare_) rare_->rx.clear();
      start_close(LWS_CLOSE_STATUS_PROTOCOL_ERR, "RSV1 on a continuation frame");
      return 0;
    }
  }
  rx_bytes_ += len;
  const std::size_t cap = message_cap();
  // Compressed, the bytes on the wire are counted too, with room for deflate's overhead on
  // data that does not compress; the cap proper applies once inflated (inflate_message).
  if (rx_bytes_ > (rx_compressed_ ? cap + cap / 64 + 64 : cap)) {
    // Counted across fragments (docs/protocol.md "Transport": "counted after reassembling
    // fragments").
    server_.log(engine::LogLevel::info, "net message_too_large client=" + wire_id(client_) +
                                            " bytes=" + std::to_string(rx_bytes_));
    if (rare_) rare_->rx.clear();
    if (guest_) guest_->too_large(client_, rx_bytes_, cap);  // its frame goes out before the close
    start_close(LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");  // the rest is dropped
    return 0;
  }
  // lws_is_final_fragment covers the last chunk of the last frame; the remaining payload
  // check guards chunks that lws splits out of one frame.
  const bool final = lws_is_final_fragment(wsi_) && lws_remaining_packet_payload(wsi_) == 0;
  if (!final) server_.serve_now = true;  // read the rest now, not after the window
  const bool binary = lws_frame_is_binary(wsi_);
  // Text must be UTF-8 (RFC 6455 8.1), checked here rather than by lws so that the close
  // lingers like any other (see the top). lws' own check also looked for a cut character
  // only on a final fragment that carries payload: a message ending "\xE2" + an empty final
  // fragment got through it (seen with 4.1.6; docs/design.md 4.5).
  if (!binary && !rx_compressed_) {  // compressed text is checked once inflated
    const char* bad = nullptr;
    if (!check_utf8(static_cast<const unsigned char*>(in), len)) bad = "bad utf8";
    else if (final && utf8_need_) bad = "partial utf8";
    if (bad) {
      if (rare_) rare_->rx.clear();
      start_close(LWS_CLOSE_STATUS_INVALID_PAYLOAD, bad);  // the rest is dropped
      return 0;
    }
  }
  if (binary && !msgpack_) {
    // JSON only in atrium.v1: a binary message is answered, never buffered.
    if (final) {
      rx_bytes_ = 0;
      ++server_.stats.frames_in;
      if (guest_) guest_->receive_binary(client_);
      else server_.engine.receive_binary(client_);
    }
    return 0;
  }
  // Text, or (atrium.v1.msgpack) binary requests: a message in one chunk goes on from lws'
  // buffer, the common case, with no copy; a longer one is gathered first.
  auto hand_over = [&](std::string_view message) {
    if (rx_compressed_) {
      if (!inflate_message(message, !binary)) return;  // closing
      message = server_.inflated;
    }
    if (binary) deliver_msgpack(message);
    else deliver(message);
    if (rx_compressed_) keep_small(server_.inflated);
    note_socket_read();
  };
  if (final && (!rare_ || rare_->rx.empty())) {
    hand_over(std::string_view(static_cast<const char*>(in), len));
    return 0;
  }
  std::string& rx = rare().rx;
  rx.append(static_cast<const char*>(in), len);
  if (final) {
    std::string message;
    message.swap(rx);
    rare_.reset();  // an idle connection holds no buffer (no close is pending: see the top)
    hand_over(message);
  }
  return 0;
}

// The largest message this connection takes, in bytes (a guest protocol may allow more).
std::size_t WsSession::message_cap() const noexcept {
  return guest_ ? std::max(server_.config.max_message_bytes, guest_->max_message_bytes())
                : server_.config.max_message_bytes;
}

// A compressed message, inflated into server_.inflated (one buffer for every connection:
// the engine is done with it before the next message is read). False if it cannot be: too
// large once inflated (1009, as uncompressed), not deflate data or not UTF-8 text (1007);
// the connection is then closing.
bool WsSession::inflate_message(std::string_view compressed, bool text) {
  const std::size_t cap = message_cap();
  switch (server_.inflater().inflate(compressed, cap, server_.inflated)) {
    case MessageInflater::Result::ok: break;
    case MessageInflater::Result::too_large:
      server_.log(engine::LogLevel::info, "net message_too_large client=" + wire_id(client_) +
                                              " bytes=" + std::to_string(server_.inflated.size()) + " (inflated)");
      start_close(LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
      return false;
    case MessageInflater::Result::corrupt:
      server_.log(engine::LogLevel::info, "net bad_deflate client=" + wire_id(client_));
      start_close(LWS_CLOSE_STATUS_INVALID_PAYLOAD, "bad compressed data");
      return false;
  }
  ++server_.stats.inflated_in;
  if (text) {
    const auto* p = reinterpret_cast<const unsigned char*>(server_.inflated.data());
    const bool whole = check_utf8(p, server_.inflated.size()) && utf8_need_ == 0;
    utf8_need_ = 0;
    if (!whole) {
      start_close(LWS_CLOSE_STATUS_INVALID_PAYLOAD, "bad utf8");
      return false;
    }
  }
  return true;
}

// Feeds text to the UTF-8 check (the ranges of RFC 3629 4: no overlong forms, no
// surrogates, nothing past U+10FFFF). False at the first byte that cannot be UTF-8.
bool WsSession::check_utf8(const unsigned char* p, std::size_t n) noexcept {
  const unsigned char* const end = p + n;
  while (p != end) {
    const unsigned char c = *p++;
    if (utf8_need_) {
      if (c < utf8_lo_ || c > utf8_hi_) return false;
      --utf8_need_;
      utf8_lo_ = 0x80;
      utf8_hi_ = 0xBF;
      continue;
    }
    if (c < 0x80) continue;
    utf8_lo_ = 0x80;
    utf8_hi_ = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) utf8_need_ = 1;
    else if (c == 0xE0) utf8_need_ = 2, utf8_lo_ = 0xA0;
    else if (c == 0xED) utf8_need_ = 2, utf8_hi_ = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) utf8_need_ = 2;
    else if (c == 0xF0) utf8_need_ = 3, utf8_lo_ = 0x90;
    else if (c == 0xF4) utf8_need_ = 3, utf8_hi_ = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3) utf8_need_ = 3;
    else return false;
  }
  return true;
}

// Remembers this socket for server.cpp's check_unread_input(), once per turn.
void WsSession::note_socket_read() {
  const auto turn = static_cast<std::uint32_t>(server_.pass);
  if (read_turn_ == turn || server_.serve_now || !server_.window_end_us) return;
  read_turn_ = turn;
  server_.read_fds.push_back(lws_get_socket_fd(wsi_));
}

// The MessagePack form of an engine frame, made once for every connection that needs it
// (the twin rides with the frame: SharedFrame::alternate).
SharedFrame WsSession::msgpack_twin(const SharedFrame& json_line) {
  if (SharedFrame twin = json_line.alternate()) return twin;
  std::string bytes;
  if (Status s = json::json_to_msgpack(json_line.view(), bytes); !s) {
    server_.log(engine::LogLevel::error, "net msgpack_encode_failed client=" + wire_id(client_) + " what=" +
                                             s.error().message);
    return {};
  }
  const SharedFrame twin(bytes);
  json_line.set_alternate(twin);
  return twin;
}

// A binary message on a MessagePack connection: its values, each one request, as JSON
// text to the engine. One that cannot be read is answered with an error frame; the
// connection goes on.
void WsSession::deliver_msgpack(std::string_view message) {
  std::vector<std::string> requests;
  if (Status s = json::msgpack_to_json(message, requests); !s) {
    rx_bytes_ = 0;
    ++server_.stats.frames_in;
    send(SharedFrame(engine::encode_error(s.error())));
    return;
  }
  for (const std::string& r : requests) {
    deliver(r);
    if (culled_ || close_code_) return;
  }
}

void WsSession::deliver(std::string_view message) {
  server_.open_window();  // more input waits for its end (server.cpp gather_input)
  rx_bytes_ = 0;
  ++server_.stats.frames_in;
  server_.stats.bytes_in += message.size();
  if (guest_) guest_->receive(client_, message);
  else server_.engine.receive(client_, message);
}

void WsSession::send(const SharedFrame& json_line) {
  if (culled_ || close_code_ || !json_line) return;
  const SharedFrame line = msgpack_ ? msgpack_twin(json_line) : json_line;
  if (!line) return;
  // A lone frame is always taken, however large: the cap is about falling behind.
  const std::size_t cap = server_.config.outbox_bytes;
  const std::size_t after = outbox_.bytes() + line.size();
  if (outbox_.bytes() > 0 && after > cap && (stalled() || after > kHardCapFactor * cap)) {
    cull();
    return;
  }
  const bool was_empty = outbox_.empty();
  outbox_.push(line);
  // A non-empty outbox always has a WRITEABLE coming, now or after the window.
  if (was_empty) want_write();
  else if (flush_queued_ && after >= std::min(kFlushEarlyBytes, cap / 2)) request_write();
}

bool WsSession::stalled() const noexcept {
  return write_asked_pass_ && server_.pass >= write_asked_pass_ + kStallPasses;
}

void WsSession::request_write() {
  server_.serve_now = true;  // in the next turn, not after the next window
  if (!write_asked_pass_) write_asked_pass_ = server_.pass;
  lws_callback_on_writable(wsi_);
}

void WsSession::want_write() {
  const int delay_us = server_.config.coalesce_us;
  if (delay_us <= 0 || server_.stopping) {
    request_write();
    return;
  }
  if (flush_queued_) return;
  flush_queued_ = true;
  server_.flush_queue.push_back(this);
  server_.open_window();
}

// The window is over. A plain connection that lws has nothing of its own buffered for is
// written here and now: asking for WRITEABLE would cost a turn of the loop, which polls
// every socket (and on libuv two epoll_ctl calls), only to learn that the socket takes
// it. lws documents writes from WRITEABLE; outside it a raw write is the same call (what
// the socket does not take, lws keeps and sends first, asking for POLLOUT itself), and the
// cases it would get wrong go through WRITEABLE as before: a close under way on either
// side, bytes lws still holds, a connection lws frames.
void WsSession::flush_now() {
  flush_queued_ = false;
  // Culled, or drained meanwhile by a WRITEABLE asked for early (send(): a large backlog)
  if (culled_ || outbox_.empty()) return;
  const bool direct = raw_frames_ && !close_code_ && !peer_closing_ && !lws_partial_buffered(wsi_);
  if (!direct) {
    request_write();
    return;
  }
  if (!write_queued()) {
    culled_ = true;  // nothing more is written; lws closes it at its next turn
    lws_set_timeout(wsi_, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    return;
  }
  if (!outbox_.empty()) request_write();  // more than one write holds
}

void WsSession::close(int code, std::string_view reason) {
  if (culled_ || close_code_) return;
  start_close(code, reason);
}

void WsSession::cull() {
  server_.log(engine::LogLevel::warn, "net slow_reader client=" + wire_id(client_) +
                                          " queued_bytes=" + std::to_string(outbox_.bytes()));
  culled_ = true;
  outbox_.release();
  start_close(1013, "slow reader");
}

void WsSession::start_close(int code, std::string_view reason) {
  // Codes a server may send (RFC 6455 7.4); anything else becomes 1011.
  const bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                     (code >= 3000 && code <= 4999);
  close_code_ = static_cast<std::uint16_t>(valid ? code : 1011);
  rare().close_reason.assign(reason.substr(0, 123));  // a close frame carries at most 125 bytes
  server_.serve_now = true;
  lws_callback_on_writable(wsi_);
  lws_set_timeout(wsi_, culled_ ? PENDING_TIMEOUT_LAGGING : PENDING_TIMEOUT_CLOSE_SEND,
                  kCloseGraceSecs);
}

// lws sends the close frame with the reason set here once the callback returns -1. On the
// libuv loop it defers that frame to a POLLOUT that never comes (clients saw 1006 when the
// close timeout fired), so there the frame is written here, in this WRITEABLE; only there,
// or the client would get two close frames.
//
// Where it can, it closes lingering instead (see the top): the frame is written here, on
// either loop, and lws is given no close reason, so it sends no frame of its own; once lws
// holds none of the frame back, linger() half-closes.
int WsSession::finish_close() {
  std::string& reason = rare().close_reason;  // at most 123 bytes (start_close)
  if (can_linger()) {
    if (!close_written_) {
      close_written_ = true;
      write_close_frame(reason);
    }
    if (lws_partial_buffered(wsi_)) {  // the socket took part of it: lws sends the rest first
      request_write();
      return 0;
    }
    return linger();
  }
  if (raw_frames_ && server_.loop.needs_own_close_frame()) write_close_frame(reason);
  lws_close_reason(wsi_, static_cast<lws_close_status>(close_code_),
                   reinterpret_cast<unsigned char*>(reason.data()), reason.size());
  return -1;
}

// A plain socket that we frame, and no close frame from the client yet (lws answers that
// one itself, then closes).
bool WsSession::can_linger() const noexcept {
  return raw_frames_ && !peer_closing_ && !lws_is_ssl(wsi_) && lws_get_socket_fd(wsi_) >= 0;
}

// The close frame is out: no more writes (FIN follows it), reads go on and are dropped
// (on_receive) until the client's close frame (on_peer_close), its FIN (lws reads 0 bytes
// and closes, with no reason set, so without writing) or the timeout.
int WsSession::linger() {
  if (::shutdown(lws_get_socket_fd(wsi_), SHUT_WR) != 0) return -1;
  lingering_ = true;
  lws_set_timeout(wsi_, PENDING_TIMEOUT_CLOSE_ACK, kLingerSecs);
  return 0;
}

void WsSession::write_close_frame(std::string_view reason) {
  unsigned char frame[4 + 123];
  frame[0] = 0x88;  // FIN + opcode 8 (close)
  frame[1] = static_cast<unsigned char>(2 + reason.size());
  frame[2] = static_cast<unsigned char>(close_code_ >> 8);
  frame[3] = static_cast<unsigned char>(close_code_ & 0xff);
  std::memcpy(frame + 4, reason.data(), reason.size());
  (void)write_raw(frame, 4 + reason.size());
}

int WsSession::on_writeable() {
  write_asked_pass_ = 0;
  if (lingering_) return 0;  // nothing more is written
  if (close_code_ && (culled_ || outbox_.empty())) return finish_close();
  if (outbox_.empty()) return 0;  // lws may call back spuriously
  if (!write_queued()) return -1;
  if (!outbox_.empty() || close_code_) request_write();
  return 0;
}

// Writes what is queued, up to kMaxWriteBytes, as one message (a guest's lines: as one
// message each, in one write). False if the socket failed.
bool WsSession::write_queued() {
  std::size_t count = 1;
  std::size_t total = outbox_[0].size();
  if (guest_) {
    if (raw_frames_) {
      while (count < outbox_.size() && total + outbox_[count].size() <= kMaxWriteBytes)
        total += outbox_[count++].size();
    }
    const bool ok = count == 1 ? write_shared(outbox_[0]) : write_separate(count);
    return written(ok, count, total);
  }
  const std::size_t separator = msgpack_ ? 0 : 1;
  while (count < outbox_.size()) {
    const std::size_t next = outbox_[count].size();
    if (total + separator + next > kMaxWriteBytes) break;  // the rest goes in the next write
    total += separator + next;
    ++count;
  }

  const bool ok = count == 1 ? write_shared(outbox_[0])
                 : deflate_   ? write_mixed(count, total)
                              : write_joined(count, total);
  return written(ok, count, total);
}

// Counts a write of `count` queued lines (`total` payload bytes) and drops them from the
// queue. False if it failed.
bool WsSession::written(bool ok, std::size_t count, std::size_t total) {
  if (!ok) {
    server_.log(engine::LogLevel::info, "net write_failed client=" + wire_id(client_));
    return false;
  }
  server_.stats.frames_out += count;
  server_.stats.bytes_out += total;
  ++server_.stats.ws_writes;
  outbox_.drop_front(count);
  return true;
}

// A lone line goes out in place (compressed, where that pays: compressed_form). On a plain
// connection its frame header is written into the headroom by the first connection that
// sends it and reused by every other one.
bool WsSession::write_shared(const SharedFrame& line) {
  if (!raw_frames_) return write_text(line.payload(), line.size());
  if (deflate_) {
    if (const SharedFrame zip = compressed_form(line)) {
      note_compressed(line, zip);
      return write_in_place(zip, true);
    }
  }
  return write_in_place(line, false);
}

// Every frame is only ever sent one way (a JSON line as text, a MessagePack twin as binary,
// the compressed form of either compressed): so its header is the same for everybody.
bool WsSession::write_in_place(const SharedFrame& frame, bool compressed) {
  const std::size_t n = frame.size();
  if (!frame.framed()) {
    put_header(frame.payload(), n, msgpack_, compressed);
    frame.set_framed(text_header_size(n));
  }
  return write_raw(frame.payload() - frame.framed(), frame.framed() + n);
}

// The permessage-deflate form of a line, made once for every member (the form rides with
// the line: SharedFrame::compressed), or nothing where it does not pay: a line shorter
// than --deflate-min-bytes, or one compressing gains nothing on.
SharedFrame WsSession::compressed_form(const SharedFrame& line) {
  if (line.size() < server_.config.deflate_min_bytes || line.incompressible()) return {};
  if (SharedFrame zip = line.compressed()) return zip;
  std::string& out = server_.deflated;
  ++server_.stats.compressions;
  if (!server_.deflater().compress(line.view(), out) || out.size() >= line.size()) {
    keep_small(out);
    line.set_incompressible();
    return {};
  }
  const SharedFrame zip(out);
  keep_small(out);
  line.set_compressed(zip);
  return zip;
}

void WsSession::note_compressed(const SharedFrame& line, const SharedFrame& zip) {
  ++server_.stats.deflated_out;
  server_.stats.deflate_saved += line.size() - zip.size();
}

// Several lines on a compressing connection. Each line that compresses goes as a message
// of its own, compressed once for every member; the lines between them are joined into
// one message as write_joined does. All of it in one write.
bool WsSession::write_mixed(std::size_t count, std::size_t total) {
  std::vector<SharedFrame>& zips = server_.zips;
  zips.clear();
  bool any = false;
  std::size_t bound = 0;
  for (std::size_t i = 0; i < count; ++i) {
    zips.push_back(compressed_form(outbox_[i]));
    any = any || zips.back();
    bound += kMaxTextHeader + 1 + outbox_[i].size();
  }
  if (!any) {
    zips.clear();
    return write_joined(count, total);
  }
  std::vector<unsigned char>& buf = server_.scratch;
  if (buf.size() < bound) buf.resize(bound);  // grows, never shrinks
  unsigned char* p = buf.data();
  const std::size_t separator = msgpack_ ? 0 : 1;
  for (std::size_t i = 0; i < count;) {
    if (const SharedFrame& zip = zips[i]) {
      note_compressed(outbox_[i], zip);
      p += text_header_size(zip.size());
      put_header(p, zip.size(), msgpack_, true);
      std::memcpy(p, zip.data(), zip.size());
      p += zip.size();
      ++i;
      continue;
    }
    std::size_t end = i;
    std::size_t run = 0;
    for (; end < count && !zips[end]; ++end) run += (end > i ? separator : 0) + outbox_[end].size();
    p += text_header_size(run);
    put_header(p, run, msgpack_);
    p = join_lines(p, i, end);
    i = end;
  }
  zips.clear();
  return write_raw(buf.data(), static_cast<std::size_t>(p - buf.data()));
}

// Copies queued lines [from, to) to `p` as one message's payload: JSON Lines, or MessagePack
// values back to back (they need no separator). Returns the end.
unsigned char* WsSession::join_lines(unsigned char* p, std::size_t from, std::size_t to) const {
  for (std::size_t i = from; i < to; ++i) {
    if (i != from && !msgpack_) *p++ = '\n';
    std::memcpy(p, outbox_[i].data(), outbox_[i].size());
    p += outbox_[i].size();
  }
  return p;
}

// Several lines become one message of JSON Lines, joined in the server's scratch buffer.
bool WsSession::write_joined(std::size_t count, std::size_t total) {
  std::vector<unsigned char>& buf = server_.scratch;
  if (buf.size() < LWS_PRE + total) buf.resize(LWS_PRE + total);  // grows, never shrinks
  unsigned char* const payload = buf.data() + LWS_PRE;
  join_lines(payload, 0, count);
  if (!raw_frames_) return write_text(payload, total);
  return write_raw(put_header(payload, total, msgpack_), text_header_size(total) + total);
}

// Several lines as as many messages, framed one after the other in the server's scratch
// buffer, for one write (raw frames only: the caller checks).
bool WsSession::write_separate(std::size_t count) {
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < count; ++i)
    bytes += text_header_size(outbox_[i].size()) + outbox_[i].size();
  std::vector<unsigned char>& buf = server_.scratch;
  if (buf.size() < bytes) buf.resize(bytes);  // grows, never shrinks
  unsigned char* p = buf.data();
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n = outbox_[i].size();
    p += text_header_size(n);
    put_text_header(p, n);
    std::memcpy(p, outbox_[i].data(), n);
    p += n;
  }
  return write_raw(buf.data(), bytes);
}

// A connection lws frames itself (see on_established): payload with LWS_PRE before it.
bool WsSession::write_text(unsigned char* payload, std::size_t n) {
  const int written = lws_write(wsi_, payload, n, msgpack_ ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
  return written >= 0 && static_cast<std::size_t>(written) >= n;
}

// Whole frames, header included, through lws' raw path: lws sends them as they are and
// keeps what the socket did not take, as it does for its own frames.
bool WsSession::write_raw(unsigned char* frame, std::size_t n) {
  const int written = lws_write(wsi_, frame, n, LWS_WRITE_RAW);
  return written >= 0 && static_cast<std::size_t>(written) >= n;
}

void flush_waiting(Server::State& server) {
  server.window_end_us = 0;
  for (WsSession* session : server.flush_queue) session->flush_now();
  server.flush_queue.clear();
}

void WsSession::on_peer_close(const void* in, std::size_t len) noexcept {
  peer_closing_ = true;  // lws answers it: nothing of ours may follow (flush_now)
  // Lingering: this is the answer to our close frame. lws' echo of it could not be written
  // after SHUT_WR; what the client sent is read, so closing now sends no RST.
  if (lingering_) lws_set_timeout(wsi_, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
  if (len < 2) return;  // a close frame without a code counts as 1005: not clean
  const auto* p = static_cast<const unsigned char*>(in);
  peer_close_code_ = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

void WsSession::on_closed() {
  culled_ = true;  // the engine may still send to us from disconnect(): drop it
  if (flush_queued_) {
    std::vector<WsSession*>& q = server_.flush_queue;
    q.erase(std::remove(q.begin(), q.end(), this), q.end());
    flush_queued_ = false;
  }
  if (!connected_) return;
  connected_ = false;
  --server_.stats.connections;
  // docs/protocol.md "Heartbeat and reconnect": 1000 and 1001 from the client leave at once.
  const bool clean = peer_close_code_ == 1000 || peer_close_code_ == 1001;
  server_.log(engine::LogLevel::debug, "net ws_closed client=" + wire_id(client_) +
                                           " code=" + std::to_string(peer_close_code_));
  if (guest_) guest_->disconnect(client_);
  else server_.engine.disconnect(client_, clean);
}

}  // namespace atrium::net
