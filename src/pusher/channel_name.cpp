#include "pusher/channel_name.hpp"

namespace atrium::pusher {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.substr(0, prefix.size()) == prefix;
}

bool name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '=' || c == '@' || c == ',' || c == '.' || c == ';';
}

}  // namespace

ChannelKind kind_of(std::string_view channel) noexcept {
  ChannelKind k;
  if (starts_with(channel, "private-encrypted-")) {
    k.is_private = k.encrypted = true;
    k.cache = starts_with(channel, "private-encrypted-cache-");
  } else if (starts_with(channel, "private-")) {
    k.is_private = true;
    k.cache = starts_with(channel, "private-cache-");
  } else if (starts_with(channel, "presence-")) {
    k.presence = true;
    k.cache = starts_with(channel, "presence-cache-");
  } else {
    k.cache = starts_with(channel, "cache-");
  }
  return k;
}

bool valid_channel_name(std::string_view channel, std::size_t max_bytes) noexcept {
  if (channel.empty() || channel.size() > max_bytes) return false;
  for (char c : channel) {
    if (!name_char(c)) return false;
  }
  return true;
}

std::string_view server_to_user_id(std::string_view channel) noexcept {
  if (!starts_with(channel, kServerToUserPrefix)) return {};
  return channel.substr(kServerToUserPrefix.size());
}

}  // namespace atrium::pusher
