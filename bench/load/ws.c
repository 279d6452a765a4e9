/* atrium-load: the WebSocket client (declarations: ws.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "conn.h"
#include "load.h"
#include "pusher.h"
#include "decode.h"
#include "protocol.h"
#include "stats.h"
#include "tls.h"
#include "ws.h"

/* ------------------------------------------------------------------------------------------------
 * Randomness and the outgoing frame buffer
 * --------------------------------------------------------------------------------------------- */

/* xorshift64*: mask keys only need to vary (RFC 6455 10.3 is about proxies), not be secret. */
uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint32_t random32(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}

char tx[TX_HEAD + TX_PAYLOAD]; /* see ws.h */

/* ------------------------------------------------------------------------------------------------
 * Sending
 * --------------------------------------------------------------------------------------------- */

/* One send() in the common case; what the socket refuses waits in c->out for EPOLLOUT. */
static void conn_write(struct conn *c, const char *p, size_t n) {
  if (c->state == CS_DEAD) return;
  if (c->out.len == 0) {
    ssize_t w = io_send(c, p, n);
    if (w == (ssize_t)n) return;
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_drop(c, strerror(errno));
        return;
      }
      w = 0;
    }
    p += w;
    n -= (size_t)w;
  }
  buf_append(&c->out, p, n);
  want_output(c, true);
}

void flush_out(struct conn *c) {
  size_t off = 0;
  while (off < c->out.len) {
    ssize_t w = io_send(c, c->out.data + off, c->out.len - off);
    if (w > 0) {
      off += (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      buf_consume(&c->out, off);
      return;
    } else {
      conn_drop(c, w < 0 ? strerror(errno) : "send failed");
      return;
    }
  }
  c->out.len = 0;
  want_output(c, false);
}

/* XOR with the 4-byte key a word at a time (memcpy: alignment-safe, compiles to plain loads).
 * Key byte i applies to payload byte i mod 4 in memory order, as RFC 6455 wants. */
static void mask_payload(char *p, size_t n, uint32_t key) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t w;
    memcpy(&w, p + i, 4);
    w ^= key;
    memcpy(p + i, &w, 4);
  }
  const unsigned char *k = (const unsigned char *)&key;
  for (; i < n; i++) p[i] ^= (char)k[i & 3];
}

/* Sends the N payload bytes already written at tx + TX_HEAD as one masked client frame. The header
 * goes in the space before the payload, so the frame leaves in one send() without a copy. */
void send_frame(struct conn *c, int opcode, size_t n) {
  char *payload = tx + TX_HEAD;
  size_t hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
  unsigned char *h = (unsigned char *)payload - 4 - hl;
  h[0] = (unsigned char)(0x80 | opcode); /* FIN: the client never fragments */
  if (hl == 2) {
    h[1] = (unsigned char)(0x80 | n);
  } else if (hl == 4) {
    h[1] = 0x80 | 126;
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
  } else {
    h[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
  }
  uint32_t key = random32();
  memcpy(payload - 4, &key, 4);
  mask_payload(payload, n, key);
  conn_write(c, (const char *)h, hl + 4 + n);
}

void send_text(struct conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tx + TX_HEAD, TX_PAYLOAD, fmt, ap);
  va_end(ap);
  if (n > 0 && n < TX_PAYLOAD) send_frame(c, OP_TEXT, (size_t)n);
}

static void send_control(struct conn *c, int opcode, const char *p, size_t n) {
  if (n > 125) n = 125; /* control payloads are at most 125 bytes */
  memcpy(tx + TX_HEAD, p, n);
  send_frame(c, opcode, n);
}

/* ------------------------------------------------------------------------------------------------
 * WebSocket frames from the server
 * --------------------------------------------------------------------------------------------- */

#define FRAME_BAD SIZE_MAX

/* Size of the frame at P (header + payload); 0 while its header is incomplete; FRAME_BAD for a
 * frame a server must not send (masked, RSV bits other than permessage-deflate's RSV1 under
 * --deflate) or one larger than MAX_MESSAGE. */
