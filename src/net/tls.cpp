// Checks a TLS certificate and key pair before lws loads it (tls.hpp).
#include "net/tls.hpp"

#include "auth/openssl_ptr.hpp"
#include "util/read_file.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

namespace atrium::net {

namespace {

using auth::BioPtr;
using auth::ErrorQueueMark;
using auth::PkeyPtr;
using auth::X509Ptr;

// An encrypted key would otherwise make OpenSSL ask for its passphrase on the terminal.
int no_passphrase(char*, int, int, void*) { return -1; }

Error file_error(const char* flag, const std::string& path, const std::string& why) {
  return make_error(ErrorCode::bad_request, std::string(flag) + " " + path + ": " + why);
}

Result<std::string> read_file(const char* flag, const std::string& path) {
  Result<std::string> text = atrium::read_file(path);
  if (!text) return file_error(flag, path, text.error().message);
  return text;
}

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string hex_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) != 1) return "";
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string utc_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

Result<TlsCredentials> check_tls_files(const std::string& cert_path, const std::string& key_path) {
  ErrorQueueMark mark;
  Result<std::string> cert_text = read_file("--tls-cert", cert_path);
  if (!cert_text) return std::move(cert_text).error();
  Result<std::string> key_text = read_file("--tls-key", key_path);
  if (!key_text) return std::move(key_text).error();

  // As SSL_CTX_use_certificate_chain_file() reads it: the first certificate is the
  // server's, any others are its chain.
  BioPtr cert_bio = memory_bio(*cert_text);
  if (!cert_bio) return make_error(ErrorCode::internal, "out of memory");
  X509Ptr cert(PEM_read_bio_X509_AUX(cert_bio.get(), nullptr, no_passphrase, nullptr));
  if (!cert) return file_error("--tls-cert", cert_path, "no PEM certificate in it");
  for (;;) {
    X509Ptr extra(PEM_read_bio_X509(cert_bio.get(), nullptr, no_passphrase, nullptr));
    if (extra) continue;
    const unsigned long err = ERR_peek_last_error();
    if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) break;
    return file_error("--tls-cert", cert_path, "a certificate of the chain after the first is damaged");
  }

  BioPtr key_bio = memory_bio(*key_text);
  if (!key_bio) return make_error(ErrorCode::internal, "out of memory");
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  if (!key)
    return file_error("--tls-key", key_path,
                      "no PEM private key in it (an encrypted key is not supported)");
  if (X509_check_private_key(cert.get(), key.get()) != 1)
    return file_error("--tls-key", key_path, "does not belong to the certificate of --tls-cert " +
                                                 cert_path);

  TlsCredentials c;
  c.key_type = EVP_PKEY_get_base_id(key.get());
  const char* name = EVP_PKEY_get0_type_name(key.get());
  c.key_name = name ? name : "unknown";
  c.fingerprint = hex_fingerprint(cert.get());
  c.not_after = utc_time(X509_get0_notAfter(cert.get()));
  return c;
}

}  // namespace atrium::net
