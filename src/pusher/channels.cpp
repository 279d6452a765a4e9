#include "pusher/channels.hpp"

#include <iterator>

namespace atrium::pusher {

const Channel* ChannelRegistry::find(std::string_view name) const {
  auto it = channels_.find(std::string(name));
  return it == channels_.end() ? nullptr : &it->second;
}

SubscribeOutcome ChannelRegistry::subscribe(ConnId conn, std::string_view name,
                                            const std::optional<PresenceMember>& member,
                                            std::string_view room) {
  SubscribeOutcome out;
  auto [it, created] = channels_.try_emplace(std::string(name));
  Channel& ch = it->second;
  if (created) {
    ch.kind = kind_of(name);
    ch.room = std::string(room);
  }
  if (!ch.subscribers.insert(conn).second) {
    out.already = true;
    out.subscribers = ch.subscribers.size();
    return out;
  }
  ++subscriptions_;
  out.occupied = created;
  if (ch.kind.presence && member) {
    Channel::Member& m = ch.members[member->user_id];
    out.member_added = m.connections == 0;
    if (out.member_added) m.info_json = member->info_json;
    ++m.connections;
    ch.member_of.emplace(conn, member->user_id);
  }
  out.subscribers = ch.subscribers.size();
  return out;
}

UnsubscribeOutcome ChannelRegistry::unsubscribe(ConnId conn, std::string_view name) {
  UnsubscribeOutcome out;
  auto it = channels_.find(std::string(name));
  if (it == channels_.end()) return out;
  Channel& ch = it->second;
  if (ch.subscribers.erase(conn) == 0) return out;
  --subscriptions_;
  out.was_subscribed = true;
  auto mine = ch.member_of.find(conn);
  if (mine != ch.member_of.end()) {
    auto m = ch.members.find(mine->second);
    if (m != ch.members.end() && --m->second.connections == 0) {
      out.member_removed = m->first;
      ch.members.erase(m);
    }
    ch.member_of.erase(mine);
  }
  out.subscribers = ch.subscribers.size();
  if (ch.subscribers.empty()) {
    out.vacated = true;
    channels_.erase(it);
  }
  return out;
}

bool ChannelRegistry::presence_full(std::string_view name, std::string_view user_id,
                                    std::size_t limit) const {
  const Channel* ch = find(name);
  if (!ch) return limit == 0;
  if (ch->members.count(std::string(user_id))) return false;
  return ch->members.size() >= limit;
}

void ChannelRegistry::cache(std::string_view name, std::string event, std::string data_json,
                            std::int64_t now_ms) {
  constexpr std::int64_t kSweepEveryMs = 60 * 1000;
  if (now_ms >= next_sweep_ms_) {
    next_sweep_ms_ = now_ms + kSweepEveryMs;
    for (auto it = cache_.begin(); it != cache_.end();)
      it = it->second.expires_ms <= now_ms ? cache_.erase(it) : std::next(it);
  }
  CachedEvent& c = cache_[std::string(name)];
  c.event = std::move(event);
  c.data_json = std::move(data_json);
  c.expires_ms = now_ms + kCacheTtlMs;
}

const CachedEvent* ChannelRegistry::cached(std::string_view name, std::int64_t now_ms) {
  auto it = cache_.find(std::string(name));
  if (it == cache_.end()) return nullptr;
  if (it->second.expires_ms <= now_ms) {
    cache_.erase(it);
    return nullptr;
  }
  return &it->second;
}

std::string ChannelRegistry::check_invariants() const {
  std::size_t total = 0;
  for (const auto& [name, ch] : channels_) {
    if (ch.subscribers.empty()) return "empty channel kept: " + name;
    total += ch.subscribers.size();
    std::size_t member_conns = 0;
    for (const auto& [user, m] : ch.members) {
      if (m.connections == 0) return "member without connections: " + name + " " + user;
      member_conns += m.connections;
    }
    if (member_conns != ch.member_of.size()) return "member counts disagree: " + name;
    for (const auto& [conn, user] : ch.member_of) {
      if (!ch.subscribers.count(conn)) return "member not subscribed: " + name;
      if (!ch.members.count(user)) return "member_of names no member: " + name;
    }
  }
  if (total != subscriptions_) return "subscription count disagrees";
  return {};
}

}  // namespace atrium::pusher