static size_t frame_size(const unsigned char *p, size_t n, size_t *header) {
  if (n < 2) return 0;
  if ((p[0] & (opt.deflate ? 0x30 : 0x70)) || (p[1] & 0x80)) return FRAME_BAD;
  uint64_t len = p[1] & 0x7f;
  size_t h = 2;
  if (len == 126) {
    if (n < 4) return 0;
    len = (uint64_t)p[2] << 8 | p[3];
    h = 4;
  } else if (len == 127) {
    if (n < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
    h = 10;
  }
  if (len > MAX_MESSAGE) return FRAME_BAD;
  *header = h;
  return h + (size_t)len;
}

static void on_close_frame(struct conn *c, const char *p, size_t n) {
  int code = n >= 2 ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 1005;
  char why[200];
  snprintf(why, sizeof why, "server closed the connection: code %d %.*s", code,
           (int)(n > 2 ? (n - 2 > 120 ? 120 : n - 2) : 0), p + (n > 2 ? 2 : 0));
  send_control(c, OP_CLOSE, p, n >= 2 ? 2 : 0); /* echo the code, as RFC 6455 5.5.1 asks */
  conn_drop(c, why);
}

static void on_frame(struct conn *c, bool fin, bool rsv1, int opcode, const char *p, size_t n) {
  switch (opcode) {
    case OP_CLOSE: on_close_frame(c, p, n); return;
    case OP_PING: send_control(c, OP_PONG, p, n); return;
    case OP_PONG: return;
    case OP_CONT:
    case OP_TEXT:
    case OP_BINARY: break;
    default: conn_drop(c, "unknown frame opcode"); return;
  }
  tot.frames++;
  if (opcode != OP_CONT) {
    if (c->in_message) {
      conn_drop(c, "new message inside a fragmented one");
      return;
    }
    if (fin) { /* the usual case: parsed where it lies, no copy */
      on_server_message(c, opcode == OP_TEXT, rsv1, p, n);
      return;
    }
    c->in_message = true;
    c->message_binary = opcode == OP_BINARY;
    c->message_compressed = rsv1;
    c->msg.len = 0;
  } else if (!c->in_message) {
    conn_drop(c, "continuation frame without a message");
    return;
  }
  if (c->msg.len + n > MAX_MESSAGE) {
    conn_drop(c, "fragmented message too large");
    return;
  }
  buf_append(&c->msg, p, n);
  if (fin) {
    c->in_message = false;
    on_server_message(c, !c->message_binary, c->message_compressed, c->msg.data, c->msg.len);
    c->msg.len = 0;
    if (c->state != CS_DEAD && c->msg.cap > 65536) buf_free(&c->msg); /* as for c->in */
  }
}

/* Handles every complete frame in P; returns the bytes used (the rest is a partial frame). */
static size_t parse_frames(struct conn *c, const char *p, size_t n) {
  size_t off = 0;
  while (c->state != CS_DEAD) {
    size_t header = 0, total = frame_size((const unsigned char *)p + off, n - off, &header);
    if (total == FRAME_BAD) {
      conn_drop(c, "malformed frame from the server");
      break;
    }
    if (total == 0 || total > n - off) break;
    on_frame(c, p[off] & 0x80, p[off] & 0x40, p[off] & 0x0f, p + off + header, total - header);
    off += total;
  }
  return off;
}

/* Frames are parsed straight from the shared read buffer. Only the tail of a frame cut by the read
 * boundary is kept in c->in; the next read first completes that frame, copying no more bytes than
 * it needs, then goes back to parsing in place. */
void feed_frames(struct conn *c, const char *p, size_t n) {
  while (c->in.len && n && c->state != CS_DEAD) {
    size_t header = 0, want = frame_size((const unsigned char *)c->in.data, c->in.len, &header);
    size_t take = want == 0 ? 14 : want == FRAME_BAD ? n : want - c->in.len;
    if (take > n) take = n;
    buf_append(&c->in, p, take);
    p += take;
    n -= take;
    size_t used = parse_frames(c, c->in.data, c->in.len);
    if (c->state == CS_DEAD) return;
    buf_consume(&c->in, used);
    /* a 150 KB patch tail held by each of 1,000 clients adds up: give big buffers back */
    if (!c->in.len && c->in.cap > 65536) buf_free(&c->in);
  }
  if (!n || c->state == CS_DEAD) return;
  size_t used = parse_frames(c, p, n);
  if (c->state != CS_DEAD && used < n) buf_append(&c->in, p + used, n - used);
}

/* ------------------------------------------------------------------------------------------------
 * Connecting and the HTTP upgrade
 * --------------------------------------------------------------------------------------------- */

static void base64_16(const unsigned char in[16], char out[25]) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int o = 0;
  for (int i = 0; i < 15; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = a[v >> 18 & 63];
    out[o++] = a[v >> 12 & 63];
    out[o++] = a[v >> 6 & 63];
    out[o++] = a[v & 63];
  }
  out[o++] = a[in[15] >> 2];
  out[o++] = a[(in[15] & 3) << 4];
  out[o++] = '=';
  out[o++] = '=';
  out[o] = 0;
}

