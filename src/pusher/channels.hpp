// One app's channels: who is subscribed to what, the members of presence channels, and the
// last event of cache channels. Pure bookkeeping: it sends nothing and decides no policy;
// pusher.cpp turns what an operation reports (a channel became occupied, a user's last
// connection left, ...) into frames and webhooks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pusher/channel_name.hpp"

namespace atrium::pusher {

using ConnId = std::uint64_t;

struct PresenceMember {
  std::string user_id;
  std::string info_json;      // user_info as JSON text; "" when the client gave none
};

struct Channel {
  ChannelKind kind;
  // The room serving it ("chat:lobby"; rooms.hpp), fixed while the channel has subscribers
  // so that a script added or deleted meanwhile does not split one channel in two. "": none.
  std::string room;
  std::set<ConnId> subscribers;                  // ordered: fan-out order is reproducible
  // Presence: the members by user ID (what ids/hash list) and how many of this channel's
  // connections each has; and which member each subscribed connection is.
  struct Member {
    std::string info_json;
    std::size_t connections = 0;
  };
  std::map<std::string, Member> members;
  std::unordered_map<ConnId, std::string> member_of;
};

// The last event of a cache channel. Pusher keeps it 30 minutes, subscribers or not.
struct CachedEvent {
  std::string event;
  std::string data_json;
  std::int64_t expires_ms = 0;
};

struct SubscribeOutcome {
  bool already = false;             // the connection was subscribed: nothing changed
  bool occupied = false;            // first subscriber of the channel
  bool member_added = false;        // presence: the user's first connection here
  std::size_t subscribers = 0;
};

struct UnsubscribeOutcome {
  bool was_subscribed = false;
  bool vacated = false;             // last subscriber gone (the channel is dropped)
  std::string member_removed;       // presence: the user whose last connection left
  std::size_t subscribers = 0;
};

class ChannelRegistry {
 public:
  static constexpr std::int64_t kCacheTtlMs = 30 * 60 * 1000;

  const Channel* find(std::string_view name) const;
  // `member` for presence channels only; `room` is kept when the channel is new.
  SubscribeOutcome subscribe(ConnId conn, std::string_view name, const std::optional<PresenceMember>& member,
                             std::string_view room = {});
  UnsubscribeOutcome unsubscribe(ConnId conn, std::string_view name);

  // Whether `user_id` is not yet a member and the channel holds `limit` members already.
  bool presence_full(std::string_view name, std::string_view user_id, std::size_t limit) const;

  // Keeps a cache channel's last event. Expired ones of channels nobody asks for again are
  // swept here, at most once a minute, so a back end that triggers on ever new cache
  // channels holds memory for 30 minutes of them, not for all time.
  void cache(std::string_view name, std::string event, std::string data_json, std::int64_t now_ms);
  std::size_t cached_count() const noexcept { return cache_.size(); }
  // The cached event, if one is there and fresh (stale ones are dropped here).
  const CachedEvent* cached(std::string_view name, std::int64_t now_ms);

  const std::unordered_map<std::string, Channel>& all() const noexcept { return channels_; }
  std::size_t subscriptions() const noexcept { return subscriptions_; }

  // "" when consistent, else what is wrong (tests and the fuzzer call it).
  std::string check_invariants() const;

 private:
  std::unordered_map<std::string, Channel> channels_;
  std::unordered_map<std::string, CachedEvent> cache_;
  std::int64_t next_sweep_ms_ = 0;
  std::size_t subscriptions_ = 0;
};

}  // namespace atrium::pusher
