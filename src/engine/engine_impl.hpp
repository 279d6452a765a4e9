// Engine internals shared by the engine's .cpp files. Not part of any public API.
//
// Ownership: the Impl owns clients, rooms, room types, timers and the Lua VM. A Room is
// destroyed only between top-level operations (reap()), never while a transaction or a
// Lua call may still point at it.
//
// Methods that touch the Lua stack say how, in the Lua manual's notation [-o, +p, x]: they
// pop o values and push p; x is `-` (raises no Lua error) or `m` (may raise one for
// memory: every engine entry runs protected, engine.cpp guarded, and rooms cannot take
// the VM's reserve, so it does not happen in practice).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <lua.hpp>

#include "engine/engine.hpp"
#include "engine/metrics.hpp"
#include "engine/patch_log.hpp"
#include "engine/room_store.hpp"
#include "engine/protocol.hpp"
#include "engine/rate_limit.hpp"
#include "engine/recorder.hpp"
#include "engine/timers.hpp"
#include "json/value.hpp"
#include "script/hook_call.hpp"
#include "script/vm.hpp"
#include "state/diff.hpp"
#include "util/shared_frame.hpp"

namespace atrium::engine {

// The real clocks. The engine reads time only through Impl::now() and Impl::wall_now(),
// which follow the host's clock instead when EngineConfig::host_clock is set.
std::int64_t monotonic_ms();
std::int64_t wall_ms();             // ms since the epoch


// What one script timer costs outside Lua (its entries in the timer heap and map, the
// room's set, its registry slot), charged to the room's memory budget while it lives.
inline constexpr std::size_t kTimerCost = 320;

struct RoomOptions {
  int max_members = 0;              // 0: no limit
  bool server_join_only = false;
  int patch_rate_ms = 50;
  double tick_rate = 0;             // Hz; 0: no tick
  double reconnect_grace_s = 10;
  bool keep_alive = false;
  bool persist = false;             // state, meta and seats survive a restart (durable.cpp)
};

struct RoomType {
  std::string name;                 // "chat"
  std::string file;                 // as clients see it: "rooms/chat.lua"
  std::string path;                 // as given (--rooms ../game/rooms: "../game/rooms/chat.lua"):
                                    // logs, lint, tracebacks, GET /api/status
  int version = 0;                  // bumped by every successful load
  std::string loaded_at;            // ISO 8601, last successful load
  std::string error;                // last load error, "" when the last load succeeded
  std::vector<std::string> warnings;  // lint of the last load: "rooms/x.lua:12: ..."
  std::vector<std::string> actions;   // declared actions of the serving version, sorted
  bool deleted = false;             // the file is gone: live rooms serve, joins get not_found
  int class_ref = -2;               // LUA_NOREF until a load succeeds
  RoomOptions options;
};

// 128 random bits: the welcome's `session`, as 32 hex digits. Kept raw because every idle
// connection holds one, and an idle joined connection has a budget of 2 KiB (measured in
// bench/README.md, "Idle memory" under "Figures of the latest run").
using SessionKey = std::array<std::uint64_t, 2>;

// welcome.session: the key as 32 hex digits, and back (false: not such a text).
std::string session_hex(const SessionKey& key);
bool parse_session(std::string_view hex, SessionKey& out);

struct SessionHash {
  std::size_t operator()(const SessionKey& k) const noexcept { return static_cast<std::size_t>(k[0]); }
};

struct Client {
  ClientId id = 0;
  std::string wire_id;              // "c17"
  SessionKey session{};
  // The transport connection speaking for this client (Engine::connect's id): its own id
  // until a `resume` moves the client to another connection; 0 while its seats are held.
  ClientId conn = 0;
  bool held = false;                // dropped, seats held for a resume (seats.cpp)
  // Held with no seat left (kicked or closed while away): the session lives until the
  // grace would have ended, so that a resume hears why ({"left": reason}).
  TimerId session_timer = 0;
  // Rooms it was removed from by others (kicked, closed), the latest last: a resume
  // answers {"left": reason} for them. At most kMaxRecentLefts.
  std::vector<std::pair<std::string, std::string>> lefts;
  std::string user_id;
  json::Value claims;               // its token's payload (ctx.claims); null: no token
  json::Value user;                 // what rooms/_connect.lua returned (ctx.user); null: none
  json::Value pusher;               // Identity::pusher (ctx.pusher); null: a native client
  TimerId expiry_timer = 0;         // closes it with 4003 when its token runs out; 0: none
  ClientSink* sink = nullptr;
  std::vector<std::string> rooms;   // ids of rooms this client is a member of
  std::vector<std::string> watching;  // ids of rooms it watches (inspector), not a member
  bool leaving = false;             // disconnecting: its onLeave hooks run, no join succeeds
  RateLimit rate_limit;             // EngineConfig::rate (rate_limit.hpp)
};

struct Member {
  Client* client;
  ClientId id;                      // client->id, kept here so find_member scans the
                                    // vector without a cache miss per member
  bool joining;                     // inside its own join: gets no patches yet
  std::int64_t joined_at_ms;        // wall clock, ms since the epoch (GET .../members)
  bool connected = true;            // false: dropped, the seat held until seat_timer
  TimerId seat_timer = 0;
};

inline constexpr std::size_t kMaxRecentLefts = 16;

struct Room {
  std::string id, type_name, instance;
  RoomType* type = nullptr;         // nullptr: an untyped pub/sub room
  std::vector<Member> members;
  std::vector<ClientId> watchers;   // get patches without being members (the inspector)
  // Lua side (typed rooms): registry refs to the instance and to its box
  // {state=, meta=, sx=, mx=} (lua/atrium/room.lua), which also holds the shadows of
  // state and meta once a hook exposed them (ss=, ms=; transaction.cpp diff_exposed).
  int inst_ref = -2, box_ref = -2;
  json::Value mirror = json::Value::object();       // public state as members last saw it
  json::Value meta_mirror = json::Value::object();  // meta as of the last commit (rollback)
  std::vector<state::Path> dirty_paths;             // what setState and setIn touched
  std::vector<state::Op> pending_ops;  // ops waiting for the next patch, in order
  std::uint64_t seq = 0;
  std::string epoch;                // this incarnation's, 16 hex digits (seats.cpp)
  // Durable rooms (durable.cpp): whether the store has the room, its change count, and
  // the changes since its last snapshot there.
  bool stored = false;
  bool restored = false;            // made from the store: make_instance keeps the mirrors
  std::uint64_t store_ver = 0;
  std::uint64_t changes_since_snapshot = 0;
  std::unique_ptr<PatchLog> patch_log;  // typed rooms, from their first patch
  TimerId patch_timer = 0;          // the pending patch flush (patchRate), 0: none
  std::int64_t patch_due_ms = 0;    // when the last flush was due: patches keep its beat
  TimerId tick_timer = 0;
  std::int64_t last_tick_ms = 0;
  std::unordered_set<TimerId> timers;  // script timers, cancelled when the room goes
  std::uint64_t rng = 0;            // math.random state (xorshift64*)
  bool doomed = false;              // destroyed at the next reap()
  bool closing = false;             // close() ran: its last hooks run, nobody joins
  std::string last_failure;         // hook and message of the last failure logged
  std::int64_t last_failure_ms = 0;
  int failures_not_logged = 0;      // identical to last_failure, within the quiet time
  script::Owner mem_owner = 0;      // whose Lua memory this room's allocations are

