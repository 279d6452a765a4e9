// The frames the server writes (pusher-js's protocol.ts reads them): one JSON object each,
// {"event", "channel"?, "data"?, "user_id"?}. Where Pusher sends `data` as a JSON string
// (connection_established, subscription_succeeded, member_added, events) so do we; errors
// carry an object, as Pusher's do.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace atrium::pusher {

// `data_json` is written as is (already JSON: a string literal, an object, ...); empty
// `channel`, `data_json` or `user_id` leave that member out.
std::string event_frame(std::string_view event, std::string_view channel, std::string_view data_json,
                        std::string_view user_id = {});

// `text` as a JSON string literal (the way `data` strings go out).
std::string quoted(std::string_view text);

std::string connection_established_frame(std::string_view socket_id, int activity_timeout_s);

// pusher:error {"code": code or null, "message"}: after the handshake pusher-js reports it
// and keeps the connection; a close that follows carries the action (4000-4099 refused,
// 4100-4199 backoff, 4200-4299 retry).
std::string error_frame(std::optional<int> code, std::string_view message);

// pusher:subscription_error {"type", "error", "status"} on the channel: what pusher-js's
// own authorizer emits when authorization fails, and what Laravel Echo's .error() hears.
std::string subscription_error_frame(std::string_view channel, std::string_view type,
                                     std::string_view error, int status);

}  // namespace atrium::pusher
