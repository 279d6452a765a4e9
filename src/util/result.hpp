// Error codes of docs/protocol.md ("Error codes") and the Result type every part returns.
// Bad input flows as a value, never as an exception across a part boundary.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace atrium {

// Spelled exactly as on the wire.
enum class ErrorCode {
  bad_json,
  bad_request,
  unknown_op,
  unauthorized,
  not_found,
  join_rejected,
  room_full,
  server_join_only,
  not_member,
  already_member,
  unknown_method,
  not_allowed,
  script_error,
  budget_exceeded,
  rate_limited,
  too_large,
  internal,
};

std::string_view to_string(ErrorCode code) noexcept;
// The code spelled `name`, if it is one of the above.
std::optional<ErrorCode> error_code_named(std::string_view name) noexcept;
// The HTTP status of a code, as in docs/protocol.md: 400, 401, 404, 409, 413, 422, 429, 500.
int http_status(ErrorCode code) noexcept;

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
  // A room script's error (docs/rooms.md "Errors"): the code it gave, when that is not one
  // of the codes above (`code` is then script_error), and where in the script it was
  // raised ("rooms/ttt.lua:54"). Both empty otherwise.
  std::string script_code;
  std::string where;

  // As on the wire: the script's own code, else the code's name.
  std::string_view wire_code() const noexcept {
    return script_code.empty() ? to_string(code) : std::string_view(script_code);
  }
};

inline Error make_error(ErrorCode code, std::string message) {
  Error e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

// A value or an Error. Small on purpose: C++20 has no std::expected.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace atrium