  Member* find_member(ClientId c);
  bool is_active_member(ClientId c) { Member* m = find_member(c); return m && !m->joining; }
  std::size_t active_count() const;
};

// A hook (with every nested call it makes) is one transaction: state and meta of every
// room it touched are diffed at commit, or restored from their mirrors at rollback.
struct Transaction {
  // A room:emit waiting for the commit: the effect that sends it holds only its index, so
  // that it fits in std::function without an allocation (emits are a typed room's fan-out).
  struct Emit {
    Room* room;
    SharedFrame line;
    ClientId skip;
  };

  std::vector<Room*> rooms;                         // touched, in order
  std::vector<std::function<void()>> effects;       // frames etc., run at commit
  std::vector<Emit> emits;                          // what effects of room:emit send
  std::vector<std::function<void()>> undo;          // membership changes, run at rollback
  std::vector<Room*> created;                       // rooms created inside it
  std::optional<script::HookResult> failure;        // sticky: an error anywhere fails it all
  // Synctest only (EngineConfig::synctest): each touched room's math.random state before
  // its first call, and the first hook called, as "action 'draw' at rooms/luck.lua:9".
  std::vector<std::pair<Room*, std::uint64_t>> rng_before;
  std::string first_hook;

  // Empty again, keeping the vectors' memory for the next transaction (unless a rare big
  // one made them large).
  void clear() {
    reset(rooms);
    reset(effects);
    reset(emits);
    reset(undo);
    reset(created);
    failure.reset();
    rng_before.clear();
    first_hook.clear();
  }

