// Settings of `atrium serve`: flags, ATRIUM_* environment variables and a JSON config
// file, merged flag > environment > file > default (README.md "Settings"). Pure: the
// caller hands in the environment and the file reader, so tests need no process state.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.hpp"
#include "util/result.hpp"

namespace atrium::cli {

struct ServeOptions {
  std::string rooms = "rooms";
  int port = 8080;
  std::string host = "127.0.0.1";
  std::string config;                       // the config file read, if any
  std::optional<std::string> public_dir;    // unset: the bundled demo; "": no static files
  std::string admin_token;                  // "": HTTP write routes are open
  std::size_t max_message_bytes = 65536;
  int heartbeat_ms = 25000;
  std::size_t outbox_bytes = 1048576;
  int coalesce_us = 2000;
  bool deflate = true;                      // permessage-deflate (net/permessage_deflate.hpp)
  std::size_t deflate_min_bytes = 256;
  std::string event_loop = "poll";
  int cpu_budget_ms = 200;
  std::size_t room_memory_mb = 64;
  std::size_t memory_mb = 1024;
  int max_rooms_per_connection = 128;
  // Each typed room's patch log, for clients that resume (docs/protocol.md "Seats and resume").
  std::size_t patch_log_count = 256;
  std::size_t patch_log_bytes = 65536;
  int patch_log_ms = 60000;
  // Durable rooms (options.persist): SQLite in DIR/atrium.db, made when first needed.
  std::string data_dir = "atrium-data";
  std::string durability = "process";       // or "power": an fsync per commit
  bool untyped = true;
  std::string record;                       // "": no record (atrium replay)
  bool synctest = false;
  // Who may connect (docs/protocol.md "Connecting: tokens, origins, TLS").
  std::string jwt_secret;                   // HS256
  std::string jwt_public_key;               // a PEM file: RS256 (RSA) or ES256 (P-256)
  std::string jwt_audience;                 // "": aud not checked
  std::string jwt_issuer;                   // "": iss not checked
  bool require_auth = false;                // an upgrade without a valid token: 401
  std::vector<std::string> allowed_origins; // empty: any origin
  bool require_origin = false;              // a request with no Origin: 403
  std::string tls_cert;                     // with tls_key: wss:// and https://
  std::string tls_key;
  int rate = 0;                             // messages/s per connection; 0: no limit
  int max_connections_per_ip = 0;           // 0: no limit
  // The Pusher Channels protocol (docs/pusher.md): "ID:KEY:SECRET" per app; "ID:URL" per
  // webhook; "ID:name=value" per limit. Lists: a flag given again adds to it.
  std::vector<std::string> pusher_apps;
  std::vector<std::string> pusher_webhooks;
  std::vector<std::string> pusher_limits;
  engine::LogLevel log_level = engine::LogLevel::info;
};

// Returns the value of an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// Returns a file's contents, or an error whose message says why it could not be read.
using FileReader = std::function<Result<std::string>(const std::string& path)>;

// args: what follows `serve` on the command line. `--flag value` and `--flag=value` both
// work. An empty environment variable counts as unset. Errors (ErrorCode::bad_request) are
// one line naming the flag, variable or config key at fault.
Result<ServeOptions> parse_serve_options(const std::vector<std::string>& args,
                                         const EnvLookup& env, const FileReader& read_file);

// `atrium serve --help`.
std::string serve_usage();

}  // namespace atrium::cli
