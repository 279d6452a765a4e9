// permessage-deflate (RFC 7692) as Atrium speaks it: which offers it takes, and the two
// codecs, one of each per server. No libwebsockets here: callback.cpp negotiates through
// lws, ws_session.cpp frames and unframes.
//
// Every message is compressed on its own, with no context taken over from the one before,
// both ways. That is what lets the server compress a broadcast frame once and send the same
// bytes to every member (uWebSockets' "shared compressor"), and inflate any client's message
// with one shared inflater, so a connection holds no zlib state at all (a context-takeover
// inflater costs over 40 KB per connection). The figures behind the choice are in
// bench/README.md, "permessage-deflate, shared or per connection".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <zlib.h>

namespace atrium::net {

// The Sec-WebSocket-Extensions value of every response that accepts permessage-deflate:
// the server compresses without context takeover, and so must the client.
inline constexpr std::string_view kDeflateAgreed =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

// Whether the server can take the client's `index`-th permessage-deflate offer (counting
// from 0, in the order of the Sec-WebSocket-Extensions value `header`): it exists, its
// parameters are RFC 7692's, each at most once, with valid values, and it lets the server
// use a 32 KB window (no server_max_window_bits under 15). Any other offer is declined and
// the connection goes on uncompressed.
bool deflate_offer_acceptable(std::string_view header, std::size_t index);

// Compresses one message at a time, as RFC 7692 7.2.1 frames it (raw deflate, sync-flushed,
// the final 00 00 ff ff left off), at level 1: the bench's choice (bytes within 0.06 of
// level 6 at a quarter of the CPU).
class MessageDeflater {
 public:
  MessageDeflater();
  ~MessageDeflater();
  MessageDeflater(const MessageDeflater&) = delete;
  MessageDeflater& operator=(const MessageDeflater&) = delete;

  // `in` compressed into `out` (replaced). False only if zlib failed (no memory).
  bool compress(std::string_view in, std::string& out);

 private:
  z_stream z_{};
  bool ready_ = false;
};

// Inflates one message at a time (RFC 7692 7.2.2: the 00 00 ff ff put back), never past a
// cap, so a small message cannot inflate into a large one (a "zip bomb").
class MessageInflater {
 public:
  enum class Result { ok, too_large, corrupt };

  MessageInflater();
  ~MessageInflater();
  MessageInflater(const MessageInflater&) = delete;
  MessageInflater& operator=(const MessageInflater&) = delete;

  // `in` inflated into `out` (replaced); too_large as soon as it would pass `cap` bytes.
  Result inflate(std::string_view in, std::size_t cap, std::string& out);

 private:
  z_stream z_{};
  bool ready_ = false;
};

}  // namespace atrium::net
