// auth/jwt.hpp: tokens signed here with keys generated here (OpenSSL), then every refusal
// of the contract one by one, and random single-byte edits of valid tokens.
#include <doctest/doctest.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "auth/openssl_ptr.hpp"
#include "json/codec.hpp"

using atrium::ErrorCode;
using atrium::auth::JwtConfig;
using atrium::auth::JwtVerifier;
using atrium::auth::kMaxTokenBytes;

namespace {

using atrium::auth::BioPtr;
using atrium::auth::EcdsaSigPtr;
using atrium::auth::MdCtxPtr;
using atrium::auth::PkeyPtr;
using atrium::auth::X509Ptr;

constexpr std::int64_t kNow = 1'700'000'000;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Unpadded base64url, through OpenSSL's base64.
std::string b64url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(in),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

// ---- keys and signers ---------------------------------------------------------------

PkeyPtr rsa_key(std::size_t bits) { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits)); }
PkeyPtr ec_key(const char* curve) { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)); }

std::string public_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PUBKEY(bio.get(), key) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// A self-signed certificate for the key, as PEM.
std::string certificate_pem(EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  REQUIRE(cert);
  REQUIRE(X509_set_version(cert.get(), 2) == 1);
  REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) == 1);
  REQUIRE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0));
  REQUIRE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600));
  X509_NAME* name = X509_get_subject_name(cert.get());
  REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>("atrium test"), -1, -1, 0) == 1);
  REQUIRE(X509_set_issuer_name(cert.get(), name) == 1);
  REQUIRE(X509_set_pubkey(cert.get(), key) == 1);
  REQUIRE(X509_sign(cert.get(), key, EVP_sha256()) > 0);
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_X509(bio.get(), cert.get()) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// Generated once: a 2048-bit RSA key takes a while, more under ASan.
struct Keys {
  PkeyPtr rsa = rsa_key(2048);
  PkeyPtr ec = ec_key("P-256");
  std::string rsa_pem = public_pem(rsa.get());
  std::string ec_pem = public_pem(ec.get());
};
const Keys& keys() {
  static const Keys k;
  return k;
}

std::string hmac_sha256(std::string_view secret, std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                    bytes(input), input.size(), mac, sizeof mac, &len) != nullptr);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// OpenSSL's signature: PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value for EC.
std::string digest_sign(EVP_PKEY* key, std::string_view input) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) == 1);
  std::size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, bytes(input), input.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                         bytes(input), input.size()) == 1);
  sig.resize(len);
  return sig;
}

// DER -> the JWS form R || S, 32 bytes each.
std::string der_to_raw(std::string_view der) {
  const unsigned char* p = bytes(der);
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(sig);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, 32) == 32);
  REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + 32, 32) == 32);
  return raw;
}

enum class Signer { hs256, rs256, es256, es256_der };

constexpr const char* kSecret = "a test secret that is long enough for HS256";

std::string sign(Signer signer, std::string_view input) {
  switch (signer) {
    case Signer::hs256: return hmac_sha256(kSecret, input);
    case Signer::rs256: return digest_sign(keys().rsa.get(), input);
    case Signer::es256: return der_to_raw(digest_sign(keys().ec.get(), input));
    case Signer::es256_der: return digest_sign(keys().ec.get(), input);
  }
  return "";
}

// header.payload.signature from JSON texts (not necessarily valid JSON).
std::string token_of(std::string_view header_json, std::string_view payload_json, Signer signer) {
  const std::string input = b64url(header_json) + "." + b64url(payload_json);
  return input + "." + b64url(sign(signer, input));
}

const char* alg_of(Signer signer) {
  return signer == Signer::hs256 ? "HS256" : signer == Signer::rs256 ? "RS256" : "ES256";
}

