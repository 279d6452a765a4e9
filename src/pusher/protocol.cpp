// What a client sends (Pusher protocol 7): pusher:ping, pusher:subscribe (subscribe.cpp)
// and pusher:unsubscribe, pusher:signin and client-* events. Every malformed message gets an
// answer (pusher:error or pusher:subscription_error), never a crash and never a close
// unless Pusher closes too (a failed signin).
#include <optional>

#include "json/codec.hpp"
#include "pusher/frames.hpp"
#include "pusher/impl.hpp"
#include "pusher/signature.hpp"

namespace atrium::pusher {

// `data` as an object: pusher-js sends one; some clients send it JSON-encoded in a string,
// as the server sends its own.
std::optional<json::Value> data_object(const json::Value& message) {
  const json::Value* data = message.find("data");
  if (!data) return std::nullopt;
  if (data->is_object()) return *data;
  if (data->is_string()) {
    Result<json::Value> parsed = json::parse(data->as_string());
    if (parsed && parsed->is_object()) return std::move(parsed).value();
  }
  return std::nullopt;
}

// A user ID as Pusher takes it: a non-empty string, or a number written as a string
// (channel_data {"user_id": 42} is member "42").
std::optional<std::string> user_id_of(const json::Value* v) {
  if (!v) return std::nullopt;
  if (v->is_string()) {
    if (v->as_string().empty()) return std::nullopt;
    return v->as_string();
  }
  if (v->is_number()) {
    std::string out;
    json::write_number(v->as_number(), out);
    return out;
  }
  return std::nullopt;
}

namespace {

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

void PusherServer::Impl::receive(ConnId id, std::string_view message) {
  auto it = conns.find(id);
  if (it == conns.end() || !it->second.open) return;
  Conn& c = it->second;
  AppState& app = apps[c.app];
  ++counters.messages_in;

  Result<json::Value> parsed = json::parse(message);
  if (!parsed || !parsed->is_object()) {
    send(c, error_frame(std::nullopt, "Invalid message: a JSON object {\"event\", \"data\"} is expected"));
    return;
  }
  const json::Value& msg = parsed.value();
  const std::string* event = msg.get_string("event");
  if (!event) {
    send(c, error_frame(std::nullopt, "Invalid message: no event name"));
    return;
  }

  if (*event == "pusher:ping") {
    send(c, event_frame("pusher:pong", {}, "{}"));
    return;
  }
  if (*event == "pusher:pong") return;   // the answer to a ping: nothing to say

  if (*event == "pusher:subscribe") {
    subscribe(id, c, msg);
    return;
  }

  if (*event == "pusher:unsubscribe") {
    std::optional<json::Value> data = data_object(msg);
    const std::string* channel = data ? data->get_string("channel") : nullptr;
    if (!channel) {
      send(c, error_frame(std::nullopt, "pusher:unsubscribe needs data {\"channel\": NAME}"));
      return;
    }
    // Not subscribed: nothing to undo, and Pusher says nothing either. Still joining its
    // room (a durable room answers at the end of the loop pass): the join is let go.
    if (c.channels.count(*channel)) {
      unsubscribe(id, c, *channel);
    } else if (joining_room(id, *channel)) {
      leave_room(id, *channel);
    }
    return;
  }

  if (*event == "pusher:signin") {
    std::optional<json::Value> data = data_object(msg);
    const std::string* auth = data ? data->get_string("auth") : nullptr;
    const std::string* user_data = data ? data->get_string("user_data") : nullptr;
    if (!c.user_id.empty()) {
      send(c, error_frame(std::nullopt, "Already signed in"));
      return;
    }
    if (!auth || !user_data) {
      ++counters.auth_failures;
      close(id, c, 4009, "Connection not authorized: pusher:signin needs data {auth, user_data}");
      return;
    }
    if (!constant_time_equal(*auth, user_auth(app.app.key, app.app.secret, c.socket_id, *user_data))) {
      ++counters.auth_failures;
      close(id, c, 4009, "Connection not authorized: invalid signature");
      return;
    }
    Result<json::Value> user = json::parse(*user_data);
    std::optional<std::string> user_id;
    if (user && user->is_object()) user_id = user_id_of(user->find("id"));
    if (!user_id || user_id->size() > app.app.limits.name_bytes) {
      close(id, c, 4009, "The user data must contain the \"id\" field");
      return;
    }
    c.user_id = std::move(*user_id);
    if (const json::Value* list = user->get_array("watchlist")) {
      for (const json::Value& w : list->items()) {
        std::optional<std::string> watched = user_id_of(&w);
        if (!watched || c.watchlist.size() >= app.app.limits.watchlist_ids) continue;
        if (std::find(c.watchlist.begin(), c.watchlist.end(), *watched) == c.watchlist.end()) {
          c.watchlist.push_back(std::move(*watched));
        }
      }
    }
    ++counters.signins;
    if (c.auth_deadline_ms >= 0) auth_deadlines.erase({c.auth_deadline_ms, id});
    c.auth_deadline_ms = -1;
    std::set<ConnId>& mine = app.users[c.user_id];
    const bool first = mine.empty();
    mine.insert(id);
    send(c, event_frame("pusher:signin_success", {}, quoted("{\"user_data\":" + quoted(*user_data) + "}")));
    // The watchlist: register, then tell the user who of it is online now.
    std::string online;
    for (const std::string& watched : c.watchlist) {
      app.watchers[watched].insert(id);
      if (app.users.count(watched)) online += (online.empty() ? "" : ",") + quoted(watched);
    }
    if (!online.empty()) {
      send(c, event_frame("pusher_internal:watchlist_events", {},
                          "{\"events\":[{\"name\":\"online\",\"user_ids\":[" + online + "]}]}"));
    }
    // The user's first connection: whoever watches them sees them come online.
    if (first) {
      auto w = app.watchers.find(c.user_id);
      if (w != app.watchers.end()) {
        const SharedFrame frame(event_frame("pusher_internal:watchlist_events", {},
                                            "{\"events\":[{\"name\":\"online\",\"user_ids\":[" +
                                                quoted(c.user_id) + "]}]}"));
        for (ConnId watcher : w->second) {
          auto wc = conns.find(watcher);
          if (watcher != id && wc != conns.end() && wc->second.open) send(wc->second, frame);
        }
      }
    }
    return;
  }

  if (starts_with(*event, "client-")) {
    const std::string* channel = msg.get_string("channel");
    if (!channel) {
      send(c, error_frame(std::nullopt, "A client event needs a channel"));
      return;
    }
    if (event->size() > app.app.limits.name_bytes) {
      send(c, error_frame(std::nullopt, "Event name is too long"));
      return;
    }
    const ChannelKind kind = kind_of(*channel);
    if (!kind.client_events()) {
      send(c, error_frame(std::nullopt, kind.encrypted
                                            ? "Client events are not allowed on encrypted channels"
                                            : "Client events are only supported on private and presence channels"));
      return;
    }
    if (!c.channels.count(*channel)) {
      send(c, error_frame(std::nullopt, "Client event rejected: not subscribed to the channel"));
      return;
    }
    const json::Value* data = msg.find("data");
    const std::string data_json = data ? json::to_json(*data) : std::string();
    if (data_json.size() > app.app.limits.event_bytes) {
      send(c, error_frame(std::nullopt, "Client event rejected: data too large"));
      return;
    }
    // A fixed one-second window: Pusher's "10 messages per second per client".
    const std::int64_t now = now_ms();
    const std::int64_t window = now - now % 1000;
    if (window != c.rate_window_ms) {
      c.rate_window_ms = window;
      c.rate_count = 0;
    }
    if (++c.rate_count > app.app.limits.client_events_per_s) {
      ++counters.client_events_rate_limited;
      send(c, error_frame(4301, "Client event rejected due to rate limit"));
      return;
    }
    ++counters.client_events;
    const Channel* ch = app.channels.find(*channel);
    std::string user_id;
    if (kind.presence && ch) {
      auto m = ch->member_of.find(id);
      if (m != ch->member_of.end()) user_id = m->second;
    }
    if (ch && !ch->room.empty()) {
      relay_to_room(id, *channel, *event, data);   // onEvent first; never echoed either
    } else {
      if (kind.cache) app.channels.cache(*channel, *event, data_json, now);
      // Never echoed: pusher-js would run the sender's own handlers twice.
      broadcast(app, *channel, event_frame(*event, *channel, data_json, user_id), id);
    }
    const std::string webhook_data = data && data->is_string() ? data->as_string() : data_json;
    hook(app, "client_event", *channel, user_id, *event, webhook_data, c.socket_id);
    return;
  }

  send(c, error_frame(std::nullopt, "Unsupported event: " + event->substr(0, 64)));
}

void PusherServer::Impl::unsubscribe(ConnId id, Conn& c, const std::string& channel) {
  leave_room(id, channel);   // a channel that is a room: its engine client leaves it too
  AppState& app = apps[c.app];
  const UnsubscribeOutcome out = app.channels.unsubscribe(id, channel);
  c.channels.erase(channel);
  if (!out.was_subscribed) return;
  if (!out.member_removed.empty()) {
    broadcast(app, channel,
              event_frame("pusher_internal:member_removed", channel,
                          quoted("{\"user_id\":" + quoted(out.member_removed) + "}")),
              id);
    hook(app, "member_removed", channel, out.member_removed);
  }
  if (out.vacated) {
    hook(app, "channel_vacated", channel);
  } else if (!kind_of(channel).presence && app.app.subscription_count_events) {
    broadcast(app, channel,
              event_frame("pusher_internal:subscription_count", channel,
                          quoted("{\"subscription_count\":" + std::to_string(out.subscribers) + "}")),
              id);
  }
}

}  // namespace atrium::pusher
