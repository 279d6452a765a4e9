// Hot reload from the loop: the rooms directory's inotify fd adopted into lws, and the
// debounced changes it reports turned into Engine::reload_script() calls. Internal to net/.
#pragma once

#include <cstdint>

#include "net/server_state.hpp"

namespace atrium::net {

// Starts watching ServerConfig::watch_dir (nothing when it is empty). A directory that
// cannot be watched is logged and the server runs without hot reload.
void start_watching(Server::State& server);

// LWS_CALLBACK_RAW_RX_FILE on the adopted fd: reads the queued events.
void on_watch_readable(Server::State& server);

// Reloads the scripts whose quiet period is over; returns the milliseconds until the next
// one is due (-1: none pending).
std::int64_t reload_changed_scripts(Server::State& server);

}  // namespace atrium::net