std::string header_for(Signer signer) {
  return std::string(R"({"alg":")") + alg_of(signer) + R"(","typ":"JWT"})";
}

constexpr const char* kPayload = R"({"sub":"alice","exp":1700000600,"name":"Alice"})";

std::string good_token(Signer signer, std::string_view payload = kPayload) {
  return token_of(header_for(signer), payload, signer);
}

JwtConfig config_for(Signer signer) {
  JwtConfig c;
  if (signer == Signer::hs256) c.secret = kSecret;
  if (signer == Signer::rs256) c.public_key_pem = keys().rsa_pem;
  if (signer == Signer::es256 || signer == Signer::es256_der) c.public_key_pem = keys().ec_pem;
  return c;
}

std::unique_ptr<JwtVerifier> verifier(const JwtConfig& config) {
  auto v = JwtVerifier::create(config);
  REQUIRE_MESSAGE(v.ok(), (v.ok() ? "" : v.error().message));
  return std::move(v).value();
}
std::unique_ptr<JwtVerifier> verifier(Signer signer) { return verifier(config_for(signer)); }

// The message of a refusal; "(verified)" when the token passed, "(code ...)" when the
// error is not unauthorized.
std::string refusal(const JwtVerifier& v, std::string_view token, std::int64_t now = kNow) {
  auto r = v.verify(token, now);
  if (r.ok()) return "(verified)";
  if (r.error().code != ErrorCode::unauthorized) return "(code " + std::string(r.error().wire_code()) + ")";
  return r.error().message;
}

std::string create_error(const JwtConfig& config) {
  auto r = JwtVerifier::create(config);
  if (r.ok()) return "(created)";
  if (r.error().code != ErrorCode::bad_request) return "(code " + std::string(r.error().wire_code()) + ")";
  return r.error().message;
}

// The token with its signature segment replaced.
std::string with_signature(std::string_view token, std::string_view signature_b64) {
  return std::string(token.substr(0, token.rfind('.') + 1)) + std::string(signature_b64);
}

}  // namespace

TEST_CASE("valid HS256, RS256 and ES256 tokens verify with sub, claims and exp") {
  for (Signer signer : {Signer::hs256, Signer::rs256, Signer::es256}) {
    const std::string alg = alg_of(signer);
    CAPTURE(alg);
    auto v = verifier(signer);
    CHECK(v->algorithm() == alg_of(signer));
    auto r = v->verify(good_token(signer), kNow);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    CHECK(r->sub == "alice");
    CHECK(r->exp_s == 1700000600);
    REQUIRE(r->claims.is_object());
    CHECK(*r->claims.get_string("name") == "Alice");
    CHECK(atrium::json::to_json(r->claims) == kPayload);
  }
}

TEST_CASE("a token without sub or exp verifies with sub \"\" and exp_s 0") {
  auto v = verifier(Signer::hs256);
  auto r = v->verify(good_token(Signer::hs256, R"({"room":"lobby"})"), kNow);
  REQUIRE(r.ok());
  CHECK(r->sub.empty());
  CHECK(r->exp_s == 0);
  CHECK(*r->claims.get_string("room") == "lobby");
}

TEST_CASE("exp is truncated to whole seconds, and saturates far in the future") {
  auto v = verifier(Signer::hs256);
  auto r = v->verify(good_token(Signer::hs256, R"({"exp":1700000600.9})"), kNow);
  REQUIRE(r.ok());
  CHECK(r->exp_s == 1700000600);
  auto far = v->verify(good_token(Signer::hs256, R"({"exp":1e300})"), kNow);
  REQUIRE(far.ok());
  CHECK(far->exp_s == INT64_MAX);
}

