// Hot reload from the loop: live rooms keep their state and get the new methods
// (docs/rooms.md "Reloading, and server-side calls over HTTP").
#include "net/rooms_watch.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "json/codec.hpp"

namespace atrium::net {

namespace {

std::int64_t now_ms() { return lws_now_usecs() / LWS_US_PER_MS; }

}  // namespace

void start_watching(Server::State& s) {
  if (s.config.watch_dir.empty()) return;
  auto watcher = std::make_unique<watch::RoomsWatcher>(s.config.watch_dir);
  if (!watcher->start()) {
    s.log(engine::LogLevel::warn, "net watch_failed dir=" + s.config.watch_dir +
                                      " error=\"" + std::strerror(errno) + "\"");
    return;
  }
  // lws closes the fds it adopts, and the watcher closes its own: give lws a duplicate.
  lws_sock_file_fd_type fd;
  fd.filefd = ::dup(watcher->fd());
  if (fd.filefd < 0 ||
      !lws_adopt_descriptor_vhost(s.vhost, LWS_ADOPT_RAW_FILE_DESC, fd, protocol_table()[0].name,
                                  nullptr)) {
    if (fd.filefd >= 0) ::close(fd.filefd);
    s.log(engine::LogLevel::warn, "net watch_failed dir=" + s.config.watch_dir +
                                      " error=\"cannot adopt the inotify fd\"");
    return;
  }
  s.watcher = std::move(watcher);
  s.log(engine::LogLevel::debug, "net watching dir=" + s.config.watch_dir);
}

void on_watch_readable(Server::State& s) {
  if (s.watcher && !s.watcher->read_events(now_ms()))
    s.log(engine::LogLevel::warn, "net watch_failed dir=" + s.config.watch_dir +
                                      " error=\"inotify read failed\"");
}

std::int64_t reload_changed_scripts(Server::State& s) {
  if (!s.watcher) return -1;
  const std::int64_t now = now_ms();
  if (s.watcher->ms_until_due(now) == 0) {
    for (const std::string& file : s.watcher->take_due(now)) {
      const json::Value result = s.engine.reload_script(file);
      s.log(engine::LogLevel::debug, "net script_changed file=" + file + " result=" +
                                         json::to_json(result));
    }
  }
  return s.watcher->ms_until_due(now);
}

}  // namespace atrium::net