 private:
  template <class T> static void reset(std::vector<T>& v) {
    v.clear();
    if (v.capacity() > 1024) std::vector<T>().swap(v);
  }
};

// What a hook call produced, for the caller to read before popping.
struct HookOutcome {
  bool ran = false;                 // false: the room has no such function
  script::HookResult result;
};

// Names that are hooks or class data, never callable as plain methods (by POST
// .../call or by another room's atrium.room(id):call).
bool is_reserved_method(std::string_view name);

struct Engine::Impl {
  explicit Impl(EngineConfig c);
  ~Impl();

  EngineConfig config;
  std::unique_ptr<script::Vm> vm;
  lua_State* L = nullptr;
  int prelude_ref = -2;             // the table lua/atrium/prelude.lua returned
  int instances_ref = -2;           // weak table: room instance -> Room* (lightuserdata)
  script::Budget budget;

  std::unordered_map<ClientId, std::unique_ptr<Client>> clients;
  std::unordered_map<SessionKey, ClientId, SessionHash> sessions;  // every client's
  // A connection that resumed a session: its id -> the client it speaks for.
  std::unordered_map<ClientId, ClientId> rebound;
  // Held clients that lost their last seat inside the current operation: forgotten by
  // finish_operation().
  std::vector<ClientId> released;
  std::unordered_map<std::string, std::unique_ptr<Room>> rooms;
  std::map<std::string, std::unique_ptr<RoomType>> types;
  Timers timers;
  Metrics metrics;
  ClientId next_client = 1;
  std::uint64_t random_seed = config.random_seed ? *config.random_seed : std::random_device{}();
  std::mt19937_64 random{random_seed};
  std::int64_t started_ms = 0;
  std::uint64_t engine_rng = 0x9E3779B97F4A7C15ull;  // math.random outside any room's call
  std::map<std::string, HostFunction, std::less<>> host_functions;  // atrium.host.NAME
  std::unique_ptr<Recorder> recorder;  // config.record_path (recorder.hpp)
  // Synctest: the engine's own random states when the open transaction began.
  std::pair<std::mt19937_64, std::uint64_t> random_before;
  bool synctest_second_run = false; // next and pairs walk backwards (core.synctest_reversed)

