// Routes of the HTTP API (docs/rooms.md "Reloading, and server-side calls over HTTP") and
// the shape of their answers: JSON in and out, errors as {"error":{"code","message"}}
// (docs/protocol.md "Error codes").
#include "net/http_api.hpp"

#include <exception>
#include <utility>
#include <vector>

#include "engine/protocol.hpp"
#include "json/codec.hpp"
#include "util/prometheus.hpp"

namespace atrium::net {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

// A timing-safe comparison: the admin token must not leak through response times.
bool same_secret(std::string_view a, std::string_view b) noexcept {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    const char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

// Wrong method on a route that exists: 405, with the bad_request code (docs/protocol.md has
// no code of its own for it).
bool expect_method(const HttpRequest& request, HttpMethod wanted, HttpResponse& response) {
  if (request.method == wanted) return true;
  HttpApi::error(response, ErrorCode::bad_request,
                 wanted == HttpMethod::get    ? "method not allowed: use GET"
                 : wanted == HttpMethod::post ? "method not allowed: use POST"
                                              : "method not allowed: use DELETE",
                 405);
  return false;
}

// A POST body: empty counts as {}, anything else must be a JSON object.
Result<json::Value> parse_body(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json::Value::object();
  Result<json::Value> parsed = json::parse(body);
  if (!parsed) return std::move(parsed).error();
  if (!parsed->is_object()) return make_error(ErrorCode::bad_request, "body must be a JSON object");
  return parsed;
}

void write_result(HttpResponse& response, Result<json::Value>&& result) {
  if (!result) return HttpApi::error(response, result.error());
  json::write(result.value(), response.out());
}

}  // namespace

HttpApi::HttpApi(engine::Engine& engine, const Stats& stats, std::string admin_token, LogSink log,
                 const GuestProtocol* guest)
    : engine_(engine), stats_(stats), admin_token_(std::move(admin_token)), log_(std::move(log)),
      guest_(guest) {}

bool HttpApi::owns(std::string_view path) noexcept {
  return path == "/healthz" || path == "/metrics" || path == "/api" ||
         path.substr(0, 5) == "/api/";
}

bool HttpApi::authorized(HttpMethod method, std::string_view authorization) const noexcept {
  if (admin_token_.empty() || method == HttpMethod::get) return true;
  const std::size_t space = authorization.find(' ');
  if (space == std::string_view::npos || !iequals(authorization.substr(0, space), "bearer"))
    return false;
  std::string_view token = authorization.substr(space + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return same_secret(token, admin_token_);
}

void HttpApi::error(HttpResponse& response, ErrorCode code, std::string_view message, int status) {
  error(response, make_error(code, std::string(message)));
  if (status) response.status = status;
}

void HttpApi::error(HttpResponse& response, const Error& error) {
  response.status = http_status(error.code);
  response.content_type = "application/json";
  response.clear_body();
  std::string& out = response.out();
  out.push_back('{');
  engine::write_error_object(error, out);
  out.push_back('}');
}

void HttpApi::handle(const HttpRequest& request, HttpResponse& response) noexcept {
  try {
    route(request, response);
  } catch (const std::exception& e) {
    if (log_) log_(engine::LogLevel::error, std::string("net http_failed what=") + e.what());
    error(response, ErrorCode::internal, "internal error");
  } catch (...) {
    if (log_) log_(engine::LogLevel::error, "net http_failed what=unknown");
    error(response, ErrorCode::internal, "internal error");
  }
}

void HttpApi::route(const HttpRequest& request, HttpResponse& response) {
  if (request.path == "/healthz") {
    if (expect_method(request, HttpMethod::get, response)) response.out().append(R"({"ok":true})");
    return;
  }
  if (request.path == "/metrics") {
    if (expect_method(request, HttpMethod::get, response)) metrics(response);
    return;
  }
  const std::vector<std::string_view> seg = split_path(request.path);
  // seg[0] is "api": owns() let nothing else in.
  if (seg.size() == 2 && seg[1] == "status") {
    if (!expect_method(request, HttpMethod::get, response)) return;
    json::Value status = engine_.status();
    if (status.is_object()) status.set("connections", json::Value(stats_.connections));
    json::write(status, response.out());
    return;
  }
  if (seg.size() == 2 && seg[1] == "reload") {
    if (!expect_method(request, HttpMethod::post, response)) return;
    Result<json::Value> body = parse_body(request.body);
    if (!body) return write_result(response, std::move(body));
    json::write(engine_.reload(), response.out());
    return;
  }
  if (seg.size() == 2 && seg[1] == "rooms") {
    if (expect_method(request, HttpMethod::get, response))
      json::write(engine_.rooms(), response.out());
    return;
  }
  if (seg.size() >= 3 && seg.size() <= 5 && seg[1] == "rooms" && !seg[2].empty()) {
    const std::string_view action = seg.size() >= 4 ? seg[3] : std::string_view();
    const std::string_view method = seg.size() == 5 ? seg[4] : std::string_view();
    if ((seg.size() == 4 &&
         (action == "emit" || action == "join" || action == "members" || action == "kick")) ||
        (seg.size() == 5 && action == "call" && !method.empty()) || seg.size() == 3)
      return room_route(request, seg[2], action, method, response);
  }
  error(response, ErrorCode::not_found, "no such route");
}

// /api/rooms/:id[/members | /emit | /join | /kick | /call/:method]
void HttpApi::room_route(const HttpRequest& request, std::string_view id, std::string_view action,
                         std::string_view method, HttpResponse& response) {
  if (action.empty()) {
    if (request.method == HttpMethod::del) return write_result(response, engine_.close(id));
    if (request.method != HttpMethod::get)
      return error(response, ErrorCode::bad_request, "method not allowed: use GET or DELETE", 405);
    return write_result(response, engine_.room(id));
  }
  if (action == "members") {
    if (expect_method(request, HttpMethod::get, response)) write_result(response, engine_.members(id));
    return;
  }
  if (!expect_method(request, HttpMethod::post, response)) return;
  Result<json::Value> parsed = parse_body(request.body);
  if (!parsed) return write_result(response, std::move(parsed));
  const json::Value& body = parsed.value();
  static const json::Value kNull;

  if (action == "emit") {
    const std::string* event = body.get_string("event");
    if (!event || event->empty())
      return error(response, ErrorCode::bad_request, "event must be a non-empty string");
    const json::Value* data = body.find("data");
    return write_result(response, engine_.emit(id, *event, data ? *data : kNull));
  }
  if (action == "kick") {
    const std::string* client = body.get_string("client");
    if (!client || client->empty())
      return error(response, ErrorCode::bad_request, "client must be a client id string");
    const json::Value* reason = body.find("reason");
    if (reason && !reason->is_string() && !reason->is_null())
      return error(response, ErrorCode::bad_request, "reason must be a string");
    const std::string* text = body.get_string("reason");
    return write_result(response, engine_.kick(id, *client, text ? *text : std::string_view()));
  }
  if (action == "join") {
    const std::string* client = body.get_string("client");
    if (!client || client->empty())
      return error(response, ErrorCode::bad_request, "client must be a client id string");
    const json::Value* payload = body.find("payload");
    return write_result(response, engine_.place(id, *client, payload ? *payload : kNull));
  }
  const json::Value* args = body.find("args");
  if (args && !args->is_array() && !args->is_null())
    return error(response, ErrorCode::bad_request, "args must be an array");
  const json::Value no_args = json::Value::array();
  write_result(response, engine_.call(id, method, args && args->is_array() ? *args : no_args));
}

void HttpApi::metrics(HttpResponse& response) const {
  response.content_type = "text/plain; version=0.0.4";
  std::string& out = response.out();
  out.append(engine_.metrics());
  if (out.size() > 0 && out.back() != '\n' && response.body_size() > 0) out.push_back('\n');
  append_metric(out, "atrium_connections", "gauge", "Open WebSocket connections and event streams.",
                stats_.connections);
  append_metric(out, "atrium_sse_streams_total", "counter",
                "Event streams opened (the HTTP fallback, GET /ws/events).", stats_.sse_streams);
  append_metric(out, "atrium_sse_slow_reader_drops_total", "counter",
                "Event streams ended past the outbox cap.", stats_.sse_slow_drops);
  append_metric(out, "atrium_frames_in_total", "counter", "Client messages received.", stats_.frames_in);
  append_metric(out, "atrium_frames_out_total", "counter", "JSON lines sent to clients.",
          stats_.frames_out);
  append_metric(out, "atrium_bytes_in_total", "counter", "Payload bytes received from clients.",
          stats_.bytes_in);
  append_metric(out, "atrium_bytes_out_total", "counter", "Payload bytes sent to clients (before permessage-deflate).",
          stats_.bytes_out);
  append_metric(out, "atrium_ws_writes_total", "counter",
          "WebSocket messages written (JSON lines coalesce into these).", stats_.ws_writes);
  append_metric(out, "atrium_deflated_messages_total", "counter",
          "WebSocket messages sent compressed (permessage-deflate).", stats_.deflated_out);
  append_metric(out, "atrium_deflate_compressions_total", "counter",
          "Frames compressed: once per broadcast, whatever the number of members it goes to.",
          stats_.compressions);
  append_metric(out, "atrium_deflate_saved_bytes_total", "counter",
          "Payload bytes permessage-deflate saved: what those messages held less what was sent.",
          stats_.deflate_saved);
  append_metric(out, "atrium_inflated_messages_total", "counter",
          "Compressed messages received from clients.", stats_.inflated_in);
  append_metric(out, "atrium_http_requests_total", "counter", "HTTP requests received.",
          stats_.http_requests);
  append_metric(out, "atrium_upgrades_refused_origin_total", "counter",
          "WebSocket upgrades refused 403 for their Origin.", stats_.refused_origin);
  append_metric(out, "atrium_upgrades_refused_token_total", "counter",
          "WebSocket upgrades refused 401: no token under --require-auth, or a bad one.",
          stats_.refused_token);
  append_metric(out, "atrium_upgrades_refused_per_ip_total", "counter",
          "WebSocket upgrades refused 429 past --max-connections-per-ip.", stats_.refused_per_ip);
  append_metric(out, "atrium_upgrades_refused_gate_total", "counter",
          "WebSocket upgrades rooms/_connect.lua refused (or failed on).", stats_.refused_gate);
  append_metric(out, "atrium_upgrades_refused_url_total", "counter",
          "WebSocket upgrades refused 400 for a malformed ?join= or ?payload=.", stats_.refused_url);
  append_metric(out, "atrium_http_refused_origin_total", "counter",
          "HTTP API writes refused 403 for their Origin.", stats_.refused_http_origin);
  append_metric(out, "atrium_loop_passes_total", "counter",
          "Turns of the event loop (its wake-ups; about two per coalescing window under load).",
          stats_.loop_passes);
  if (guest_) out.append(guest_->metrics());
}

}  // namespace atrium::net
