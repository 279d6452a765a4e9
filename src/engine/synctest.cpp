// Synctest (EngineConfig::synctest; GGPO's idea): a transaction's hooks run a second time
// from the state before them, and what they changed must come out the same. The second
// run starts from the same mirrors and math.random states, with `next` and `pairs` walking
// every table backwards (lua/atrium/prelude.lua), as no process would but as any other
// process may walk them differently (LuaJIT seeds its string hash per process). A room whose
// output follows that order (the "first" player by next()) changes different things the
// second time: reported with the line of the hook, in the log and to watchers.
#include <lua.hpp>

#include "engine/engine_impl.hpp"
#include "engine/protocol.hpp"
#include "state/op.hpp"

namespace atrium::engine {

namespace {

std::string ops_text(const std::vector<state::Op>& ops) {
  std::string out;
  state::write_ops(ops, out);
  return out;
}

}  // namespace

void Engine::Impl::note_first_hook(std::string_view what, bool action, int fn_index) {
  if (!txn || !txn->first_hook.empty()) return;
  lua_Debug ar;
  lua_pushvalue(L, fn_index);
  const bool known = lua_getinfo(L, ">S", &ar) != 0 && ar.source && ar.source[0] == '@';
  txn->first_hook = (action ? "action '" + std::string(what) + "'" : std::string(what)) +
                    (known ? " at " + as_shown(ar.source + 1) + ":" + std::to_string(ar.linedefined) : "");
}

std::unique_ptr<Engine::Impl::RunChanges> Engine::Impl::changes_of(Transaction& t) {
  auto run = std::make_unique<RunChanges>();
  for (Room* room : t.rooms) {
    std::vector<state::Op> state_ops, meta_ops;
    if (!room_changes(*room, state_ops, meta_ops)) return nullptr;
    RunChanges::RoomRun r{room->id, ops_text(state_ops), ops_text(meta_ops), {}};
    for (const Transaction::Emit& e : t.emits)
      if (e.room == room) r.emits.append(e.line.view()).push_back('\n');
    run->rooms.push_back(std::move(r));
  }
  return run;
}

// As a rollback, then each touched room's state and meta laid out anew and its random
// state as before: the transaction is empty again, ready for the same body.
void Engine::Impl::rewind_for_rerun(Transaction& t) {
  rollback(t);
  for (const auto& [room, rng] : t.rng_before) room->rng = rng;
  random = random_before.first;  // a room the first run made draws its seed again
  engine_rng = random_before.second;
  const std::string first_hook = std::move(t.first_hook);
  t.clear();
  t.first_hook = first_hook;
}

void Engine::Impl::compare_runs(Transaction& t, const RunChanges& first) {
  const std::unique_ptr<RunChanges> second = changes_of(t);
  if (!second) return;
  for (const RunChanges::RoomRun& a : first.rooms) {
    const RunChanges::RoomRun* b = nullptr;
    for (const RunChanges::RoomRun& r : second->rooms)
      if (r.room == a.room) b = &r;
    static const RunChanges::RoomRun none{{}, {}, {}, {}};
    if (!b) b = &none;
    const char* what = a.state_ops != b->state_ops ? "state"
                       : a.meta_ops != b->meta_ops ? "meta"
                       : a.emits != b->emits       ? "emits"
                                                   : nullptr;
    if (!what) continue;
    const std::string& one = what[0] == 's' ? a.state_ops : what[0] == 'm' ? a.meta_ops : a.emits;
    const std::string& two = what[0] == 's' ? b->state_ops : what[0] == 'm' ? b->meta_ops : b->emits;
    Room* live = find_room(a.room);
    if (!live) continue;
    Room& room = *live;
    const std::string message =
        "synctest: " + (t.first_hook.empty() ? std::string("a hook") : t.first_hook) +
        " changed the room's " + what + " differently when run again from the same state " +
        "(does it depend on pairs/next order, tostring of a table, or something outside the room?)";
    log(LogLevel::warn, "script synctest_mismatch room=" + room.id + " " + message +
                            "\n  first run:  " + one.substr(0, 2048) +
                            "\n  second run: " + two.substr(0, 2048));
    const SharedFrame fault(encode_fault(room.id, t.first_hook.empty() ? "synctest" : t.first_hook,
                                         make_error(ErrorCode::script_error, message),
                                         "first run:  " + one.substr(0, 2048) +
                                             "\nsecond run: " + two.substr(0, 2048)));
    for (ClientId w : room.watchers)
      if (Client* c = find_client(w)) send_frame(*c, fault);
  }
}

}  // namespace atrium::engine