TEST_CASE("a signature that does not match is refused") {
  auto hs = verifier(Signer::hs256);
  const std::string other_secret = token_of(header_for(Signer::hs256), kPayload, Signer::hs256);
  JwtConfig c = config_for(Signer::hs256);
  c.secret = "another secret";
  CHECK(refusal(*verifier(c), other_secret) == "bad signature");

  // A signature of the same alg over another payload.
  const std::string token = good_token(Signer::hs256);
  const std::string other = good_token(Signer::hs256, R"({"sub":"mallory"})");
  CHECK(refusal(*hs, with_signature(token, other.substr(other.rfind('.') + 1))) == "bad signature");
  // A payload edited after signing.
  const std::string forged = b64url(header_for(Signer::hs256)) + "." + b64url(R"({"sub":"root"})") +
                             token.substr(token.rfind('.'));
  CHECK(refusal(*hs, forged) == "bad signature");

  for (Signer signer : {Signer::rs256, Signer::es256}) {
    const std::string alg = alg_of(signer);
    CAPTURE(alg);
    const std::string t = good_token(signer);
    const std::string o = good_token(signer, R"({"sub":"mallory"})");
    CHECK(refusal(*verifier(signer), with_signature(t, o.substr(o.rfind('.') + 1))) == "bad signature");
  }
}

TEST_CASE("alg none with an empty signature is refused") {
  auto v = verifier(Signer::hs256);
  const std::string input = b64url(R"({"alg":"none"})") + "." + b64url(kPayload);
  CHECK(refusal(*v, input + ".") != "(verified)");
  // Even with a signature segment, none is not the configured algorithm.
  CHECK(refusal(*v, input + "." + b64url("x")) == "alg none is not the configured HS256");
}

TEST_CASE("an HS256 token whose secret is the RSA public key PEM is refused (alg confusion)") {
  const std::string input = b64url(header_for(Signer::hs256)) + "." + b64url(kPayload);
  const std::string token = input + "." + b64url(hmac_sha256(keys().rsa_pem, input));
  CHECK(refusal(*verifier(Signer::rs256), token) == "alg HS256 is not the configured RS256");
  const std::string ec_input = b64url(header_for(Signer::hs256)) + "." + b64url(kPayload);
  const std::string ec_token = ec_input + "." + b64url(hmac_sha256(keys().ec_pem, ec_input));
  CHECK(refusal(*verifier(Signer::es256), ec_token) == "alg HS256 is not the configured ES256");
}

TEST_CASE("a token whose alg is not the configured one is refused") {
  CHECK(refusal(*verifier(Signer::hs256), good_token(Signer::rs256)) ==
        "alg RS256 is not the configured HS256");
  CHECK(refusal(*verifier(Signer::rs256), good_token(Signer::es256)) ==
        "alg ES256 is not the configured RS256");
  CHECK(refusal(*verifier(Signer::es256), good_token(Signer::rs256)) ==
        "alg RS256 is not the configured ES256");
  auto v = verifier(Signer::hs256);
  CHECK(refusal(*v, token_of(R"({"alg":"HS512"})", kPayload, Signer::hs256)) ==
        "alg HS512 is not the configured HS256");
  CHECK(refusal(*v, token_of(R"({"alg":"hs256"})", kPayload, Signer::hs256)) ==
        "alg hs256 is not the configured HS256");
  CHECK(refusal(*v, token_of(R"({"typ":"JWT"})", kPayload, Signer::hs256)) == "header has no alg");
  CHECK(refusal(*v, token_of(R"({"alg":["HS256"]})", kPayload, Signer::hs256)) == "alg is not a string");
  // An alg that would write a line of its own into the log is made printable and short.
  CHECK(refusal(*v, token_of(R"({"alg":"x\nFAKE LOG LINE 0123456789012345678901234567890"})",
                             kPayload, Signer::hs256)) ==
        "alg x?FAKE LOG LINE 0123456789012345... is not the configured HS256");
}

TEST_CASE("a duplicate header member: the last one counts (RFC 7515 section 4)") {
  auto v = verifier(Signer::hs256);
  CHECK(refusal(*v, token_of(R"({"alg":"HS256","alg":"none"})", kPayload, Signer::hs256)) ==
        "alg none is not the configured HS256");
  CHECK(refusal(*v, token_of(R"({"alg":"none","alg":"HS256"})", kPayload, Signer::hs256)) == "(verified)");
}

