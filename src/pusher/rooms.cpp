// Channels that are rooms (rooms.hpp, docs/pusher.md "Channels that are rooms"): a
// subscription joins the room as an engine client of its own, client events go through
// the room's onEvent, and what the room sends its members comes back as channel events.
//
// The engine is not re-entrant, and a RoomSub hears from inside an engine call that its
// subscription ended (kicked, room closed): the engine client's disconnect waits in
// room_leaves until settle_rooms() runs with no engine call on the stack (at the end of
// every PusherServer entry point, and in run_due for what a native client's input caused).
#include <cstdlib>

#include "json/codec.hpp"
#include "pusher/frames.hpp"
#include "pusher/impl.hpp"

namespace atrium::pusher {

namespace {

// Marks an engine call (or a callback from inside one) on the stack.
struct EngineCall {
  int& depth;
  explicit EngineCall(PusherServer::Impl& s) : depth(s.engine_depth) { ++depth; }
  ~EngineCall() { --depth; }
  EngineCall(const EngineCall&) = delete;
  EngineCall& operator=(const EngineCall&) = delete;
};

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.substr(0, prefix.size()) == prefix;
}

// The join is the only request a RoomSub makes with a ref.
constexpr std::string_view kJoinRef = "1";
constexpr std::string_view kJoinOk = R"({"op":"reply","ref":1,"ok":true)";

// How a refused join reads to pusher-js and Echo's .error(): {type, error, status}.
struct Refusal {
  std::string_view type;
  int status;
};
Refusal refusal_of(std::string_view code) {
  if (code == "room_full") return {"LimitReached", 4100};
  if (code == "join_rejected" || code == "server_join_only" || code == "not_allowed") return {"AuthError", 403};
  if (code == "not_found" || code == "bad_request") return {"InvalidChannel", 4009};
  return {"ServerError", 500};   // the room's script failed: its own problem, not the client's
}

// An engine event's data as Pusher's `data` member: a string as it is, anything else as
// its JSON text, in a string (how Pusher sends server events; pusher-js parses it back).
std::string pusher_data(const json::Value& data) {
  return quoted(data.is_string() ? data.as_string() : json::to_json(data));
}

}  // namespace

void RoomSub::send(const SharedFrame& frame) { server->room_frame(*this, frame); }
void RoomSub::close(int, std::string_view) { server->room_closed(*this); }

RoomRoute PusherServer::Impl::route_of(const AppState& app, std::string_view channel) const {
  if (!engine) return {};
  // While the channel has subscribers, what it was when it got its first one.
  if (const Channel* ch = app.channels.find(channel)) return RoomRoute{ch->room, {}};
  const auto index = static_cast<std::size_t>(&app - apps.data());
  return route_channel(channel, index, app.app.id,
                       [this](std::string_view type) { return engine->has_room_type(type); });
}

bool PusherServer::Impl::joining_room(ConnId id, std::string_view channel) const {
  auto it = room_sub_of.find(std::make_pair(id, std::string(channel)));
  if (it == room_sub_of.end()) return false;
  auto sub = room_subs.find(it->second);
  return sub != room_subs.end() && sub->second->phase == RoomSub::Phase::joining;
}

void PusherServer::Impl::join_room(ConnId id, Conn& c, const std::string& channel, const std::string& room,
                                   const std::optional<PresenceMember>& member) {
  auto owned = std::make_unique<RoomSub>();
  RoomSub& sub = *owned;
  sub.server = this;
  sub.conn = id;
  sub.channel = channel;
  sub.room = room;
  sub.member = member;
  // ctx.userId: the presence member's, else the signed-in user's (pusher:signin).
  engine::Identity identity;
  identity.user_id = member ? member->user_id : c.user_id;
  json::Value pusher = json::Value::object();
  pusher.set("channel", json::Value(channel));
  if (!identity.user_id.empty()) pusher.set("userId", json::Value(identity.user_id));
  if (member && !member->info_json.empty()) {
    if (Result<json::Value> info = json::parse(member->info_json)) pusher.set("userInfo", std::move(info).value());
  }
  identity.pusher = std::move(pusher);
  {
    EngineCall in(*this);
    sub.client = engine->connect(sub, std::move(identity));
  }
  sub.wire_id = "c" + std::to_string(sub.client);
  room_sub_of[std::make_pair(id, channel)] = sub.client;
  room_subs.emplace(sub.client, std::move(owned));
  ++counters.room_joins;
  EngineCall in(*this);
  engine->receive(sub.client, R"({"op":"join","ref":)" + std::string(kJoinRef) + R"(,"room":)" + quoted(room) +
                                  R"(,"payload":{}})");
}

