#include "util/result.hpp"

namespace atrium {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::bad_json: return "bad_json";
    case ErrorCode::bad_request: return "bad_request";
    case ErrorCode::unknown_op: return "unknown_op";
    case ErrorCode::unauthorized: return "unauthorized";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::join_rejected: return "join_rejected";
    case ErrorCode::room_full: return "room_full";
    case ErrorCode::server_join_only: return "server_join_only";
    case ErrorCode::not_member: return "not_member";
    case ErrorCode::already_member: return "already_member";
    case ErrorCode::unknown_method: return "unknown_method";
    case ErrorCode::not_allowed: return "not_allowed";
    case ErrorCode::script_error: return "script_error";
    case ErrorCode::budget_exceeded: return "budget_exceeded";
    case ErrorCode::rate_limited: return "rate_limited";
    case ErrorCode::too_large: return "too_large";
    case ErrorCode::internal: return "internal";
  }
  return "internal";
}

std::optional<ErrorCode> error_code_named(std::string_view name) noexcept {
  for (int i = 0; i <= static_cast<int>(ErrorCode::internal); ++i)
    if (to_string(static_cast<ErrorCode>(i)) == name) return static_cast<ErrorCode>(i);
  return std::nullopt;
}

int http_status(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::bad_json:
    case ErrorCode::bad_request:
    case ErrorCode::unknown_op: return 400;
    case ErrorCode::unauthorized: return 401;
    case ErrorCode::not_found:
    case ErrorCode::unknown_method: return 404;
    case ErrorCode::join_rejected:
    case ErrorCode::room_full:
    case ErrorCode::already_member:
    case ErrorCode::not_member:
    case ErrorCode::server_join_only:
    case ErrorCode::not_allowed: return 409;
    case ErrorCode::too_large: return 413;
    case ErrorCode::script_error:
    case ErrorCode::budget_exceeded: return 422;
    case ErrorCode::rate_limited: return 429;
    case ErrorCode::internal: return 500;
  }
  return 500;
}

}  // namespace atrium
