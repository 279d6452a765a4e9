// JWT verification (jwt.hpp): compact JWS against the one configured key, with OpenSSL 3's
// libcrypto doing every encoding and every piece of cryptography.
//
// The order of the checks: size, shape, header (alg must be the key's), signature, and only
// then the payload, so an unauthenticated payload is never parsed. Every base64url segment
// must be canonical: a token then has exactly one spelling, and no edit of a valid token
// (a padding character, a different last character that decodes to the same bytes)
// still verifies.
#include "auth/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <utility>
#include <vector>

#include "auth/openssl_ptr.hpp"
#include "json/codec.hpp"

namespace atrium::auth {

namespace {

const unsigned char* bytes(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// ---- errors -------------------------------------------------------------------------

Error refused(std::string message) { return make_error(ErrorCode::unauthorized, std::move(message)); }
Error bad_key(std::string message) { return make_error(ErrorCode::bad_request, std::move(message)); }

// Text from the token for a log line: printable ASCII only and short, so a token cannot
// forge log lines or flood the log.
std::string loggable(std::string_view s) {
  constexpr std::size_t kMax = 32;
  std::string out;
  for (char c : s.substr(0, kMax)) out += c >= 0x20 && c < 0x7f ? c : '?';
  if (s.size() > kMax) out += "...";
  return out;
}

// ---- algorithms ---------------------------------------------------------------------

enum class Alg { hs256, rs256, es256 };

std::string_view name_of(Alg alg) noexcept {
  switch (alg) {
    case Alg::hs256: return "HS256";
    case Alg::rs256: return "RS256";
    case Alg::es256: return "ES256";
  }
  return "";
}

constexpr std::size_t kEs256CoordinateBytes = 32;   // P-256: R and S are 32 bytes each
constexpr std::size_t kHs256Bytes = 32;             // SHA-256

// ---- base64url ----------------------------------------------------------------------

// Unpadded base64url (RFC 7515 §2) -> bytes, or nullopt when `in` is not the one canonical
// encoding of its bytes. OpenSSL decodes; we only map the alphabet and check the result.
std::optional<std::string> decode_base64url(std::string_view in) {
  // A length of 1 mod 4 encodes no whole byte; '=' and '+/' are not base64url. We check
  // the alphabet ourselves because EVP_DecodeBlock skips whitespace at either end.
  if (in.size() % 4 == 1) return std::nullopt;
  std::string standard;
  standard.reserve(in.size() + 3);
  for (char c : in) {
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum) {
      standard += c;
    } else if (c == '-') {
      standard += '+';
    } else if (c == '_') {
      standard += '/';
    } else {
      return std::nullopt;
    }
  }
  const std::size_t padding = (4 - in.size() % 4) % 4;
  standard.append(padding, '=');

  // EVP_DecodeBlock writes 3 bytes per 4 characters, padding included as zero bytes.
  std::string out(standard.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(standard),
                                static_cast<int>(standard.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);

  // Canonical: encoding the bytes again gives back the input. This refuses a last character
  // with its unused low bits set, which would otherwise decode to the same bytes.
  std::string again(standard.size() + 1, '\0');   // EVP_EncodeBlock adds a NUL
  const int m = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(again.data()), bytes(out),
                                static_cast<int>(out.size()));
  if (m < 0 || std::string_view(again.data(), static_cast<std::size_t>(m)) != standard) {
    return std::nullopt;
  }
  return out;
}

// ---- token shape --------------------------------------------------------------------

struct Segments {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;   // header "." payload: what the signature covers
};

// Exactly three dot-separated segments, none empty.
std::optional<Segments> split(std::string_view token) {
  const std::size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const std::size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  Segments s;
  s.header = token.substr(0, first);
  s.payload = token.substr(first + 1, second - first - 1);
  s.signature = token.substr(second + 1);
  s.signing_input = token.substr(0, second);
  if (s.header.empty() || s.payload.empty() || s.signature.empty()) return std::nullopt;
  return s;
}

// A base64url segment holding a JSON object: the header or the payload.
Result<json::Value> decode_object(std::string_view segment, std::string_view what) {
  auto text = decode_base64url(segment);
  if (!text) return refused(std::string(what) + " is not canonical base64url");
  auto value = json::parse(*text);
  if (!value) return refused(std::string(what) + " is not JSON: " + value.error().message);
  if (!value->is_object()) return refused(std::string(what) + " is not a JSON object");
  return std::move(value).value();
}

// ---- header -------------------------------------------------------------------------

// The token's alg must be the key's (never trust the token's choice: that is how "none"
// and the HS256-with-the-RSA-public-key confusion get in), and it may not ask for
// extensions we do not implement (RFC 7515 §4.1.11: crit must then be refused).
Status check_header(const json::Value& header, Alg configured) {
  const json::Value* alg = header.find("alg");
  if (!alg) return refused("header has no alg");
  if (!alg->is_string()) return refused("alg is not a string");
  if (alg->as_string() != name_of(configured)) {
    return refused("alg " + loggable(alg->as_string()) + " is not the configured " +
                   std::string(name_of(configured)));
  }
  if (header.find("crit")) return refused("crit header not supported");
  return {};
}

// ---- signatures ---------------------------------------------------------------------

bool hs256_matches(const EVP_MAC_CTX& keyed, std::string_view input, std::string_view sig) {
  if (sig.size() != kHs256Bytes) return false;
  // The context already holds the key (create): a copy per token is cheaper than keying
  // HMAC again, and leaves the shared one untouched for other threads.
  MacCtxPtr ctx(EVP_MAC_CTX_dup(&keyed));
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t mac_len = 0;
  if (!ctx || EVP_MAC_update(ctx.get(), bytes(input), input.size()) != 1 ||
      EVP_MAC_final(ctx.get(), mac, &mac_len, sizeof mac) != 1 || mac_len != kHs256Bytes) {
    return false;
  }
  // Constant time: a byte-by-byte compare would tell an attacker how much of a forged
  // MAC was right.
  return CRYPTO_memcmp(mac, sig.data(), kHs256Bytes) == 0;
}

// SHA-256 with the key's own scheme: RSASSA-PKCS1-v1_5 for RSA (OpenSSL's default
// padding), ECDSA for EC with `sig` in DER.
bool digest_verifies(EVP_PKEY* key, std::string_view input, const unsigned char* sig,
                     std::size_t sig_len) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  return ctx &&
         EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) == 1 &&
         EVP_DigestVerify(ctx.get(), sig, sig_len, bytes(input), input.size()) == 1;
}

