/* atrium-load: Atrium's lines in and out (declarations: protocol.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "load.h"
#include "protocol.h"
#include "pusher.h"
#include "stats.h"
#include "ws.h"

/* ------------------------------------------------------------------------------------------------
 * Load messages
 * --------------------------------------------------------------------------------------------- */

/* The data string of emit/call: "@TS<send us>#<sender>#" padded with 'x' to SIZE bytes. Only
 * [0-9#@TSx] inside, so it needs no JSON escaping. */
static size_t write_data(char *dst, uint64_t ts, int sender) {
  int n = snprintf(dst, 64, "@TS%llu#%d#", (unsigned long long)ts, sender);
  if (n < opt.size) {
    memset(dst + n, 'x', (size_t)(opt.size - n));
    n = opt.size;
  }
  return (size_t)n;
}

/* "many-<group>-<j>": the rooms-mode room of client C's j-th membership. */
static int rooms_mode_room(char *dst, size_t cap, const struct conn *c, int j) {
  return snprintf(dst, cap, "%s-%d-%d", opt.room, c->group, j);
}

static size_t build_load_message(struct conn *c, uint64_t ts, char *dst, size_t cap) {
  char room[160];
  const char *tail = "\"}";
  int n;
  switch (opt.mode) {
    case MODE_STATE: {
      /* positions wander over 0..999 so every move is a change the patch has to carry */
      int x = (int)((c->idx * 37u + c->sends * 7u) % 1000u),
          y = (int)((c->idx * 11u + c->sends * 13u) % 1000u);
      n = snprintf(dst, cap,
                   "{\"op\":\"call\",\"room\":\"%s\",\"method\":\"move\",\"args\":[%d,%d,%llu]}",
                   opt.room, x, y, (unsigned long long)ts);
      return n > 0 && (size_t)n < cap ? (size_t)n : 0;
    }
    case MODE_CALL:
      n = snprintf(dst, cap, "{\"op\":\"call\",\"room\":\"%s\",\"method\":\"say\",\"args\":[\"",
                   opt.room);
      tail = "\"]}";
      break;
    case MODE_ROOMS:
      rooms_mode_room(room, sizeof room, c, (int)(c->sends % (uint64_t)opt.rooms_per_client));
      n = snprintf(dst, cap, "{\"op\":\"emit\",\"room\":\"%s\",\"event\":\"m\",\"data\":\"", room);
      break;
    default:
      n = snprintf(dst, cap, "{\"op\":\"emit\",\"room\":\"%s\",\"event\":\"m\",\"data\":\"",
                   opt.room);
      break;
  }
  size_t len = (size_t)n;
  len += write_data(dst + len, ts, c->idx);
  memcpy(dst + len, tail, strlen(tail));
  return len + strlen(tail);
}

/* How many "event" lines one load message of C should produce: the other ready members of its
 * room (the sender gets no copy). State mode counts patches instead (see report). */
static uint64_t fanout(const struct conn *c) {
  int members = opt.mode == MODE_ROOMS ? group_alive[c->group] : ready_count;
  if (opt.mode == MODE_STATE || members < 1) return 0;
  return (uint64_t)(members - 1) * (opt.mode == MODE_CHURN ? 2 : 1);
}

void send_load_message(struct conn *c, uint64_t due) {
  if (c->out.len > OUT_CAP) { /* the server is not reading: do not queue without bound */
    errs.send_dropped++;
    c->sends++;
    return;
  }
  uint64_t now = now_us();
  const bool pusher = opt.mode == MODE_PUSHER || opt.mode == MODE_CHURN;
  size_t n = pusher ? pusher_load_message(c, now, tx + TX_HEAD, TX_PAYLOAD)
                                     : build_load_message(c, now, tx + TX_HEAD, TX_PAYLOAD);
  c->sends++;
  if (!n) return;
  send_frame(c, OP_TEXT, n);
  tot.sent++;
  tot.expected += fanout(c);
  if (recording) {
    uint64_t lag = now > due ? now - due : 0;
    if (lag > send_lag_max_us) send_lag_max_us = lag;
    if (lag > 1000) tot.late_sends++;
  }
}

/* ------------------------------------------------------------------------------------------------
 * Reading JSON lines. The hot lines (event, patch) are recognised by their first bytes and scanned
 * with memchr/memmem; only rare lines (welcome, reply) go through the small top-level scanner.
 * --------------------------------------------------------------------------------------------- */

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  return p;
}

/* P is just after an opening quote; returns just after the closing one. */
static const char *skip_string(const char *p, const char *end) {
  while (p < end) {
    if (*p == '\\')
      p += 2;
    else if (*p++ == '"')
      return p;
  }
  return NULL;
}

