// The order of the checks is the order of their cost: the origin and the per-address
// count read one header or a map; the token is a signature check; the gate runs Lua.
// Every refusal is logged with its reason; the client is told only the status and a
// reason that gives nothing away (a 401 never says which check failed).
#include "net/admission.hpp"

#include <chrono>
#include <string_view>
#include <utility>

#include "auth/origin.hpp"
#include "engine/protocol.hpp"
#include "json/codec.hpp"
#include "net/http_exchange.hpp"
#include "net/server.hpp"
#include "net/stats.hpp"

namespace atrium::net {

namespace {

// Headers lws keeps only when asked for by name (4.1 cannot list the ones it did not
// know): the gate sees these too, when present.
constexpr const char* kCustomHeaders[] = {"x-forwarded-for:", "x-forwarded-proto:", "x-real-ip:",
                                          "x-csrf-token:",    "x-xsrf-token:",      "x-request-id:",
                                          "x-api-key:"};

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::string peer_ip(lws* wsi) {
  char ip[64] = {0};
  lws_get_peer_simple(wsi, ip, sizeof ip);
  return ip;
}

engine::ConnectRequest::Pairs cookies_of(std::string_view header_value) {
  engine::ConnectRequest::Pairs out;
  while (!header_value.empty()) {
    const std::size_t semi = header_value.find(';');
    const std::string_view item = header_value.substr(0, semi);
    header_value = semi == std::string_view::npos ? std::string_view() : header_value.substr(semi + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name = trim(item.substr(0, eq));
    if (!name.empty()) out.emplace_back(std::move(name), trim(item.substr(eq + 1)));
  }
  return out;
}

// Every header lws parsed, by its lower-case name. lws names its tokens "host:", and also
// has tokens that are not headers ("get ", the URI args): only names ending in ':' count.
engine::ConnectRequest::Pairs headers_of(lws* wsi) {
  engine::ConnectRequest::Pairs out;
  for (int t = 0; t < WSI_TOKEN_COUNT; ++t) {
    const auto token = static_cast<lws_token_indexes>(t);
    const unsigned char* name = lws_token_to_string(token);
    if (!name) continue;
    const std::string_view n(reinterpret_cast<const char*>(name));
    if (n.size() < 2 || n.back() != ':' || n.front() == ':') continue;
    if (lws_hdr_total_length(wsi, token) <= 0) continue;
    out.emplace_back(std::string(n.substr(0, n.size() - 1)), header(wsi, token));
  }
  for (const char* name : kCustomHeaders) {
    const int nlen = static_cast<int>(std::char_traits<char>::length(name));
    const int n = lws_hdr_custom_length(wsi, name, nlen);
    if (n <= 0) continue;
    std::string value(static_cast<std::size_t>(n) + 1, '\0');
    if (lws_hdr_custom_copy(wsi, value.data(), n + 1, name, nlen) < 0) continue;
    value.resize(static_cast<std::size_t>(n));
    out.emplace_back(std::string(name, static_cast<std::size_t>(nlen - 1)), std::move(value));
  }
  return out;
}

// ?token= on the URL, or Authorization: Bearer. "" when neither.
std::string token_of(lws* wsi, const engine::ConnectRequest::Pairs& query) {
  for (const auto& [name, value] : query)
    if (name == "token") return value;
  const std::string auth = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  constexpr std::string_view kBearer = "bearer ";
  if (auth.size() > kBearer.size()) {
    bool bearer = true;
    for (std::size_t i = 0; i < kBearer.size(); ++i)
      bearer = bearer && (auth[i] | 0x20) == kBearer[i];
    if (bearer) return trim(std::string_view(auth).substr(kBearer.size()));
  }
  return {};
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

engine::ConnectRequest::Pairs query_args(lws* wsi) {
  engine::ConnectRequest::Pairs out;
  for (int i = 0;; ++i) {
    const int n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n <= 0) break;
    std::string arg(static_cast<std::size_t>(n) + 1, '\0');
    if (lws_hdr_copy_fragment(wsi, arg.data(), n + 1, WSI_TOKEN_HTTP_URI_ARGS, i) < 0) break;
    arg.resize(static_cast<std::size_t>(n));
    const std::size_t eq = arg.find('=');
    out.emplace_back(arg.substr(0, eq), eq == std::string::npos ? std::string() : arg.substr(eq + 1));
  }
  return out;
}

bool Admission::origin_ok(lws* wsi, const ServerConfig& config) {
  const std::string origin = header(wsi, WSI_TOKEN_ORIGIN);
  if (origin.empty()) return !config.require_origin;
  return config.allowed_origins.empty() || auth::origin_allowed(origin, config.allowed_origins);
}

namespace {

// Logs a refusal and answers it.
int refuse(lws* wsi, const ServerConfig& config, const std::string& ip, std::uint64_t& counter,
           ErrorCode code, int status, std::string_view told, std::string_view why) {
  ++counter;
  if (config.on_log)
    config.on_log(engine::LogLevel::info, "net upgrade_refused status=" + std::to_string(status) +
                                              " ip=" + ip + " reason=\"" + std::string(why) + "\"");
  return refuse_upgrade(wsi, code, told, status);
}

}  // namespace

// The checks every upgrade gets, whatever its protocol: 0, or the refusal answered.
int Admission::check_origin_and_address(lws* wsi, const std::string& ip, const ServerConfig& config,
                                        Stats& stats) {
  if (!origin_ok(wsi, config)) {
    const std::string origin = header(wsi, WSI_TOKEN_ORIGIN);
    return refuse(wsi, config, ip, stats.refused_origin, ErrorCode::not_allowed, 403, "origin not allowed",
                  origin.empty() ? "no Origin header (--require-origin)" : "origin " + origin + " is not allowed");
  }
  if (config.max_connections_per_ip > 0 && per_ip_[ip] >= config.max_connections_per_ip) {
    return refuse(wsi, config, ip, stats.refused_per_ip, ErrorCode::rate_limited, 429,
                  "too many connections from this address",
                  "over --max-connections-per-ip " + std::to_string(config.max_connections_per_ip));
  }
  return 0;
}

int Admission::decide_guest(lws* wsi, std::string_view path, const ServerConfig& config, Stats& stats) {
  const std::string ip = peer_ip(wsi);
  if (const int refused = check_origin_and_address(wsi, ip, config, stats)) return refused;
  Admitted admitted;
  admitted.decided = true;
  admitted.ip = ip;
  admitted.guest_path.assign(path);
  admitted.query = query_args(wsi);
  ++per_ip_[ip];
  pending_[wsi] = std::move(admitted);
  return 0;
}

Result<std::vector<engine::JoinOnConnect>> joins_of_url(const engine::ConnectRequest::Pairs& query) {
  std::vector<engine::JoinOnConnect> joins;
  bool has_payload = false;
  for (const auto& [key, value] : query) {
    if (key == "join") {
      if (joins.size() == kMaxJoinsOnConnect)
        return make_error(ErrorCode::bad_request, "at most " + std::to_string(kMaxJoinsOnConnect) +
                                                      " join= in one URL");
      if (Status s = engine::validate_room_id(value); !s)
        return make_error(ErrorCode::bad_request, "join=" + value.substr(0, 64) + ": " + s.error().message);
      joins.push_back(engine::JoinOnConnect{value, json::Value::object()});
      has_payload = false;
    } else if (key == "payload") {
      if (joins.empty() || has_payload)
        return make_error(ErrorCode::bad_request, "each payload= follows the join= it belongs to");
      Result<json::Value> payload = json::parse(value);
      if (!payload || !payload->is_object())
        return make_error(ErrorCode::bad_request, "payload= must be a JSON object (URL-encoded) for " +
                                                      joins.back().room);
      joins.back().payload = std::move(payload).value();
      has_payload = true;
    }
  }
  return joins;
}

int Admission::decide(lws* wsi, engine::Engine& engine, const ServerConfig& config, Stats& stats) {
  const std::string ip = peer_ip(wsi);
  auto refuse = [&](std::uint64_t& counter, ErrorCode code, int status, std::string_view told,
                    std::string_view why) {
    return net::refuse(wsi, config, ip, counter, code, status, told, why);
  };
  if (const int refused = check_origin_and_address(wsi, ip, config, stats)) return refused;

  engine::ConnectRequest req;
  req.query = query_args(wsi);
  Admitted admitted;
  admitted.decided = true;
  admitted.ip = ip;
  Result<std::vector<engine::JoinOnConnect>> joins = joins_of_url(req.query);
  if (!joins)
    return refuse(stats.refused_url, ErrorCode::bad_request, 400, joins.error().message, joins.error().message);
  admitted.joins = std::move(joins).value();
  const std::string token = token_of(wsi, req.query);
  if (!token.empty()) {
    if (!config.jwt)
      return refuse(stats.refused_token, ErrorCode::unauthorized, 401, "unauthorized",
                    "a token came, but the server checks none (no --jwt-secret or --jwt-public-key)");
    Result<auth::VerifiedToken> verified = config.jwt->verify(token, now_s());
    if (!verified)
      return refuse(stats.refused_token, ErrorCode::unauthorized, 401, "unauthorized", verified.error().message);
    admitted.identity.user_id = std::move(verified->sub);
    admitted.identity.claims = std::move(verified->claims);
    admitted.identity.expires_at_s = verified->exp_s;
  } else if (config.require_auth) {
    return refuse(stats.refused_token, ErrorCode::unauthorized, 401, "unauthorized",
                  "no token (--require-auth)");
  }

  if (engine.has_connection_gate()) {
    req.ip = ip;
    req.origin = header(wsi, WSI_TOKEN_ORIGIN);
    req.headers = headers_of(wsi);
    req.cookies = cookies_of(header(wsi, WSI_TOKEN_HTTP_COOKIE));
    req.user_id = admitted.identity.user_id;
    req.claims = admitted.identity.claims;
    engine::Admission gate = engine.admit(req);
    if (!gate.admitted)
      return refuse(stats.refused_gate, gate.status == 403 ? ErrorCode::not_allowed : ErrorCode::internal,
                    gate.status, gate.reason, "rooms/_connect.lua: " + gate.reason);
    admitted.identity.user = std::move(gate.user);
  }

  ++per_ip_[ip];
  pending_[wsi] = std::move(admitted);
  return 0;
}

Admitted Admission::take(lws* wsi) {
  auto it = pending_.find(wsi);
  if (it == pending_.end()) return {};
  Admitted out = std::move(it->second);
  pending_.erase(it);
  return out;
}

void Admission::forget(lws* wsi) {
  auto it = pending_.find(wsi);
  if (it == pending_.end()) return;
  release(it->second.ip);
  pending_.erase(it);
}

void Admission::release(const std::string& ip) {
  auto it = per_ip_.find(ip);
  if (it == per_ip_.end()) return;
  if (--it->second <= 0) per_ip_.erase(it);
}

}  // namespace atrium::net
