// What a due timer does: a room's tick (onTick), a script's setTimeout/setInterval
// callback, or a patch flush (patches.cpp). One heap holds all three (timers.hpp).
#include <lua.hpp>

#include <algorithm>

#include "engine/engine_impl.hpp"

namespace atrium::engine {

void Engine::Impl::schedule_tick(Room& room) {
  if (!room.type || room.tick_timer || room.doomed) return;
  const double hz = room.type->options.tick_rate;
  if (hz <= 0) return;
  const std::int64_t now = this->now();
  TimerEvent ev;
  ev.kind = TimerKind::tick;
  ev.room = room.id;
  ev.due_ms = now + std::max<std::int64_t>(1, static_cast<std::int64_t>(1000.0 / hz));
  if (!room.last_tick_ms) room.last_tick_ms = now;
  room.tick_timer = timers.add(std::move(ev));
}

void Engine::Impl::on_timer(const TimerEvent& ev) {
  if (ev.kind == TimerKind::token_expiry) return on_token_expired(ev);
  if (ev.kind == TimerKind::seat) return on_seat_expired(ev);
  Room* room = find_room(ev.room);
  if (ev.kind == TimerKind::patch) return on_patch_due(room, ev);
  if (ev.kind == TimerKind::tick) {
    if (!room || room->tick_timer != ev.id) return;
    room->tick_timer = 0;
    const std::int64_t now = this->now();
    const double dt = static_cast<double>(now - room->last_tick_ms) / 1000.0;
    room->last_tick_ms = now;
    (void)hook_transaction(*room, "onTick", [&] {
      lua_pushnumber(L, dt);
      return 1;
    });
    schedule_tick(*room);
    return;
  }
  // A script timer.
  if (!room || !room->timers.count(ev.id)) {
    luaL_unref(L, LUA_REGISTRYINDEX, ev.fn_ref);
    return;
  }
  // The id stays in room->timers while the callback runs, so the callback can cancel
  // its own interval.
  const int top = lua_gettop(L);
  (void)transact([&]() -> Status {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ev.fn_ref);
    HookOutcome o = invoke(*room, 0, 0, "timer");
    lua_settop(L, top);
    return o.result.ok ? Status{} : hook_error(o.result);
  });
  if (ev.interval_ms > 0 && !room->doomed && room->timers.count(ev.id)) {
    TimerEvent again = ev;
    again.due_ms = now() + ev.interval_ms;
    timers.add(std::move(again));  // keeps its id: handles stay valid
  } else {
    if (room->timers.erase(ev.id)) vm->uncharge(room->mem_owner, kTimerCost);
    luaL_unref(L, LUA_REGISTRYINDEX, ev.fn_ref);
  }
}

}  // namespace atrium::engine