  // Timers, ticks, patch beats, failure-log quiet spells: the real monotonic clock, or a
  // fixed reading. atrium.now() and joinedAt: the real wall clock, or a fixed reading.
  // Fixed: under host_clock (set_host_time); while recording and under synctest,
  // begin_input() reads the real clocks once per input, so that every hook of the input
  // sees the time the record says, and a synctest's second run the time of its first.
  bool fixed_clock = config.host_clock || !config.record_path.empty() || config.synctest;
  std::int64_t fixed_now_ms = 0;
  std::int64_t fixed_wall_ms = 0;
  std::int64_t now() const { return fixed_clock ? fixed_now_ms : monotonic_ms(); }
  std::int64_t wall_now() const { return fixed_clock ? fixed_wall_ms : wall_ms(); }
  // The HTTP API calls that change something (admin.cpp), once recorded.
  Result<json::Value> emit_now(std::string_view id, std::string_view event, const json::Value& data,
                               std::string_view except);
  Result<json::Value> call_now(std::string_view id, std::string_view method, const json::Value& args);
  Result<json::Value> place_now(std::string_view id, std::string_view client, const json::Value& payload);
  Result<json::Value> kick_now(std::string_view id, std::string_view client, std::string_view message);
  Result<json::Value> close_now(std::string_view id);

  // An input begins: a recording engine reads its clocks and records them.
  void begin_input();
  // The record so far to its file; a failed write is logged once.
  void flush_record();
  bool record_failed = false;
  // An HTTP API call as an input: `call` builds its record entry (only when recording),
  // `run` does it; its result is recorded as its output.
  template <class Call, class Run>
  Result<json::Value> http_input(Call&& call, Run&& run) {
    begin_input();
    if (recorder) recorder->http(call());
    Result<json::Value> r = run();
    if (recorder) recorder->result(r);
    return r;
  }

  Transaction* txn = nullptr;       // the open transaction, if any
  Transaction spare_txn;            // transact() reuses its vectors: no allocation per call
  // A transaction a Lua error unwound (guarded() rolls it back): the engine's own Lua
  // touches can fail only when the VM's reserve is gone, and then this keeps the engine
  // consistent.
  std::optional<Transaction> abandoned;
  std::vector<Room*> room_stack;    // rooms whose code is running (innermost last)
  std::vector<std::function<void()>> deferred;  // hooks to run after the current operation
  std::int64_t deferred_warned_ms = 0;          // the last "deferred work carried over" log
  std::vector<std::string> doomed_ids;  // rooms doom() marked: all that reap() looks at
  // Doomed rooms a new room of the same id replaced in `rooms` within one operation: a
  // transaction may still point at them, so they too wait for reap().
  std::vector<std::unique_ptr<Room>> displaced;

  // engine.cpp
  // Runs engine work that touches Lua (a request, a disconnect, a timer, an HTTP call)
  // protected. False when a Lua error ended it (the VM's memory, in practice): the
  // transaction it had open is rolled back, the room stack and memory owner are reset,
  // and it is logged. `what` names the work in the log.
  template <class F> bool guarded(const char* what, F&& body);
  void recover(const char* what, const std::string& error);
  void log(LogLevel level, const std::string& line) const;
  Client* find_client(ClientId id);
  Client* find_client(std::string_view wire_id);
  void send(Client& c, std::string line);
  void send_frame(Client& c, const SharedFrame& frame);
  void dispatch(Client& c, Request& req);
  void finish_operation();          // deferred hooks, destroy checks, reap

  // gate.cpp: rooms/_connect.lua, the connection gate (docs/rooms.md "The connection gate")
  struct Gate {
    bool present = false;           // the file exists
    std::string error;              // it failed to load: every connection is refused
    int fn_ref = -2;                // onConnect, when it loaded
    script::Owner mem_owner = 0;
    std::string path;
  } gate;
  void load_gate(const std::string& path);
  void drop_gate();
  json::Value gate_report() const;
  Admission admit(const ConnectRequest& request);
  // seats.cpp: seats held through a drop, and `resume` (docs/protocol.md "Seats and resume")
  Client* by_connection(ClientId conn);  // the client a transport's connection speaks for
  std::string new_epoch(std::string_view room_id);
  std::uint64_t rooms_made = 0;
  // A drop: the seats of typed rooms with a grace are held, the others left. False when
  // none is held (the client can go).
  bool hold_seats(Client& c);
  void on_seat_expired(const TimerEvent& ev);
  void end_seat(Member& m);        // no longer held (resumed, left): its timer cancelled
  void note_left(Client& c, const std::string& room, const char* reason);
  void forget_client(ClientId id);  // gone for good: its session with it
  // A held client lost its last seat: forgotten at the end of the operation, or at
  // `until_ms` when its seat was taken from it (kick, close) before its grace ended.
  void keep_session_until(Client& c, std::int64_t until_ms);
  void forget_released();
  void resume(Client& fresh, const Request& req);
  void log_patch(Room& room, const SharedFrame& frame);
  std::string conn_wire(const Client& c) const { return "c" + std::to_string(c.conn); }

