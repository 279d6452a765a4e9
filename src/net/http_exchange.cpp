// One HTTP request/response on a libwebsockets connection.
//
// Routing uses lws_http_get_uri_and_method(), never the callback's `in`, whose meaning
// differs by method in lws 4.1 (the path relative to the mount for POST, the full URI for
// GET and the others). lws percent-decodes the path and folds "/../" before we see it, so
// room ids arrive decoded and are not decoded again.
// Headers and body leave in separate writes from HTTP_WRITEABLE, as HTTP/2 requires.
// POST bodies need a Content-Length: lws 4.1 passes chunked bodies through raw and never
// completes them, so those get 411.
//
// A request answered before its body arrived (401, 413, 404, ...) still has the body read
// and dropped before the connection closes, up to kMaxDrainBytes: closing with unread data
// makes the kernel reset the connection, and the client loses the answer (EPIPE in Node).
//
// One request per connection (Connection: close): lws 4.1.6 mishandles a request body that
// arrives pipelined behind an earlier request on a kept-alive connection. It hands the
// wrong bytes to HTTP_BODY, then spins forever replaying BODY_COMPLETION, which freezes
// the whole loop (one TCP packet from anyone was enough). Closing after each response means
// nothing is ever replayed. The API and the demo page do not need keep-alive.
// (docs/design.md 4.6)
#include "net/http_exchange.hpp"

#include "net/sse_session.hpp"

#include <sys/stat.h>

#include <charconv>
#include <cstring>
#include <utility>

namespace atrium::net {

namespace {

constexpr std::size_t kBodyChunk = 64 * 1024;        // per HTTP_WRITEABLE
constexpr std::size_t kMaxDrainBytes = 16u << 20;    // a refused body read and dropped

bool has_header(lws* wsi, lws_token_indexes token) { return lws_hdr_total_length(wsi, token) > 0; }

}  // namespace

std::string header(lws* wsi, lws_token_indexes token) {
  const int n = lws_hdr_total_length(wsi, token);
  if (n <= 0) return {};
  std::string value(static_cast<std::size_t>(n) + 1, '\0');
  if (lws_hdr_copy(wsi, value.data(), n + 1, token) < 0) return {};
  value.resize(static_cast<std::size_t>(n));
  return value;
}

HttpExchange::Next HttpExchange::on_request() {
  ++server_.stats.http_requests;
  char* uri = nullptr;
  int uri_len = 0;
  const int m = lws_http_get_uri_and_method(wsi_, &uri, &uri_len);
  if (m < 0 || !uri) return fail(ErrorCode::bad_request, "unsupported request");
  // HEAD is answered as GET, without the body (RFC 9110 9.3.2): `curl -I` sees what GET gets.
  head_ = m == LWSHUMETH_HEAD;
  method_ = m == LWSHUMETH_GET || head_ ? HttpMethod::get
            : m == LWSHUMETH_POST   ? HttpMethod::post
            : m == LWSHUMETH_DELETE ? HttpMethod::del
                                    : HttpMethod::other;
  path_.assign(uri, static_cast<std::size_t>(uri_len));

  // lws reads a Content-Length body for any method and reports BODY_COMPLETION; a chunked
  // one it never completes, so that connection just closes after the answer.
  if (has_header(wsi_, WSI_TOKEN_HTTP_CONTENT_LENGTH) &&
      !has_header(wsi_, WSI_TOKEN_HTTP_TRANSFER_ENCODING)) {
    const std::string text = header(wsi_, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), body_length_);
    if (ec != std::errc() || end != text.data() + text.size())
      return fail(ErrorCode::bad_request, "bad Content-Length");
    body_done_ = body_length_ == 0 || body_length_ > kMaxDrainBytes;
  }
  if (server_.config.guest && server_.config.guest->claims_http(path_)) {
    guest_route_ = true;
    return method_ == HttpMethod::get ? dispatch() : start_write();
  }
  if (HttpApi::owns(path_)) {
    const bool writes = method_ == HttpMethod::post || method_ == HttpMethod::del;
    return writes ? start_write() : dispatch();
  }
  if (path_ == "/ws/send") {   // the HTTP fallback's requests (sse_session.hpp)
    if (method_ != HttpMethod::post) return fail(ErrorCode::bad_request, "POST requests to /ws/send", 405);
    stream_route_ = true;
    return start_write();
  }
  if (path_ == "/ws") return fail(ErrorCode::bad_request, "use a WebSocket upgrade on /ws", 426);
  if (method_ == HttpMethod::get) return serve_static();
  return fail(ErrorCode::not_found, "no such route");
}