/* P is at a value; returns the byte after it (NULL if the line ends first). */
static const char *skip_value(const char *p, const char *end) {
  if (p >= end) return NULL;
  if (*p == '"') return skip_string(p + 1, end);
  if (*p != '{' && *p != '[') { /* number, true, false, null */
    while (p < end && *p != ',' && *p != '}' && *p != ']') p++;
    return p;
  }
  int depth = 0;
  while (p < end) {
    char ch = *p++;
    if (ch == '"') {
      if (!(p = skip_string(p, end))) return NULL;
    } else if (ch == '{' || ch == '[') {
      depth++;
    } else if ((ch == '}' || ch == ']') && --depth == 0) {
      return p;
    }
  }
  return NULL;
}

/* The value of KEY among the top-level members of the object on this line, or NULL. Keys inside
 * nested values (a state, an event's data) can never match. */
static const char *top_field(const char *p, size_t n, const char *key) {
  const char *end = p + n;
  size_t klen = strlen(key);
  p = skip_ws(p, end);
  if (p >= end || *p++ != '{') return NULL;
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return NULL;
    const char *k = p + 1;
    if (!(p = skip_string(k, end))) return NULL;
    bool hit = (size_t)(p - 1 - k) == klen && !memcmp(k, key, klen);
    p = skip_ws(p, end);
    if (p >= end || *p != ':') return NULL;
    p = skip_ws(p + 1, end);
    if (hit) return p;
    if (!(p = skip_value(p, end))) return NULL;
    p = skip_ws(p, end);
    if (p >= end || *p++ != ',') return NULL;
  }
}

static bool starts_with(const char *p, const char *end, const char *lit) {
  size_t n = strlen(lit);
  return p && (size_t)(end - p) >= n && !memcmp(p, lit, n);
}

/* Reads the unsigned integer at P (digits only); false when there is none. */
static bool read_uint(const char *p, const char *end, uint64_t *out) {
  uint64_t v = 0;
  const char *s = p;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
  *out = v;
  return p > s;
}

enum line_op { L_OTHER, L_EVENT, L_PATCH, L_REPLY, L_WELCOME, L_ERROR, L_STATE };

/* The server writes "op" first ({"op":"event",...}); anything else falls back to a search of the
 * line's start, so another key order still works, only slower. */
static enum line_op line_op(const char *p, size_t n) {
  static const struct {
    const char *name;
    enum line_op op;
  } ops[] = {
      {"event\"", L_EVENT},     {"patch\"", L_PATCH}, {"reply\"", L_REPLY},
      {"welcome\"", L_WELCOME}, {"error\"", L_ERROR}, {"state\"", L_STATE},
  };
  const char *end = p + n, *name;
  if (n > 7 && !memcmp(p, "{\"op\":\"", 7)) {
    name = p + 7;
  } else {
    const char *v = top_field(p, n, "op");
    if (!v || *v != '"') return L_OTHER;
    name = v + 1;
  }
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (starts_with(name, end, ops[i].name)) return ops[i].op;
  return L_OTHER;
}

/* ------------------------------------------------------------------------------------------------
 * Protocol: welcome, join, replies, events, patches
 * --------------------------------------------------------------------------------------------- */

static void become_ready(struct conn *c) {
  set_state(c, CS_READY);
  settle(c);
}

/* Emit/call/state/idle: one join with ref 1. Rooms: K joins pipelined, refs 1..K; the server
 * answers each in order, so counting ok replies is enough. */
static void send_joins(struct conn *c) {
  char room[160];
  set_state(c, CS_JOINING);
  c->joins_ok = 0;
  int k = opt.mode == MODE_ROOMS ? opt.rooms_per_client : 1;
  for (int j = 0; j < k && c->state != CS_DEAD; j++) {
    if (opt.mode == MODE_ROOMS)
      rooms_mode_room(room, sizeof room, c, j);
    else
      snprintf(room, sizeof room, "%s", opt.room);
    send_text(c, "{\"op\":\"join\",\"room\":\"%s\",\"ref\":%d}", room, j + 1);
  }
}

void start_joins(struct conn *c) {
  c->in_flight = true;
  in_flight++;
  send_joins(c);
}

static int joins_wanted(void) {
  return opt.mode == MODE_ROOMS ? opt.rooms_per_client : 1;
}

static void on_welcome(struct conn *c, const char *p, size_t n) {
  if (c->state != CS_WELCOME) return;
  const char *end = p + n, *v = top_field(p, n, "client");
  const char *q = v && *v == '"' ? memchr(v + 1, '"', (size_t)(end - v - 1)) : NULL;
  if (!q || q - v - 1 < 1 || (size_t)(q - v - 1) >= sizeof c->id) {
    conn_drop(c, "welcome without a usable client id");
    return;
  }
  memcpy(c->id, v + 1, (size_t)(q - v - 1));
  c->id[q - v - 1] = 0;
  c->needle_len = (size_t)snprintf(c->needle, sizeof c->needle, "\"/players/%s", c->id);
  if (joins_deferred) {
    set_state(c, CS_CONNECTED);
    settle(c);
  } else {
    send_joins(c);
  }
}