void PusherServer::Impl::leave_room(ConnId id, std::string_view channel) {
  auto it = room_sub_of.find(std::make_pair(id, std::string(channel)));
  if (it == room_sub_of.end()) return;
  auto sub = room_subs.find(it->second);
  if (sub != room_subs.end()) {
    sub->second->phase = RoomSub::Phase::ended;
    sub->second->early.clear();
    room_leaves.push_back(it->second);
  }
  room_sub_of.erase(it);
}

void PusherServer::Impl::room_frame(RoomSub& sub, const SharedFrame& frame) {
  EngineCall in(*this);
  if (sub.phase == RoomSub::Phase::ended) return;
  const std::string_view text = frame.view();
  if (starts_with(text, R"({"op":"event")")) {
    Translation& t = last_translation;
    if (t.in.data() != frame.data() || t.channel != sub.channel || t.room != sub.room) {
      t.in = frame;
      t.channel = sub.channel;
      t.room = sub.room;
      t.out = SharedFrame();
      Result<json::Value> parsed = json::parse(text);
      const std::string* room = parsed ? parsed->get_string("room") : nullptr;
      const std::string* event = parsed ? parsed->get_string("event") : nullptr;
      if (room && event && *room == sub.room) {
        const json::Value* data = parsed->find("data");
        // user_id on a presence channel's client events, as Pusher adds it.
        std::string user_id;
        const std::string* from = parsed->get_string("from");
        if (from && from->size() > 1 && kind_of(sub.channel).presence) {
          const auto sender = room_subs.find(std::strtoull(from->c_str() + 1, nullptr, 10));
          if (sender != room_subs.end() && sender->second->member) user_id = sender->second->member->user_id;
        }
        t.out = SharedFrame(event_frame(*event, sub.channel, data ? pusher_data(*data) : std::string(), user_id));
      }
    }
    if (!t.out) return;
    if (sub.phase == RoomSub::Phase::joining) {
      sub.early.push_back(t.out);
      return;
    }
    auto c = conns.find(sub.conn);
    if (c != conns.end() && c->second.open) send(c->second, t.out);
    return;
  }
  if (starts_with(text, R"({"op":"reply")")) {
    if (sub.phase != RoomSub::Phase::joining) return;
    auto it = conns.find(sub.conn);
    if (it == conns.end() || !it->second.open) {
      leave_room(sub.conn, sub.channel);
      return;
    }
    Conn& c = it->second;
    AppState& app = apps[c.app];
    auto refuse = [&](std::string_view type, std::string_view error, int status) {
      ++counters.subscription_errors;
      ++counters.room_refusals;
      send(c, subscription_error_frame(sub.channel, type, error, status));
      leave_room(sub.conn, sub.channel);
    };
    if (!starts_with(text, kJoinOk)) {
      Result<json::Value> parsed = json::parse(text);
      const json::Value* error = parsed ? parsed->find("error") : nullptr;
      const std::string* code = error ? error->get_string("code") : nullptr;
      const std::string* message = error ? error->get_string("message") : nullptr;
      const Refusal r = refusal_of(code ? *code : "internal");
      refuse(r.type, message ? *message : "The room refused the subscription", r.status);
      return;
    }
    // Presence members are counted when the subscription is made, and the join ran after
    // the check: others may have filled the channel meanwhile.
    if (sub.member && app.channels.presence_full(sub.channel, sub.member->user_id, app.app.limits.presence_members)) {
      refuse("LimitReached", "The maximum members per presence channel limit was reached", 4100);
      return;
    }
    sub.phase = RoomSub::Phase::active;
    finish_subscribe(sub.conn, c, sub.channel, sub.member, sub.room);
    for (const SharedFrame& f : sub.early) send(c, f);
    sub.early.clear();
    return;
  }
  if (starts_with(text, R"({"op":"left")")) {
    Result<json::Value> parsed = json::parse(text);
    const std::string* room = parsed ? parsed->get_string("room") : nullptr;
    if (!room || *room != sub.room) return;   // a room it was placed in by server code
    const std::string* reason = parsed->get_string("reason");
    const std::string* message = parsed->get_string("message");
    std::string data = "{\"reason\":" + quoted(reason ? *reason : "closed");
    if (message) data += ",\"message\":" + quoted(*message);
    data += '}';
    auto c = conns.find(sub.conn);
    if (c != conns.end() && c->second.open) {
      if (sub.phase == RoomSub::Phase::active) {
        send(c->second, event_frame("atrium:left", sub.channel, quoted(data)));
        unsubscribe(sub.conn, c->second, sub.channel);   // leave_room() through it
      } else {   // removed inside its own join (an onJoin that kicked it): still an answer
        ++counters.subscription_errors;
        ++counters.room_refusals;
        send(c->second, subscription_error_frame(sub.channel, "AuthError",
                                                 message ? *message : "Removed from the room", 403));
      }
    }
    leave_room(sub.conn, sub.channel);
    return;
  }
  if (starts_with(text, R"({"op":"error")") && sub.phase == RoomSub::Phase::active) {
    // A client event the room failed on (its onEvent raised): the sender hears why.
    Result<json::Value> parsed = json::parse(text);
    const json::Value* error = parsed ? parsed->find("error") : nullptr;
    const std::string* message = error ? error->get_string("message") : nullptr;
    auto c = conns.find(sub.conn);
    if (c != conns.end() && c->second.open) {
      send(c->second, error_frame(std::nullopt, "Client event rejected by the room: " +
                                                     (message ? *message : std::string("error"))));
    }
  }
  // welcome, state, patch, joined: the room's state is for native clients.
}