static void send_upgrade(struct conn *c) {
  unsigned char nonce[16];
  char key[25], req[800];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = random32();
    memcpy(nonce + i, &r, 4);
  }
  base64_16(nonce, key);
  /* Pusher clients ask for no subprotocol (pusher.h) */
  const bool pusher = opt.mode == MODE_PUSHER || opt.mode == MODE_CHURN;
  int n =
      snprintf(req, sizeof req,
               "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s\r\n",
               pusher ? pusher_path() : "/ws", opt.host, opt.port, key,
               pusher         ? ""
               : opt.msgpack ? "Sec-WebSocket-Protocol: atrium.v1.msgpack\r\n"
                             : "Sec-WebSocket-Protocol: atrium.v1\r\n",
               opt.deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "");
  set_state(c, CS_UPGRADING);
  conn_write(c, req, (size_t)n);
  if (c->state != CS_DEAD && c->out.len == 0) want_output(c, false);
}

/* Case-insensitive search of the response head for the subprotocol we asked for. */
static bool head_names_subprotocol(const char *head, size_t n) {
  char low[4096];
  if (n >= sizeof low) n = sizeof low - 1;
  for (size_t i = 0; i < n; i++)
    low[i] = (char)(head[i] >= 'A' && head[i] <= 'Z' ? head[i] + 32 : head[i]);
  low[n] = 0;
  const char *h = strstr(low, "\r\nsec-websocket-protocol:");
  if (!h) return false;
  const char *eol = strstr(h + 2, "\r\n"), *v = strstr(h, "atrium.v1");
  return v && (!eol || v < eol);
}

void on_upgrade_bytes(struct conn *c, const char *p, size_t n) {
  buf_append(&c->in, p, n);
  const char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
  if (!end) {
    if (c->in.len > 16384) conn_drop(c, "HTTP response head too large");
    return;
  }
  size_t head = (size_t)(end + 4 - c->in.data);
  if (c->in.len < 12 || memcmp(c->in.data, "HTTP/1.1 101", 12)) {
    const char *eol = memchr(c->in.data, '\r', head);
    char why[200];
    snprintf(why, sizeof why, "upgrade refused: %.*s", (int)(eol ? eol - c->in.data : 0),
             c->in.data);
    conn_drop(c, why);
    return;
  }
  static bool warned;
  if (!warned && opt.mode != MODE_PUSHER && opt.mode != MODE_CHURN &&
      !head_names_subprotocol(c->in.data, head)) {
    warned = true;
    fprintf(stderr, "atrium-load: warning: the 101 response does not name atrium.v1\n");
  }
  set_state(c, CS_WELCOME);
  buf_consume(&c->in, head);
  /* the welcome may have come in the same read: what follows the head is frames */
  size_t used = parse_frames(c, c->in.data, c->in.len);
  if (c->state != CS_DEAD) buf_consume(&c->in, used);
}

void start_connect(struct conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  set_state(c, CS_CONNECTING);
  c->in_flight = true;
  in_flight++;
  if (c->fd < 0) {
    conn_drop(c, strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* small frames go out at once */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  c->out_armed = true;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0 ||
      (connect(c->fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 &&
       errno != EINPROGRESS))
    conn_drop(c, strerror(errno));
}

void finish_connect(struct conn *c) {
  if (!c->ssl) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
      conn_drop(c, strerror(err));
      return;
    }
  }
  /* --tls: the handshake first, over as many events as it takes (state stays CS_CONNECTING) */
  if (!tls_on || tls_handshake(c) == 1) send_upgrade(c);
}

