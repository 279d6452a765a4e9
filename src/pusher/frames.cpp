#include "pusher/frames.hpp"

#include "json/codec.hpp"

namespace atrium::pusher {

std::string quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  json::write_string(text, out);
  return out;
}

std::string event_frame(std::string_view event, std::string_view channel, std::string_view data_json,
                        std::string_view user_id) {
  std::string out;
  out.reserve(32 + event.size() + channel.size() + data_json.size() + user_id.size());
  out += "{\"event\":";
  json::write_string(event, out);
  if (!channel.empty()) {
    out += ",\"channel\":";
    json::write_string(channel, out);
  }
  if (!data_json.empty()) {
    out += ",\"data\":";
    out += data_json;
  }
  if (!user_id.empty()) {
    out += ",\"user_id\":";
    json::write_string(user_id, out);
  }
  out += '}';
  return out;
}

std::string connection_established_frame(std::string_view socket_id, int activity_timeout_s) {
  std::string data = "{\"socket_id\":";
  json::write_string(socket_id, data);
  data += ",\"activity_timeout\":" + std::to_string(activity_timeout_s) + "}";
  return event_frame("pusher:connection_established", {}, quoted(data));
}

std::string error_frame(std::optional<int> code, std::string_view message) {
  std::string data = "{\"code\":";
  data += code ? std::to_string(*code) : std::string("null");
  data += ",\"message\":";
  json::write_string(message, data);
  data += '}';
  return event_frame("pusher:error", {}, data);
}

std::string subscription_error_frame(std::string_view channel, std::string_view type,
                                     std::string_view error, int status) {
  std::string data = "{\"type\":";
  json::write_string(type, data);
  data += ",\"error\":";
  json::write_string(error, data);
  data += ",\"status\":" + std::to_string(status) + "}";
  return event_frame("pusher:subscription_error", channel, data);
}

}  // namespace atrium::pusher
