// The HTTP API (docs/rooms.md "Reloading, and server-side calls over HTTP"): a request in,
// the engine called, a response out.
// It knows nothing of libwebsockets (http_exchange.cpp does the socket side), so routes are
// plain functions of strings.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "engine/engine.hpp"
#include "net/server.hpp"
#include "net/stats.hpp"
#include "util/result.hpp"

namespace atrium::net {

enum class HttpMethod { get, post, del, other };

struct HttpRequest {
  HttpMethod method = HttpMethod::get;
  std::string_view path;    // percent-decoded already: libwebsockets decodes the URI path
  std::string_view body;    // POST and DELETE; empty counts as {}
};

// The body is built after `headroom` spare bytes, so the transport can write it without
// copying (libwebsockets needs LWS_PRE bytes in front of every payload).
class HttpResponse {
 public:
  explicit HttpResponse(std::size_t headroom = 0) : headroom_(headroom), bytes_(headroom, '\0') {}

  int status = 200;
  const char* content_type = "application/json";
  std::string location;     // a redirect's target (status 3xx), else empty
  std::size_t head_length = 0;  // HEAD of a file: the Content-Length GET would send

  std::string& out() noexcept { return bytes_; }            // append the body here
  void clear_body() { bytes_.resize(headroom_); }
  std::size_t body_size() const noexcept { return bytes_.size() - headroom_; }
  char* body_data() noexcept { return bytes_.data() + headroom_; }
  std::string_view body() const noexcept { return std::string_view(bytes_).substr(headroom_); }

 private:
  std::size_t headroom_;
  std::string bytes_;
};

class HttpApi {
 public:
  // `guest`: the guest protocol whose metrics GET /metrics adds (null: none).
  HttpApi(engine::Engine& engine, const Stats& stats, std::string admin_token, LogSink log,
          const GuestProtocol* guest = nullptr);

  // Paths the API answers (anything else may be a static file, then 404).
  static bool owns(std::string_view path) noexcept;

  // Write routes (POST, DELETE) need "Authorization: Bearer <admin token>" when a token is
  // configured.
  bool authorized(HttpMethod method, std::string_view authorization) const noexcept;

  // Never throws: an exception from the engine becomes 500 internal (and a log line).
  void handle(const HttpRequest& request, HttpResponse& response) noexcept;

  // {"error":{"code","message"}}; status 0 means atrium::http_status(code).
  static void error(HttpResponse& response, ErrorCode code, std::string_view message,
                    int status = 0);
  // The same for an Error: a script's own code and its `where` included.
  static void error(HttpResponse& response, const Error& error);

 private:
  void route(const HttpRequest& request, HttpResponse& response);
  void room_route(const HttpRequest& request, std::string_view id, std::string_view action,
                  std::string_view method, HttpResponse& response);
  void metrics(HttpResponse& response) const;

  engine::Engine& engine_;
  const Stats& stats_;
  std::string admin_token_;
  LogSink log_;
  const GuestProtocol* guest_;
};

}  // namespace atrium::net
