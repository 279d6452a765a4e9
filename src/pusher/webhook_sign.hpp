// The X-Pusher-Signature of a webhook: HMAC-SHA256 of the body keyed with the app's
// secret, as lowercase hex (what pusher-http-node's Token.sign() computes and
// WebHook.isValid() compares with).
#pragma once

#include <string>
#include <string_view>

namespace atrium::pusher {

// 64 lowercase hex digits; "" only when OpenSSL cannot compute it (no HMAC provider).
std::string hmac_sha256_hex(std::string_view secret, std::string_view data);

}  // namespace atrium::pusher
