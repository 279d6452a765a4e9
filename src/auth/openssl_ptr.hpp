// OpenSSL objects owned by unique_ptr, and the error-queue guard, for every file that
// calls libcrypto (auth/jwt.cpp, net/tls.cpp, their tests).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>

namespace atrium::auth {

// unique_ptr deleter calling OpenSSL's free function for the type.
template <auto Free>
struct Freer {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<&EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<&BIO_free>>;
using X509Ptr = std::unique_ptr<X509, Freer<&X509_free>>;
using MacPtr = std::unique_ptr<EVP_MAC, Freer<&EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Freer<&EVP_MAC_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Freer<&EVP_MD_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Freer<&BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Freer<&ECDSA_SIG_free>>;

// A failed OpenSSL call leaves errors on the thread's queue. Tokens and certificates are
// checked on the transport's thread, where a stale error can make SSL_get_error()
// misreport the next TLS read: drop whatever was queued while this object lived, and
// nothing older.
class ErrorQueueMark {
 public:
  ErrorQueueMark() noexcept { ERR_set_mark(); }
  ~ErrorQueueMark() { ERR_pop_to_mark(); }
  ErrorQueueMark(const ErrorQueueMark&) = delete;
  ErrorQueueMark& operator=(const ErrorQueueMark&) = delete;
};

}  // namespace atrium::auth