  // durable.cpp: rooms with options.persist in the store (room_store.hpp), the output
  // gate that holds frames until the loop pass's commit, and the restore at start
  std::shared_ptr<RoomStore> store;
  bool store_unavailable = false;   // opening it failed: logged once, rooms run in memory
  struct HeldFrame {
    ClientId client, conn;
    SharedFrame frame;
  };
  std::vector<HeldFrame> held_frames;
  bool shut_down = false;           // shutdown() ran: what is stored stays as it is
  RoomStore* durable_store(const Room& room);  // the store when `room` is durable
  void persist_commit(Room& room, const std::vector<state::Op>& state_ops,
                      const std::vector<state::Op>& meta_ops);
  void persist_seat(const Room& room, const Client& c);
  void unpersist_seat(const Room& room, ClientId client);
  void unpersist_room(const Room& room);
  void commit_store();              // the group commit, then the frames it held go out
  Status restore_rooms();

  // identity.cpp: tokens that run out, and the in-band `auth` op
  void arm_expiry(Client& c, std::int64_t expires_at_s);
  void on_token_expired(const TimerEvent& ev);
  Result<json::Value> refresh_token(Client& c, const std::string& token);
  void join_on_connect(ClientId id, const JoinOnConnect& j);

  // room_types.cpp
  void load_all_types();
  void load_type(const std::string& name, const std::string& path);
  Status compile_class(const RoomType& type, const std::string& src);  // [-0, +(1|0), m]
  Status swap_in(RoomType& type, int fresh, int& previous);            // [-0, +0, m]
  RoomType* find_type(std::string_view name);
  std::string shown_rooms_dir() const;                          // "rooms"
  // `text` with a leading path of a script in rooms_dir as clients see it:
  // "/srv/game/rooms/ttt.lua:54" -> "rooms/ttt.lua:54".
  std::string as_shown(std::string text) const;
  std::string script_file_of(std::string_view type_name) const;  // "rooms/chat.lua"
  void refresh_live_rooms(RoomType& type, int previous_ref);
  json::Value reload_all();
  json::Value reload_one(const std::string& file_name);
  void forget_deleted_types();      // deleted types no live room uses any more

  // rooms.cpp
  Room* find_room(std::string_view id);
  std::uint64_t room_seed(std::string_view id);
  Result<Room*> open_room(std::string_view id, bool create, bool* created);
  // For server code (atrium.room(id):call, POST .../call): creates a typed room on demand
  // and runs its onCreate with no ctx. Inside a transaction.
  Result<Room*> open_for_server(std::string_view id);
  Status instantiate(Room& room);
  Status make_instance(Room& room);  // [-0, +0, m]: instantiate runs it protected
  void destroy_room(Room& room);    // frees what it holds; the caller drops the Room
  void maybe_destroy_empty(Room& room);
  void reap();
  void doom(Room& room);            // destroyed at the next reap()
  // Work for after the current operation, on `room` if it still exists then.
  void defer(Room& room, std::function<void(Room&)> work);

