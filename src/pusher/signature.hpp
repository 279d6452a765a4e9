// The cryptography of the Pusher protocol (docs/pusher.md "Signatures"): channel and user
// auth strings, the HTTP API's auth_signature and body_md5. OpenSSL's libcrypto computes;
// every comparison of a secret-derived value goes through constant_time_equal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace atrium::pusher {

// Lower-case hex of HMAC-SHA256(secret, message): "" only if OpenSSL fails. Also a webhook's
// X-Pusher-Signature (of the body), computed on the sender thread: it leaves no OpenSSL
// errors queued there.
std::string hmac_sha256_hex(std::string_view secret, std::string_view message);

// Lower-case hex of MD5(bytes) (the HTTP API's body_md5).
std::string md5_hex(std::string_view bytes);

// Equal bytes, in time that depends on the length only (CRYPTO_memcmp): comparing byte by
// byte and stopping at the first difference would tell a forger how much was right.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// How many times constant_time_equal ran in this process (tests check signature checks
// go through it).
std::uint64_t constant_time_compares() noexcept;

// "KEY:hex(HMAC-SHA256(SECRET, socket_id:channel[:channel_data]))": what a channel
// authorization must be. channel_data is appended (with its colon) only when non-empty.
std::string channel_auth(std::string_view key, std::string_view secret, std::string_view socket_id,
                         std::string_view channel, std::string_view channel_data);

// "KEY:hex(HMAC-SHA256(SECRET, socket_id::user::user_data))": pusher:signin's auth.
std::string user_auth(std::string_view key, std::string_view secret, std::string_view socket_id,
                      std::string_view user_data);

}  // namespace atrium::pusher
