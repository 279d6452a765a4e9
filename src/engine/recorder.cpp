// The record file's writer: one JSON object per line, buffered, flushed once per pass.
#include "engine/recorder.hpp"

#include <climits>
#include <cstring>

#include "engine/engine.hpp"
#include "json/codec.hpp"

namespace atrium::engine {

namespace {

// An entry that starts with the key naming its kind ({"timers":true}); replay reads that key.
json::Value entry(const char* kind, json::Value value) {
  json::Value e = json::Value::object();
  e.set(kind, std::move(value));
  return e;
}

// uint64 seeds go as decimal text: a JSON number reads back exactly only below 2^53.
json::Value seed_text(std::uint64_t n) { return json::Value(std::to_string(n)); }

}  // namespace

// A client's line goes in raw, not as a string: the record stays readable, and a replay
// compares whole entries.
void append_out_entry(std::string& buf, const std::vector<std::string>& clients,
                      std::string_view line) {
  buf += "{\"out\":";
  if (clients.size() == 1) {
    json::write_string(clients.front(), buf);
  } else {
    buf.push_back('[');
    for (std::size_t i = 0; i < clients.size(); ++i) {
      if (i) buf.push_back(',');
      json::write_string(clients[i], buf);
    }
    buf.push_back(']');
  }
  buf += ",\"line\":";
  buf.append(line);
  buf += "}";
}

json::Value closed_entry(std::string_view client, int code) {
  json::Value e = entry("closed", json::Value(client));
  e.set("code", json::Value(code));
  return e;
}

json::Value result_entry(const Result<json::Value>& r) {
  json::Value e = json::Value::object();
  if (r) {
    e.set("result", r.value());
  } else {
    e.set("error", json::Value(r.error().message));
    e.set("code", json::Value(std::string(r.error().wire_code())));
  }
  return e;
}

Result<std::unique_ptr<Recorder>> Recorder::open(const std::string& path, const EngineConfig& config,
                                                 std::string_view rooms_dir,
                                                 std::uint64_t random_seed) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f)
    return make_error(ErrorCode::internal, "cannot write the record " + path + ": " + std::strerror(errno));
  std::unique_ptr<Recorder> r(new Recorder(f));
  json::Value settings = json::Value::object();
  settings.set("server_name", json::Value(config.server_name));
  settings.set("admin_token", json::Value(config.admin_token));
  settings.set("heartbeat_ms", json::Value(config.heartbeat_ms));
  settings.set("cpu_budget_ms", json::Value(config.cpu_budget_ms));
  settings.set("room_memory_bytes", json::Value(static_cast<double>(config.room_memory_bytes)));
  settings.set("memory_bytes", json::Value(static_cast<double>(config.memory_bytes)));
  settings.set("max_rooms_per_connection", json::Value(config.max_rooms_per_connection));
  settings.set("untyped_rooms", json::Value(config.untyped_rooms));
  settings.set("rate", json::Value(config.rate));
  json::Value header = json::Value::object();
  header.set("atrium_record", json::Value(kRecordFormat));
  header.set("engine", json::Value(ATRIUM_VERSION));
  header.set("rooms_dir", json::Value(rooms_dir));
  header.set("host_clock", json::Value(config.host_clock));
  header.set("seed", config.seed ? seed_text(*config.seed) : json::Value());
  header.set("random_seed", seed_text(random_seed));
  header.set("settings", std::move(settings));
  r->line(header);
  r->flush();
  if (r->failed_) return make_error(ErrorCode::internal, "cannot write the record " + path);
  return r;
}

Recorder::~Recorder() {
  flush();
  std::fclose(file_);
}

void Recorder::line(const json::Value& v) {
  write_out();
  json::write(v, buf_);
  buf_.push_back('\n');
  if (buf_.size() > (1u << 20)) flush();
}

// Client text goes as a JSON string when it is UTF-8, else as its bytes: replay must feed
// the engine the very bytes it got (a bad byte's offset is in the error it answers).
void Recorder::text_field(json::Value& entry, std::string_view text) {
  if (json::is_valid_utf8(text)) {
    entry.set("text", json::Value(text));
    return;
  }
  json::Value bytes = json::Value::array();
  for (const char c : text) bytes.push_back(json::Value(static_cast<int>(static_cast<unsigned char>(c))));
  entry.set("bytes", std::move(bytes));
}

void Recorder::clock(std::int64_t now_ms, std::int64_t wall_ms) {
  pending_now_ms_ = now_ms;
  pending_wall_ms_ = wall_ms;
}

