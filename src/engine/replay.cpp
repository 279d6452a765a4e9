// A record run again: the header makes the engine (settings, seeds, the rooms directory's
// name), the scripts it read are written to a scratch rooms directory before the input that
// read them, each input gets its recorded clocks, host functions answer what they answered,
// and the output entries after each input are compared with the replay's.
#include "engine/replay.hpp"

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include "engine/engine.hpp"
#include "engine/recorder.hpp"
#include "json/codec.hpp"

namespace atrium::engine {

namespace {

namespace fs = std::filesystem;

enum class Kind { clock, input, script, host, auth, output };

struct Entry {
  Kind kind;
  std::size_t line_no;                      // 1-based
  std::string text;                         // the line as recorded
  json::Value value;                        // parsed (not for "out" entries)
};

Error bad_record(const std::string& path, std::size_t line_no, const std::string& why) {
  return make_error(ErrorCode::bad_request,
                    path + ":" + std::to_string(line_no) + ": " + why);
}

Result<Kind> kind_of(const json::Value& v) {
  if (!v.is_object() || v.members().empty()) return make_error(ErrorCode::bad_request, "not an entry");
  const std::string& key = v.members().front().first;
  if (key == "time") return Kind::clock;
  if (key == "script") return Kind::script;
  if (key == "host") return Kind::host;
  if (key == "auth") return Kind::auth;
  if (key == "closed" || key == "result" || key == "error") return Kind::output;
  static const char* inputs[] = {"connect", "message", "binary", "disconnect", "timers",
                                 "pass",    "reload",  "http",   "shutdown"};
  for (const char* name : inputs)
    if (key == name) return Kind::input;
  return make_error(ErrorCode::bad_request, "unknown entry \"" + key + "\"");
}

std::uint64_t seed_of(const json::Value* v) {
  if (!v || !v->is_string()) return 0;
  return std::strtoull(v->as_string().c_str(), nullptr, 10);
}

double number_of(const json::Value& v, std::string_view key, double fallback) {
  const json::Value* n = v.find(key);
  return n && n->is_number() ? n->as_number() : fallback;
}

std::string string_of(const json::Value& v, std::string_view key) {
  const std::string* s = v.get_string(key);
  return s ? *s : std::string();
}

// "text" as recorded, or "bytes" where it was not UTF-8.
std::string text_of(const json::Value& v) {
  if (const std::string* s = v.get_string("text")) return *s;
  std::string out;
  if (const json::Value* bytes = v.get_array("bytes"))
    for (const json::Value& b : bytes->items()) out.push_back(static_cast<char>(b.as_number()));
  return out;
}

ClientId client_id_of(std::string_view wire) {
  ClientId id = 0;
  for (char c : wire.substr(wire.empty() ? 0 : 1)) id = id * 10 + static_cast<ClientId>(c - '0');
  return id;
}

// An input's output entries as the recorder writes them: one frame sent to several
// clients in a row is one entry.
class Outputs {
 public:
  void out(const std::string& client, const SharedFrame& line) {
    if (line_.data() != line.data()) {
      end_out();
      line_ = line;
    }
    clients_.push_back(client);
  }
  void other(std::string entry) {
    end_out();
    entries_.push_back(std::move(entry));
  }
  std::vector<std::string>& take() {
    end_out();
    return entries_;
  }
  void clear() {
    end_out();
    entries_.clear();
  }

 private:
  void end_out() {
    if (clients_.empty()) return;
    std::string entry;
    append_out_entry(entry, clients_, line_.view());
    entries_.push_back(std::move(entry));
    clients_.clear();
    line_ = SharedFrame();
  }
  std::vector<std::string> entries_;
  SharedFrame line_;
  std::vector<std::string> clients_;
};

// A replayed client: what the engine sends it becomes an output entry of the input.
class ReplaySink : public ClientSink {
 public:
  ReplaySink(std::string wire_id, Outputs& outputs) : wire_id_(std::move(wire_id)), outputs_(outputs) {}
  void send(const SharedFrame& line) override { outputs_.out(wire_id_, line); }
  void close(int code, std::string_view) override {
    outputs_.other(json::to_json(closed_entry(wire_id_, code)));
  }

