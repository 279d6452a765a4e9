// See event_loop.hpp for why there are two loops.
#include "net/event_loop.hpp"

#if defined(ATRIUM_WITH_LIBUV)
#include <uv.h>
#endif

namespace atrium::net {

#if defined(ATRIUM_WITH_LIBUV)

struct EventLoop::Impl {
  uv_loop_t loop{};
  void* foreign[1] = {&loop};  // lws reads info.foreign_loops[0]
  bool open = false;
};

EventLoop::EventLoop(bool libuv) : impl_(std::make_unique<Impl>()) {
  impl_->open = libuv && uv_loop_init(&impl_->loop) == 0;
}

bool EventLoop::libuv_available() noexcept { return true; }

EventLoop::~EventLoop() {
  if (!impl_->open) return;
  drain();
  // UV_EBUSY: a handle lws left open. Closing the loop anyway would free memory it uses.
  (void)uv_loop_close(&impl_->loop);
}

void EventLoop::configure(lws_context_creation_info& info) {
  if (!impl_->open) return;  // uv could not start: lws' own loop it is
  // No spinning on SIGSEGV/SIGFPE: a crash must end the process (and its tests).
  info.options |= LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
  info.foreign_loops = impl_->foreign;
}

bool EventLoop::run_once(lws_context* context) {
  if (!impl_->open) return lws_service(context, 0) >= 0;
  // One iteration: blocks until an fd, a timer or lws_cancel_service()'s async handle is
  // ready, runs their callbacks, and returns so the server can end its pass.
  uv_run(&impl_->loop, UV_RUN_ONCE);
  return true;
}

void EventLoop::finish(lws_context* context) noexcept {
  if (!impl_->open) return;
  drain();
  lws_context_destroy(context);
  drain();
}

// lws closes its handles with uv_close(): their callbacks run in later iterations.
// Bounded, in case a handle never closes.
void EventLoop::drain() noexcept {
  for (int i = 0; i < 1000 && uv_run(&impl_->loop, UV_RUN_NOWAIT) != 0; ++i) {
  }
}

const char* EventLoop::name() const noexcept { return impl_->open ? "libuv" : "poll"; }
long EventLoop::wake_margin_us() const noexcept { return impl_->open ? 1000 : 100; }
bool EventLoop::needs_own_close_frame() const noexcept { return impl_->open; }

#else  // lws' own poll() loop

struct EventLoop::Impl {};

EventLoop::EventLoop(bool) : impl_(std::make_unique<Impl>()) {}
bool EventLoop::libuv_available() noexcept { return false; }
EventLoop::~EventLoop() = default;
void EventLoop::configure(lws_context_creation_info&) {}
bool EventLoop::run_once(lws_context* context) { return lws_service(context, 0) >= 0; }
void EventLoop::finish(lws_context*) noexcept {}
void EventLoop::drain() noexcept {}
const char* EventLoop::name() const noexcept { return "poll"; }
long EventLoop::wake_margin_us() const noexcept { return 100; }
bool EventLoop::needs_own_close_frame() const noexcept { return false; }

#endif

}  // namespace atrium::net