void PusherServer::Impl::room_closed(RoomSub& sub) {
  EngineCall in(*this);
  if (sub.phase == RoomSub::Phase::ended) return;
  auto c = conns.find(sub.conn);
  if (c != conns.end() && c->second.open) {
    if (sub.phase == RoomSub::Phase::active) {
      send(c->second, event_frame("atrium:left", sub.channel, quoted("{\"reason\":\"closed\"}")));
      unsubscribe(sub.conn, c->second, sub.channel);
    } else {
      ++counters.subscription_errors;
      ++counters.room_refusals;
      send(c->second, subscription_error_frame(sub.channel, "ServerError", "The room is closing", 500));
    }
  }
  leave_room(sub.conn, sub.channel);
}

void PusherServer::Impl::relay_to_room(ConnId id, std::string_view channel, std::string_view event,
                                       const json::Value* data) {
  auto it = room_sub_of.find(std::make_pair(id, std::string(channel)));
  if (it == room_sub_of.end()) return;
  auto sub = room_subs.find(it->second);
  if (sub == room_subs.end() || sub->second->phase != RoomSub::Phase::active) return;
  std::string message = R"({"op":"emit","room":)" + quoted(sub->second->room) + R"(,"event":)" + quoted(event) +
                        R"(,"data":)" + (data ? json::to_json(*data) : std::string("null")) + "}";
  EngineCall in(*this);
  engine->receive(sub->second->client, message);
}

void PusherServer::Impl::publish_to_room(AppState&, const std::string& room, std::string_view event,
                                         std::string_view data_json, ConnId except) {
  // Pusher's data is a string, most often JSON (Laravel's): native members get the value it
  // holds, as pusher-js hands its listeners.
  json::Value data;
  if (Result<json::Value> outer = json::parse(data_json)) {
    data = std::move(outer).value();
    if (data.is_string()) {
      if (Result<json::Value> inner = json::parse(data.as_string())) data = std::move(inner).value();
    }
  }
  std::string skip;
  for (auto it = room_sub_of.lower_bound(std::make_pair(except, std::string())); except != 0 &&
                                                                                 it != room_sub_of.end() &&
                                                                                 it->first.first == except;
       ++it) {
    auto sub = room_subs.find(it->second);
    if (sub != room_subs.end() && sub->second->room == room) {
      skip = sub->second->wire_id;
      break;
    }
  }
  EngineCall in(*this);
  (void)engine->emit(room, event, data, skip);   // not_found: nobody is in the room
}

PusherServer::Impl::~Impl() {
  // Normally empty: close_all() at shutdown ended every subscription. What is left leaves
  // its room without a word to anyone (the transports may be gone).
  if (!engine) return;
  for (auto& [client, sub] : room_subs) sub->phase = RoomSub::Phase::ended;
  for (auto& [client, sub] : room_subs) engine->disconnect(client, /*clean=*/true);
}

void PusherServer::Impl::settle_rooms() {
  if (engine_depth > 0 || !engine) return;
  while (!room_leaves.empty()) {
    std::vector<engine::ClientId> leaving;
    leaving.swap(room_leaves);
    for (engine::ClientId client : leaving) {
      {
        EngineCall in(*this);
        engine->disconnect(client, /*clean=*/true);
      }
      room_subs.erase(client);
    }
  }
}

}  // namespace atrium::pusher