TEST_CASE("ES256: a DER signature, and any length but 64 bytes, is refused") {
  auto v = verifier(Signer::es256);
  CHECK(refusal(*v, token_of(header_for(Signer::es256), kPayload, Signer::es256_der)) == "bad signature");
  const std::string token = good_token(Signer::es256);
  const std::string raw = sign(Signer::es256, token.substr(0, token.rfind('.')));
  CHECK(refusal(*v, with_signature(token, b64url(raw.substr(0, 63)))) == "bad signature");
  CHECK(refusal(*v, with_signature(token, b64url(raw + '\0'))) == "bad signature");
  CHECK(refusal(*v, with_signature(token, b64url(std::string(64, '\0')))) == "bad signature");
}

TEST_CASE("a signature of the wrong length is refused") {
  const std::string hs = good_token(Signer::hs256);
  const std::string mac = sign(Signer::hs256, hs.substr(0, hs.rfind('.')));
  CHECK(refusal(*verifier(Signer::hs256), with_signature(hs, b64url(mac.substr(0, 31)))) == "bad signature");
  CHECK(refusal(*verifier(Signer::hs256), with_signature(hs, b64url(mac + mac))) == "bad signature");
  const std::string rs = good_token(Signer::rs256);
  const std::string sig = sign(Signer::rs256, rs.substr(0, rs.rfind('.')));
  CHECK(refusal(*verifier(Signer::rs256), with_signature(rs, b64url(sig.substr(1)))) == "bad signature");
  CHECK(refusal(*verifier(Signer::rs256), with_signature(rs, b64url('\0' + sig))) == "bad signature");
}

TEST_CASE("a crit header is refused, whatever it holds") {
  auto v = verifier(Signer::hs256);
  CHECK(refusal(*v, token_of(R"({"alg":"HS256","crit":["exp"],"exp":1})", kPayload, Signer::hs256)) ==
        "crit header not supported");
  CHECK(refusal(*v, token_of(R"({"alg":"HS256","crit":[]})", kPayload, Signer::hs256)) ==
        "crit header not supported");
  CHECK(refusal(*v, token_of(R"({"alg":"HS256","crit":null})", kPayload, Signer::hs256)) ==
        "crit header not supported");
}

TEST_CASE("exp: past beyond the leeway is refused, within the leeway accepted") {
  auto v = verifier(Signer::hs256);   // leeway 60 s
  const std::string token = good_token(Signer::hs256, R"({"exp":1700000000})");
  CHECK(refusal(*v, token, kNow) == "(verified)");
  CHECK(refusal(*v, token, kNow + 60) == "(verified)");
  CHECK(refusal(*v, token, kNow + 61) == "token expired");
  CHECK(refusal(*v, token, kNow + 100000) == "token expired");
  JwtConfig strict = config_for(Signer::hs256);
  strict.leeway_s = 0;
  CHECK(refusal(*verifier(strict), token, kNow + 1) == "token expired");
}

TEST_CASE("nbf in the future beyond the leeway is refused") {
  auto v = verifier(Signer::hs256);
  const std::string token = good_token(Signer::hs256, R"({"nbf":1700000100})");
  CHECK(refusal(*v, token, kNow) == "token not valid yet (nbf)");
  CHECK(refusal(*v, token, kNow + 40) == "(verified)");
  CHECK(refusal(*v, token, kNow + 100) == "(verified)");
}

TEST_CASE("exp, nbf and iat must be numbers") {
  auto v = verifier(Signer::hs256);
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"exp":"1700000600"})")) == "exp is not a number");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"exp":null})")) == "exp is not a number");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"nbf":true})")) == "nbf is not a number");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"iat":{}})")) == "iat is not a number");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"iat":1699999999})")) == "(verified)");
}

