// The engine: rooms, members, clients, timers and the order of events. One thread
// drives it (the transport's loop); nothing here is thread-safe by design.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/client_sink.hpp"
#include "engine/patch_log.hpp"
#include "engine/room_store.hpp"
#include "json/value.hpp"
#include "util/result.hpp"

namespace atrium::engine {

using ClientId = std::uint64_t;                   // on the wire: "c" + decimal

// A function of the embedding host that room scripts call as atrium.host.NAME(...): the
// arguments as one JSON array in, JSON text out; an error fails the script's call.
using HostFunction = std::function<Result<std::string>(std::string_view args_json)>;

enum class LogLevel { debug, info, warn, error };

// Who a connection is (docs/protocol.md "Connecting: tokens, origins, TLS"): what its
// verified token said, and what the connection gate (rooms/_connect.lua) made of it.
struct Identity {
  std::string user_id;              // the token's sub: welcome.userId, ctx.userId; "": anonymous
  json::Value claims;               // the token's payload (ctx.claims); null: no token
  json::Value user;                 // what onConnect returned (ctx.user); null: nothing
  std::int64_t expires_at_s = 0;    // the token's exp, seconds since the epoch; 0: never
  // A Pusher subscription served by a room (docs/pusher.md "Channels that are rooms"):
  // {channel, userId?, userInfo?}, every hook's ctx.pusher. Its events are relayed: onEvent
  // may veto or rewrite them, and what passes goes to the other members. null: a native client.
  json::Value pusher;
};

// A join asked for in the connection's URL (/ws?join=ROOM&payload=JSON, docs/protocol.md
// "Joining on connect"): run right after `welcome`, answered with `joined` or an `error`
// frame naming the room.
struct JoinOnConnect {
  std::string room;
  json::Value payload = json::Value::object();
};

// An upgrade as the connection gate sees it (its `req`).
struct ConnectRequest {
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  std::string ip;
  std::string origin;               // "": none
  Pairs headers;                    // names lower-cased
  Pairs cookies;
  Pairs query;
  std::string user_id;              // from a verified token, "" when none
  json::Value claims;               // null when no token
};

// What the gate answered: admitted with ctx.user (null when it returned none), or
// refused with `status` (403 by the script, 503 when the gate cannot run) and a reason.
struct Admission {
  bool admitted = true;
  int status = 0;
  std::string reason;
  json::Value user;
};

// The connection gate's script, rooms/_connect.lua: not a room type.
inline constexpr const char* kGateScriptStem = "_connect";

// Verifies a token sent in band ({"op":"auth"}): the identity it carries, or why not.
using TokenVerifier = std::function<Result<Identity>(std::string_view token)>;

struct EngineConfig {
  std::string rooms_dir = "rooms";
  std::string lua_dir;                            // the engine's own Lua (prelude, room base)
  std::string server_name = "atrium";
  std::string admin_token;                        // when set, `watch` needs it (the inspector)
  int heartbeat_ms = 25000;                       // announced in welcome
  int cpu_budget_ms = 200;                        // per hook call
  std::size_t room_memory_bytes = 64u << 20;
  std::size_t memory_bytes = 1024u << 20;
  // Rooms one connection may be in at once (server-side placements count; watches do
  // not): past it, a join answers not_allowed.
  int max_rooms_per_connection = 128;
  // Messages per second per connection (a token bucket; the burst is the same number):
  // a message over it is not processed and answers rate_limited, and a connection that
  // keeps sending 10 times the rate for 5 s is closed with 1008. 0: no limit.
  int rate = 0;
  // Time moves only through set_host_time() (an embedding host's step(now_ms)): timers,
  // ticks, patch beats and atrium.now() follow it. The CPU budget stays wall-clock.
  bool host_clock = false;
  // Set: every room's math.random starts from this seed and the room's id (the same rooms
  // draw the same numbers in every process). Unset: from the engine's random device.
  std::optional<std::uint64_t> seed;
  // Set: the engine's own random draws (welcome sessions; math.random's first state when
  // `seed` is unset) come from this. Unset: from the random device. Replay sets it.
  std::optional<std::uint64_t> random_seed;
  // Set: start() opens this file and records every input and output to it, for
  // `atrium replay` (docs/embedding.md "Record and replay"). The clocks are then read once
  // per input, so that a replay can give each input the time it had.
  std::string record_path;
  // Synctest (GGPO's idea, for rooms that must replay): every hook runs twice, the second
  // time from the state before it with `next` and `pairs` walking tables backwards; a hook
  // whose ops or emits differ is logged with its line
  // (docs/embedding.md "Synctest"). Side effects outside the room happen twice.
  bool synctest = false;
  // The in-band `auth` op checks tokens with this; unset: it answers unauthorized.
  TokenVerifier verify_token;
  // What each typed room's patch log keeps for clients that resume (docs/protocol.md
  // "Seats and resume").
  PatchLogLimits patch_log;
  // Durable rooms (options.persist): opens the store (room_store.hpp). Unset: such rooms
  // live in memory only, with a warning.
  StoreOpener open_store;
  // Rooms whose id has no "TYPE:" (plain pub/sub). Off: such ids are not_found.
  bool untyped_rooms = true;
  LogLevel log_level = LogLevel::info;
  // Where log lines go (one line each, no newline). Default: stderr.
  std::function<void(LogLevel, std::string_view)> on_log;
};

class Engine {
 public:
  explicit Engine(EngineConfig config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens Lua, loads the prelude and every rooms/*.lua. A room script that fails to load
  // is recorded (status()) and does not fail start(); a missing lua_dir does.
  Status start();

  // Before a transport accepts a connection: runs rooms/_connect.lua's onConnect, when
  // there is one, under the CPU budget. A gate that failed to load refuses everyone.
  Admission admit(const ConnectRequest& request);
  // Whether admit() runs a script: a transport skips gathering headers and cookies if not.
  bool has_connection_gate() const;
  // A transport accepted a connection: queues `welcome` to it. The id names the
  // connection in receive() and disconnect() (after a `resume` it speaks for the session
  // it took over, whose client id may be another).
  ClientId connect(ClientSink& sink, std::string user_id = {});
  // The same for a connection that brought a token or passed the gate: its claims and
  // user reach every hook's ctx, and it is closed with 4003 when its token expires
  // unrefreshed. `joins`: the rooms its URL asked to join, joined in order after welcome.
  ClientId connect(ClientSink& sink, Identity identity, std::vector<JoinOnConnect> joins = {});
  // One complete client message (text).
  void receive(ClientId client, std::string_view message);
  // A binary message: answered with bad_request (JSON only in atrium.v1).
  void receive_binary(ClientId client);
  // The connection is gone. clean: the client closed with 1000/1001 (onLeave "leave").
  // Otherwise a drop: its seats in typed rooms are held for their reconnectGrace, for a
  // `resume` on another connection, and then end with onLeave "disconnect".
  void disconnect(ClientId client, bool clean);

  // Timers, ticks and patch batching. Milliseconds until the next due work (-1: none),
  // then run_due() when it is due. Call end_of_pass() once per loop pass, after input.
  std::int64_t ms_until_next() const;
  void run_due();
  void end_of_pass();
  // With host_clock: the host's time, in ms (any origin; it never goes backwards).
  void set_host_time(std::int64_t now_ms);
  // With host_clock: both clocks exactly, the wall clock apart (replay gives each input the
  // readings it was recorded with).
  void set_clocks(std::int64_t now_ms, std::int64_t wall_ms);
  // atrium.host.NAME for every room script from now on (a second one of a name replaces
  // the first). It runs inside the script's call: it must not call back into this engine.
  void register_host_function(std::string name, HostFunction fn);

  // HTTP API (docs/rooms.md "Reloading, and server-side calls over HTTP"). Results are JSON
  // bodies; errors carry the codes of docs/protocol.md "Error codes".
  json::Value status() const;                                  // GET /api/status
  json::Value rooms() const;                                   // GET /api/rooms
  Result<json::Value> room(std::string_view id) const;         // GET /api/rooms/:id
  // `except`: a member's client id ("c12") that does not get it (a Pusher trigger's socket_id).
  Result<json::Value> emit(std::string_view id, std::string_view event, const json::Value& data,
                           std::string_view except = {});
  Result<json::Value> call(std::string_view id, std::string_view method, const json::Value& args);
  Result<json::Value> place(std::string_view id, std::string_view client, const json::Value& payload);
  // GET /api/rooms/:id/members: {"members":[{"client","userId","joinedAt"}]}, members that
  // are still inside their own join included.
  Result<json::Value> members(std::string_view id) const;
  // POST /api/rooms/:id/kick: the member gets `left` reason "kicked" with `message`, and
  // onLeave sees "kicked"; not_member when the client is not in the room.
  Result<json::Value> kick(std::string_view id, std::string_view client, std::string_view message);
  // DELETE /api/rooms/:id: as a script's room:close(): members and watchers get `left`
  // reason "closed", onLeave runs for each, then onDestroy; the room is gone either way.
  Result<json::Value> close(std::string_view id);
  json::Value reload();                                        // POST /api/reload
  // One script in rooms_dir changed on disk (file name, "chat.lua"): load it again, or
  // mark its type deleted when the file is gone. Returns {"name","ok","error"}.
  json::Value reload_script(std::string_view file_name);
  std::string metrics() const;                                 // engine part of GET /metrics

  // Server shutdown: every member leaves with reason "closed" (held seats too), every
  // client is closed with 1001.
  void shutdown();

  std::size_t connection_count() const;
  // Whether rooms/TYPE.lua is there: loaded, or failed to load (its rooms then answer
  // script_error; they never fall back to something the script did not allow).
  bool has_room_type(std::string_view type) const;

  // What must hold between any two operations (membership lists agree both ways, no
  // transaction open, each room's Lua state equals its mirror...): the first violation,
  // or ok. For tests and for hosts that want to assert it; it walks everything.
  Status check_invariants() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace atrium::engine