// JWS ES256 signatures are R || S, 32 bytes each (RFC 7518 §3.4); OpenSSL verifies the
// DER ECDSA-Sig-Value. Anything but 64 bytes (a DER signature included) is refused.
std::optional<std::vector<unsigned char>> es256_der(std::string_view raw) {
  if (raw.size() != 2 * kEs256CoordinateBytes) return std::nullopt;
  constexpr int kLen = static_cast<int>(kEs256CoordinateBytes);
  BnPtr r(BN_bin2bn(bytes(raw), kLen, nullptr));
  BnPtr s(BN_bin2bn(bytes(raw) + kLen, kLen, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return std::nullopt;
  (void)r.release();   // sig owns them now
  (void)s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return std::nullopt;
  std::vector<unsigned char> der(static_cast<std::size_t>(len));
  unsigned char* out = der.data();
  if (i2d_ECDSA_SIG(sig.get(), &out) != len) return std::nullopt;
  return der;
}

// ---- claims -------------------------------------------------------------------------

// A NumericDate claim (exp, nbf, iat): absent is fine, anything but a number is not.
Result<std::optional<double>> numeric_date(const json::Value& payload, std::string_view name) {
  const json::Value* v = payload.find(name);
  if (!v) return std::optional<double>();
  if (!v->is_number()) return refused(std::string(name) + " is not a number");
  return std::optional<double>(v->as_number());
}

// Checked in doubles: exp + leeway on int64 could overflow, and a JSON number can be any
// finite double. The epoch seconds of our lifetimes are exact in a double.
Status check_times(const json::Value& payload, std::int64_t now_s, int leeway_s) {
  auto exp = numeric_date(payload, "exp");
  if (!exp) return std::move(exp).error();
  auto nbf = numeric_date(payload, "nbf");
  if (!nbf) return std::move(nbf).error();
  auto iat = numeric_date(payload, "iat");
  if (!iat) return std::move(iat).error();
  const double now = static_cast<double>(now_s);
  if (*exp && now > **exp + leeway_s) return refused("token expired");
  if (*nbf && now + leeway_s < **nbf) return refused("token not valid yet (nbf)");
  return {};
}

// aud is a string or an array of strings (RFC 7519 §4.1.3); ours must be among them.
Status check_audience(const json::Value& payload, const std::string& audience) {
  if (audience.empty()) return {};
  const json::Value* aud = payload.find("aud");
  if (!aud) return refused("aud missing");
  if (aud->is_string() && aud->as_string() == audience) return {};
  if (aud->is_array()) {
    const auto& items = aud->items();
    const bool found = std::any_of(items.begin(), items.end(), [&](const json::Value& item) {
      return item.is_string() && item.as_string() == audience;
    });
    if (found) return {};
  }
  return refused("aud does not match");
}

Status check_issuer(const json::Value& payload, const std::string& issuer) {
  if (issuer.empty()) return {};
  const json::Value* iss = payload.find("iss");
  if (!iss) return refused("iss missing");
  if (!iss->is_string() || iss->as_string() != issuer) return refused("iss does not match");
  return {};
}

// exp as whole seconds, saturated: casting a double outside int64's range is undefined.
std::int64_t whole_seconds(double t) noexcept {
  constexpr double kLimit = 9223372036854775808.0;   // 2^63
  if (t >= kLimit) return INT64_MAX;
  if (t < -kLimit) return INT64_MIN;
  return static_cast<std::int64_t>(t);
}

// ---- keys ---------------------------------------------------------------------------

// A PEM public key never needs a passphrase; without this OpenSSL would prompt on the tty.
int no_passphrase(char*, int, int, void*) { return -1; }

// "-----BEGIN PUBLIC KEY-----" (SubjectPublicKeyInfo), or the key of a
// "-----BEGIN CERTIFICATE-----".
PkeyPtr read_public_key(std::string_view pem) {
  {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return nullptr;
    PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
    if (key) return key;
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
  return PkeyPtr(cert ? X509_get_pubkey(cert.get()) : nullptr);
}

// The algorithm a public key implies, or why it is refused.
Result<Alg> algorithm_of(EVP_PKEY* key) {
  constexpr int kMinRsaBits = 2048;
  if (EVP_PKEY_is_a(key, "RSA")) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < kMinRsaBits) {
      return bad_key("RSA public key has " + std::to_string(bits) + " bits; at least 2048 needed");
    }
    return Alg::rs256;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1 ||
        std::string_view(group, len) != "prime256v1") {
      return bad_key("EC public key is not on P-256 (ES256 needs prime256v1)");
    }
    return Alg::es256;
  }
  return bad_key("public key is neither RSA nor EC P-256");
}

