// What every net/ file shares: the state behind one Server, reached from any lws callback
// through lws_context_user(). Internal to net/.
#pragma once

#include <libwebsockets.h>
#include <poll.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/admission.hpp"
#include "net/event_loop.hpp"
#include "net/http_api.hpp"
#include "net/permessage_deflate.hpp"
#include "net/server.hpp"
#include "net/static_files.hpp"
#include "net/stats.hpp"
#include "net/tls.hpp"
#include "net/ws_frame.hpp"
#include "util/shared_frame.hpp"
#include "watch/rooms_watcher.hpp"

namespace atrium::net {

// Engine frames carry their headroom so lws can put the frame header in front in place.
static_assert(LWS_PRE <= kFrameHeadroom, "SharedFrame headroom must fit LWS_PRE");
// ws_session.cpp writes frame headers itself into that headroom and the scratch's LWS_PRE.
static_assert(kMaxTextHeader <= kFrameHeadroom && kMaxTextHeader <= LWS_PRE,
              "a text frame header must fit the headroom");

inline constexpr std::size_t kMaxWriteBytes = 256 * 1024;   // one coalesced WebSocket message
inline constexpr std::size_t kMaxHttpBody = 1u << 20;        // POST bodies past it: 413
inline constexpr int kCloseGraceSecs = 5;   // a closing client that never drains is dropped

class WsSession;

class SseSession;

struct Server::State {
  State(engine::Engine& engine_ref, ServerConfig config_in);

  void log(engine::LogLevel level, std::string_view line) const;

  engine::Engine& engine;
  ServerConfig config;
  Stats stats;
  HttpApi api;
  StaticFiles files;                            // --public, at "/"
  StaticFiles web_files;                        // web/: inspector and client, at "/_atrium/"
  Admission admission;                          // who may open a WebSocket (admission.hpp)

  EventLoop loop{config.event_loop == "libuv"};  // before the context: it outlives it
  lws_context* context = nullptr;
  lws_vhost* vhost = nullptr;
  int port = 0;
  lws_retry_bo_t retry{};             // heartbeat policy; lws keeps a pointer to it
  // Wakes the loop for what is due next (server.cpp). Standard layout, so the sul's
  // callback can find the context with lws_container_of.
  struct Wake {
    lws_sorted_usec_list_t sul;
    lws_context* context;
  } wake{};

  // The coalescing window (server.cpp, ws_session.cpp): opened by the first output queued
  // or message read while none is open, it ends coalesce_us later. Till then output waits
  // in flush_queue and the loop reads no more input; at its end everything that came in is
  // read in one turn and everything queued is written right after it.
  // window_end_us: lws_now_usecs() at its end; 0: no window is open.
  std::vector<WsSession*> flush_queue;
  lws_usec_t window_end_us = 0;
  lws_usec_t next_due_us = 0;   // what end_pass() set the wake-up for; 0: nothing is due
  std::uint64_t frames_in_at_window = 0;  // stats.frames_in when the last window ended
  std::vector<int> read_fds;   // sockets read from in this turn (server.cpp check_unread_input)
  std::vector<pollfd> read_polls;  // its scratch
  void open_window() noexcept {
    if (!window_end_us && config.coalesce_us > 0)
      window_end_us = lws_now_usecs() + config.coalesce_us;
  }
  // Something must be served without waiting for the window's end (server.cpp
  // gather_input): a WRITEABLE asked outside the window (a backlog, a close), a message
  // read only in part, or more waiting on a socket read this turn (lws reads at most one
  // receive chunk per socket per turn).
  bool serve_now = false;

  std::uint64_t pass = 1;             // counts loop passes (EventLoop::run_once); never 0

  // Several queued lines are joined here, behind LWS_PRE bytes, for one write. One buffer
  // serves every connection: without permessage-deflate, lws copies whatever the socket
  // did not take before lws_write returns, so the buffer is free again at once.
  std::vector<unsigned char> scratch;

  // permessage-deflate's codecs, one of each for every connection (permessage_deflate.hpp),
  // made when first needed; and the buffer a compressed message is inflated into.
  MessageDeflater& deflater() { return deflater_ ? *deflater_ : *(deflater_ = std::make_unique<MessageDeflater>()); }
  MessageInflater& inflater() { return inflater_ ? *inflater_ : *(inflater_ = std::make_unique<MessageInflater>()); }
  std::unique_ptr<MessageDeflater> deflater_;
  std::unique_ptr<MessageInflater> inflater_;
  std::string inflated;
  std::string deflated;              // a compressed form, before it becomes a SharedFrame
  std::vector<SharedFrame> zips;     // write_mixed's compressed forms, empty between writes

  std::unique_ptr<watch::RoomsWatcher> watcher;  // hot reload (rooms_watch.cpp); may be null

  // The HTTP fallback's open event streams, by the secret their POSTs name (sse_session.hpp),
  // and the buffer their writes are built in.
  std::unordered_map<std::string, SseSession*> streams;
  std::string sse_scratch;
  std::int64_t streams_checked_ms = 0;   // the last keep_alive round (server.cpp)

  std::atomic<bool> stop_requested{false};   // set from a signal handler
  std::atomic<bool> tls_reload_requested{false};  // SIGHUP: end_pass reloads the pair
  TlsCredentials tls_loaded;                 // the pair in use (tls.hpp), when TLS is on
  bool stopping = false;                     // shutdown under way: refuse new sockets
};

// The one lws protocol callback (callback.cpp) and the protocol table that names it.
const lws_protocols* protocol_table();
// The vhost's extension list when permessage-deflate is on (callback.cpp says why there is one).
const lws_extension* deflate_extensions();

}  // namespace atrium::net
