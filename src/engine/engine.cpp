// The order of events: a client's message comes in, is parsed and dispatched, hooks run
// as transactions, frames go out; then deferred hooks run and dead rooms are reaped.
#include "engine/engine_impl.hpp"

#include <lua.hpp>

#include <chrono>
#include <cstdio>

#include "json/codec.hpp"

namespace atrium::engine {

std::int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Engine::Impl::Impl(EngineConfig c) : config(std::move(c)) {
  budget.cpu_ms = config.cpu_budget_ms;
  started_ms = now();
}

Engine::Impl::~Impl() {
  // Lua refs die with the VM; rooms and clients hold nothing else that needs Lua.
  rooms.clear();
  vm.reset();
}

void Engine::Impl::recover(const char* what, const std::string& error) {
  log(LogLevel::error, std::string("engine lua_error op=") + what + " error=\"" + error +
                           "\" in_use=" + std::to_string(vm->bytes_in_use()) +
                           " (rolled back; the engine's own Lua use failed, out of memory?)");
  room_stack.clear();
  vm->set_owner(0);
  txn = nullptr;
  if (abandoned) {
    Transaction t = std::move(*abandoned);
    abandoned.reset();
    const Status undone = script::protected_call(L, [&] { rollback(t); });
    if (!undone) log(LogLevel::error, "engine rollback_failed error=\"" + undone.error().message + "\"");
  }
  vm->set_owner(0);
  vm->collect();
}

void Engine::Impl::begin_input() {
  if (fixed_clock && !config.host_clock) {
    fixed_now_ms = monotonic_ms();
    fixed_wall_ms = wall_ms();
  }
  if (recorder) recorder->clock(fixed_now_ms, fixed_wall_ms);
}

void Engine::Impl::flush_record() {
  if (!recorder || recorder->flush() || record_failed) return;
  record_failed = true;
  log(LogLevel::error, "engine record_failed path=" + config.record_path +
                           " (a write failed: the record ends before this point)");
}

void Engine::Impl::log(LogLevel level, const std::string& line) const {
  if (level < config.log_level) return;
  if (config.on_log) {
    config.on_log(level, line);
    return;
  }
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "%s %s\n", names[static_cast<int>(level)], line.c_str());
}

Client* Engine::Impl::find_client(ClientId id) {
  auto it = clients.find(id);
  return it == clients.end() ? nullptr : it->second.get();
}

Client* Engine::Impl::find_client(std::string_view wire_id) {
  if (wire_id.size() < 2 || wire_id[0] != 'c') return nullptr;
  ClientId id = 0;
  for (char ch : wire_id.substr(1)) {
    if (ch < '0' || ch > '9') return nullptr;
    id = id * 10 + static_cast<ClientId>(ch - '0');
  }
  return find_client(id);
}

void Engine::Impl::send(Client& c, std::string line) { send_frame(c, SharedFrame(line)); }

void Engine::Impl::send_frame(Client& c, const SharedFrame& frame) {
  if (!c.sink) return;
  if (recorder) recorder->out(conn_wire(c), frame);
  // The output gate (durable.cpp): once this pass wrote a durable change, every frame waits
  // for the store's commit at the end of the pass, in order.
  if (store && store->pending()) {
    held_frames.push_back(HeldFrame{c.id, c.conn, frame});
    return;
  }
  c.sink->send(frame);
}