TEST_CASE("aud: a string or an array holding the configured audience; else refused") {
  JwtConfig c = config_for(Signer::hs256);
  c.audience = "atrium";
  auto v = verifier(c);
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"aud":"atrium"})")) == "(verified)");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"aud":["other","atrium"]})")) == "(verified)");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"aud":"other"})")) == "aud does not match");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"aud":["other","atrium2"]})")) == "aud does not match");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"aud":[]})")) == "aud does not match");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"aud":[["atrium"]]})")) == "aud does not match");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"sub":"alice"})")) == "aud missing");
  // Not configured: not checked.
  CHECK(refusal(*verifier(Signer::hs256), good_token(Signer::hs256, R"({"aud":"other"})")) == "(verified)");
}

TEST_CASE("iss must equal the configured issuer") {
  JwtConfig c = config_for(Signer::hs256);
  c.issuer = "https://auth.example";
  auto v = verifier(c);
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"iss":"https://auth.example"})")) == "(verified)");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"iss":"https://evil.example"})")) == "iss does not match");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"iss":["https://auth.example"]})")) == "iss does not match");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"sub":"alice"})")) == "iss missing");
}

TEST_CASE("sub, when present, must be a string") {
  auto v = verifier(Signer::hs256);
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"sub":42})")) == "sub is not a string");
  CHECK(refusal(*v, good_token(Signer::hs256, R"({"sub":null})")) == "sub is not a string");
}

TEST_CASE("a token over 8 KiB is refused before decoding") {
  auto v = verifier(Signer::hs256);
  const std::string big = good_token(Signer::hs256, R"({"pad":")" + std::string(7000, 'x') + R"("})");
  REQUIRE(big.size() > kMaxTokenBytes);
  CHECK(refusal(*v, big) == "token longer than 8192 bytes");
  CHECK(refusal(*v, std::string(kMaxTokenBytes + 1, '.')) == "token longer than 8192 bytes");
  // Just under the limit still verifies.
  const std::string fits = good_token(Signer::hs256, R"({"pad":")" + std::string(6000, 'x') + R"("})");
  REQUIRE(fits.size() <= kMaxTokenBytes);
  CHECK(refusal(*v, fits) == "(verified)");
}

TEST_CASE("base64url: padding, characters outside the alphabet and non-canonical ends are refused") {
  auto v = verifier(Signer::hs256);
  const std::string token = good_token(Signer::hs256);
  const std::size_t first_dot = token.find('.');
  const std::size_t last_dot = token.rfind('.');
  const std::string sig = token.substr(last_dot + 1);
  REQUIRE(sig.size() == 43);   // 32 bytes: the last character carries 2 unused bits

  CHECK(refusal(*v, token + "=") == "signature is not canonical base64url");
  CHECK(refusal(*v, token + "==") == "signature is not canonical base64url");
  // A padded header.
  const std::string header_padded = b64url(R"({"alg":"HS256"})") + "=";   // 15 bytes -> 20 chars
  CHECK(refusal(*v, header_padded + token.substr(first_dot)) == "header is not canonical base64url");

  // '+', '/' (plain base64), '*', whitespace and a NUL are not base64url.
  for (char bad : {'+', '/', '*', ' ', '\n', '\0'}) {
    CAPTURE(static_cast<int>(bad));
    std::string t = token;
    t[last_dot + 5] = bad;
    CHECK(refusal(*v, t) == "signature is not canonical base64url");
    t = token;
    t[first_dot + 3] = bad;
    CHECK(refusal(*v, t) != "(verified)");
  }
  CHECK(refusal(*v, token + "\n") == "signature is not canonical base64url");
  CHECK(refusal(*v, " " + token) == "header is not canonical base64url");

  // The same bytes with the unused low bits of the last character set.
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string t = token;
  const std::size_t index = kAlphabet.find(t.back());
  REQUIRE(index != std::string_view::npos);
  t.back() = kAlphabet[index ^ 1];
  CHECK(refusal(*v, t) == "signature is not canonical base64url");
  t.back() = kAlphabet[index ^ 3];
  CHECK(refusal(*v, t) == "signature is not canonical base64url");

  // A length of 1 mod 4 holds no whole byte.
  CHECK(refusal(*v, with_signature(token, sig + "AA")) == "signature is not canonical base64url");
}

