// One HTTP request/response on a libwebsockets connection: reads the body, asks HttpApi
// (or the static files) for the answer, writes it back. Internal to net/.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "net/http_api.hpp"
#include "net/server_state.hpp"

namespace atrium::net {

class HttpExchange {
 public:
  // What the callback does after a step: keep the exchange and wait for lws; or be done
  // with it and close the connection (one request per connection, see the .cpp); or let
  // lws serve a file on its own (it reports HTTP_FILE_COMPLETION).
  enum class Next { wait, done, serving_file };

  HttpExchange(Server::State& server, lws* wsi) noexcept : server_(server), wsi_(wsi) {}

  Next on_request();                                  // LWS_CALLBACK_HTTP
  Next on_body(const void* in, std::size_t len);      // LWS_CALLBACK_HTTP_BODY
  Next on_body_complete();                            // LWS_CALLBACK_HTTP_BODY_COMPLETION
  Next on_writeable();                                // LWS_CALLBACK_HTTP_WRITEABLE

 private:
  Next start_write();
  Next serve_static();
  Next redirect(std::string location);
  Next dispatch();
  Next dispatch_guest();
  Next dispatch_stream();
  Next serve_file(const StaticFile& file);
  Next respond(HttpResponse response);
  Next fail(ErrorCode code, std::string_view message, int status = 0);
  bool write_headers();
  Next finish();

  Server::State& server_;
  lws* wsi_;
  HttpMethod method_ = HttpMethod::other;
  bool head_ = false;               // a HEAD request: GET's headers, no body
  bool guest_route_ = false;        // a route of the guest protocol (guest_protocol.hpp)
  bool stream_route_ = false;       // POST /ws/send, the HTTP fallback's (sse_session.hpp)
  std::string guest_content_type_;  // its reply's, kept for write_headers
  std::string path_;
  std::string body_;
  std::size_t body_length_ = 0;     // Content-Length; 0 when absent
  bool body_wanted_ = false;        // the body is read for the API (otherwise dropped)
  bool body_done_ = true;           // no body still to come (or too much to drain)
  bool answered_ = false;           // the whole response is written
  std::optional<HttpResponse> response_;
  bool headers_sent_ = false;
  std::size_t sent_ = 0;            // body bytes written so far
};

// Answers a refused WebSocket upgrade (wrong path, shutting down) with a JSON error, in
// one write (an upgrade is HTTP/1 only), and returns what LWS_CALLBACK_HTTP_CONFIRM_UPGRADE
// must return to hang up.
int refuse_upgrade(lws* wsi, ErrorCode code, std::string_view message, int status);

// A request header's whole value ("" when absent), fragments joined as lws joins them.
std::string header(lws* wsi, lws_token_indexes token);

}  // namespace atrium::net