  // transaction.cpp
  // Calls room's method `name` (an action when from_actions) with the nargs values on top
  // of the stack; leaves nresults values when it ran and succeeded, nothing otherwise.
  // [-nargs, +(nresults|0), -]
  HookOutcome call_method(Room& room, std::string_view name, int nargs, int nresults,
                          bool from_actions = false);
  // The function `name` found raw (the instance's own field, else the class's; actions:
  // class.actions[name]), or nil. Which function to run is data the engine reads, so no
  // metamethod of the script's (a "strict" class whose __index raises, an `actions`
  // table whose __index loops) ever runs outside the one door.  [-0, +1, m]
  void push_method(Room& room, std::string_view name, bool from_actions);
  bool has_method(Room& room, std::string_view name);  // [-0, +0, m]
  // Calls the function below the nargs values on top of the stack, as code of `room`.
  // [-(nargs+1), +(nresults|0), -]
  // `what` names it in logs and errors: a hook's or method's name, or (action) an action's.
  HookOutcome invoke(Room& room, int nargs, int nresults, std::string_view what,
                     bool action = false);
  // A failed call as a client gets it: the script's code and message, and `where` with the
  // rooms directory shown by its name only ("rooms/ttt.lua:54", not the server's path).
  Error hook_error(const script::HookResult& r) const;
  // A hook whose results nobody reads, inside the open transaction: its error as a
  // Status (a room without the hook is fine).  [-nargs, +0, -]
  Status run_hook(Room& room, std::string_view name, int nargs);
  // run_hook as a transaction of its own (or inside the open one): `push` pushes the
  // arguments, and returns how many.
  template <class Push> Status hook_transaction(Room& room, std::string_view name, Push&& push) {
    return transact([&]() -> Status { return run_hook(room, name, push()); });
  }
  void touch(Room& room);
  // Logs a failed call (with its traceback) and tells the room's watchers (a `fault`
  // frame); the same failure again within 10 s is only counted.
  void log_failure(Room& room, std::string_view what, bool action, const script::HookResult& r);
  Status commit(Transaction& t);    // [-0, +0, m]
  void rollback(Transaction& t);   // [-0, +0, m]
  void restore_room(Room& room);   // state and meta back to their mirrors  [-0, +0, m]
  Status diff_exposed(Room& room, int box, const char* field, const char* shadow_field,
                      const json::Value& mirror, std::vector<state::Op>& ops);
  void sync_shadow(Room& room, const char* shadow_field, const json::Value& mirror,
                   const std::vector<state::Op>& ops);
  template <class Body> Status transact(Body&& body);
  // synctest.cpp: the body once more from the state before it, in tables of another
  // layout; what differs is reported. The second run is the one committed.
  template <class Body> Status run_again(Transaction& t, Body& body);
  struct RunChanges {              // a run's changes, as text, per touched room
    struct RoomRun {
      std::string room;             // by id: a room the first run made is made anew
      std::string state_ops, meta_ops, emits;
    };
    std::vector<RoomRun> rooms;
  };
  std::unique_ptr<RunChanges> changes_of(Transaction& t);
  void rewind_for_rerun(Transaction& t);
  void compare_runs(Transaction& t, const RunChanges& first);
  void note_first_hook(std::string_view what, bool action, int fn_index);
  Status room_changes(Room& room, std::vector<state::Op>& state_ops, std::vector<state::Op>& meta_ops);
  void push_instance(Room& room);  // [-0, +1, -]
  void push_box(Room& room);       // [-0, +1, -]
  std::string where(const Room& room) const;   // "rooms/chat.lua"

  // actions.cpp: what clients and the HTTP API ask of a room
  Result<json::Value> client_emit(Client& c, Room& room, const std::string& event,
                                  const json::Value& data);
  Result<json::Value> relay_emit(Client& c, Room& room, const std::string& event, const json::Value& data);
  Result<json::Value> client_call(Client& c, Room& room, const std::string& method,
                                  const json::Value& args);
  Result<json::Value> method_call(Room& room, std::string_view method, const json::Value& args);
  Result<json::Value> call_returning(Room& room, const std::string& name, const Client* ctx_of,
                                     const json::Value& args, const char* kind);

