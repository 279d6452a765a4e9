/* atrium-load: wss:// with OpenSSL (declarations: tls.h). No session resumption: each connection
 * makes a full handshake, as a fresh client does. */
#define _GNU_SOURCE
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "conn.h"
#include "load.h"

bool tls_on;
static SSL_CTX *ctx;

void tls_setup(const char *ca_file) {
  ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
    fprintf(stderr, "atrium-load: --tls %s: cannot load it as a PEM CA file\n", ca_file);
    exit(1);
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  /* send()'s contract: a write may be taken in part, and the rest retried from another buffer */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, opt.host) != 1) {
    fprintf(stderr, "atrium-load: --tls: cannot check the certificate against %s\n", opt.host);
    exit(1);
  }
  tls_on = true;
}

/* Maps an SSL_* result to send()/recv()'s: EAGAIN, or a dropped connection. */
static ssize_t io_result(struct conn *c, int r) {
  int err = SSL_get_error((SSL *)c->ssl, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  if (err == SSL_ERROR_ZERO_RETURN) return 0;
  unsigned long e = ERR_get_error();
  char why[160];
  snprintf(why, sizeof why, "TLS: %s", e ? ERR_reason_error_string(e) : "connection lost");
  ERR_clear_error();
  conn_drop(c, why); /* the caller's own drop that follows is then a no-op */
  errno = ECONNRESET;
  return -1;
}

int tls_handshake(struct conn *c) {
  if (!c->ssl) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
      SSL_free(ssl);
      conn_drop(c, "TLS: cannot make the connection's state");
      return -1;
    }
    SSL_set_connect_state(ssl);
    c->ssl = ssl;
  }
  int r = SSL_do_handshake((SSL *)c->ssl);
  if (r == 1) {
    want_output(c, false);
    return 1;
  }
  int err = SSL_get_error((SSL *)c->ssl, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    want_output(c, err == SSL_ERROR_WANT_WRITE);
    return 0;
  }
  unsigned long e = ERR_get_error();
  char why[200];
  snprintf(why, sizeof why, "TLS handshake failed: %s",
           e ? ERR_reason_error_string(e) : "connection closed");
  ERR_clear_error();
  conn_drop(c, why);
  return -1;
}

ssize_t io_send(struct conn *c, const void *p, size_t n) {
  if (!c->ssl) return send(c->fd, p, n, MSG_NOSIGNAL);
  if (n == 0) return 0;
  size_t done = 0;
  int r = SSL_write_ex((SSL *)c->ssl, p, n, &done);
  return r == 1 ? (ssize_t)done : io_result(c, r);
}

ssize_t io_recv(struct conn *c, void *p, size_t n) {
  if (!c->ssl) return recv(c->fd, p, n, 0);
  size_t got = 0;
  int r = SSL_read_ex((SSL *)c->ssl, p, n, &got);
  return r == 1 ? (ssize_t)got : io_result(c, r);
}

void tls_close(struct conn *c) {
  if (!c->ssl) return;
  SSL_free((SSL *)c->ssl);
  c->ssl = NULL;
}
