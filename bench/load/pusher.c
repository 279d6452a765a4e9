/* atrium-load: the Pusher lines (declarations and the scenario: pusher.h). */
#define _GNU_SOURCE
#include "pusher.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "load.h"
#include "protocol.h"
#include "stats.h"
#include "ws.h"

const char *pusher_path(void) {
  static char path[300];
  if (!path[0])
    snprintf(path, sizeof path, "/app/%s?protocol=7&client=atrium-load&version=1", opt.pusher_key);
  return path;
}

/* KEY:hex(HMAC-SHA256(SECRET, "SOCKET_ID:CHANNEL[:CHANNEL_DATA]")): what an auth endpoint would
 * answer. */
static void sign_subscription(const char *socket_id, const char *channel, const char *channel_data,
                              char *dst, size_t cap) {
  char text[400];
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  int n = channel_data ? snprintf(text, sizeof text, "%s:%s:%s", socket_id, channel, channel_data)
                       : snprintf(text, sizeof text, "%s:%s", socket_id, channel);
  HMAC(EVP_sha256(), opt.pusher_secret, (int)strlen(opt.pusher_secret), (unsigned char *)text,
       (size_t)n, mac, &len);
  size_t at = (size_t)snprintf(dst, cap, "%s:", opt.pusher_key);
  for (unsigned int i = 0; i < len && at + 2 < cap; i++) at += (size_t)snprintf(dst + at, 3, "%02x", mac[i]);
}

/* Churn mode: a presence subscription as user "u<idx>"; the JSON string of channel_data has its
 * quotes escaped inside the frame. */
static int presence_subscribe(const struct conn *c, char *dst, size_t cap) {
  char channel[160], data[64], auth[200];
  snprintf(channel, sizeof channel, "presence-%s", opt.room);
  snprintf(data, sizeof data, "{\"user_id\":\"u%d\"}", c->idx);
  sign_subscription(c->id, channel, data, auth, sizeof auth);
  return snprintf(dst, cap,
                  "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"%s\","
                  "\"channel_data\":\"{\\\"user_id\\\":\\\"u%d\\\"}\"}}",
                  channel, auth, c->idx);
}

size_t pusher_load_message(struct conn *c, uint64_t ts, char *dst, size_t cap) {
  if (opt.mode == MODE_CHURN) {
    /* two messages in one write: the caller frames the first; this one frames the second */
    int n = snprintf(dst, cap, "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"presence-%s\"}}",
                     opt.room);
    (void)ts;
    if (n <= 0 || (size_t)n >= cap) return 0;
    send_frame(c, OP_TEXT, (size_t)n);
    return (size_t)presence_subscribe(c, dst, cap);
  }
  int head = snprintf(dst, cap, "{\"event\":\"client-load\",\"channel\":\"private-%s\",\"data\":\"",
                      opt.room);
  if (head <= 0 || (size_t)head + 64 + (size_t)opt.size + 2 >= cap) return 0;
  /* the data string as emit mode writes it: "@TS<send us>#<sender>#" padded with 'x' to SIZE */
  size_t len = (size_t)head;
  int stamp = snprintf(dst + len, 64, "@TS%llu#%d#", (unsigned long long)ts, c->idx);
  len += (size_t)stamp;
  if (stamp < opt.size) {
    memset(dst + len, 'x', (size_t)(opt.size - stamp));
    len += (size_t)(opt.size - stamp);
  }
  memcpy(dst + len, "\"}", 2);
  return len + 2;
}

static bool has(const char *p, size_t n, const char *lit) { return memmem(p, n, lit, strlen(lit)) != NULL; }

/* connection_established: its data is a JSON string, so the socket id is inside escaped quotes:
 * {"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",...}"} */
static void on_established(struct conn *c, const char *p, size_t n) {
  const char *end = p + n, *v = memmem(p, n, "socket_id", 9);
  if (!v) {
    conn_drop(c, "connection_established without a socket_id");
    return;
  }
  v += 9;
  while (v < end && !(*v >= '0' && *v <= '9')) v++;
  size_t len = 0;
  while (v + len < end && ((v[len] >= '0' && v[len] <= '9') || v[len] == '.')) len++;
  if (!len || len >= sizeof c->id) {
    conn_drop(c, "connection_established with an unusable socket_id");
    return;
  }
  memcpy(c->id, v, len);
  c->id[len] = 0;
  set_state(c, CS_JOINING);
  if (opt.mode == MODE_CHURN) {
    char frame[600];
    presence_subscribe(c, frame, sizeof frame);
    send_text(c, "%s", frame);
    return;
  }
  char channel[160], auth[200];
  snprintf(channel, sizeof channel, "private-%s", opt.room);
  sign_subscription(c->id, channel, NULL, auth, sizeof auth);
  send_text(c, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"%s\"}}", channel, auth);
}

void pusher_on_message(struct conn *c, const char *p, size_t n) {
  tot.messages++;
  tot.lines++;
  if (has(p, n, "\"client-load\"")) {
    tot.delivered++;
    if (!recording) return;
    const char *ts = memmem(p, n, "@TS", 3);
    uint64_t sent = 0;
    const char *q = ts ? ts + 3 : NULL, *end = p + n;
    while (q && q < end && *q >= '0' && *q <= '9') sent = sent * 10 + (uint64_t)(*q++ - '0');
    if (!ts) {
      errs.bad_ts++;
      return;
    }
    hist_add(rx_now > sent ? rx_now - sent : 0);
    return;
  }
  if (has(p, n, "pusher:connection_established")) {
    if (c->state == CS_WELCOME) on_established(c, p, n);
    return;
  }
  if (opt.mode == MODE_CHURN && (has(p, n, "pusher_internal:member_added") ||
                                 has(p, n, "pusher_internal:member_removed"))) {
    tot.delivered++;
    return;
  }
  if (has(p, n, "pusher_internal:subscription_succeeded")) {
    if (c->state == CS_JOINING) {
      set_state(c, CS_READY);
      settle(c);
    }
    return;
  }
  if (has(p, n, "pusher:error") || has(p, n, "subscription_error")) {
    errs.server_errors++;
    note(c->idx, "server error: %.*s", (int)(n > 300 ? 300 : n), p);
  }
}
