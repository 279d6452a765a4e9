// Where a patch is built and sent: the ops a commit found wait in the room
// (Room::pending_ops) for the room's next beat, then go out as one `patch` frame, shared by
// every member and watcher.
#include "engine/engine_impl.hpp"

#include <string>

#include "state/collapse.hpp"
#include "state/compact.hpp"

namespace atrium::engine {

namespace {

// Patches go out on a fixed beat of patchRate ms: the next flush is due on the first beat
// after now. Counting from the first change after a flush instead stretched every interval
// by however long that change took to come (57 ms instead of 50 once the server read its
// input once per coalescing window: 12 % fewer patches, bench/README.md "State room").
// A room quiet for a while, or new, waits one whole interval, as before.
std::int64_t next_patch_due(std::int64_t last_due, int rate, std::int64_t now) {
  if (last_due <= 0 || now - last_due >= rate) return now + rate;
  return last_due + rate;
}

}  // namespace

void Engine::Impl::schedule_patch(Room& room) {
  if (room.patch_timer) return;
  TimerEvent ev;
  ev.kind = TimerKind::patch;
  ev.room = room.id;
  ev.due_ms = next_patch_due(room.patch_due_ms, room.type->options.patch_rate_ms, now());
  room.patch_timer = timers.add(std::move(ev));
}

void Engine::Impl::on_patch_due(Room* room, const TimerEvent& ev) {
  // By id, as ticks: a room destroyed with a flush pending and created again under the
  // same id must not take the old timer as its own (it flushed twice per interval).
  if (!room || room->patch_timer != ev.id) return;
  room->patch_timer = 0;
  room->patch_due_ms = ev.due_ms;
  flush_patch(*room);
}

void Engine::Impl::flush_patch(Room& room) {
  if (room.pending_ops.empty()) return;
  ++room.seq;
  // Written now, not per hook: where the interval's ops under one member outweigh its
  // value, one op carries the value instead (state/compact.hpp). Into a buffer kept across
  // flushes (a room flushes 20 times a second; a fresh string regrew ~7 times each), except
  // after a rare huge patch.
  constexpr std::size_t kKeptBytes = 64 * 1024;
  thread_local std::string ops;
  ops.clear();
  state::collapse_repeated_ops(room.pending_ops);  // five replaces of /turn: one
  state::write_compact_ops(room.pending_ops, room.mirror, ops);
  room.pending_ops.clear();
  const SharedFrame frame(encode_patch(room.id, room.seq, ops));
  if (ops.capacity() > kKeptBytes) std::string().swap(ops);
  ++metrics.patches_sent;
  log_patch(room, frame);  // for clients that resume (seats.cpp)
  for (Member& m : room.members) {
    if (m.joining) continue;
    send_frame(*m.client, frame);
    ++metrics.patch_deliveries;
  }
  for (ClientId w : room.watchers)
    if (Client* c = find_client(w)) send_frame(*c, frame);
}

}  // namespace atrium::engine
