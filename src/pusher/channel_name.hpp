// What a Pusher channel's name says about it: its prefixes decide how it is authorized
// (private-, presence-, private-encrypted-), whether it caches its last event (cache-, and
// the private-/presence-/private-encrypted- forms of it), and which names are well-formed.
#pragma once

#include <cstddef>
#include <string_view>

namespace atrium::pusher {

struct ChannelKind {
  bool is_private = false;    // private-* (encrypted ones too): signed with socket_id:channel
  bool presence = false;      // presence-*: signed with channel_data, has members
  bool encrypted = false;     // private-encrypted-*: payloads opaque, no client events
  bool cache = false;         // *cache-*: the last event is replayed on subscribe

  bool needs_auth() const noexcept { return is_private || presence; }
  // Pusher allows client-* events on private and presence channels, never on encrypted
  // ones (the server could not check what it cannot read).
  bool client_events() const noexcept { return needs_auth() && !encrypted; }
};

ChannelKind kind_of(std::string_view channel) noexcept;

// Pusher's channel-name alphabet: [A-Za-z0-9_\-=@,.;], 1..max_bytes long. Names starting
// with '#' (#server-to-user-ID) are the server's own: no client subscribes to one.
bool valid_channel_name(std::string_view channel, std::size_t max_bytes) noexcept;

// "#server-to-user-ID": the user ID, or "" when `channel` is not such a name.
inline constexpr std::string_view kServerToUserPrefix = "#server-to-user-";
std::string_view server_to_user_id(std::string_view channel) noexcept;

}  // namespace atrium::pusher