 private:
  std::string wire_id_;
  Outputs& outputs_;
};

class Replayer {
 public:
  Replayer(std::string path, const ReplayOptions& options) : path_(std::move(path)), options_(options) {}
  ~Replayer() {
    std::error_code ec;
    if (!scratch_.empty()) fs::remove_all(scratch_, ec);
  }

  Result<ReplayReport> run();

 private:
  Status read();
  Status make_engine();
  void apply_script(const json::Value& v);
  void run_input(const Entry& in);
  Result<std::string> host_answer(const std::string& name, std::string_view args);
  bool compare(const Entry& in, const std::vector<const Entry*>& expected);

  std::string path_;
  const ReplayOptions& options_;
  json::Value header_;
  std::vector<Entry> entries_;
  std::string truncated_note_;
  fs::path scratch_;
  fs::path rooms_;
  std::unique_ptr<Engine> engine_;
  std::map<ClientId, std::unique_ptr<ReplaySink>> sinks_;
  std::deque<const Entry*> hosts_;
  std::deque<const Entry*> auths_;         // in-band token checks, answered from the record
  Result<Identity> auth_answer();
  Outputs outputs_;                        // the current input's
  std::ofstream out_;
  ReplayReport report_;
};

Status Replayer::read() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return make_error(ErrorCode::not_found, "cannot read the record " + path_);
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const bool last = in.peek() == std::char_traits<char>::eof();
    if (line_no == 1) {
      auto h = json::parse(line);
      if (!h || !h.value().is_object() || !h.value().find("atrium_record"))
        return bad_record(path_, 1, "not an Atrium record (no atrium_record header)");
      header_ = std::move(h).value();
      if (number_of(header_, "atrium_record", 0) != kRecordFormat)
        return bad_record(path_, 1, "record format " + json::to_json(*header_.find("atrium_record")) +
                                        " is not the format this engine reads (" +
                                        std::to_string(kRecordFormat) + ")");
      continue;
    }
    if (line.rfind("{\"out\":", 0) == 0) {
      if (last && line.back() != '}') {
        truncated_note_ = "the record ends in the middle of line " + std::to_string(line_no);
        break;
      }
      entries_.push_back(Entry{Kind::output, line_no, std::move(line), {}});
      continue;
    }
    auto v = json::parse(line);
    if (!v) {
      // A server killed mid-write leaves half a line at the end; anywhere else it is damage.
      if (last) {
        truncated_note_ = "the record ends in the middle of line " + std::to_string(line_no);
        break;
      }
      return bad_record(path_, line_no, v.error().message);
    }
    auto kind = kind_of(v.value());
    if (!kind) return bad_record(path_, line_no, kind.error().message);
    entries_.push_back(Entry{kind.value(), line_no, std::move(line), std::move(v).value()});
  }
  if (line_no == 0) return bad_record(path_, 1, "the record is empty");
  return {};
}

