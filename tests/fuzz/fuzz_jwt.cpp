// libFuzzer target: auth::JwtVerifier::verify on any bytes, with one verifier per
// algorithm: HS256 (a fixed secret), RS256 and ES256 (keys generated once at startup with
// OpenSSL, their public halves handed over as PEM). It must never crash, and must accept
// nothing but the one valid token made for each verifier at startup (the HS256 one is
// fixed, so it is in the corpus). Startup also checks the classic confusions: an HS256
// token signed with the RSA public key PEM as its secret, and alg "none", are refused.
// An input that starts with "-----BEGIN" is also tried as a public key PEM (create()).
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "fuzz_common.hpp"

using namespace atrium;

namespace {

constexpr std::int64_t kNow = 1700000000;
constexpr const char* kSecret = "atrium-fuzz-secret-0123456789abcdef";
constexpr const char* kAudience = "atrium";
constexpr const char* kIssuer = "https://issuer.example";
// No exp: the token stays valid whatever kNow is.
constexpr const char* kPayload =
    R"({"sub":"fuzz-user","aud":"atrium","iss":"https://issuer.example","iat":1699999000})";

std::string b64url(const unsigned char* p, std::size_t n) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const unsigned v = p[i] << 16 | p[i + 1] << 8 | p[i + 2];
    out += abc[v >> 18 & 63]; out += abc[v >> 12 & 63]; out += abc[v >> 6 & 63]; out += abc[v & 63];
  }
  if (n - i == 1) {
    const unsigned v = p[i] << 16;
    out += abc[v >> 18 & 63]; out += abc[v >> 12 & 63];
  } else if (n - i == 2) {
    const unsigned v = p[i] << 16 | p[i + 1] << 8;
    out += abc[v >> 18 & 63]; out += abc[v >> 12 & 63]; out += abc[v >> 6 & 63];
  }
  return out;
}
std::string b64url(std::string_view s) {
  return b64url(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

std::string signing_input(const char* alg) {
  return b64url(std::string(R"({"alg":")") + alg + R"(","typ":"JWT"})") + "." + b64url(kPayload);
}

std::string hs256(std::string_view secret, const std::string& input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + b64url(mac, len);
}

std::string sign(EVP_PKEY* key, const std::string& input, bool ecdsa) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  std::vector<unsigned char> sig;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    std::abort();
  }
  sig.resize(len);
  if (EVP_DigestSign(ctx, sig.data(), &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1)
    std::abort();
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (!ecdsa) return input + "." + b64url(sig.data(), sig.size());
  // JWS ES256 wants r || s, 32 bytes each, not DER.
  const unsigned char* p = sig.data();
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  if (!es) std::abort();
  unsigned char raw[64];
  BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
  ECDSA_SIG_free(es);
  return input + "." + b64url(raw, 64);
}

std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PUBKEY(bio, key) != 1) std::abort();
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

struct Case {
  std::unique_ptr<auth::JwtVerifier> verifier;
  std::string valid;  // the one token it may accept
};

struct World {
  std::vector<Case> cases;
  std::string rsa_pem;
  bool any = false;

  World() {
    EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
    EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (!rsa || !ec) {
      std::fprintf(stderr, "fuzz_jwt: key generation failed\n");
      std::abort();
    }
    rsa_pem = public_pem(rsa);
    add("HS256", kSecret, "", hs256(kSecret, signing_input("HS256")));
    add("RS256", "", rsa_pem, sign(rsa, signing_input("RS256"), false));
    add("ES256", "", public_pem(ec), sign(ec, signing_input("ES256"), true));
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);

    // The confusions, once: none of these may pass any verifier.
    const std::string confused = hs256(rsa_pem, signing_input("HS256"));
    const std::string none = signing_input("none") + ".";
    for (const Case& c : cases) {
      for (const std::string* t : {&confused, &none}) {
        const bool accepted = c.verifier->verify(*t, kNow).ok();
        FUZZ_CHECK(!accepted, "%s verifier accepted %s", std::string(c.verifier->algorithm()).c_str(),
                   t->c_str());
      }
    }
  }

  void add(const char* alg, std::string secret, std::string pem, std::string valid) {
    auth::JwtConfig cfg;
    cfg.secret = std::move(secret);
    cfg.public_key_pem = std::move(pem);
    cfg.audience = kAudience;
    cfg.issuer = kIssuer;
    auto made = auth::JwtVerifier::create(std::move(cfg));
    if (!made) {
      std::fprintf(stderr, "fuzz_jwt: note: no %s verifier: %s\n", alg, made.error().message.c_str());
      return;
    }
    any = true;
    auto ok = made.value()->verify(valid, kNow);
    if (!ok) {
      std::fprintf(stderr, "fuzz_jwt: note: the %s verifier refuses a valid token: %s\n", alg,
                   ok.error().message.c_str());
    }
    cases.push_back(Case{std::move(made).value(), std::move(valid)});
  }
};

World& world() {
  static World* w = new World();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  World& w = world();
  if (getenv("ATRIUM_FUZZ_JWT_PRINT")) {
    for (const Case& c : w.cases) std::printf("%s %s\n", std::string(c.verifier->algorithm()).c_str(), c.valid.c_str());
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  World& w = world();
  const std::string_view token = fuzz::as_text(data, size);
  for (const Case& c : w.cases) {
    Result<auth::VerifiedToken> r = c.verifier->verify(token, kNow);
    if (!r) continue;
    FUZZ_CHECK(token == c.valid, "the %s verifier accepted a token it should not: %s",
               std::string(c.verifier->algorithm()).c_str(), fuzz::head(token).c_str());
    FUZZ_CHECK(r->claims.is_object(), "claims are not an object");
  }
  if (token.substr(0, 10) == "-----BEGIN") {
    auth::JwtConfig cfg;
    cfg.public_key_pem = std::string(token);
    (void)auth::JwtVerifier::create(std::move(cfg));
  }
  return 0;
}
