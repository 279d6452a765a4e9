// Written with json::write_string: every string is escaped (quotes, control bytes) and a
// byte that is not UTF-8 becomes U+FFFD, so the receiver's JSON.parse never fails on what
// a client put in a channel name or an event's data.
#include "pusher/webhook_events.hpp"

#include "json/codec.hpp"

namespace atrium::pusher::webhook {
namespace {

void field(std::string& out, std::string_view key, std::string_view value) {
  out += out.size() == 1 ? "" : ",";
  json::write_string(key, out);
  out += ':';
  json::write_string(value, out);
}

}  // namespace

std::string channel_event(std::string_view name, std::string_view channel) {
  std::string out = "{";
  field(out, "name", name);
  field(out, "channel", channel);
  out += '}';
  return out;
}

std::string member_event(std::string_view name, std::string_view channel, std::string_view user_id) {
  std::string out = "{";
  field(out, "name", name);
  field(out, "channel", channel);
  field(out, "user_id", user_id);
  out += '}';
  return out;
}

std::string client_event(std::string_view channel, std::string_view event, std::string_view data,
                         std::string_view socket_id, std::string_view user_id) {
  std::string out = "{";
  field(out, "name", "client_event");
  field(out, "channel", channel);
  field(out, "event", event);
  field(out, "data", data);
  field(out, "socket_id", socket_id);
  if (!user_id.empty()) field(out, "user_id", user_id);
  out += '}';
  return out;
}

std::string body(std::int64_t time_ms, const std::vector<std::string>& events) {
  std::size_t size = 40;
  for (const std::string& e : events) size += e.size() + 1;
  std::string out;
  out.reserve(size);
  out += "{\"time_ms\":";
  out += std::to_string(time_ms);
  out += ",\"events\":[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i) out += ',';
    out += events[i];
  }
  out += "]}";
  return out;
}

}  // namespace atrium::pusher::webhook
