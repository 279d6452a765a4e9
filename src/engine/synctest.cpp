// Synctest (EngineConfig::synctest; GGPO's idea): a transaction's hooks run a second time
// from the state before them, and what they changed must come out the same. The second
// run starts from the same mirrors and math.random states, but in tables whose hash part
// was grown, so that `pairs` and `next` walk the keys in another order, as a fresh process
// (another hash seed) or a replay would. A room whose output follows that order (the
// "first" player by next()) changes different things the second time: reported with the
// line of the hook, in the log and to watchers.
#include <lua.hpp>

#include <unordered_set>

#include "engine/engine_impl.hpp"
#include "engine/protocol.hpp"
#include "state/op.hpp"

namespace atrium::engine {

namespace {

// Dummy keys that grow a table's hash part: light userdata, never strings, so nothing is
// interned, and distinct addresses.
char kGrowKeys[64];

// Grows the hash part of every table under `idx` that has one (up to twice its keys, at
// least 8 more), then removes the dummy keys again: the table keeps the larger part, and
// its keys now sit in other slots.  [-0, +0, m]
void relayout(lua_State* L, int idx, std::unordered_set<const void*>& seen, int depth) {
  if (depth > 64 || !seen.insert(lua_topointer(L, idx)).second || !lua_checkstack(L, 4)) return;
  int keys = 0;
  bool hashed = false;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    ++keys;
    if (lua_type(L, -2) != LUA_TNUMBER) hashed = true;
    if (lua_istable(L, -1)) relayout(L, lua_gettop(L), seen, depth + 1);
    lua_pop(L, 1);
  }
  if (!hashed) return;
  const int grow = std::min<int>(std::max(keys, 8), sizeof kGrowKeys);
  for (int i = 0; i < grow; ++i) {
    lua_pushlightuserdata(L, &kGrowKeys[i]);
    lua_pushboolean(L, 1);
    lua_rawset(L, idx);
  }
  for (int i = 0; i < grow; ++i) {
    lua_pushlightuserdata(L, &kGrowKeys[i]);
    lua_pushnil(L);
    lua_rawset(L, idx);
  }
}

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
  {
    const script::OwnerScope as_engine(*vm, 0);
    std::unordered_set<const void*> seen;
    for (Room* room : t.rooms) {
      if (!room->type || room->box_ref < 0) continue;
      push_box(*room);
      for (const char* field : {"state", "meta"}) {
        lua_getfield(L, -1, field);
        if (lua_istable(L, -1)) relayout(L, lua_gettop(L), seen, 0);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
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
