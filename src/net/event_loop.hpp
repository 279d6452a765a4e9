// The event loop the server's lws context runs on, and one pass of it.
//
// lws 4.1's own loop calls poll() over every descriptor on every pass, so a pass costs
// O(connections): with 2,000 connections in 10,000 rooms, 80 % of the server's time went to
// poll() (bench/README.md "Many rooms"). Debian's lws ships a libuv event-library plugin
// (epoll): with `--event-loop libuv` the context joins a libuv loop of ours and a pass costs
// what is ready. It is not the default because libuv's handle costs each connection about
// 180 bytes more, which takes an idle joined connection past the 2 KiB budget (same
// README). Since the server writes at the end of the coalescing window without asking for
// WRITEABLE (ws_session.cpp flush_now), epoll no longer pays two epoll_ctl calls per write,
// and the two loops cost the same with 100 busy connections.
// (docs/design.md 4.8)
#pragma once

#include <libwebsockets.h>

#include <memory>

namespace atrium::net {

class EventLoop {
 public:
  // libuv: the epoll loop; false, or a build without libuv: lws' poll() loop.
  explicit EventLoop(bool libuv);
  static bool libuv_available() noexcept;
  ~EventLoop();  // after the lws context is destroyed: lets lws' handles close, then closes
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Sets the options and foreign loop lws needs to run on this loop.
  void configure(lws_context_creation_info& info);
  // Waits for what is ready (or the next lws timer) and serves it. False if the loop failed.
  bool run_once(lws_context* context);
  // After lws_context_destroy(): on libuv, runs the loop until lws' handles have closed
  // (uv closes them asynchronously) and then calls lws_context_destroy() again, which is
  // how lws 4.1 frees a context on a foreign loop (once only, its memory leaked: 330 KB,
  // seen by LeakSanitizer). A no-op for lws' own loop, where the first call frees it all.
  void finish(lws_context* context) noexcept;
  // What a wake-up timer needs added, past a whole number of milliseconds, so that it does
  // not come early and spin: lws rounds its timers down to milliseconds on both loops, and
  // libuv also measures from the time cached at the start of the iteration.
  long wake_margin_us() const noexcept;
  // True where lws does not send the close frame itself after a WRITEABLE callback returns
  // -1 (libuv: it defers it to a POLLOUT that never comes), so the server must.
  bool needs_own_close_frame() const noexcept;
  // "libuv" or "poll", for the start-up log line.
  const char* name() const noexcept;

 private:
  void drain() noexcept;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace atrium::net
