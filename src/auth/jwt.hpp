// JSON Web Tokens as a connection brings them (docs/protocol.md "Connecting: tokens,
// origins, TLS"): compact JWS, verified with OpenSSL against the one key the server was
// given. The algorithm is the key's, never the token's: an HS256 token signed with the
// RSA public key as its secret (the classic confusion) fails like a bad signature.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "json/value.hpp"
#include "util/result.hpp"

namespace atrium::auth {

struct JwtConfig {
  std::string secret;          // HS256; or:
  std::string public_key_pem;  // the PEM text (not a path): RS256 for RSA, ES256 for P-256
  std::string audience;        // "": aud not checked; else aud (string or array) must hold it
  std::string issuer;          // "": iss not checked; else iss must equal it
  int leeway_s = 60;           // for exp and nbf
};

inline constexpr std::size_t kMaxTokenBytes = 8 * 1024;

struct VerifiedToken {
  std::string sub;                 // the connection's userId ("" when the token has no sub)
  json::Value claims;              // the whole payload, an object
  std::int64_t exp_s = 0;          // seconds since the epoch; 0: the token does not expire
};

class JwtVerifier {
 public:
  // Fails (ErrorCode::bad_request, one line) on an unusable key: neither or both of secret
  // and public key, a PEM that does not parse, an EC key not on P-256, an RSA key under
  // 2048 bits.
  static Result<std::unique_ptr<JwtVerifier>> create(JwtConfig config);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // now_s: seconds since the epoch. Errors are ErrorCode::unauthorized with a message
  // that says which check failed, for the log (never for the client).
  Result<VerifiedToken> verify(std::string_view token, std::int64_t now_s) const;

  // "HS256", "RS256" or "ES256".
  std::string_view algorithm() const noexcept;

  struct Key;

 private:
  explicit JwtVerifier(JwtConfig config, std::unique_ptr<Key> key);
  JwtConfig config_;
  std::unique_ptr<Key> key_;
};

}  // namespace atrium::auth