Status Replayer::make_engine() {
  char tmpl[] = "/tmp/atrium-replay-XXXXXX";
  if (!mkdtemp(tmpl)) return make_error(ErrorCode::internal, "cannot make a scratch directory in /tmp");
  scratch_ = tmpl;
  std::string dir_name = string_of(header_, "rooms_dir");
  if (dir_name.empty() || dir_name.find('/') != std::string::npos || dir_name == "." || dir_name == "..")
    dir_name = "rooms";
  rooms_ = scratch_ / dir_name;
  std::error_code ec;
  fs::create_directories(rooms_, ec);
  if (ec) return make_error(ErrorCode::internal, "cannot make " + rooms_.string() + ": " + ec.message());

  EngineConfig c;
  c.rooms_dir = rooms_.string();
  c.lua_dir = options_.lua_dir;
  c.host_clock = true;
  if (const json::Value* seed = header_.find("seed"); seed && seed->is_string()) c.seed = seed_of(seed);
  c.random_seed = seed_of(header_.find("random_seed"));
  if (const json::Value* s = header_.get_object("settings")) {
    c.server_name = string_of(*s, "server_name");
    c.admin_token = string_of(*s, "admin_token");
    c.heartbeat_ms = static_cast<int>(number_of(*s, "heartbeat_ms", c.heartbeat_ms));
    c.cpu_budget_ms = static_cast<int>(number_of(*s, "cpu_budget_ms", c.cpu_budget_ms));
    c.room_memory_bytes = static_cast<std::size_t>(number_of(*s, "room_memory_bytes", c.room_memory_bytes));
    c.memory_bytes = static_cast<std::size_t>(number_of(*s, "memory_bytes", c.memory_bytes));
    c.max_rooms_per_connection =
        static_cast<int>(number_of(*s, "max_rooms_per_connection", c.max_rooms_per_connection));
    if (const json::Value* u = s->find("untyped_rooms"); u && u->is_bool()) c.untyped_rooms = u->as_bool();
    c.rate = static_cast<int>(number_of(*s, "rate", c.rate));
  }
  // A token sent in band is answered as it was: the key that checked it is not here.
  for (const Entry& e : entries_)
    if (e.kind == Kind::auth) auths_.push_back(&e);
  c.verify_token = [this](std::string_view) { return auth_answer(); };
  c.log_level = LogLevel::debug;
  c.on_log = [this](LogLevel, std::string_view line) {
    if (options_.on_log) options_.on_log(line);
  };
  engine_ = std::make_unique<Engine>(std::move(c));

  // Every host function the record saw answers from it, in order.
  std::map<std::string, bool> names;
  for (const Entry& e : entries_) {
    if (e.kind != Kind::host) continue;
    hosts_.push_back(&e);
    names[string_of(e.value, "host")] = true;
  }
  for (const auto& [name, _] : names) {
    engine_->register_host_function(name, [this, name = name](std::string_view args) {
      return host_answer(name, args);
    });
  }
  return {};
}

Result<std::string> Replayer::host_answer(const std::string& name, std::string_view args) {
  if (hosts_.empty() || string_of(hosts_.front()->value, "host") != name ||
      string_of(hosts_.front()->value, "args") != args) {
    if (report_.note.empty())
      report_.note = "atrium.host." + name + "(" + std::string(args) + ") was not called here in the record" +
                     (hosts_.empty() ? std::string() : " (it has " + hosts_.front()->text + ")");
    return make_error(ErrorCode::internal, "replay: the record has no such host call here");
  }
  const json::Value& v = hosts_.front()->value;
  hosts_.pop_front();
  if (const std::string* r = v.get_string("result")) return *r;
  return make_error(ErrorCode::script_error, string_of(v, "error"));
}

Result<Identity> Replayer::auth_answer() {
  if (auths_.empty()) {
    if (report_.note.empty()) report_.note = "an auth op checked a token here; the record has no such check";
    return make_error(ErrorCode::unauthorized, "replay: the record has no token check here");
  }
  const json::Value& v = auths_.front()->value;
  auths_.pop_front();
  if (const json::Value* ok = v.find("auth"); !ok || !ok->is_bool() || !ok->as_bool())
    return make_error(ErrorCode::unauthorized, string_of(v, "error"));
  Identity id;
  id.user_id = string_of(v, "user");
  if (const json::Value* claims = v.find("claims")) id.claims = *claims;
  id.expires_at_s = static_cast<std::int64_t>(number_of(v, "expires", 0));
  return id;
}

void Replayer::apply_script(const json::Value& v) {
  const fs::path file = rooms_ / fs::path(string_of(v, "script")).filename();
  std::error_code ec;
  if (const json::Value* gone = v.find("gone"); gone && gone->is_bool() && gone->as_bool()) {
    fs::remove(file, ec);
    return;
  }
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text_of(v);
}