TEST_CASE("a header or payload that is not a JSON object is refused") {
  auto v = verifier(Signer::hs256);
  CHECK(refusal(*v, token_of(R"({"alg":)", kPayload, Signer::hs256)).rfind("header is not JSON: ", 0) == 0);
  CHECK(refusal(*v, token_of("\xff\xfe", kPayload, Signer::hs256)).rfind("header is not JSON: ", 0) == 0);
  CHECK(refusal(*v, token_of(R"(["HS256"])", kPayload, Signer::hs256)) == "header is not a JSON object");
  CHECK(refusal(*v, token_of(R"("HS256")", kPayload, Signer::hs256)) == "header is not a JSON object");
  const std::string header = header_for(Signer::hs256);
  CHECK(refusal(*v, token_of(header, R"({"sub":)", Signer::hs256)).rfind("payload is not JSON: ", 0) == 0);
  CHECK(refusal(*v, token_of(header, R"({"sub":"a"} x)", Signer::hs256)).rfind("payload is not JSON: ", 0) == 0);
  CHECK(refusal(*v, token_of(header, "[1,2]", Signer::hs256)) == "payload is not a JSON object");
  CHECK(refusal(*v, token_of(header, "1700000000", Signer::hs256)) == "payload is not a JSON object");
  CHECK(refusal(*v, token_of(header, "null", Signer::hs256)) == "payload is not a JSON object");
}

TEST_CASE("anything but three non-empty segments is refused") {
  auto v = verifier(Signer::hs256);
  const std::string token = good_token(Signer::hs256);
  const std::size_t first_dot = token.find('.');
  const std::size_t last_dot = token.rfind('.');
  const std::string shape = "token is not three non-empty dot-separated segments";
  CHECK(refusal(*v, token.substr(0, last_dot)) == shape);              // 2 segments
  CHECK(refusal(*v, token + "." + token.substr(last_dot + 1)) == shape);   // 4 segments
  CHECK(refusal(*v, token + ".") == shape);
  CHECK(refusal(*v, "") == shape);
  CHECK(refusal(*v, "..") == shape);
  CHECK(refusal(*v, token.substr(first_dot)) == shape);                  // empty header
  CHECK(refusal(*v, token.substr(0, first_dot) + "." + token.substr(last_dot)) == shape);   // empty payload
  CHECK(refusal(*v, token.substr(0, last_dot + 1)) == shape);            // empty signature
}