// "/_atrium/..." is the engine's own (web/: the inspector, the client bundles), whatever
// --public holds; every other path is --public's. The engine's pages were at /inspect and
// /atrium-client.js before: where --public has no file of that name, they redirect.
HttpExchange::Next HttpExchange::serve_static() {
  constexpr std::string_view kEngine = "/_atrium";
  const std::string_view path = path_;
  if (path == kEngine || path == "/_atrium/") return redirect("/_atrium/inspect");
  if (path.substr(0, kEngine.size() + 1) == "/_atrium/") {
    if (std::optional<StaticFile> file = server_.web_files.resolve(path.substr(kEngine.size())))
      return serve_file(*file);
    return fail(ErrorCode::not_found, "no such file");
  }
  if (std::optional<StaticFile> file = server_.files.resolve(path)) return serve_file(*file);
  if (path == "/inspect") return redirect("/_atrium/inspect");
  if (path == "/atrium-client.js") return redirect("/_atrium/atrium-client.mjs");
  return fail(ErrorCode::not_found, "no such route");
}

// 307: temporary, so a page a user adds at the old path later is not hidden by a cache.
HttpExchange::Next HttpExchange::redirect(std::string location) {
  HttpResponse response(LWS_PRE);
  response.status = 307;
  response.content_type = "text/plain; charset=utf-8";
  response.out().append("see ").append(location).append("\n");
  response.location = std::move(location);
  return respond(std::move(response));
}

HttpExchange::Next HttpExchange::start_write() {
  if (has_header(wsi_, WSI_TOKEN_HTTP_TRANSFER_ENCODING))
    return fail(ErrorCode::bad_request, "a request body needs Content-Length (no chunked)", 411);
  // A page of another site may not write through the API with the user's cookies or
  // network position (docs/protocol.md "Connecting: tokens, origins, TLS"). A guest's
  // routes check a signature of their own instead.
  if (!guest_route_ && !Admission::origin_ok(wsi_, server_.config)) {
    ++server_.stats.refused_http_origin;
    return fail(ErrorCode::not_allowed, "origin not allowed", 403);
  }
  if (!guest_route_ && !stream_route_ &&
      !server_.api.authorized(method_, header(wsi_, WSI_TOKEN_HTTP_AUTHORIZATION)))
    return fail(ErrorCode::unauthorized, "admin token required (Authorization: Bearer)");
  // No Content-Length and not chunked: no body (RFC 9112 6.3). lws waits for one anyway;
  // answering now and closing ends that.
  if (!has_header(wsi_, WSI_TOKEN_HTTP_CONTENT_LENGTH)) return dispatch();
  if (body_length_ > kMaxHttpBody) return fail(ErrorCode::too_large, "request body over 1 MiB");
  // Even "Content-Length: 0" gets one empty HTTP_BODY and then BODY_COMPLETION.
  body_.reserve(body_length_);
  body_wanted_ = true;
  return Next::wait;
}

HttpExchange::Next HttpExchange::on_body(const void* in, std::size_t len) {
  if (!body_wanted_) return Next::wait;  // none expected, or refused: dropped
  if (body_.size() + len > kMaxHttpBody) {
    body_wanted_ = false;
    return fail(ErrorCode::too_large, "request body over 1 MiB");
  }
  body_.append(static_cast<const char*>(in), len);
  return Next::wait;
}

HttpExchange::Next HttpExchange::on_body_complete() {
  body_done_ = true;
  if (body_wanted_) {
    body_wanted_ = false;
    return dispatch();
  }
  return answered_ ? Next::done : Next::wait;  // a refused body has been drained
}

HttpExchange::Next HttpExchange::dispatch() {
  if (guest_route_) return dispatch_guest();
  if (stream_route_) return dispatch_stream();
  HttpResponse response(LWS_PRE);
  server_.api.handle(HttpRequest{method_, path_, body_}, response);
  std::string().swap(body_);
  return respond(std::move(response));
}

// A route of the guest protocol (guest_protocol.hpp); an exception from it is a 500.
HttpExchange::Next HttpExchange::dispatch_guest() {
  const char* method = method_ == HttpMethod::get    ? "GET"
                       : method_ == HttpMethod::post ? "POST"
                       : method_ == HttpMethod::del  ? "DELETE"
                                                     : "OTHER";
  GuestProtocol::Reply reply;
  try {
    reply = server_.config.guest->http(method, path_, query_args(wsi_), body_);
  } catch (const std::exception& e) {
    server_.log(engine::LogLevel::error, std::string("net guest_http_failed what=") + e.what());
    return fail(ErrorCode::internal, "internal error");
  }
  std::string().swap(body_);
  HttpResponse response(LWS_PRE);
  response.status = reply.status;
  guest_content_type_ = std::move(reply.content_type);
  response.content_type = guest_content_type_.c_str();
  response.out().append(reply.body);
  return respond(std::move(response));
}

// POST /ws/send?stream=ID: the requests go to that stream's client, as messages on a
// WebSocket would; what they cause comes on the stream. Each line is capped as a WebSocket
// message is (--max-message-bytes). &close=1: then the client leaves, as with close 1000.
HttpExchange::Next HttpExchange::dispatch_stream() {
  std::string id;
  bool close = false;
  for (const auto& [key, value] : query_args(wsi_)) {
    if (key == "stream") id = value;
    if (key == "close") close = value == "1";
  }
  auto it = server_.streams.find(id);
  if (id.empty() || it == server_.streams.end())
    return fail(ErrorCode::not_found, "no such stream: open /ws/events again (and resume)", 404);
  for (std::size_t start = 0; start < body_.size();) {
    std::size_t nl = body_.find('\n', start);
    if (nl == std::string::npos) nl = body_.size();
    if (nl - start > server_.config.max_message_bytes)
      return fail(ErrorCode::too_large, "a request line over --max-message-bytes", 413);
    start = nl + 1;
  }
  it->second->deliver(body_);
  if (close) it->second->close_clean();   // after the body's requests, as a close frame after messages
  std::string().swap(body_);
  HttpResponse response(LWS_PRE);
  response.status = 200;
  response.out().append("{}");
  return respond(std::move(response));
}