namespace {

// EngineConfig::rate: true when the message must not be processed. A refused message is
// answered rate_limited (a failed reply when it carries a ref: rate_limit.hpp scan_ref;
// else an error frame); sustained abuse closes the connection with 1008, and what
// it sends until the transport is gone is ignored.
bool refused_for_rate(Engine::Impl& e, Client& c, const std::string_view* text) {
  if (e.config.rate <= 0) return false;
  switch (c.rate_limit.admit(e.config.rate, e.now())) {
    case RateLimit::Verdict::pass:
      return false;
    case RateLimit::Verdict::closed:
      return true;
    case RateLimit::Verdict::refuse: {
      ++e.metrics.rate_limited;
      const Error err = make_error(ErrorCode::rate_limited,
                                   "over " + std::to_string(e.config.rate) +
                                       " messages per second: this message was not processed");
      std::optional<json::Value> ref = text ? scan_ref(*text) : std::nullopt;
      e.send(c, ref ? encode_reply_error(*ref, err) : encode_error(err));
      return true;
    }
    case RateLimit::Verdict::abuse:
      ++e.metrics.abuse_closes;
      e.log(LogLevel::warn, "engine rate_abuse client=" + c.wire_id + " rate=" +
                                std::to_string(e.config.rate) + " (closed with 1008)");
      if (c.sink) {
        if (e.recorder) e.recorder->closed(e.conn_wire(c), 1008);
        c.sink->close(1008, "message rate abuse");
      }
      return true;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Requests

void Engine::Impl::dispatch(Client& c, Request& req) {
  auto reply_error = [&](const Error& e) {
    ++metrics.request_errors;
    if (req.has_ref)
      send(c, encode_reply_error(req.ref, e));
    else
      send(c, encode_error(e));
  };
  auto reply_ok = [&](const json::Value* result) {
    if (req.has_ref) send(c, encode_reply_ok(req.ref, result));
  };
  auto reply_state = [&](const Room& room) {  // join, sync, watch: the state at its seq
    if (req.has_ref) send(c, encode_reply_state(req.ref, room.id, room.epoch, room.seq, room.mirror));
  };

  switch (req.op) {
    case Op::ping: {
      const json::Value pong("pong");
      reply_ok(&pong);
      return;
    }
    case Op::join: {
      auto r = join(c, req.room, req.body, false);
      if (!r) return reply_error(r.error());
      // Its own join may have ended it (onJoin kicked it or closed the room): it got
      // `left` already, so a reply with the state would make it a member again.
      if (!r.value()->is_active_member(c.id))
        return reply_error(make_error(ErrorCode::not_member,
                                      "left " + req.room + " during its own join (kicked, or the room closed)"));
      return reply_state(*r.value());
    }
    case Op::leave: {
      Room* room = find_room(req.room);
      if (!room || !room->find_member(c.id))
        return reply_error(make_error(ErrorCode::not_member, "not a member of " + req.room));
      if (Status s = leave(c, *room, "leave"); !s) return reply_error(s.error());
      return reply_ok(nullptr);
    }
    case Op::sync: {
      Room* room = find_room(req.room);
      if (!room || !room->is_active_member(c.id))
        return reply_error(make_error(ErrorCode::not_member, "not a member of " + req.room));
      flush_patch(*room);
      return reply_state(*room);
    }
    case Op::emit:
    case Op::call: {
      Room* room = find_room(req.room);
      if (!room || !room->is_active_member(c.id))
        return reply_error(make_error(ErrorCode::not_member, "not a member of " + req.room));
      auto r = req.op == Op::emit ? client_emit(c, *room, req.name, req.body)
                                  : client_call(c, *room, req.name, req.body);
      if (!r) return reply_error(r.error());
      return reply_ok(r.value().is_null() && req.op == Op::emit ? nullptr : &r.value());
    }
    case Op::watch: {
      auto r = watch(c, req);
      if (!r) return reply_error(r.error());
      return reply_state(*r.value());
    }
    case Op::unwatch: {
      if (Room* room = find_room(req.room)) unwatch(c, *room);
      return reply_ok(nullptr);
    }
    case Op::auth: {
      auto r = refresh_token(c, req.token);
      if (!r) return reply_error(r.error());
      return reply_ok(nullptr);
    }
    case Op::resume:
      return resume(c, req);  // seats.cpp; c is gone after it when it resumed
  }
}

void Engine::Impl::finish_operation() {
  // Deferred hooks (onLeave of a kicked member, ...) may defer more. Hooks can make that a
  // cycle (an onLeave that places the kicked member back, whose onJoin kicks it again):
  // at most kMaxDeferredRounds rounds per operation, and what is left waits for the next
  // one, so such a room burns its own time, a round at a time, and the server keeps
  // answering everyone else.
  constexpr int kMaxDeferredRounds = 64;
  for (int round = 0; round < kMaxDeferredRounds && !deferred.empty(); ++round) {
    auto work = std::move(deferred);
    deferred.clear();
    guarded("deferred", [&] {
      for (auto& fn : work) fn();
    });
  }
  if (!deferred.empty() && now() - deferred_warned_ms > 10000) {
    deferred_warned_ms = now();
    log(LogLevel::warn, "engine deferred_carried rounds=" + std::to_string(kMaxDeferredRounds) +
                            " left=" + std::to_string(deferred.size()) +
                            " (hooks keep queuing more: an onLeave that undoes a kick?)");
  }
  if (!doomed_ids.empty() || !displaced.empty()) guarded("reap", [&] { reap(); });
  if (!released.empty()) forget_released();
  // LuaJIT collects only as it allocates, and late near the cap (Vm::wants_collection):
  // a full collection now gives the rooms' garbage back before the next operation.
  if (vm->wants_collection()) vm->collect();
}

// ---------------------------------------------------------------------------------------
// Engine: the public face

Engine::Engine(EngineConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Engine::~Engine() = default;

Status Engine::start() {
  Impl& e = *impl_;
  e.vm = std::make_unique<script::Vm>(e.config.memory_bytes, e.config.room_memory_bytes);
  if (!e.vm->ok())
    return make_error(ErrorCode::internal, "LuaJIT refused the engine's allocator (a LuaJIT "
                                           "built without GC64 on x64: use Debian's libluajit-5.1)");
  e.L = e.vm->L();
  e.open_core_api();  // pushes core
  // The prelude gets the room base class's module too (loaded here, not with dofile, so
  // that its chunk is named as the engine's own: script/vm.cpp).
  Status loaded = script::run_engine_file(e.L, e.config.lua_dir + "/atrium/room.lua", 0);
  if (loaded) loaded = script::run_engine_file(e.L, e.config.lua_dir + "/atrium/prelude.lua", 2);
  else lua_pop(e.L, 1);
  if (!loaded)
    return make_error(ErrorCode::internal, "cannot load the engine's Lua from " +
                                               e.config.lua_dir + ": " + loaded.error().message);
  e.prelude_ref = luaL_ref(e.L, LUA_REGISTRYINDEX);
  if (!e.config.record_path.empty()) {
    auto opened = Recorder::open(e.config.record_path, e.config, e.shown_rooms_dir(), e.random_seed);
    if (!opened) return opened.error();
    e.recorder = std::move(opened).value();
    e.begin_input();
    e.recorder->write_clock();
  }
  if (!e.guarded("start", [&] { e.load_all_types(); }))
    return make_error(ErrorCode::internal, "loading the room scripts failed: out of memory");
  Status restored;
  if (!e.guarded("restore", [&] { restored = e.restore_rooms(); }))
    return make_error(ErrorCode::internal, "restoring the durable rooms failed: out of memory");
  return restored;
}

ClientId Engine::connect(ClientSink& sink, std::string user_id) {
  Identity identity;
  identity.user_id = std::move(user_id);
  return connect(sink, std::move(identity));
}

void Engine::receive(ClientId id, std::string_view message) {
  Impl& e = *impl_;
  Client* c = e.by_connection(id);
  if (!c) return;
  e.begin_input();
  if (e.recorder) e.recorder->message(e.conn_wire(*c), message);
  if (refused_for_rate(e, *c, &message)) return;
  ++e.metrics.requests;
  json::Value ref;
  bool has_ref = false;
  auto req = parse_request(message, ref, has_ref);
  if (!req) {
    ++e.metrics.request_errors;
    const Error& err = req.error();
    e.send(*c, has_ref ? encode_reply_error(ref, err) : encode_error(err));
    return;
  }
  Request& request = req.value();
  // Requests to untyped rooms (and ping, sync, watch) run no Lua at all: no guard, and no
  // reply that blames script memory.
  const bool touches_lua = (request.op == Op::join || request.op == Op::leave || request.op == Op::call ||
                            request.op == Op::emit) && !room_type_of(request.room).empty();
  if (!touches_lua) {
    e.dispatch(*c, request);
  } else if (!e.guarded("request", [&] { e.dispatch(*c, request); })) {
    if (Client* still = e.find_client(id)) {
      const Error err = e.vm->in_reserve() || e.vm->vm_cap_hit()
                            ? make_error(ErrorCode::budget_exceeded,
                                         "the server's script memory is full: try again later")
                            : make_error(ErrorCode::internal, "the request failed inside the engine");
      e.send(*still, has_ref ? encode_reply_error(ref, err) : encode_error(err));
    }
  }
  e.finish_operation();
}

void Engine::receive_binary(ClientId id) {
  Impl& e = *impl_;
  Client* c = e.by_connection(id);
  if (!c) return;
  e.begin_input();
  if (e.recorder) e.recorder->binary(e.conn_wire(*c));
  if (refused_for_rate(e, *c, nullptr)) return;
  e.send(*c, encode_error(make_error(ErrorCode::bad_request,
                                       "binary messages are not part of atrium.v1: send JSON text")));
}

void Engine::disconnect(ClientId id, bool clean) {
  Impl& e = *impl_;
  Client* c = e.by_connection(id);
  if (!c) return;
  e.begin_input();
  if (e.recorder) e.recorder->disconnect(e.conn_wire(*c), clean);
  c->sink = nullptr;  // the transport is gone: nothing more may be sent
  if (e.shut_down) {  // the closes of shutdown(): durable seats stay stored for the restart
    for (const std::string& rid : c->rooms)
      if (auto it = e.rooms.find(rid); it != e.rooms.end())
        std::erase_if(it->second->members, [&](const Member& m) { return m.id == c->id; });
    c->rooms.clear();
    e.forget_client(c->id);
    return;
  }
  for (const std::string& rid : std::vector<std::string>(c->watching))
    if (Room* room = e.find_room(rid)) e.unwatch(*c, *room);
  if (c->conn != c->id) e.rebound.erase(c->conn);
  c->leaving = true;  // no hook may place it anywhere while its onLeave hooks run
  bool held = false;
  if (!clean) e.guarded("disconnect", [&] { held = e.hold_seats(*c); });
  if (held) {  // seats.cpp: a resume may take the client back
    e.finish_operation();
    return;
  }
  e.guarded("disconnect", [&] { e.leave_all(*c, clean ? "leave" : "disconnect"); });
  // Whatever its hooks did, the client leaves every room and is gone.
  const ClientId cid = c->id;
  while (!c->rooms.empty()) {
    if (auto it = e.rooms.find(c->rooms.back()); it != e.rooms.end())
      std::erase_if(it->second->members, [&](const Member& m) { return m.id == cid; });
    c->rooms.pop_back();
  }
  e.forget_client(cid);
  e.finish_operation();
}

// A recording engine's clock stands still between inputs: how long to wait is the real
// clock's business.
std::int64_t Engine::ms_until_next() const {
  Impl& e = *impl_;
  return e.timers.ms_until_next(e.fixed_clock && !e.config.host_clock ? monotonic_ms() : e.now());
}

void Engine::register_host_function(std::string name, HostFunction fn) {
  impl_->host_functions[std::move(name)] = std::move(fn);
}

void Engine::set_host_time(std::int64_t now_ms) {
  Impl& e = *impl_;
  if (!e.config.host_clock || now_ms <= e.fixed_now_ms) return;  // never backwards
  e.fixed_now_ms = now_ms;
  e.fixed_wall_ms = now_ms;
}

void Engine::set_clocks(std::int64_t now_ms, std::int64_t wall_ms) {
  Impl& e = *impl_;
  if (!e.config.host_clock) return;
  e.fixed_now_ms = now_ms;
  e.fixed_wall_ms = wall_ms;
}

void Engine::run_due() {
  Impl& e = *impl_;
  e.begin_input();
  const std::int64_t now = e.now();
  if (e.recorder && e.timers.ms_until_next(now) == 0) e.recorder->timers();
  TimerEvent ev;
  // Bounded: timers that come due while these run wait for the next pass.
  for (std::size_t n = e.timers.size(); n > 0 && e.timers.pop_due(now, ev); --n) {
    e.guarded("timer", [&] { e.on_timer(ev); });
    e.finish_operation();
  }
}

void Engine::end_of_pass() {
  Impl& e = *impl_;
  if (!e.deferred.empty() || !e.doomed_ids.empty() || !e.displaced.empty()) {
    e.begin_input();
    if (e.recorder) e.recorder->pass();
  }
  e.finish_operation();
  e.commit_store();  // durable.cpp: the pass's group commit, then the frames it held
  e.flush_record();
}

void Engine::shutdown() {
  Impl& e = *impl_;
  e.begin_input();
  if (e.recorder) e.recorder->shutdown();
  e.shut_down = true;
  std::vector<ClientId> ids;
  for (auto& [id, c] : e.clients) ids.push_back(id);
  for (ClientId id : ids) {
    Client* c = e.find_client(id);
    if (!c) continue;
    e.guarded("shutdown", [&] {
      for (const std::string& rid : std::vector<std::string>(c->rooms))
        if (Room* room = e.find_room(rid)) {
          // A durable room's members are dropped, not removed: their seats stay stored,
          // for a resume after the restart (docs/protocol.md "Seats and resume").
          if (e.durable_store(*room)) continue;
          e.send(*c, encode_left(room->id, "closed", "server shutting down"));
          (void)e.leave(*c, *room, "closed");
        }
    });
  }
  e.finish_operation();
  e.commit_store();  // what the leaves changed is on disk, and their frames are out
  for (ClientId id : ids)
    if (Client* c = e.find_client(id); c && c->sink) {
      if (e.recorder) e.recorder->closed(e.conn_wire(*c), 1001);
      c->sink->close(1001, "server shutting down");
    }
  e.flush_record();
}

std::size_t Engine::connection_count() const { return impl_->clients.size(); }

bool Engine::has_room_type(std::string_view type) const {
  auto it = impl_->types.find(std::string(type));
  return it != impl_->types.end() && !it->second->deleted;
}

}  // namespace atrium::engine
