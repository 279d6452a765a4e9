// The engine's side of the HTTP API (docs/rooms.md "Reloading, and server-side calls over
// HTTP") and of GET /metrics: read-only views of types and rooms, and the admin operations
// (emit, call, place, reload).
#include <cstdio>

#include "engine/engine_impl.hpp"

namespace atrium::engine {

void Metrics::observe_hook(double seconds) {
  ++hook_time_count;
  hook_time_sum += seconds;
  for (std::size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++hook_time_counts[i];
}

namespace {

json::Value string_array(const std::vector<std::string>& strings) {
  json::Value out = json::Value::array();
  for (const std::string& s : strings) out.push_back(json::Value(s));
  return out;
}

}  // namespace

json::Value Engine::status() const {
  const Impl& e = *impl_;
  json::Value out = json::Value::object();
  out.set("version", json::Value(ATRIUM_VERSION));
  out.set("uptime", json::Value(static_cast<double>(e.now() - e.started_ms) / 1000.0));
  out.set("connections", json::Value(static_cast<double>(e.clients.size())));
  std::map<const RoomType*, std::size_t> live;
  for (const auto& [id, r] : e.rooms)
    if (!r->doomed) ++live[r->type];
  json::Value types = json::Value::array();
  for (const auto& [name, t] : e.types) {
    json::Value v = json::Value::object();
    v.set("name", json::Value(name));
    v.set("file", json::Value(t->path));  // as given: the operator's editor opens it
    v.set("version", json::Value(t->version));
    v.set("loadedAt", t->loaded_at.empty() ? json::Value() : json::Value(t->loaded_at));
    v.set("error", t->deleted        ? json::Value("the script file was deleted")
                   : t->error.empty() ? json::Value()
                                      : json::Value(t->error));
    v.set("warnings", string_array(t->warnings));
    v.set("actions", string_array(t->actions));
    v.set("rooms", json::Value(static_cast<double>(live[t.get()])));
    types.push_back(std::move(v));
  }
  out.set("types", std::move(types));
  if (e.gate.present) {  // rooms/_connect.lua (gate.cpp): {"file", "error"}
    json::Value gate = json::Value::object();
    gate.set("file", json::Value(e.gate.path));
    gate.set("error", e.gate.error.empty() ? json::Value() : json::Value(e.gate.error));
    out.set("gate", std::move(gate));
  }
  json::Value memory = json::Value::object();
  memory.set("luaBytes", json::Value(static_cast<double>(e.vm ? e.vm->bytes_in_use() : 0)));
  memory.set("luaCapBytes", json::Value(static_cast<double>(e.config.memory_bytes)));
  memory.set("roomCapBytes", json::Value(static_cast<double>(e.config.room_memory_bytes)));
  out.set("memory", std::move(memory));
  return out;
}

namespace {

json::Value room_summary(const Room& r, const script::Vm* vm) {
  json::Value v = json::Value::object();
  v.set("id", json::Value(r.id));
  v.set("type", r.type ? json::Value(r.type_name) : json::Value());
  v.set("members", json::Value(static_cast<double>(r.active_count())));
  v.set("epoch", json::Value(r.epoch));
  v.set("seq", json::Value(static_cast<double>(r.seq)));
  std::size_t held = 0;
  for (const Member& m : r.members) held += m.connected ? 0 : 1;
  v.set("held", json::Value(static_cast<double>(held)));  // seats held after a drop
  v.set("persist", json::Value(r.type && r.type->options.persist));  // a durable room
  if (r.mem_owner && vm) v.set("memory", json::Value(static_cast<double>(vm->owner_bytes(r.mem_owner))));
  return v;
}

}  // namespace

json::Value Engine::rooms() const {
  json::Value list = json::Value::array();
  for (const auto& [id, r] : impl_->rooms)
    if (!r->doomed) list.push_back(room_summary(*r, impl_->vm.get()));
  json::Value out = json::Value::object();
  out.set("rooms", std::move(list));
  return out;
}

Result<json::Value> Engine::room(std::string_view id) const {
  Impl& e = *impl_;
  if (Status s = validate_room_id(id); !s) return s.error();
  Room* r = e.find_room(id);
  if (!r) return make_error(ErrorCode::not_found, "no room " + std::string(id));
  e.flush_patch(*r);  // the state shown is exactly the state at seq
  json::Value v = room_summary(*r, e.vm.get());
  v.set("state", r->mirror);
  return v;
}

namespace {

// The HTTP API calls below that change anything are inputs of a record (Impl::http_input).
json::Value http_call(const char* op, std::initializer_list<std::pair<const char*, json::Value>> fields) {
  json::Value call = json::Value::object();
  call.set("http", json::Value(op));
  for (const auto& [key, value] : fields) call.set(key, value);
  return call;
}

}  // namespace

Result<json::Value> Engine::emit(std::string_view id, std::string_view event, const json::Value& data,
                                 std::string_view except) {
  return impl_->http_input(
      [&] {
        json::Value call = http_call("emit", {{"room", json::Value(id)}, {"event", json::Value(event)}, {"data", data}});
        if (!except.empty()) call.set("except", json::Value(except));
        return call;
      },
      [&] { return impl_->emit_now(id, event, data, except); });
}

Result<json::Value> Engine::Impl::emit_now(std::string_view id, std::string_view event,
                                           const json::Value& data, std::string_view except) {
  Impl& e = *this;
  if (event.empty()) return make_error(ErrorCode::bad_request, "'event' must be a non-empty string");
  if (Status s = validate_room_id(id); !s) return s.error();
  Room* r = e.find_room(id);
  if (!r) return make_error(ErrorCode::not_found, "no room " + std::string(id));
  const std::size_t before = e.metrics.events_sent;
  const Client* skipped = except.empty() ? nullptr : e.find_client(except);
  e.emit_to_members(*r, encode_event_frame(r->id, event, data, {}), skipped ? skipped->id : 0);
  json::Value out = json::Value::object();
  out.set("delivered", json::Value(static_cast<double>(e.metrics.events_sent - before)));
  return out;
}

Result<json::Value> Engine::call(std::string_view id, std::string_view method, const json::Value& args) {
  return impl_->http_input(
      [&] { return http_call("call", {{"room", json::Value(id)}, {"method", json::Value(method)}, {"args", args}}); },
      [&] { return impl_->call_now(id, method, args); });
}

Result<json::Value> Engine::Impl::call_now(std::string_view id, std::string_view method,
                                           const json::Value& args) {
  Impl& e = *this;
  if (method.empty()) return make_error(ErrorCode::bad_request, "method must not be empty");
  if (!args.is_array()) return make_error(ErrorCode::bad_request, "'args' must be an array");
  Result<json::Value> out = make_error(ErrorCode::internal, "not run");
  Status s = make_error(ErrorCode::budget_exceeded, "the server's script memory is full: try again later");
  e.guarded("http call", [&] {
    s = e.transact([&]() -> Status {
      auto opened = e.open_for_server(id);
      if (!opened) return opened.error();
      out = e.method_call(*opened.value(), method, args);
      return out ? Status{} : Status(out.error());
    });
  });
  e.finish_operation();
  if (!s) return s.error();
  json::Value body = json::Value::object();
  body.set("result", std::move(out.value()));
  return body;
}

Result<json::Value> Engine::place(std::string_view id, std::string_view client, const json::Value& payload) {
  return impl_->http_input(
      [&] { return http_call("place", {{"room", json::Value(id)}, {"client", json::Value(client)}, {"payload", payload}}); },
      [&] { return impl_->place_now(id, client, payload); });
}

Result<json::Value> Engine::Impl::place_now(std::string_view id, std::string_view client,
                                            const json::Value& payload) {
  Impl& e = *this;
  if (Status s = validate_room_id(id); !s) return s.error();
  Client* c = e.find_client(client);
  if (!c) return make_error(ErrorCode::not_found, "no connected client " + std::string(client));
  if (!payload.is_object()) return make_error(ErrorCode::bad_request, "'payload' must be an object");
  Result<Room*> r = make_error(ErrorCode::budget_exceeded, "the server's script memory is full: try again later");
  e.guarded("http place", [&] { r = e.join(*c, id, payload, /*server_side=*/true); });
  e.finish_operation();
  if (!r) return r.error();
  json::Value out = json::Value::object();
  out.set("ok", json::Value(true));
  return out;
}

Result<json::Value> Engine::members(std::string_view id) const {
  Impl& e = *impl_;
  if (Status s = validate_room_id(id); !s) return s.error();
  Room* r = e.find_room(id);
  if (!r) return make_error(ErrorCode::not_found, "no room " + std::string(id));
  json::Value list = json::Value::array();
  for (const Member& m : r->members) {
    json::Value v = json::Value::object();
    v.set("client", json::Value(m.client->wire_id));
    v.set("userId", m.client->user_id.empty() ? json::Value() : json::Value(m.client->user_id));
    v.set("joinedAt", json::Value(static_cast<double>(m.joined_at_ms)));
    v.set("connected", json::Value(m.connected));  // false: dropped, the seat held
    list.push_back(std::move(v));
  }
  json::Value out = json::Value::object();
  out.set("members", std::move(list));
  return out;
}

Result<json::Value> Engine::kick(std::string_view id, std::string_view client,
                                 std::string_view message) {
  return impl_->http_input(
      [&] { return http_call("kick", {{"room", json::Value(id)}, {"client", json::Value(client)}, {"message", json::Value(message)}}); },
      [&] { return impl_->kick_now(id, client, message); });
}

Result<json::Value> Engine::Impl::kick_now(std::string_view id, std::string_view client,
                                           std::string_view message) {
  Impl& e = *this;
  if (Status s = validate_room_id(id); !s) return s.error();
  Room* r = e.find_room(id);
  if (!r) return make_error(ErrorCode::not_found, "no room " + std::string(id));
  Client* c = e.find_client(client);
  if (!c || !r->find_member(c->id))
    return make_error(ErrorCode::not_member, std::string(client) + " is not a member of " + r->id);
  e.guarded("http kick", [&] { e.kick(*r, c->id, std::string(message)); });
  e.finish_operation();
  json::Value out = json::Value::object();
  out.set("ok", json::Value(true));
  return out;
}

Result<json::Value> Engine::close(std::string_view id) {
  return impl_->http_input([&] { return http_call("close", {{"room", json::Value(id)}}); },
                           [&] { return impl_->close_now(id); });
}

Result<json::Value> Engine::Impl::close_now(std::string_view id) {
  Impl& e = *this;
  if (Status s = validate_room_id(id); !s) return s.error();
  Room* r = e.find_room(id);
  if (!r) return make_error(ErrorCode::not_found, "no room " + std::string(id));
  e.guarded("http close", [&] { e.close_room(*r, "closed by an operator"); });
  e.finish_operation();
  json::Value out = json::Value::object();
  out.set("ok", json::Value(true));
  return out;
}

json::Value Engine::reload() {
  impl_->begin_input();
  if (impl_->recorder) impl_->recorder->reload(nullptr);
  json::Value out;
  impl_->guarded("reload", [&] { out = impl_->reload_all(); });
  impl_->finish_operation();
  return out;
}

json::Value Engine::reload_script(std::string_view file_name) {
  impl_->begin_input();
  if (impl_->recorder) {
    const std::string file(file_name);
    impl_->recorder->reload(&file);
  }
  json::Value out;
  impl_->guarded("reload", [&] { out = impl_->reload_one(std::string(file_name)); });
  impl_->finish_operation();
  return out;
}

std::string Engine::metrics() const {
  const Impl& e = *impl_;
  std::string out;
  char buf[256];
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    out += buf;
  };
  auto counter = [&](const char* name, const char* help, double v) {
    line("# HELP %s %s\n# TYPE %s counter\n%s %.17g\n", name, help, name, name, v);
  };
  struct TypeTotals { std::size_t rooms = 0, members = 0, memory = 0; };
  std::map<std::string, TypeTotals> by_type;
  std::size_t seats_held = 0, log_patches = 0, log_bytes = 0;
  for (const auto& [id, r] : e.rooms) {
    if (r->doomed) continue;
    for (const Member& m : r->members) seats_held += m.connected ? 0 : 1;
    if (r->patch_log) {
      log_patches += r->patch_log->patches();
      log_bytes += r->patch_log->bytes();
    }
    auto& slot = by_type[r->type ? r->type_name : std::string("(untyped)")];
    ++slot.rooms;
    slot.members += r->active_count();
    if (r->mem_owner && e.vm) slot.memory += e.vm->owner_bytes(r->mem_owner);
  }
  out += "# HELP atrium_rooms Live rooms by type.\n# TYPE atrium_rooms gauge\n";
  for (const auto& [type, n] : by_type) line("atrium_rooms{type=\"%s\"} %zu\n", type.c_str(), n.rooms);
  out += "# HELP atrium_members Members of live rooms by type.\n# TYPE atrium_members gauge\n";
  for (const auto& [type, n] : by_type) line("atrium_members{type=\"%s\"} %zu\n", type.c_str(), n.members);
  out += "# HELP atrium_room_memory_bytes Lua memory held by rooms, by type (allocated in their code).\n"
         "# TYPE atrium_room_memory_bytes gauge\n";
  for (const auto& [type, n] : by_type)
    if (type != "(untyped)") line("atrium_room_memory_bytes{type=\"%s\"} %zu\n", type.c_str(), n.memory);
  std::size_t held = 0;
  for (const auto& [cid, c] : e.clients) held += c->held ? 1 : 0;
  auto gauge = [&](const char* name, const char* help, double v) {
    line("# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
  };
  gauge("atrium_clients", "Connected clients.", static_cast<double>(e.clients.size() - held));
  gauge("atrium_clients_held", "Dropped clients whose seats are held for a resume.", static_cast<double>(held));
  gauge("atrium_seats_held", "Memberships held after a drop.", static_cast<double>(seats_held));
  gauge("atrium_patch_log_frames", "Patches kept for resumes, all rooms.", static_cast<double>(log_patches));
  gauge("atrium_patch_log_bytes", "Bytes of the patches kept for resumes, all rooms.", static_cast<double>(log_bytes));
  out += "# HELP atrium_resume_total Rooms of resumes, by whether only the missed patches were sent.\n"
         "# TYPE atrium_resume_total counter\n";
  line("atrium_resume_total{recovered=\"true\"} %llu\natrium_resume_total{recovered=\"false\"} %llu\n",
       static_cast<unsigned long long>(e.metrics.resume_rooms_recovered),
       static_cast<unsigned long long>(e.metrics.resume_rooms_fresh));
  counter("atrium_resumes_total", "Resumes that took a session over.", static_cast<double>(e.metrics.resumes));
  gauge("atrium_restored_rooms", "Durable rooms restored at start.", static_cast<double>(e.metrics.restored_rooms));
  gauge("atrium_restored_seats", "Held seats restored at start.", static_cast<double>(e.metrics.restored_seats));
  gauge("atrium_restore_seconds", "How long restoring the durable rooms took at start.", e.metrics.restore_ms / 1000.0);
  gauge("atrium_store_bytes", "Size of the durable rooms' file and its WAL.",
        static_cast<double>(e.store ? e.store->bytes() : 0));
  counter("atrium_store_commits_total", "Group commits of durable rooms' changes (one per loop pass that changed one).",
          static_cast<double>(e.metrics.store_commits));
  counter("atrium_store_failures_total", "Group commits that failed (logged; the changes stayed in memory).",
          static_cast<double>(e.metrics.store_failures));
  counter("atrium_resume_failed_total", "Resumes refused (unknown or expired session, ...).",
          static_cast<double>(e.metrics.resumes_failed));
  counter("atrium_requests_total", "Client requests handled.", static_cast<double>(e.metrics.requests));
  counter("atrium_request_errors_total", "Client requests answered with an error.",
          static_cast<double>(e.metrics.request_errors));
  counter("atrium_rate_limited_total",
          "Client messages refused for the per-connection rate (not in atrium_requests_total).",
          static_cast<double>(e.metrics.rate_limited));
  counter("atrium_rate_abuse_closes_total",
          "Connections closed (1008) for sending 10 times the rate for 5 s.",
          static_cast<double>(e.metrics.abuse_closes));
  counter("atrium_patches_sent_total", "Patch frames built (one per room flush).",
          static_cast<double>(e.metrics.patches_sent));
  counter("atrium_patch_deliveries_total", "Patch frames queued to members.",
          static_cast<double>(e.metrics.patch_deliveries));
  counter("atrium_events_sent_total", "Event frames queued to members.",
          static_cast<double>(e.metrics.events_sent));
  counter("atrium_hook_calls_total", "Calls into room scripts.", static_cast<double>(e.metrics.hook_calls));
  counter("atrium_hook_errors_total", "Calls into room scripts that failed.",
          static_cast<double>(e.metrics.hook_errors));
  counter("atrium_gate_calls_total", "Runs of rooms/_connect.lua onConnect.",
          static_cast<double>(e.metrics.gate_calls));
  counter("atrium_gate_refusals_total", "Connections the gate refused (or failed on: it fails closed).",
          static_cast<double>(e.metrics.gate_refusals));
  counter("atrium_tokens_expired_total", "Connections closed 4003 when their token ran out.",
          static_cast<double>(e.metrics.tokens_expired));
  counter("atrium_token_refreshes_total", "In-band auth ops that refreshed a token.",
          static_cast<double>(e.metrics.token_refreshes));
  out += "# HELP atrium_hook_duration_seconds Wall time of calls into room scripts.\n"
         "# TYPE atrium_hook_duration_seconds histogram\n";
  for (std::size_t i = 0; i < Metrics::kBuckets.size(); ++i)
    line("atrium_hook_duration_seconds_bucket{le=\"%g\"} %llu\n", Metrics::kBuckets[i],
         static_cast<unsigned long long>(e.metrics.hook_time_counts[i]));
  line("atrium_hook_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
       static_cast<unsigned long long>(e.metrics.hook_time_count));
  line("atrium_hook_duration_seconds_sum %.9f\natrium_hook_duration_seconds_count %llu\n",
       e.metrics.hook_time_sum, static_cast<unsigned long long>(e.metrics.hook_time_count));
  line("# HELP atrium_lua_memory_bytes Lua heap in use.\n# TYPE atrium_lua_memory_bytes gauge\n"
       "atrium_lua_memory_bytes %zu\n", e.vm ? e.vm->bytes_in_use() : std::size_t{0});
  return out;
}

}  // namespace atrium::engine
