#include "watch/rooms_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace atrium::watch {

RoomsWatcher::RoomsWatcher(std::string dir, int debounce_ms)
    : dir_(std::move(dir)), debounce_ms_(debounce_ms) {}

RoomsWatcher::~RoomsWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

bool RoomsWatcher::start() {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return false;
  // CLOSE_WRITE and MOVED_TO mean a whole file is there; MODIFY would fire per write()
  // and catch a half-written file. DELETE/MOVED_FROM make a type go away (checked again
  // when the quiet period ends, since vim-style saves delete and recreate).
  const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE;
  if (inotify_add_watch(fd_, dir_.c_str(), mask) < 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    errno = err;
    return false;
  }
  return true;
}

bool RoomsWatcher::is_room_script(const std::string& name) {
  if (name.size() < 5 || name.compare(name.size() - 4, 4, ".lua") != 0) return false;
  if (name[0] == '.' || name[0] == '#') return false;  // .x.lua.swp never ends in .lua, but .#x.lua does
  return true;
}

bool RoomsWatcher::read_events(std::int64_t now_ms) {
  alignas(inotify_event) char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (n == 0) return true;
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->mask & IN_Q_OVERFLOW) {
        rescan(now_ms);
        continue;
      }
      if (ev->len == 0 || (ev->mask & IN_ISDIR)) continue;
      const std::string name(ev->name);
      if (!is_room_script(name)) continue;
      if (ev->mask & IN_CREATE) continue;  // wait for the CLOSE_WRITE of the same file
      pending_[name] = now_ms + debounce_ms_;
    }
  }
}

void RoomsWatcher::rescan(std::int64_t now_ms) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_room_script(name)) pending_[name] = now_ms + debounce_ms_;
  }
}

std::int64_t RoomsWatcher::ms_until_due(std::int64_t now_ms) const {
  std::int64_t best = -1;
  for (const auto& [name, due] : pending_) {
    const std::int64_t d = due > now_ms ? due - now_ms : 0;
    if (best < 0 || d < best) best = d;
  }
  return best;
}

std::vector<std::string> RoomsWatcher::take_due(std::int64_t now_ms) {
  std::vector<std::string> out;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second <= now_ms) {
      out.push_back(it->first);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace atrium::watch
