// HMAC-SHA256 and MD5 through OpenSSL's EVP interfaces (auth/openssl_ptr.hpp owns them).
#include "pusher/signature.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <atomic>

#include "auth/openssl_ptr.hpp"

namespace atrium::pusher {

namespace {

std::atomic<std::uint64_t> g_compares{0};

const unsigned char* bytes(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view secret, std::string_view message) {
  auth::ErrorQueueMark mark;
  auth::MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return {};
  auth::MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t out_len = 0;
  // An empty key is legal HMAC; OpenSSL wants a non-null pointer for it.
  static const unsigned char kNoKey = 0;
  const unsigned char* key = secret.empty() ? &kNoKey : bytes(secret);
  if (!ctx || EVP_MAC_init(ctx.get(), key, secret.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), bytes(message), message.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out, &out_len, sizeof out) != 1) {
    return {};
  }
  return to_hex(out, out_len);
}

std::string md5_hex(std::string_view data) {
  auth::ErrorQueueMark mark;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &out_len, EVP_md5(), nullptr) != 1) return {};
  return to_hex(out, out_len);
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  g_compares.fetch_add(1, std::memory_order_relaxed);
  // The length is not secret (a signature's is fixed); the bytes are.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::uint64_t constant_time_compares() noexcept { return g_compares.load(std::memory_order_relaxed); }

std::string channel_auth(std::string_view key, std::string_view secret, std::string_view socket_id,
                         std::string_view channel, std::string_view channel_data) {
  std::string message;
  message.reserve(socket_id.size() + channel.size() + channel_data.size() + 2);
  message.append(socket_id).append(":").append(channel);
  if (!channel_data.empty()) message.append(":").append(channel_data);
  std::string out(key);
  out += ':';
  out += hmac_sha256_hex(secret, message);
  return out;
}

std::string user_auth(std::string_view key, std::string_view secret, std::string_view socket_id,
                      std::string_view user_data) {
  std::string message(socket_id);
  message.append("::user::").append(user_data);
  std::string out(key);
  out += ':';
  out += hmac_sha256_hex(secret, message);
  return out;
}

}  // namespace atrium::pusher
