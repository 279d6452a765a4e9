// pusher:subscribe: the channel name and its auth checked, presence channel_data read, then
// the subscription registered and answered (finish_subscribe), or first joined to the room
// that serves the channel (rooms.cpp). Every refusal is a pusher:subscription_error, never
// a close.
#include <optional>

#include "json/codec.hpp"
#include "pusher/frames.hpp"
#include "pusher/impl.hpp"
#include "pusher/signature.hpp"

namespace atrium::pusher {

namespace {

// The longest channel name echoed back in an error: a 1 MB name gets pusher:error instead
// of a 1 MB pusher:subscription_error.
constexpr std::size_t kMaxEchoedName = 1024;

}  // namespace

void PusherServer::Impl::subscribe(ConnId id, Conn& c, const json::Value& msg) {
  AppState& app = apps[c.app];
  std::optional<json::Value> data = data_object(msg);
  const std::string* channel = data ? data->get_string("channel") : nullptr;
  if (!channel) {
    send(c, error_frame(std::nullopt, "pusher:subscribe needs data {\"channel\": NAME}"));
    return;
  }
  const std::string& name = *channel;
  auto refuse = [&](std::string_view type, std::string_view error, int status) {
    ++counters.subscription_errors;
    if (name.size() > kMaxEchoedName || !json::is_valid_utf8(name)) {
      send(c, error_frame(std::nullopt, error));
    } else {
      send(c, subscription_error_frame(name, type, error, status));
    }
  };
  // pusher-js subscribes to its user's #server-to-user-ID once signed in (user.ts), with
  // an empty auth. Those events go to the user's connections whether or not they asked
  // (publish()), so the channel is not registered: the answer is all there is to it.
  const std::string_view to_user = server_to_user_id(name);
  if (!to_user.empty()) {
    if (c.user_id.empty() || to_user != c.user_id) {
      ++counters.auth_failures;
      refuse("AuthError", "Only the signed-in user " + std::string(to_user.substr(0, 64)) + " may subscribe", 401);
    } else {
      send(c, event_frame("pusher_internal:subscription_succeeded", name, quoted("{}")));
    }
    return;
  }
  if (name.size() > app.app.limits.name_bytes) {
    refuse("LimitReached",
           "The channel name is longer than the allowed " + std::to_string(app.app.limits.name_bytes) +
               " characters",
           4009);
    return;
  }
  if (!valid_channel_name(name, app.app.limits.name_bytes)) {
    refuse("InvalidChannel", "Invalid channel name (allowed: A-Z a-z 0-9 _ - = @ , . ;)", 4009);
    return;
  }
  const RoomRoute route = route_of(app, name);
  if (!route.error.empty()) {
    refuse("InvalidChannel", route.error, 4009);
    return;
  }
  if (joining_room(id, name)) return;  // subscribed once already: that join answers
  const ChannelKind kind = kind_of(name);
  std::optional<PresenceMember> member;
  if (kind.needs_auth()) {
    const json::Value* auth = data->find("auth");
    const json::Value* channel_data = data->find("channel_data");
    if (!auth || !auth->is_string()) {
      ++counters.auth_failures;
      refuse("AuthError", "The connection is unauthorized: no auth string", 401);
      return;
    }
    if (kind.presence && (!channel_data || !channel_data->is_string())) {
      ++counters.auth_failures;
      refuse("AuthError", "The connection is unauthorized: presence channels need channel_data (a string)", 401);
      return;
    }
    const std::string_view signed_data = kind.presence ? std::string_view(channel_data->as_string()) : "";
    const std::string expected = channel_auth(app.app.key, app.app.secret, c.socket_id, name, signed_data);
    if (!constant_time_equal(auth->as_string(), expected)) {
      ++counters.auth_failures;
      refuse("AuthError", "The connection is unauthorized: invalid signature", 401);
      return;
    }
    if (kind.presence) {
      Result<json::Value> cd = json::parse(channel_data->as_string());
      std::optional<std::string> user;
      if (cd && cd->is_object()) user = user_id_of(cd->find("user_id"));
      if (!user || user->size() > app.app.limits.name_bytes) {
        refuse("InvalidChannelData", "channel_data must be a JSON object with a user_id (string or number)", 400);
        return;
      }
      member.emplace();
      member->user_id = std::move(*user);
      if (const json::Value* info = cd->find("user_info")) member->info_json = json::to_json(*info);
      if (member->info_json.size() > app.app.limits.member_info_bytes) {
        refuse("LimitReached",
               "The maximum size for a channel member is " + std::to_string(app.app.limits.member_info_bytes) +
                   " bytes",
               4301);
        return;
      }
      if (!c.channels.count(name) &&
          app.channels.presence_full(name, member->user_id, app.app.limits.presence_members)) {
        refuse("LimitReached", "The maximum members per presence channel limit was reached", 4100);
        return;
      }
    }
  }

  if (!route.room.empty() && !c.channels.count(name)) {
    join_room(id, c, name, route.room, member);   // finish_subscribe() once it is in
  } else {
    finish_subscribe(id, c, name, member, route.room);
  }
  return;
}

void PusherServer::Impl::finish_subscribe(ConnId id, Conn& c, const std::string& name,
                                          const std::optional<PresenceMember>& member, std::string_view room) {
  AppState& app = apps[c.app];
  const ChannelKind kind = kind_of(name);
  const SubscribeOutcome out = app.channels.subscribe(id, name, member, room);
  c.channels.insert(name);
  if (!out.already) ++counters.subscriptions;
  if (out.occupied) hook(app, "channel_occupied", name);
  if (out.member_added) {
    std::string added = "{\"user_id\":" + quoted(member->user_id);
    if (!member->info_json.empty()) added += ",\"user_info\":" + member->info_json;
    added += '}';
    broadcast(app, name, event_frame("pusher_internal:member_added", name, quoted(added)), id);
    hook(app, "member_added", name, member->user_id);
  }
  if (kind.presence) {
    // {"presence": {"ids", "hash", "count"}} of every member, as members.ts reads it.
    const Channel* ch = app.channels.find(name);
    std::string ids, hash;
    for (const auto& [user, m] : ch->members) {
      if (!ids.empty()) {
        ids += ',';
        hash += ',';
      }
      ids += quoted(user);
      hash += quoted(user) + ":" + (m.info_json.empty() ? std::string("null") : m.info_json);
    }
    const std::string data_json = "{\"presence\":{\"ids\":[" + ids + "],\"hash\":{" + hash +
                                  "},\"count\":" + std::to_string(ch->members.size()) + "}}";
    send(c, event_frame("pusher_internal:subscription_succeeded", name, quoted(data_json)));
  } else {
    send(c, event_frame("pusher_internal:subscription_succeeded", name, quoted("{}")));
  }
  if (kind.cache) {
    if (const CachedEvent* cached = app.channels.cached(name, now_ms())) {
      send(c, event_frame(cached->event, name, cached->data_json));
    } else {
      send(c, event_frame("pusher:cache_miss", name, {}));
      hook(app, "cache_miss", name);
    }
  }
  if (!out.already && !kind.presence && app.app.subscription_count_events) {
    broadcast(app, name,
              event_frame("pusher_internal:subscription_count", name,
                          quoted("{\"subscription_count\":" + std::to_string(out.subscribers) + "}")),
              0);
  }
}

}  // namespace atrium::pusher
