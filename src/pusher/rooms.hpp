// Channels that are rooms (docs/pusher.md): `presence-chat.lobby`, `private-chat.lobby` and
// `chat.lobby` are served by room `chat:lobby` when rooms/chat.lua exists. Each such
// subscription is an engine client of its own (a RoomSub) that joined the room: the room's
// onJoin decides the subscription, its onEvent sees (and may veto or rewrite) the channel's
// client events, and whatever the room sends its members reaches the subscriber as a channel
// event. Presence member lists, channel queries and webhooks stay the Pusher side's, as for
// any channel. Internal to src/pusher; rooms.cpp implements it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/client_sink.hpp"
#include "engine/engine.hpp"
#include "pusher/channels.hpp"
#include "pusher/pusher.hpp"
#include "util/shared_frame.hpp"

namespace atrium::pusher {

// Which room serves a channel of an app: `room` (empty: none, the channel is Pusher's own),
// or `error` when the name maps to a room type but cannot name a room (characters a room id
// has not, too long): such a channel is refused rather than served without its script.
struct RoomRoute {
  std::string room;
  std::string error;
};

// public, private- and presence- names of the form TYPE.INSTANCE where rooms/TYPE.lua
// exists (`has_type`): room TYPE:INSTANCE for the first app configured, TYPE:INSTANCE@APP_ID
// for the others (apps never share a room). Encrypted and cache channels are never rooms: a
// script could not read the one, and the other's replay is Pusher's.
template <class HasType>
RoomRoute route_channel(std::string_view channel, std::size_t app_index, std::string_view app_id,
                        HasType&& has_type);

// One subscription served by a room: the engine client that joined it for a Pusher
// connection. Frames the engine sends it become the connection's channel events.
struct RoomSub final : engine::ClientSink {
  enum class Phase { joining, active, ended };

  PusherServer::Impl* server = nullptr;
  ConnId conn = 0;
  std::string channel;                    // as subscribed: "presence-chat.lobby"
  std::string room;                       // "chat:lobby"
  std::optional<PresenceMember> member;   // presence channels
  engine::ClientId client = 0;
  std::string wire_id;                    // "c12": `from` of its events
  Phase phase = Phase::joining;
  // Channel events the room sent before the join's reply (an onJoin's emits): they follow
  // pusher_internal:subscription_succeeded.
  std::vector<SharedFrame> early;

  void send(const SharedFrame& frame) override;
  void close(int code, std::string_view reason) override;
};

// ---- implementation of the template ----

namespace rooms_detail {
inline bool is_room_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '@' || c == '-';
}
inline constexpr std::size_t kMaxRoomId = 128;
}  // namespace rooms_detail

template <class HasType>
RoomRoute route_channel(std::string_view channel, std::size_t app_index, std::string_view app_id,
                        HasType&& has_type) {
  RoomRoute out;
  const ChannelKind kind = kind_of(channel);
  if (kind.encrypted || kind.cache || channel.empty() || channel[0] == '#') return out;
  std::string_view rest = channel;
  for (std::string_view prefix : {std::string_view("presence-"), std::string_view("private-")}) {
    if (rest.substr(0, prefix.size()) == prefix) {
      rest.remove_prefix(prefix.size());
      break;
    }
  }
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == rest.size()) return out;
  const std::string_view type = rest.substr(0, dot);
  for (char c : type) {
    if (!rooms_detail::is_room_id_char(c) || c == ':') return out;  // no such script can exist
  }
  if (!has_type(type)) return out;
  std::string room = std::string(type) + ":" + std::string(rest.substr(dot + 1));
  if (app_index > 0) room += "@" + std::string(app_id);
  for (char c : room.substr(type.size() + 1)) {
    if (!rooms_detail::is_room_id_char(c) || c == ':') {
      out.error = "Channel of room type '" + std::string(type) + "' must name a room: A-Z a-z 0-9 _ - . @ only";
      return out;
    }
  }
  if (room.size() > rooms_detail::kMaxRoomId) {
    out.error = "Channel of room type '" + std::string(type) + "' names a room id longer than 128 bytes";
    return out;
  }
  out.room = std::move(room);
  return out;
}

}  // namespace atrium::pusher
