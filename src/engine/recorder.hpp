// A record of everything that came into an engine and everything it sent, for
// `atrium replay` (docs/embedding.md "Record and replay"). One JSON object per line:
// the header (engine version, settings, seeds), then entries in the order they happened.
// Inputs are what the engine cannot recompute: a clock reading, a connect, a message, a
// disconnect, a pass with timers due, an HTTP call, a reload, the text of every script it
// read, every host function's result. Outputs are every line a client got, raw.
#pragma once

#include <climits>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.hpp"
#include "json/value.hpp"
#include "util/shared_frame.hpp"
#include "util/result.hpp"

namespace atrium::engine {

struct EngineConfig;

// The record format's version: `atrium replay` refuses other versions by name.
inline constexpr int kRecordFormat = 1;

// The output entries, as the recorder writes them and as a replay compares them. One line
// sent to several clients in a row (a patch to every member) is one entry, with the list:
// {"out":["c1","c2"],"line":...}.
void append_out_entry(std::string& buf, const std::vector<std::string>& clients,
                      std::string_view line);
json::Value closed_entry(std::string_view client, int code);
json::Value result_entry(const Result<json::Value>& r);

class Recorder {
 public:
  // Opens `path` for writing (truncated) and writes the header line.
  // `rooms_dir` is the directory's own name (what clients are shown of it).
  static Result<std::unique_ptr<Recorder>> open(const std::string& path, const EngineConfig& config,
                                                std::string_view rooms_dir,
                                                std::uint64_t random_seed);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // The engine's clocks as its next input sees them; written before that input's entry,
  // when they changed.
  void clock(std::int64_t now_ms, std::int64_t wall_ms);
  // The pending clocks now (start() loads scripts at them).
  void write_clock();
  void connect(std::string_view client, const Identity& identity, const std::vector<JoinOnConnect>& joins);
  // An in-band `auth` op's verification: replay answers it from here.
  void auth(const Result<Identity>& verified);
  void message(std::string_view client, std::string_view text);
  void binary(std::string_view client);
  void disconnect(std::string_view client, bool clean);
  void timers();                                  // run_due with something due
  void pass();                                    // end_of_pass with deferred work
  void reload(const std::string* file);           // nullptr: every script
  void http(json::Value call);                    // {"http": op, ...the call's fields}
  void shutdown();

  // What an input read or got, written after it (replay reads these back in order).
  void script(std::string_view file, std::string_view source);
  void script_gone(std::string_view file);
  void host(std::string_view name, std::string_view args, const Result<std::string>& result);

  // Outputs.
  void out(std::string_view client, const SharedFrame& line);
  void closed(std::string_view client, int code);
  void result(const Result<json::Value>& r);

  // Everything so far reaches the file (once per pass: a killed server loses one pass).
  // False once any write failed (a full disk): the record is then incomplete.
  bool flush();

 private:
  explicit Recorder(std::FILE* f) : file_(f) {}
  void line(const json::Value& v);
  void write_out();
  void input(const json::Value& v);
  void text_field(json::Value& entry, std::string_view text);

  std::FILE* file_;
  std::string buf_;
  std::int64_t now_ms_ = INT64_MIN;        // the clocks last written
  std::int64_t wall_ms_ = INT64_MIN;
  std::int64_t pending_now_ms_ = 0;        // the clocks the next input runs at
  std::int64_t pending_wall_ms_ = 0;
  bool failed_ = false;
  SharedFrame out_line_;                   // the output entry being gathered
  std::vector<std::string> out_clients_;
};

}  // namespace atrium::engine