// An input's entry, after the clocks it ran at when they changed since the last input:
// passes that find nothing to do leave no trace.
void Recorder::input(const json::Value& v) {
  write_clock();
  line(v);
}

void Recorder::write_clock() {
  if (pending_now_ms_ == now_ms_ && pending_wall_ms_ == wall_ms_) return;
  now_ms_ = pending_now_ms_;
  wall_ms_ = pending_wall_ms_;
  json::Value e = json::Value::object();
  e.set("time", json::Value(static_cast<double>(now_ms_)));
  e.set("wall", json::Value(static_cast<double>(wall_ms_)));
  line(e);
}

void Recorder::connect(std::string_view client, const Identity& identity, const std::vector<JoinOnConnect>& joins) {
  json::Value e = entry("connect", json::Value(client));
  if (!joins.empty()) {
    json::Value list = json::Value::array();
    for (const JoinOnConnect& j : joins) {
      json::Value one = json::Value::object();
      one.set("room", json::Value(j.room));
      one.set("payload", j.payload);
      list.push_back(std::move(one));
    }
    e.set("joins", std::move(list));
  }
  if (!identity.user_id.empty()) e.set("user", json::Value(identity.user_id));
  if (!identity.claims.is_null()) e.set("claims", identity.claims);
  if (!identity.user.is_null()) e.set("ctx_user", identity.user);
  if (!identity.pusher.is_null()) e.set("pusher", identity.pusher);
  if (identity.expires_at_s) e.set("expires", json::Value(static_cast<double>(identity.expires_at_s)));
  input(e);
}

void Recorder::auth(const Result<Identity>& verified) {
  json::Value e = entry("auth", json::Value(verified.ok()));
  if (verified) {
    e.set("user", json::Value(verified->user_id));
    e.set("claims", verified->claims);
    e.set("expires", json::Value(static_cast<double>(verified->expires_at_s)));
  } else {
    e.set("error", json::Value(verified.error().message));
  }
  line(e);
}

void Recorder::message(std::string_view client, std::string_view text) {
  json::Value e = entry("message", json::Value(client));
  text_field(e, text);
  input(e);
}

void Recorder::binary(std::string_view client) {
  input(entry("binary", json::Value(client)));
}

void Recorder::disconnect(std::string_view client, bool clean) {
  json::Value e = entry("disconnect", json::Value(client));
  e.set("clean", json::Value(clean));
  input(e);
}

void Recorder::timers() {
  input(entry("timers", json::Value(true)));
}

void Recorder::pass() {
  input(entry("pass", json::Value(true)));
}

void Recorder::reload(const std::string* file) {
  input(entry("reload", file ? json::Value(*file) : json::Value()));
}

void Recorder::http(json::Value call) { input(call); }

void Recorder::shutdown() {
  input(entry("shutdown", json::Value(true)));
}

void Recorder::script(std::string_view file, std::string_view source) {
  json::Value e = entry("script", json::Value(file));
  text_field(e, source);
  line(e);
}

void Recorder::script_gone(std::string_view file) {
  json::Value e = entry("script", json::Value(file));
  e.set("gone", json::Value(true));
  line(e);
}

void Recorder::host(std::string_view name, std::string_view args, const Result<std::string>& result) {
  json::Value e = entry("host", json::Value(name));
  e.set("args", json::Value(args));
  if (result) {
    e.set("result", json::Value(result.value()));
  } else {
    e.set("error", json::Value(result.error().message));
  }
  line(e);
}

// The same frame (one buffer, shared) to the next client joins the entry being gathered.
void Recorder::out(std::string_view client, const SharedFrame& line) {
  if (out_line_.data() != line.data()) {
    write_out();
    out_line_ = line;
  }
  out_clients_.emplace_back(client);
}

void Recorder::write_out() {
  if (out_clients_.empty()) return;
  append_out_entry(buf_, out_clients_, out_line_.view());
  buf_.push_back('\n');
  out_clients_.clear();
  out_line_ = SharedFrame();
  if (buf_.size() > (1u << 20)) flush();
}

void Recorder::closed(std::string_view client, int code) { line(closed_entry(client, code)); }

void Recorder::result(const Result<json::Value>& r) { line(result_entry(r)); }

bool Recorder::flush() {
  write_out();
  if (!buf_.empty()) {
    if (std::fwrite(buf_.data(), 1, buf_.size(), file_) != buf_.size() || std::fflush(file_) != 0)
      failed_ = true;
    buf_.clear();
  }
  return !failed_;
}

}  // namespace atrium::engine
