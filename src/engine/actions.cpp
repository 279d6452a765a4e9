// What clients and the HTTP API ask of a room: emit (onEvent or pub/sub), call an action,
// call a plain method. Each runs as one transaction.
#include <lua.hpp>

#include "engine/engine_impl.hpp"
#include "script/lua_json.hpp"

namespace atrium::engine {

bool is_reserved_method(std::string_view name) {
  static const std::string_view reserved[] = {"onCreate", "onJoin", "onLeave", "onEvent", "onTick",
                                              "onDestroy", "onReload", "onDrop", "onReconnect",
                                              "onRestore", "actions", "defaultState",
                                              "defaultMeta", "options"};
  for (auto r : reserved)
    if (name == r) return true;
  return false;
}

Result<json::Value> Engine::Impl::client_emit(Client& c, Room& room, const std::string& event,
                                              const json::Value& data) {
  if (!room.type) {  // untyped: plain pub/sub to the other members
    emit_to_members(room, encode_event_frame(room.id, event, data, c.wire_id), c.id);
    return json::Value();
  }
  if (!c.pusher.is_null()) return relay_emit(c, room, event, data);
  if (!has_method(room, "onEvent"))
    return make_error(ErrorCode::not_allowed, room.type->file + " has no onEvent: events are not allowed in " + room.id);
  Status s = hook_transaction(room, "onEvent", [&] {
    lua_pushlstring(L, event.data(), event.size());
    script::push_value(L, data);
    push_ctx(c, nullptr, nullptr);
    return 3;
  });
  if (!s) return s.error();
  return json::Value();
}

// A Pusher client event (docs/pusher.md "Channels that are rooms"): Pusher relays client
// events, so the room does too, after onEvent saw it: `false` vetoes it, nil or `true`
// lets it pass as sent, any other value is the data the others get instead. A room with
// no onEvent relays everything, as a Pusher channel does. Answers {"vetoed": true} or null.
Result<json::Value> Engine::Impl::relay_emit(Client& c, Room& room, const std::string& event,
                                             const json::Value& data) {
  json::Value relayed = data;
  bool vetoed = false;
  const int top = lua_gettop(L);
  Status s = transact([&]() -> Status {
    lua_pushlstring(L, event.data(), event.size());
    script::push_value(L, data);
    push_ctx(c, nullptr, nullptr);
    HookOutcome o = call_method(room, "onEvent", 3, 1);
    if (!o.ran) return {};
    if (!o.result.ok) {
      lua_settop(L, top);
      return hook_error(o.result);
    }
    if (lua_isboolean(L, -1)) {
      vetoed = !lua_toboolean(L, -1);
    } else if (!lua_isnil(L, -1)) {
      auto v = script::to_value(L, -1, "onEvent's result");
      if (!v) {
        lua_settop(L, top);
        return make_error(ErrorCode::script_error, room.type->file + ": onEvent: " + v.error().message);
      }
      relayed = std::move(v.value());
    }
    lua_settop(L, top);
    return {};
  });
  if (!s) return s.error();
  if (vetoed) {
    json::Value out = json::Value::object();
    out.set("vetoed", json::Value(true));
    return out;
  }
  // The room's own emits of this hook went out at its commit: the relayed event follows.
  if (Room* still = find_room(room.id); still == &room && room.is_active_member(c.id))
    emit_to_members(room, encode_event_frame(room.id, event, relayed, c.wire_id), c.id);
  return json::Value();
}

// Calls an action (ctx first) or a plain method with `args`, as one transaction, and
// returns its first result as JSON. `kind` names it in errors: "action" or "method".
Result<json::Value> Engine::Impl::call_returning(Room& room, const std::string& name, const Client* ctx_of,
                                                 const json::Value& args, const char* kind) {
  json::Value result;
  bool found = true;
  const int top = lua_gettop(L);
  Status s = transact([&]() -> Status {
    if (ctx_of) push_ctx(*ctx_of, nullptr, nullptr);
    for (const json::Value& a : args.items()) script::push_value(L, a);
    const int nargs = (ctx_of ? 1 : 0) + static_cast<int>(args.size());
    HookOutcome o = call_method(room, name, nargs, 1, /*from_actions=*/ctx_of != nullptr);
    if (!o.ran || !o.result.ok) {
      found = o.ran;
      lua_settop(L, top);
      return o.ran ? hook_error(o.result) : Status{};
    }
    auto v = script::to_value(L, -1, "result");
    lua_settop(L, top);
    if (!v)
      return make_error(ErrorCode::script_error,
                        room.type->file + ": " + kind + " " + name + ": " + v.error().message);
    result = std::move(v.value());
    return {};
  });
  if (!found) return make_error(ErrorCode::unknown_method, room.id + " has no " + kind + " '" + name + "'");
  if (!s) return s.error();
  return result;
}

Result<json::Value> Engine::Impl::client_call(Client& c, Room& room, const std::string& method,
                                              const json::Value& args) {
  if (!room.type)
    return make_error(ErrorCode::unknown_method, room.id + " is an untyped room: it has no actions");
  return call_returning(room, method, &c, args, "action");
}

Result<json::Value> Engine::Impl::method_call(Room& room, std::string_view method, const json::Value& args) {
  if (!room.type || is_reserved_method(method))
    return make_error(ErrorCode::unknown_method, room.id + " has no method '" + std::string(method) + "'");
  return call_returning(room, std::string(method), nullptr, args, "method");
}

}  // namespace atrium::engine
