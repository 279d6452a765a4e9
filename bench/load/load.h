/* atrium-load (usage at the top of main.c): the limits and the options, which every file uses. */
#ifndef ATRIUM_LOAD_LOAD_H
#define ATRIUM_LOAD_LOAD_H

#include <stdbool.h>

/* ------------------------------------------------------------------------------------------------
 * Limits
 * --------------------------------------------------------------------------------------------- */

enum {
  SCRATCH_BYTES = 256 * 1024, /* one recv: the server coalesces up to 256 KB per message */
  MAX_IN_FLIGHT = 64,         /* handshakes (or join batches) at once: under the listen backlog */
  MAX_EVENTS = 512,
  OUT_CAP = 1 << 20,      /* unsent bytes per connection before a load message is dropped */
  MAX_MESSAGE = 64 << 20, /* a larger server message is treated as a protocol error */
  TX_HEAD = 14,           /* room before the payload for the largest client frame header */
  TX_PAYLOAD = 65536,
  HIST_STEP_US = 10,
  HIST_BUCKETS = 1000000, /* 10 us x 1e6 = 10 s; beyond that only an overflow count */
  PATCH_HZ = 20,          /* fan.lua, field.lua: patchRate = 50 ms */
  NOTE_LIMIT = 8,         /* per-client diagnostics printed before going quiet */
  MAX_WAIT_US = 100000,   /* longest epoll wait: a signal or a deadline is seen within it */
};

/* ------------------------------------------------------------------------------------------------
 * Options
 * --------------------------------------------------------------------------------------------- */

enum mode { MODE_EMIT, MODE_CALL, MODE_STATE, MODE_IDLE, MODE_ROOMS, MODE_PUSHER, MODE_CHURN };
enum { MODE_COUNT = 7 };
extern const char *const mode_names[];

struct options {
  const char *host;
  int port;
  enum mode mode;
  const char *room;
  int clients;
  long interval_us;
  int size;
  double warmup_s, duration_s, hold_s, connect_timeout_s;
  int server_pid;
  int rooms_per_client, group, probes;
  const char *hist_path;
  const char *tls_ca; /* --tls: wss://, trusting this PEM file */
  const char *pusher_key, *pusher_secret; /* --mode pusher: the app's (pusher.h) */
  bool msgpack; /* --encoding msgpack: atrium.v1.msgpack (decode.c) */
  bool deflate; /* --deflate on: offer permessage-deflate (decode.c) */
};
extern struct options opt; /* main.c: parse_args() */

#endif
