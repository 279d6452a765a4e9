// The JSON of Pusher's webhook events (https://pusher.com/docs/channels/server_api/webhooks)
// and of the body that batches them: {"time_ms": T, "events": [...]}. Each event is
// written once, when it happens, and kept as text until its batch goes out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace atrium::pusher::webhook {

// {"name":"channel_occupied","channel":C}; the same shape for channel_vacated and
// cache_miss.
std::string channel_event(std::string_view name, std::string_view channel);
// {"name":"member_added"|"member_removed","channel":C,"user_id":U}
std::string member_event(std::string_view name, std::string_view channel, std::string_view user_id);
// {"name":"client_event","channel":C,"event":E,"data":D,"socket_id":S[,"user_id":U]}: data
// is a string, as Pusher sends it; user_id only when given (presence channels).
std::string client_event(std::string_view channel, std::string_view event, std::string_view data,
                         std::string_view socket_id, std::string_view user_id);

// {"time_ms":T,"events":[e1,e2,...]} from events written by the functions above.
std::string body(std::int64_t time_ms, const std::vector<std::string>& events);

}  // namespace atrium::pusher::webhook