HttpExchange::Next HttpExchange::fail(ErrorCode code, std::string_view message, int status) {
  HttpResponse response(LWS_PRE);
  HttpApi::error(response, code, message, status);
  return respond(std::move(response));
}

HttpExchange::Next HttpExchange::respond(HttpResponse response) {
  response_.emplace(std::move(response));
  lws_callback_on_writable(wsi_);
  return Next::wait;
}

HttpExchange::Next HttpExchange::serve_file(const StaticFile& file) {
  if (head_) {
    HttpResponse response(LWS_PRE);
    response.content_type = file.content_type;
    struct stat st{};
    response.head_length = ::stat(file.path.c_str(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
    return respond(std::move(response));
  }
  const int n = lws_serve_http_file(wsi_, file.path.c_str(), file.content_type, nullptr, 0);
  return n == 0 ? Next::serving_file : Next::done;  // 0: lws sends the rest on its own
}

bool HttpExchange::write_headers() {
  unsigned char buf[LWS_PRE + 512];
  unsigned char* start = buf + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buf + sizeof buf - 1;
  static const char kNoStore[] = "no-store";
  static const char kClose[] = "close";
  const std::size_t length = head_ && response_->head_length ? response_->head_length
                                                              : response_->body_size();
  if (lws_add_http_common_headers(wsi_, static_cast<unsigned>(response_->status),
                                  response_->content_type, length, &p, end) ||
      lws_add_http_header_by_token(wsi_, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                   reinterpret_cast<const unsigned char*>(kNoStore),
                                   sizeof kNoStore - 1, &p, end))
    return false;
  if (!response_->location.empty() &&
      lws_add_http_header_by_token(wsi_, WSI_TOKEN_HTTP_LOCATION,
                                   reinterpret_cast<const unsigned char*>(response_->location.data()),
                                   static_cast<int>(response_->location.size()), &p, end))
    return false;
  // HTTP/1 only: an HTTP/2 stream has no Connection header.
  if (lws_get_network_wsi(wsi_) == wsi_ &&
      lws_add_http_header_by_token(wsi_, WSI_TOKEN_CONNECTION,
                                   reinterpret_cast<const unsigned char*>(kClose),
                                   sizeof kClose - 1, &p, end))
    return false;
  return lws_finalize_write_http_header(wsi_, start, &p, end) == 0;
}

HttpExchange::Next HttpExchange::on_writeable() {
  if (!response_) return Next::wait;
  if (!headers_sent_) {
    if (!write_headers()) return Next::done;
    headers_sent_ = true;
    if (response_->body_size() == 0 || head_) return finish();
    lws_callback_on_writable(wsi_);
    return Next::wait;
  }
  // Later chunks use the bytes already sent in front of them as their LWS_PRE headroom.
  const std::size_t left = response_->body_size() - sent_;
  const std::size_t n = left < kBodyChunk ? left : kBodyChunk;
  const bool last = n == left;
  auto* data = reinterpret_cast<unsigned char*>(response_->body_data() + sent_);
  if (lws_write(wsi_, data, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < static_cast<int>(n))
    return Next::done;
  sent_ += n;
  if (!last) {
    lws_callback_on_writable(wsi_);
    return Next::wait;
  }
  return finish();
}

HttpExchange::Next HttpExchange::finish() {
  answered_ = true;
  return body_done_ ? Next::done : Next::wait;  // on_body_complete() closes once drained
}

int refuse_upgrade(lws* wsi, ErrorCode code, std::string_view message, int status) {
  HttpResponse response;
  HttpApi::error(response, code, message, status);
  unsigned char buf[LWS_PRE + 1024];
  unsigned char* start = buf + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buf + sizeof buf - 1;
  const std::string_view body = response.body();
  static const char kClose[] = "close";
  if (lws_add_http_common_headers(wsi, static_cast<unsigned>(response.status),
                                  response.content_type, body.size(), &p, end) ||
      lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                   reinterpret_cast<const unsigned char*>(kClose),
                                   sizeof kClose - 1, &p, end) ||
      lws_finalize_http_header(wsi, &p, end) || static_cast<std::size_t>(end - p) < body.size())
    return -1;
  std::memcpy(p, body.data(), body.size());
  p += body.size();
  const auto len = static_cast<std::size_t>(p - start);
  lws_write(wsi, start, len, LWS_WRITE_HTTP_FINAL);
  // Hang up rather than return 1 (lws would complete the transaction and keep the
  // connection for more requests: see the top of this file).
  return -1;
}

}  // namespace atrium::net
