/* atrium-load: wss:// (--tls CAFILE), with OpenSSL (tls.c). Without --tls every call here is a
 * plain send()/recv() and the rest is never reached. */
#ifndef ATRIUM_LOAD_TLS_H
#define ATRIUM_LOAD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct conn;

extern bool tls_on;

/* Sets up the client context trusting CAFILE (the server's self-signed certificate); the server's
 * certificate must then verify and name opt.host (an IP address). Exits 1 when it cannot. */
void tls_setup(const char *ca_file);
/* After the TCP connect: starts or continues the handshake. 1: done (send the upgrade), 0: waiting
 * for the socket (the right epoll interest is set), -1: failed (the connection is dropped). */
int tls_handshake(struct conn *c);
/* As send() and recv() on a non-blocking socket: -1 with errno EAGAIN when it would block. */
ssize_t io_send(struct conn *c, const void *p, size_t n);
ssize_t io_recv(struct conn *c, void *p, size_t n);
/* Frees the connection's TLS state, if any (conn_drop, before close()). */
void tls_close(struct conn *c);

#endif
