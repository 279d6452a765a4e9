// HMAC through EVP_MAC, as auth/jwt.cpp keys its HS256 (the HMAC_CTX calls are deprecated
// in OpenSSL 3).
#include "pusher/webhook_sign.hpp"

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "auth/openssl_ptr.hpp"

namespace atrium::pusher {

std::string hmac_sha256_hex(std::string_view secret, std::string_view data) {
  // Called on the sender thread: whatever fails here must not leave errors queued for
  // the next OpenSSL user on this thread.
  auth::ErrorQueueMark mark;
  auth::MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return {};
  auth::MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  // An empty secret is still a key (of no bytes): OpenSSL reads a null key as "none set".
  static const unsigned char kNoBytes = 0;
  const auto* key = secret.empty() ? &kNoBytes : reinterpret_cast<const unsigned char*>(secret.data());
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t out_len = 0;
  if (!ctx ||
      EVP_MAC_init(ctx.get(), key, secret.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out, &out_len, sizeof out) != 1) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(out_len * 2);
  for (std::size_t i = 0; i < out_len; ++i) {
    hex += kHex[out[i] >> 4];
    hex += kHex[out[i] & 0xf];
  }
  return hex;
}

}  // namespace atrium::pusher