// HMAC-SHA256 keyed once; verify() copies it per token.
MacCtxPtr keyed_hmac(std::string_view secret) {
  MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return nullptr;
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));   // holds its own reference to mac
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  if (!ctx || EVP_MAC_init(ctx.get(), bytes(secret), secret.size(), params) != 1) return nullptr;
  return ctx;
}

}  // namespace

struct JwtVerifier::Key {
  Alg alg = Alg::hs256;
  MacCtxPtr hmac;   // HS256
  PkeyPtr pkey;     // RS256, ES256
};

namespace {

bool signature_valid(const JwtVerifier::Key& key, std::string_view input, std::string_view sig) {
  switch (key.alg) {
    case Alg::hs256: return hs256_matches(*key.hmac, input, sig);
    case Alg::rs256:
      // PKCS#1 v1.5 signatures are exactly the modulus' size.
      return sig.size() == static_cast<std::size_t>(EVP_PKEY_get_size(key.pkey.get())) &&
             digest_verifies(key.pkey.get(), input, bytes(sig), sig.size());
    case Alg::es256: {
      const auto der = es256_der(sig);
      return der && digest_verifies(key.pkey.get(), input, der->data(), der->size());
    }
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::create(JwtConfig config) {
  ErrorQueueMark mark;
  const bool has_secret = !config.secret.empty();
  const bool has_pem = !config.public_key_pem.empty();
  if (has_secret == has_pem) {
    return bad_key(has_secret ? "give a token secret or a public key, not both"
                              : "no token key: give a (non-empty) secret or a public key");
  }
  auto key = std::make_unique<Key>();
  if (has_secret) {
    key->alg = Alg::hs256;
    key->hmac = keyed_hmac(config.secret);
    if (!key->hmac) return bad_key("OpenSSL cannot set up HMAC-SHA256");
  } else {
    constexpr std::size_t kMaxPemBytes = 1 << 20;   // BIO_new_mem_buf takes an int
    if (config.public_key_pem.size() > kMaxPemBytes) return bad_key("public key PEM is too large");
    key->pkey = read_public_key(config.public_key_pem);
    if (!key->pkey) return bad_key("public key is not a PEM PUBLIC KEY or CERTIFICATE");
    auto alg = algorithm_of(key->pkey.get());
    if (!alg) return std::move(alg).error();
    key->alg = alg.value();
  }
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(std::move(config), std::move(key)));
}

JwtVerifier::JwtVerifier(JwtConfig config, std::unique_ptr<Key> key)
    : config_(std::move(config)), key_(std::move(key)) {}
JwtVerifier::~JwtVerifier() = default;

std::string_view JwtVerifier::algorithm() const noexcept { return name_of(key_->alg); }

Result<VerifiedToken> JwtVerifier::verify(std::string_view token, std::int64_t now_s) const {
  // Before any decoding: the work below is linear in the size, and a token is a header.
  if (token.size() > kMaxTokenBytes) return refused("token longer than 8192 bytes");
  const auto segments = split(token);
  if (!segments) return refused("token is not three non-empty dot-separated segments");

  ErrorQueueMark mark;
  auto header = decode_object(segments->header, "header");
  if (!header) return std::move(header).error();
  if (auto ok = check_header(header.value(), key_->alg); !ok) return std::move(ok).error();

  const auto sig = decode_base64url(segments->signature);
  if (!sig) return refused("signature is not canonical base64url");
  if (!signature_valid(*key_, segments->signing_input, *sig)) return refused("bad signature");

  auto payload = decode_object(segments->payload, "payload");
  if (!payload) return std::move(payload).error();
  const json::Value& claims = payload.value();
  if (auto ok = check_times(claims, now_s, config_.leeway_s); !ok) return std::move(ok).error();
  if (auto ok = check_audience(claims, config_.audience); !ok) return std::move(ok).error();
  if (auto ok = check_issuer(claims, config_.issuer); !ok) return std::move(ok).error();
  const json::Value* sub = claims.find("sub");
  if (sub && !sub->is_string()) return refused("sub is not a string");

  VerifiedToken out;
  if (sub) out.sub = sub->as_string();
  if (const json::Value* exp = claims.find("exp")) out.exp_s = whole_seconds(exp->as_number());
  out.claims = std::move(payload).value();
  return out;
}

}  // namespace atrium::auth