static void on_reply(struct conn *c, const char *p, size_t n) {
  if (c->state != CS_JOINING) return; /* joins are the only requests that carry a ref */
  if (starts_with(top_field(p, n, "ok"), p + n, "true")) {
    if (++c->joins_ok == joins_wanted()) become_ready(c);
    return;
  }
  errs.server_errors++;
  char why[360];
  snprintf(why, sizeof why, "join failed: %.*s", (int)(n > 300 ? 300 : n), p);
  conn_drop(c, why);
}

static void on_error_line(struct conn *c, const char *p, size_t n) {
  errs.server_errors++;
  note(c->idx, "server error: %.*s", (int)(n > 300 ? 300 : n), p);
}

void count_event(const char *p, size_t n) {
  tot.delivered++;
  if (!recording) return;
  const char *end = p + n, *ts = memmem(p, n, "@TS", 3);
  uint64_t sent;
  if (!ts || !read_uint(ts + 3, end, &sent)) {
    errs.bad_ts++;
    return;
  }
  hist_add(rx_now > sent ? rx_now - sent : 0);
}

/* The t this client last sent, as carried by a patch. Two shapes: one op per field
 * ({"op":"replace","path":"/players/c12/t","value":123}) or one per player
 * ({"op":"replace","path":"/players/c12","value":{"x":1,"y":2,"t":123}}). The search for t stops at
 * the next "path" so a remove of our entry never reads another player's value. */
static bool own_move_time(const struct conn *c, const char *p, size_t n, uint64_t *t) {
  const char *end = p + n, *q = p;
  while ((q = memmem(q, (size_t)(end - q), c->needle, c->needle_len))) {
    q += c->needle_len;
    if (q >= end) break;
    const char *key;
    if (*q == '"')
      key = "\"t\":"; /* whole entry */
    else if (starts_with(q, end, "/t\""))
      key = "\"value\":"; /* the t field */
    else
      continue; /* c12 is a prefix of c123, or another field */
    const char *stop = memmem(q, (size_t)(end - q), "\"path\"", 6);
    const char *v = memmem(q, (size_t)((stop ? stop : end) - q), key, strlen(key));
    return v && read_uint(skip_ws(v + strlen(key), end), end, t) && *t > 0;
  }
  /* Third shape: a patch interval that moved most players carries the whole map in one op
   * ({"op":"replace","path":"/players","value":{"c12":{"x":1,"y":2,"t":123},...}}): our
   * entry is the key "c12" followed by an object, and its t comes before that object ends. */
  char key[48];
  const int kn = snprintf(key, sizeof key, "\"%s\":{", c->id);
  if (kn <= 0 || (size_t)kn >= sizeof key) return false;
  const char *entry = memmem(p, n, key, (size_t)kn);
  if (!entry) return false;
  entry += kn;
  const char *close = memchr(entry, '}', (size_t)(end - entry));
  const char *v = memmem(entry, (size_t)((close ? close : end) - entry), "\"t\":", 4);
  return v && read_uint(skip_ws(v + 4, end), end, t) && *t > 0;
}

void count_unread_patch(size_t wire) {
  tot.messages++;
  tot.lines++;
  tot.patches++;
  tot.patch_bytes += wire;
}

static void on_patch(struct conn *c, const char *p, size_t n) {
  tot.patches++;
  tot.patch_bytes += n;
  uint64_t t;
  /* Only probes look inside: the others' patches are the bulk of what arrives. */
  if (recording && c->probe && own_move_time(c, p, n, &t) && t <= rx_now) hist_add(rx_now - t);
}

static void on_line(struct conn *c, const char *p, size_t n) {
  tot.lines++;
  switch (line_op(p, n)) {
    case L_EVENT: count_event(p, n); break;
    case L_PATCH: on_patch(c, p, n); break;
    case L_REPLY: on_reply(c, p, n); break;
    case L_WELCOME: on_welcome(c, p, n); break;
    case L_ERROR: on_error_line(c, p, n); break;
    case L_STATE: tot.resyncs++; break;
    case L_OTHER: break;
  }
}

/* One whole server message: JSON Lines, one object per line. */
void on_message(struct conn *c, bool text, const char *p, size_t n) {
  if (opt.mode == MODE_PUSHER || opt.mode == MODE_CHURN) {
    if (text) pusher_on_message(c, p, n);
    return;
  }
  tot.messages++;
  if (!text) return;
  const char *end = p + n;
  while (p < end && c->state != CS_DEAD) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    if (stop > p) on_line(c, p, (size_t)(stop - p));
    p = stop + 1;
  }
}

