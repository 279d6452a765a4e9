// Watches rooms/ with inotify and says which room scripts changed, debounced per file.
// It watches the directory, not the files: an editor's write-to-temp-then-rename replaces
// the file, and a watch on the file itself would die with it (DELETE_SELF at the first
// rename-save, and nothing from later saves).
// The owner polls fd() for reading (the server adopts it into its event loop), calls
// read_events() when it is readable, and take_due() when ms_until_due() reaches 0.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace atrium::watch {

class RoomsWatcher {
 public:
  // debounce_ms: how long a file must stay quiet before it counts as changed (editors
  // write in bursts).
  explicit RoomsWatcher(std::string dir, int debounce_ms = 60);
  ~RoomsWatcher();
  RoomsWatcher(const RoomsWatcher&) = delete;
  RoomsWatcher& operator=(const RoomsWatcher&) = delete;

  // Starts watching; false (with errno set) when inotify or the directory is unavailable.
  bool start();
  int fd() const noexcept { return fd_; }

  // Drains the inotify queue (non-blocking); returns false when the fd failed.
  bool read_events(std::int64_t now_ms);
  // Milliseconds until the next debounced change is due; -1 when none is pending.
  std::int64_t ms_until_due(std::int64_t now_ms) const;
  // File names (not paths) of *.lua files whose quiet period has passed. On an event
  // queue overflow every *.lua file in the directory is reported.
  std::vector<std::string> take_due(std::int64_t now_ms);

  // True for the names editors use for temporary files (".x.swp", "x~", "4913", ...).
  static bool is_room_script(const std::string& name);

 private:
  std::string dir_;
  int debounce_ms_;
  int fd_ = -1;
  std::map<std::string, std::int64_t> pending_;  // name -> due time
  void rescan(std::int64_t now_ms);
};

}  // namespace atrium::watch