void Replayer::run_input(const Entry& in) {
  const json::Value& v = in.value;
  const std::string& key = v.members().front().first;
  Engine& e = *engine_;
  if (key == "connect") {
    const std::string wire = string_of(v, "connect");
    auto sink = std::make_unique<ReplaySink>(wire, outputs_);
    Identity identity;
    identity.user_id = string_of(v, "user");
    if (const json::Value* claims = v.find("claims")) identity.claims = *claims;
    if (const json::Value* user = v.find("ctx_user")) identity.user = *user;
    if (const json::Value* pusher = v.find("pusher")) identity.pusher = *pusher;
    identity.expires_at_s = static_cast<std::int64_t>(number_of(v, "expires", 0));
    std::vector<JoinOnConnect> joins;
    if (const json::Value* list = v.find("joins"); list && list->is_array()) {
      for (const json::Value& j : list->items()) {
        JoinOnConnect one;
        one.room = string_of(j, "room");
        if (const json::Value* p = j.find("payload")) one.payload = *p;
        joins.push_back(std::move(one));
      }
    }
    const ClientId id = e.connect(*sink, std::move(identity), std::move(joins));
    if ("c" + std::to_string(id) != wire && report_.note.empty())
      report_.note = "the engine numbered this client c" + std::to_string(id);
    sinks_[id] = std::move(sink);
  } else if (key == "message") {
    e.receive(client_id_of(string_of(v, "message")), text_of(v));
  } else if (key == "binary") {
    e.receive_binary(client_id_of(string_of(v, "binary")));
  } else if (key == "disconnect") {
    const json::Value* clean = v.find("clean");
    e.disconnect(client_id_of(string_of(v, "disconnect")), clean && clean->is_bool() && clean->as_bool());
  } else if (key == "timers") {
    e.run_due();
  } else if (key == "pass") {
    e.end_of_pass();
  } else if (key == "reload") {
    const json::Value* file = v.find("reload");
    if (file && file->is_string()) {
      e.reload_script(file->as_string());
    } else {
      e.reload();
    }
  } else if (key == "shutdown") {
    e.shutdown();
  } else if (key == "http") {
    const std::string op = string_of(v, "http");
    const std::string room = string_of(v, "room");
    const json::Value* body = v.find(op == "emit" ? "data" : op == "call" ? "args" : "payload");
    const json::Value none;
    Result<json::Value> r = make_error(ErrorCode::bad_request, "replay: unknown HTTP call " + op);
    if (op == "emit") r = e.emit(room, string_of(v, "event"), body ? *body : none, string_of(v, "except"));
    else if (op == "call") r = e.call(room, string_of(v, "method"), body ? *body : none);
    else if (op == "place") r = e.place(room, string_of(v, "client"), body ? *body : none);
    else if (op == "kick") r = e.kick(room, string_of(v, "client"), string_of(v, "message"));
    else if (op == "close") r = e.close(room);
    outputs_.other(json::to_json(result_entry(r)));
  }
}

// The replay's outputs of `in` against the record's; the first difference goes to the report.
bool Replayer::compare(const Entry& in, const std::vector<const Entry*>& expected) {
  const std::vector<std::string>& outputs = outputs_.take();
  const std::size_t n = std::max(expected.size(), outputs.size());
  for (std::size_t k = 0; k < n; ++k) {
    const std::string want = k < expected.size() ? expected[k]->text : std::string();
    const std::string got = k < outputs.size() ? outputs[k] : std::string();
    if (want == got) continue;
    report_.identical = false;
    report_.input_number = report_.inputs;
    report_.record_line = in.line_no;
    report_.input = in.text;
    report_.expected = want;
    report_.got = got;
    return false;
  }
  if (!report_.note.empty()) {
    report_.identical = false;
    report_.input_number = report_.inputs;
    report_.record_line = in.line_no;
    report_.input = in.text;
    return false;
  }
  return true;
}