  // membership.cpp
  void push_ctx(const Client& c, const json::Value* payload, const char* reason);  // [-0, +1, m]
  Result<Room*> watch(Client& c, const Request& req);
  void unwatch(Client& c, Room& room);
  Result<Room*> join(Client& c, std::string_view id, const json::Value& payload,
                           bool server_side);
  Status leave(Client& c, Room& room, const char* reason);
  Status room_slot_left(const Client& c) const;  // not_allowed past max_rooms_per_connection
  void leave_all(Client& c, const char* reason);
  void remove_member(Room& room, Client& c);
  // Who a leaving member was, for an onLeave that may run after the client is gone.
  struct Who {
    ClientId id;
    std::string user_id;
    json::Value claims, user, pusher;
  };
  static Who who(const Client& c);
  void run_on_leave(Room& room, const Who& who, const char* reason);
  void kick(Room& room, ClientId client, const std::string& message);
  void close_room(Room& room, const std::string& message);
  Status enter(Room& room, Client& c, const json::Value& payload, bool created, bool server_side,
               bool activate_first);
  Status nested_join(Room& room, Client& c, const json::Value& payload, bool created);
  void emit_to_members(Room& room, const SharedFrame& frame, ClientId except);

  // patches.cpp
  void schedule_patch(Room& room);  // a flush on the room's next beat
  void on_patch_due(Room* room, const TimerEvent& ev);
  void flush_patch(Room& room);     // pending ops out as one patch, now

  // timer_events.cpp
  void schedule_tick(Room& room);
  void on_timer(const TimerEvent& ev);

  // invariants.cpp: Engine::check_invariants (no Impl method)

  // lua_api.cpp
  void open_core_api();
};

// Runs `body` inside a new transaction (or inside the open one when nested) and commits
// or rolls back. `body` returns a Status: an error rolls everything back.
template <class Body>
Status Engine::Impl::transact(Body&& body) {
  if (txn) return body();
  Transaction t = std::move(spare_txn);
  txn = &t;
  if (config.synctest) random_before = {random, engine_rng};
  // A Lua error raised by the engine's own code (guarded) unwinds through here: the
  // transaction is kept for guarded() to roll back, and none is left open.
  struct Unwound {
    Impl& e;
    Transaction& t;
    bool done = false;
    ~Unwound() {
      if (done) return;
      e.abandoned.emplace(std::move(t));
      e.txn = nullptr;
    }
  } unwound{*this, t};
  Status s = body();
  // The first failure is the one to report: a room that called another and raised its
  // error again raised it as text, without its code and line.
  if (t.failure) s = hook_error(*t.failure);
  if (s && config.synctest) s = run_again(t, body);
  if (s) s = commit(t);
  if (!s) rollback(t);
  unwound.done = true;
  txn = nullptr;
  t.clear();
  spare_txn = std::move(t);
  return s;
}

template <class Body>
Status Engine::Impl::run_again(Transaction& t, Body& body) {
  std::unique_ptr<RunChanges> first = changes_of(t);
  if (!first) return {};  // the first run breaks the State rules: commit will say so
  rewind_for_rerun(t);
  synctest_second_run = true;
  struct Forward {
    bool& flag;
    ~Forward() { flag = false; }
  } forward{synctest_second_run};
  Status s = body();
  if (t.failure) s = hook_error(*t.failure);
  if (s) compare_runs(t, *first);
  return s;
}

// A try block, not a protected call: it costs nothing until something throws. LuaJIT on
// x64 Linux raises Lua errors with the C++ unwinder (docs/rooms.md, "The engine and
// LuaJIT"), so catch (...) receives them, with the message on the Lua stack, after the
// destructors of every frame in between ran (the scope objects that restore txn, the
// room stack and the memory owner among them).
template <class F>
bool Engine::Impl::guarded(const char* what, F&& body) {
  const int top = lua_gettop(L);
  try {
    body();
    return true;
  } catch (...) {
    std::string message = "a Lua error";
    try {
      throw;
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
      if (lua_gettop(L) > top && lua_type(L, -1) == LUA_TSTRING) message = lua_tostring(L, -1);
    }
    lua_settop(L, top);
    recover(what, message);
    return false;
  }
}

}  // namespace atrium::engine
