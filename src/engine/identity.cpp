// Who a connection is, over its life: the identity it connected with (Engine::connect),
// its token running out (a timer closes it with 4003), and the in-band `auth` op that
// refreshes the token before that (docs/protocol.md "Connecting: tokens, origins, TLS").
#include "engine/engine_impl.hpp"

namespace atrium::engine {

namespace {

constexpr int kTokenExpiredClose = 4003;

}  // namespace

ClientId Engine::connect(ClientSink& sink, Identity identity, std::vector<JoinOnConnect> joins) {
  Impl& e = *impl_;
  e.begin_input();
  auto c = std::make_unique<Client>();
  c->id = e.next_client++;
  c->wire_id = "c" + std::to_string(c->id);
  if (e.recorder) e.recorder->connect(c->wire_id, identity, joins);
  c->session = {e.random(), e.random()};
  c->user_id = std::move(identity.user_id);
  c->claims = std::move(identity.claims);
  c->user = std::move(identity.user);
  c->pusher = std::move(identity.pusher);
  c->sink = &sink;
  c->conn = c->id;
  e.sessions[c->session] = c->id;
  Client& ref = *c;
  e.clients.emplace(c->id, std::move(c));
  e.arm_expiry(ref, identity.expires_at_s);
  e.send(ref, encode_welcome(session_hex(ref.session), ref.wire_id, ref.user_id,
                             e.config.server_name, e.config.heartbeat_ms));
  const ClientId id = ref.id;
  for (const JoinOnConnect& j : joins) e.join_on_connect(id, j);
  return id;
}

// A client's join in all but its answer (the URL has no ref to answer): `joined` with the
// state at its seq, as a server-side placement gets, or an error frame naming the room.
void Engine::Impl::join_on_connect(ClientId id, const JoinOnConnect& j) {
  Client* c = find_client(id);
  if (!c) return;
  ++metrics.requests;
  Result<Room*> r = make_error(ErrorCode::internal, "the join failed inside the engine");
  if (!guarded("join on connect", [&] { r = join(*c, j.room, j.payload, /*server_side=*/false); }) &&
      (vm->in_reserve() || vm->vm_cap_hit())) {
    r = make_error(ErrorCode::budget_exceeded, "the server's script memory is full: try again later");
  }
  c = find_client(id);
  if (c && r && !r.value()->is_active_member(id))
    r = make_error(ErrorCode::not_member, "left " + j.room + " during its own join (kicked, or the room closed)");
  if (c) {
    if (r) {
      Room& room = *r.value();  // its activation flushed it: the state is the state at seq
      send(*c, encode_state("joined", room.id, room.epoch, room.seq, room.mirror));
    } else {
      ++metrics.request_errors;
      send(*c, encode_room_error(j.room, r.error()));
    }
  }
  finish_operation();
}

// The token's exp is wall-clock time; timers run on the engine's monotonic clock. The
// leeway that let a token in at the upgrade does not extend it here: the connection
// ends when the token says it does, and a client refreshes before that.
void Engine::Impl::arm_expiry(Client& c, std::int64_t expires_at_s) {
  if (c.expiry_timer) timers.cancel(c.expiry_timer);
  c.expiry_timer = 0;
  if (expires_at_s <= 0) return;
  const std::int64_t left_ms = std::max<std::int64_t>(0, expires_at_s * 1000 - wall_now());
  TimerEvent ev;
  ev.kind = TimerKind::token_expiry;
  ev.client = c.id;
  ev.due_ms = now() + left_ms;
  c.expiry_timer = timers.add(std::move(ev));
}

void Engine::Impl::on_token_expired(const TimerEvent& ev) {
  Client* c = find_client(ev.client);
  if (!c || c->expiry_timer != ev.id) return;  // gone, or refreshed since
  c->expiry_timer = 0;
  ++metrics.tokens_expired;
  log(LogLevel::info, "engine token_expired client=" + c->wire_id +
                          (c->user_id.empty() ? std::string() : " user=" + c->user_id));
  if (recorder) recorder->closed(conn_wire(*c), kTokenExpiredClose);
  c->sink->close(kTokenExpiredClose, "token expired");
}

// A refresh keeps who the connection is: a token for another user, or for a connection
// that came without one, is refused (rooms saw this connection as that user; changing it
// under them would let one socket speak as two people). ctx.user, the gate's verdict,
// stays as it was.
Result<json::Value> Engine::Impl::refresh_token(Client& c, const std::string& token) {
  if (!config.verify_token)
    return make_error(ErrorCode::unauthorized, "this server checks no tokens (no --jwt-secret or --jwt-public-key)");
  Result<Identity> verified = config.verify_token(token);
  if (recorder) recorder->auth(verified);
  if (!verified) return make_error(ErrorCode::unauthorized, "the token was refused");
  if (c.claims.is_null())
    return make_error(ErrorCode::unauthorized, "this connection came without a token: reconnect with one");
  if (verified->user_id != c.user_id)
    return make_error(ErrorCode::unauthorized, "the token is for another user than this connection's");
  c.claims = std::move(verified->claims);
  arm_expiry(c, verified->expires_at_s);
  ++metrics.token_refreshes;
  return json::Value();
}

}  // namespace atrium::engine
