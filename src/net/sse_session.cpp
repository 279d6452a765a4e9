// One Server-Sent Events stream of the HTTP fallback (sse_session.hpp).
//
// The response is HTTP/1.1 with no length, ended by closing the connection (Connection:
// close, as every response of this server: http_exchange.cpp says why). Its body is, first,
// `event: stream` with {"id", "send"} (the secret the POSTs name, and where they go), then
// one `data:` event per engine frame: a frame is one JSON line and JSON text holds no raw
// newline, so it needs no splitting. What is queued leaves in one write per WRITEABLE, up
// to kMaxWriteBytes; past the outbox cap the stream ends, as a slow WebSocket reader is
// dropped. lws' idle timeouts are turned off for the stream; the heartbeat comment keeps
// proxies from ending it.
#include "net/sse_session.hpp"

#include <random>

#include "net/stats.hpp"

namespace atrium::net {

namespace {

std::string random_id() {
  thread_local std::random_device rd;
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i) {
    std::uint32_t r = rd();
    for (int j = 0; j < 8; ++j, r >>= 4) id.push_back(kHex[r & 15]);
  }
  return id;
}

std::int64_t now_ms() { return static_cast<std::int64_t>(lws_now_usecs() / 1000); }

}  // namespace

SseSession::~SseSession() {
  if (!id_.empty()) server_.streams.erase(id_);
}

void SseSession::start(Admitted admitted) {
  ip_ = std::move(admitted.ip);
  do {
    id_ = random_id();
  } while (server_.streams.count(id_));
  server_.streams[id_] = this;
  lws_set_timeout(wsi_, NO_PENDING_TIMEOUT, 0);
  last_write_ms_ = now_ms();
  client_ = server_.engine.connect(*this, std::move(admitted.identity), std::move(admitted.joins));
  connected_ = true;
  ++server_.stats.connections;
  ++server_.stats.sse_streams;
  server_.log(engine::LogLevel::debug, "net sse_open client=c" + std::to_string(client_));
  want_write();
}

void SseSession::want_write() { lws_callback_on_writable(wsi_); }

void SseSession::send(const SharedFrame& line) {
  if (closing_ || !line) return;
  const std::size_t cap = server_.config.outbox_bytes;
  if (outbox_.bytes() > 0 && outbox_.bytes() + line.size() > cap) {
    server_.log(engine::LogLevel::info, "net sse_slow_reader client=c" + std::to_string(client_));
    ++server_.stats.sse_slow_drops;
    close(1013, "slow reader");
    return;
  }
  const bool was_empty = outbox_.empty();
  outbox_.push(line);
  if (was_empty) want_write();
}

void SseSession::close(int, std::string_view) {
  // The stream ends once what is queued is out: closing_ makes the next WRITEABLE hang up.
  closing_ = true;
  want_write();
}

void SseSession::close_clean() {
  clean_ = true;
  close(1000, "bye");
}

void SseSession::keep_alive(std::int64_t now) {
  const std::int64_t every = server_.config.heartbeat_ms > 0 ? server_.config.heartbeat_ms : 25000;
  if (!ping_due_ && now - last_write_ms_ >= every) {
    ping_due_ = true;
    want_write();
  }
}

int SseSession::on_writeable() {
  std::string& out = server_.sse_scratch;
  out.assign(LWS_PRE, '\0');
  if (!headers_sent_) {
    unsigned char buf[LWS_PRE + 512];
    unsigned char* start = buf + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf + sizeof buf - 1;
    static const char kType[] = "text/event-stream";
    static const char kNoStore[] = "no-store";
    static const char kNo[] = "no";
    static const char kClose[] = "close";
    if (lws_add_http_common_headers(wsi_, 200, kType, LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
        lws_add_http_header_by_token(wsi_, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     reinterpret_cast<const unsigned char*>(kNoStore), sizeof kNoStore - 1, &p, end) ||
        lws_add_http_header_by_name(wsi_, reinterpret_cast<const unsigned char*>("x-accel-buffering:"),
                                    reinterpret_cast<const unsigned char*>(kNo), sizeof kNo - 1, &p, end) ||
        lws_add_http_header_by_token(wsi_, WSI_TOKEN_CONNECTION, reinterpret_cast<const unsigned char*>(kClose),
                                     sizeof kClose - 1, &p, end) ||
        lws_finalize_write_http_header(wsi_, start, &p, end))
      return -1;
    headers_sent_ = true;
    // The body from the next WRITEABLE: one write per callback, as lws asks (a write it
    // could not finish is sent before the next WRITEABLE comes).
    want_write();
    return 0;
  }
  if (!stream_announced_) {
    stream_announced_ = true;
    out += "event: stream\ndata: {\"id\":\"" + id_ + "\",\"send\":\"/ws/send?stream=" + id_ + "\"}\n\n";
  }
  std::size_t count = 0;
  while (count < outbox_.size() && out.size() - LWS_PRE + outbox_[count].size() + 8 <= kMaxWriteBytes) {
    out += "data: ";
    out.append(outbox_[count].view());
    out += "\n\n";
    ++count;
  }
  if (count == 0 && out.size() == LWS_PRE && ping_due_) out += ":\n\n";   // a comment: nothing for the client
  ping_due_ = false;
  const std::size_t n = out.size() - LWS_PRE;
  if (n > 0) {
    auto* payload = reinterpret_cast<unsigned char*>(out.data()) + LWS_PRE;
    const int written = lws_write(wsi_, payload, n, LWS_WRITE_HTTP);
    if (written < 0 || static_cast<std::size_t>(written) < n) return -1;
    server_.stats.frames_out += count;
    server_.stats.bytes_out += n;
    outbox_.drop_front(count);
    last_write_ms_ = now_ms();
    lws_set_timeout(wsi_, NO_PENDING_TIMEOUT, 0);
  }
  if (!outbox_.empty()) {
    want_write();
    return 0;
  }
  return closing_ ? -1 : 0;
}

void SseSession::deliver(std::string_view body) {
  while (!body.empty() && !closing_) {
    const std::size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    ++server_.stats.frames_in;
    server_.stats.bytes_in += line.size();
    server_.engine.receive(client_, line);
  }
}

void SseSession::on_closed() {
  if (!connected_) return;
  connected_ = false;
  if (!id_.empty()) server_.streams.erase(id_);
  id_.clear();
  --server_.stats.connections;
  // Unless the client said it was done (close_clean), a drop: the seats are held for its
  // resume on its next stream.
  server_.engine.disconnect(client_, clean_);
  server_.log(engine::LogLevel::debug, "net sse_closed client=c" + std::to_string(client_));
}

}  // namespace atrium::net
