// The seam between the engine and a transport. The engine knows nothing of sockets:
// the libwebsockets server, the in-process LocalClient and tests each implement this.
#pragma once

#include <string_view>

#include "util/shared_frame.hpp"

namespace atrium::engine {

class ClientSink {
 public:
  virtual ~ClientSink() = default;
  // One JSON object, no trailing newline. Called any number of times in a loop pass;
  // the transport sends everything queued for a client in one write, lines joined
  // with '\n' (docs/protocol.md "Transport": JSON Lines).
  virtual void send(const SharedFrame& line) = 0;
  // Close the connection (1001 going away, 1013 slow reader, ...). The transport calls
  // Engine::disconnect when the connection is really gone.
  virtual void close(int code, std::string_view reason) = 0;
};

}  // namespace atrium::engine
