/* atrium-load: permessage-deflate and MessagePack on the way in (declarations: decode.h).
 *
 * What the server sends compressed is one line per message (docs/protocol.md "Compression":
 * a line worth compressing goes as a message of its own), and in the state scenario nearly
 * all of it is patches for somebody else, the bulk of what arrives. Inflating all of it would
 * cost the generator more than the server spends making it, so only what is read is
 * inflated: a message's first bytes tell a patch (counted, by its bytes on the wire); a
 * probe's patches (their own moves' latency) and every other line are inflated whole.
 * MessagePack the same way: a patch is told by its first bytes, what is read is turned into
 * JSON lines by the server's own transcoder (msgpack_json.cpp) and read as JSON. */
#define _GNU_SOURCE /* memmem */
#include "decode.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "load.h"
#include "protocol.h"
#include "stats.h"

static z_stream inflater;
static bool inflater_ready;
static struct {
  char *data;
  size_t cap;
} inflated;

/* Inflates P (RFC 7692: the 00 00 ff ff put back) into inflated, at most LIMIT bytes (0: all).
 * Returns the bytes made, or -1 if it is not deflate data. */
static long inflate_message(const char *p, size_t n, size_t limit) {
  static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
  if (!inflater_ready) {
    if (inflateInit2(&inflater, -15) != Z_OK) return -1;
    inflater_ready = true;
  }
  if (inflateReset(&inflater) != Z_OK) return -1;
  size_t made = 0;
  for (int piece = 0; piece < 2; piece++) {
    inflater.next_in = (Bytef *)(piece ? tail : (const unsigned char *)p);
    inflater.avail_in = (uInt)(piece ? 4 : n);
    while (inflater.avail_in > 0 || piece == 1) {
      if (limit && made >= limit) return (long)made;
      if (inflated.cap < made + 65536) {
        size_t cap = inflated.cap ? inflated.cap * 2 : 1 << 20;
        char *grown = realloc(inflated.data, cap);
        if (!grown) return -1;
        inflated.data = grown;
        inflated.cap = cap;
      }
      size_t room = inflated.cap - made;
      if (limit && room > limit - made) room = limit - made;
      inflater.next_out = (Bytef *)inflated.data + made;
      inflater.avail_out = (uInt)room;
      int rc = inflate(&inflater, Z_SYNC_FLUSH);
      made = (size_t)((char *)inflater.next_out - inflated.data);
      if (rc == Z_STREAM_END) return (long)made;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return -1;
      if (inflater.avail_out != 0) break; /* all it had for the input so far */
    }
  }
  return (long)made;
}

/* A patch line, told from its first bytes: {"op":"patch" in JSON, the map's first key "op"
 * and the string "patch" in MessagePack (the server writes op first). */
static bool looks_like_patch(bool text, const char *p, size_t n) {
  if (text) return n >= 13 && !memcmp(p, "{\"op\":\"patch\"", 13);
  return n >= 10 && memmem(p, n < 16 ? n : 16, "\xa2op\xa5patch", 9) != NULL;
}

/* The bulk of a MessagePack run, read from the bytes as protocol.c reads JSON's: events
 * (timed by the "@TS" that follows their op) and other members' patches (counted). False
 * for a message with a line of another kind (a welcome, a reply: some op key, "op" as a
 * MessagePack string, is not an event's) or a probe's patch: that one goes through the
 * transcoder.
 * A message that starts with a patch counts as one patch, unread: the server joins lines
 * only within a window, and patches come on a 50 ms beat, so that is the only one in it;
 * walking a 27 KB patch value by value would cost the generator more than the server. */
static bool read_msgpack_quickly(struct conn *c, const char *p, size_t n, size_t wire) {
  if (looks_like_patch(false, p, n)) {
    if (c->probe) return false;
    count_unread_patch(wire);
    return true;
  }
  static const char event[] = "\xa2op\xa5" "event";
  const char *end = p + n;
  /* First pass: every op key is an event's. */
  for (const char *at = p; (at = memmem(at, (size_t)(end - at), "\xa2op", 3)); at += 3)
    if ((size_t)(end - at) < sizeof event - 1 || memcmp(at, event, sizeof event - 1)) return false;
  /* Second: each event, up to the next. */
  const char *at = memmem(p, n, event, sizeof event - 1);
  if (!at) return false;
  tot.messages++;
  while (at) {
    const char *next = memmem(at + 1, (size_t)(end - at - 1), event, sizeof event - 1);
    tot.lines++;
    count_event(at, (size_t)((next ? next : end) - at));
    at = next;
  }
  return true;
}

/* Reads JSON lines made from a message of WIRE bytes. Patch bytes count what came over the
 * wire, as for the patches counted unread: a message of nothing but patches is put down at
 * its wire size. */
static void read_as_json(struct conn *c, const char *p, size_t n, size_t wire) {
  const uint64_t lines = tot.lines, patches = tot.patches, patch_bytes = tot.patch_bytes;
  on_message(c, true, p, n);
  if (wire != n && tot.patches > patches && tot.lines - lines == tot.patches - patches)
    tot.patch_bytes = patch_bytes + wire;
}

void on_server_message(struct conn *c, bool text, bool compressed, const char *p, size_t n) {
  const size_t wire = n;
  if (compressed) {
    if (!c->probe) {
      long head = inflate_message(p, n, 32);
      if (head < 0) {
        conn_drop(c, "a compressed message that does not inflate");
        return;
      }
      if (looks_like_patch(text, inflated.data, (size_t)head)) {
        count_unread_patch(wire);
        return;
      }
    }
    long made = inflate_message(p, n, 0);
    if (made < 0) {
      conn_drop(c, "a compressed message that does not inflate");
      return;
    }
    p = inflated.data;
    n = (size_t)made;
  }
  if (text) {
    read_as_json(c, p, n, wire);
    return;
  }
  if (!opt.msgpack) {
    on_message(c, false, p, n);
    return;
  }
  if (read_msgpack_quickly(c, p, n, wire)) return;
  size_t len = 0;
  const char *lines = msgpack_to_json_lines(p, n, &len);
  if (!lines) {
    conn_drop(c, "a binary message that is not MessagePack");
    return;
  }
  read_as_json(c, lines, len, wire);
}
