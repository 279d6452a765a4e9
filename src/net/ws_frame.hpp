// The header of an unmasked, final WebSocket text or binary frame (RFC 6455 5.2): what a
// server puts before each message it sends (binary: atrium.v1.msgpack's; RSV1 set: a
// message compressed with permessage-deflate, RFC 7692 6). Written here rather than by
// lws_write() so that a frame sent to many connections is framed once, in its
// SharedFrame's headroom (ws_session.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace atrium::net {

// 2, 4 or 10 bytes, by payload length.
constexpr std::size_t text_header_size(std::size_t payload) noexcept {
  return payload < 126 ? 2 : payload < 65536 ? 4 : 10;
}

inline constexpr std::size_t kMaxTextHeader = 10;

// Writes the header into the text_header_size(payload) bytes that end at `payload_start`
// (a binary frame's header has the same size). Returns where the frame now starts.
inline unsigned char* put_header(unsigned char* payload_start, std::size_t payload, bool binary,
                                 bool compressed = false) noexcept {
  const std::size_t n = text_header_size(payload);
  unsigned char* h = payload_start - n;
  h[0] = binary ? 0x82 : 0x81;  // FIN + opcode 2 (binary) or 1 (text)
  if (compressed) h[0] |= 0x40;  // RSV1
  if (n == 2) {
    h[1] = static_cast<unsigned char>(payload);
  } else if (n == 4) {
    h[1] = 126;
    h[2] = static_cast<unsigned char>(payload >> 8);
    h[3] = static_cast<unsigned char>(payload);
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; ++i)
      h[2 + i] = static_cast<unsigned char>(static_cast<std::uint64_t>(payload) >> (56 - 8 * i));
  }
  return h;
}

inline unsigned char* put_text_header(unsigned char* payload_start, std::size_t payload) noexcept {
  return put_header(payload_start, payload, false);
}

}  // namespace atrium::net