Result<ReplayReport> Replayer::run() {
  const auto t0 = std::chrono::steady_clock::now();
  if (Status s = read(); !s) return s.error();
  report_.engine_version = string_of(header_, "engine");
  if (!options_.out_path.empty()) {
    out_.open(options_.out_path, std::ios::binary | std::ios::trunc);
    if (!out_) return make_error(ErrorCode::internal, "cannot write " + options_.out_path);
  }
  if (Status s = make_engine(); !s) return s.error();

  // What start() read, and its clocks: everything before the first input.
  std::size_t i = 0;
  for (; i < entries_.size() && entries_[i].kind != Kind::input; ++i) {
    const Entry& e = entries_[i];
    if (e.kind == Kind::clock) {
      engine_->set_clocks(static_cast<std::int64_t>(number_of(e.value, "time", 0)),
                          static_cast<std::int64_t>(number_of(e.value, "wall", 0)));
    } else if (e.kind == Kind::script) {
      apply_script(e.value);
    }
  }
  if (Status s = engine_->start(); !s) return s.error();

  std::vector<const Entry*> expected;
  std::vector<const Entry*> clocks;
  while (i < entries_.size()) {
    const Entry& in = entries_[i];
    expected.clear();
    clocks.clear();
    std::size_t j = i + 1;
    for (; j < entries_.size() && entries_[j].kind != Kind::input; ++j) {
      const Entry& e = entries_[j];
      if (e.kind == Kind::script) apply_script(e.value);   // read while the input runs
      if (e.kind == Kind::output) expected.push_back(&e);
      if (e.kind == Kind::clock) clocks.push_back(&e);     // the next input's
    }
    outputs_.clear();
    ++report_.inputs;
    run_input(in);
    for (const std::string& o : outputs_.take()) {
      ++report_.outputs;
      out_ << o << '\n';
    }
    if (!compare(in, expected) && options_.verify) break;
    for (const Entry* c : clocks)
      engine_->set_clocks(static_cast<std::int64_t>(number_of(c->value, "time", 0)),
                          static_cast<std::int64_t>(number_of(c->value, "wall", 0)));
    i = j;
  }
  if (report_.identical && !truncated_note_.empty()) report_.note = truncated_note_;
  engine_.reset();
  report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report_;
}

}  // namespace

Result<ReplayReport> replay(const std::string& record_path, const ReplayOptions& options) {
  Replayer r(record_path, options);
  return r.run();
}

std::string describe(const ReplayReport& r) {
  std::ostringstream s;
  if (r.identical) {
    s << "identical: " << r.inputs << " inputs, " << r.outputs << " output entries, in "
      << r.seconds << " s";
    if (r.seconds > 0) s << " (" << static_cast<long long>(r.inputs / r.seconds) << " inputs/s)";
    s << "\n";
    if (!r.note.empty()) s << "note: " << r.note << "\n";
    if (r.engine_version != ATRIUM_VERSION)
      s << "note: recorded by atrium " << r.engine_version << ", replayed by " << ATRIUM_VERSION << "\n";
    return s.str();
  }
  s << "diverged at input " << r.input_number << " (record line " << r.record_line << "):\n"
    << "  input:    " << r.input << "\n";
  if (!r.note.empty()) s << "  why:      " << r.note << "\n";
  if (!r.expected.empty() || !r.got.empty()) {
    s << "  recorded: " << (r.expected.empty() ? "(nothing more)" : r.expected) << "\n"
      << "  replayed: " << (r.got.empty() ? "(nothing more)" : r.got) << "\n";
  }
  if (r.engine_version != ATRIUM_VERSION)
    s << "note: recorded by atrium " << r.engine_version << ", replayed by " << ATRIUM_VERSION << "\n";
  return s.str();
}

}  // namespace atrium::engine
