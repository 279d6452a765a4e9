// `atrium serve --pusher-app ...`: the Pusher Channels protocol (src/pusher/) served on the
// server's port as its guest protocol (net/guest_protocol.hpp), built from the settings.
#pragma once

#include <memory>

#include "cli/config.hpp"
#include "engine/engine.hpp"
#include "net/guest_protocol.hpp"
#include "net/server.hpp"
#include "util/result.hpp"

namespace atrium::cli {

// Null when no --pusher-app is set; an error naming the setting at fault when the apps,
// webhooks or limits do not fit together (a webhook or limit for an app never declared,
// two apps with one id or key, an unknown limit).
Result<std::shared_ptr<net::GuestProtocol>> pusher_guest(const ServeOptions& options,
                                                         engine::Engine& engine,
                                                         const net::LogSink& log);

}  // namespace atrium::cli