TEST_CASE("create refuses unusable keys") {
  JwtConfig both;
  both.secret = "s";
  both.public_key_pem = keys().rsa_pem;
  CHECK(create_error(both) == "give a token secret or a public key, not both");
  CHECK(create_error(JwtConfig{}) == "no token key: give a (non-empty) secret or a public key");

  JwtConfig garbage;
  garbage.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n";
  CHECK(create_error(garbage) == "public key is not a PEM PUBLIC KEY or CERTIFICATE");
  garbage.public_key_pem = "hello";
  CHECK(create_error(garbage) == "public key is not a PEM PUBLIC KEY or CERTIFICATE");

  JwtConfig small;
  small.public_key_pem = public_pem(rsa_key(1024).get());
  CHECK(create_error(small) == "RSA public key has 1024 bits; at least 2048 needed");

  JwtConfig p384;
  p384.public_key_pem = public_pem(ec_key("P-384").get());
  CHECK(create_error(p384) == "EC public key is not on P-256 (ES256 needs prime256v1)");

  JwtConfig ed;
  ed.public_key_pem = public_pem(PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")).get());
  CHECK(create_error(ed) == "public key is neither RSA nor EC P-256");

  CHECK(create_error(config_for(Signer::rs256)) == "(created)");
  CHECK(create_error(config_for(Signer::es256)) == "(created)");
}

TEST_CASE("a PEM certificate is accepted for its public key") {
  JwtConfig rs;
  rs.public_key_pem = certificate_pem(keys().rsa.get());
  REQUIRE(rs.public_key_pem.rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
  auto rs_verifier = verifier(rs);
  CHECK(rs_verifier->algorithm() == "RS256");
  CHECK(refusal(*rs_verifier, good_token(Signer::rs256)) == "(verified)");
  JwtConfig es;
  es.public_key_pem = certificate_pem(keys().ec.get());
  auto es_verifier = verifier(es);
  CHECK(es_verifier->algorithm() == "ES256");
  CHECK(refusal(*es_verifier, good_token(Signer::es256)) == "(verified)");
}

TEST_CASE("refusals leave nothing on OpenSSL's error queue (TLS on the same thread reads it)") {
  ERR_clear_error();
  const std::string es = good_token(Signer::es256);
  CHECK(refusal(*verifier(Signer::es256), with_signature(es, b64url(std::string(64, '\xff')))) ==
        "bad signature");
  const std::string rs = good_token(Signer::rs256);
  CHECK(refusal(*verifier(Signer::rs256), with_signature(rs, b64url(std::string(256, '\xff')))) ==
        "bad signature");
  JwtConfig garbage;
  garbage.public_key_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  CHECK(create_error(garbage) == "public key is not a PEM PUBLIC KEY or CERTIFICATE");
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("random single-character edits of a valid token never verify") {
  const std::uint32_t seed = 20240611;
  CAPTURE(seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> printable(0x20, 0x7e);
  constexpr int kEditsPerAlg = 3000;
  for (Signer signer : {Signer::hs256, Signer::rs256, Signer::es256}) {
    const std::string alg = alg_of(signer);
    CAPTURE(alg);
    auto v = verifier(signer);
    const std::string token = good_token(signer);
    REQUIRE(v->verify(token, kNow).ok());
    int verified = 0;
    for (int i = 0; i < kEditsPerAlg; ++i) {
      std::string edited = token;
      const int op = i % 3;
      const auto at = std::uniform_int_distribution<std::size_t>(0, token.size() - 1)(rng);
      if (op == 0) {                       // replace with a different printable character
        char c = edited[at];
        while (c == edited[at]) c = static_cast<char>(printable(rng));
        edited[at] = c;
      } else if (op == 1) {                // delete
        edited.erase(at, 1);
      } else {                             // insert (at the end too)
        const auto where = std::uniform_int_distribution<std::size_t>(0, token.size())(rng);
        edited.insert(where, 1, static_cast<char>(printable(rng)));
      }
      if (v->verify(edited, kNow).ok()) {
        ++verified;
        CAPTURE(i);
        CAPTURE(edited);
        FAIL_CHECK("an edited token verified");
      }
    }
    CHECK(verified == 0);
  }
}

TEST_CASE("verifications per second (measured, not asserted)") {
  for (Signer signer : {Signer::hs256, Signer::rs256, Signer::es256}) {
    auto v = verifier(signer);
    const std::string token = good_token(signer);
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const auto budget = std::chrono::milliseconds(300);
    long n = 0;
    bool all_ok = true;
    while (Clock::now() - start < budget) {
      for (int i = 0; i < 50; ++i, ++n) all_ok &= v->verify(token, kNow).ok();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    CHECK(all_ok);
    MESSAGE(std::string(alg_of(signer)) << ": " << static_cast<long>(static_cast<double>(n) / seconds)
                           << " verifications/s");
  }
}
