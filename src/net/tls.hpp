// TLS on the server's one port (--tls-cert, --tls-key): the certificate and key are checked
// here, with libcrypto, before libwebsockets loads them from the same paths, at start-up
// and again on every reload (SIGHUP). lws says little when it cannot load a pair, and
// reloads in place: a pair it took halfway (a new certificate, the old key) would fail
// every new handshake, so a reload reaches lws only once the pair is known to be good.
// (docs/protocol.md "Transport")
#pragma once

#include <string>

#include "util/result.hpp"

namespace atrium::net {

// What a good pair says about itself, for the log and for the checks of a reload.
struct TlsCredentials {
  int key_type = 0;          // the key's EVP_PKEY base id (RSA, EC, ...)
  std::string key_name;      // "RSA", "EC", ...
  std::string fingerprint;   // SHA-256 of the certificate (the first of the chain), hex
  std::string not_after;     // "2027-01-05T12:00:00Z"
};

// Reads both PEM files and checks them: a certificate (chain) and an unencrypted private
// key that belongs to its first certificate. The error is one line that says which file
// and why.
Result<TlsCredentials> check_tls_files(const std::string& cert_path, const std::string& key_path);

}  // namespace atrium::net
