/*
 * atrium-load: Atrium's own load generator for the WebSocket benchmarks (protocol v1).
 *
 *   atrium-load --port N [--host 127.0.0.1] --mode emit|call|state|idle|rooms
 *               [--room ID] [--clients M] [--interval-us U] [--size BYTES]
 *               [--warmup S] [--duration S] [--hold S] [--server-pid PID]
 *               [--rooms-per-client K] [--group G] [--probes P] [--hist FILE] [--connect-timeout S]
 *
 * emit   (default mode) M (100) clients join ROOM (bench); each emits a SIZE-byte (100) "data"
 *        every U us (50000), first sends staggered over U. Every "event" line is a delivery;
 *        latency = arrival - the @TS<send us> in its data.
 * call   the same through an action: ROOM fan:1, method say (bench/rooms/fan.lua).
 * state  ROOM field:1: every U us each client calls move(x, y, t); counts patch lines and bytes
 *        (delivered = patches); P (20) probe clients, spread evenly over the send slots (every
 *        M/P-th client), time their own t in each patch.
 * idle   M (2000) clients connect and join; server VmRSS before, and the max over HOLD (10) s
 * after. rooms  client i joins ROOM-<i/G>-<j> for j < K (ROOM many, G 5, K 25); server RSS before,
 * when connected and when joined (max over HOLD, 2 s); then each client emits every U us (1 s), to
 * its rooms in turn. Phases: connect (+ join) within --connect-timeout (30 s; rooms: again for the
 * joins), WARMUP (3 s), then the measured window of DURATION (10 s; idle: the hold). Rates, latency
 * and CPU cover the window only; error counts (server_errors, send_dropped, lost, ...) cover the
 * whole run. Output: one JSON line on stdout; progress and diagnostics on stderr. --hist writes "us
 * count" lines (bucket start, 10 us buckets). Exit 0: run completed; 1: bad arguments; 2: could not
 * run (server down, nobody joined); 3: cut short (every connection lost, signal, hard deadline).
 * Loopback only (127.0.0.0/8). Server on core 0, generator on core 1:
 *   taskset -c 1 build/bench/atrium-load --port 9300 --mode emit --server-pid "$PID"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* ------------------------------------------------------------------------------------------------
 * Options
 * --------------------------------------------------------------------------------------------- */

enum mode { MODE_EMIT, MODE_CALL, MODE_STATE, MODE_IDLE, MODE_ROOMS };
static const char *const mode_names[] = {"emit", "call", "state", "idle", "rooms"};

static struct options {
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
} opt = {
    .host = "127.0.0.1",
    .port = 0,
    .mode = MODE_EMIT,
    .size = 100,
    .warmup_s = 3,
    .duration_s = 10,
    .connect_timeout_s = 30,
    .rooms_per_client = 25,
    .group = 5,
    .probes = 20,
    /* room, clients, interval_us and hold_s default by mode (apply_mode_defaults) */
    .clients = -1,
    .interval_us = -1,
    .hold_s = -1,
};

static void usage(const char *why) {
  if (why) fprintf(stderr, "atrium-load: %s\n", why);
  fprintf(stderr,
          "usage: atrium-load --port N [--host 127.0.0.1] --mode emit|call|state|idle|rooms\n"
          "                   [--room ID] [--clients M] [--interval-us U] [--size BYTES]\n"
          "                   [--warmup S] [--duration S] [--hold S] [--server-pid PID]\n"
          "                   [--rooms-per-client K] [--group G] [--probes P] [--hist FILE]\n"
          "                   [--connect-timeout S]\n");
  exit(1);
}

static long parse_long(const char *flag, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi) {
    fprintf(stderr, "atrium-load: %s wants an integer in %ld..%ld, got '%s'\n", flag, lo, hi, v);
    exit(1);
  }
  return x;
}

static double parse_seconds(const char *flag, const char *v, double lo, double hi) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || *end || !(x >= lo && x <= hi)) {
    fprintf(stderr, "atrium-load: %s wants seconds in %g..%g, got '%s'\n", flag, lo, hi, v);
    exit(1);
  }
  return x;
}

/* Room ids are 1..128 bytes of [A-Za-z0-9_.:@-] (docs/protocol.md "Ids"): checked here so that a
 * typo is a usage error, not 2,000 failed joins; it also means ids never need JSON escaping. */
static bool valid_room_id(const char *s, size_t max) {
  size_t n = strlen(s);
  return n >= 1 && n <= max &&
         strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-") == n;
}

static void apply_mode_defaults(void) {
  static const char *const rooms[] = {"bench", "fan:1", "field:1", "bench", "many"};
  if (!opt.room) opt.room = rooms[opt.mode];
  if (opt.clients < 0) opt.clients = (opt.mode == MODE_IDLE || opt.mode == MODE_ROOMS) ? 2000 : 100;
  if (opt.interval_us < 0) opt.interval_us = opt.mode == MODE_ROOMS ? 1000000 : 50000;
  if (opt.hold_s < 0) opt.hold_s = opt.mode == MODE_IDLE ? 10 : 2;
  if (opt.probes > opt.clients) opt.probes = opt.clients;
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i += 2) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(f, "--help") || !strcmp(f, "-h")) usage(NULL);
    if (!v) usage("every option takes a value");
    if (!strcmp(f, "--port"))
      opt.port = (int)parse_long(f, v, 1, 65535);
    else if (!strcmp(f, "--host"))
      opt.host = v;
    else if (!strcmp(f, "--mode")) {
      int m = -1;
      for (int k = 0; k < 5; k++)
        if (!strcmp(v, mode_names[k])) m = k;
      if (m < 0) usage("--mode is one of emit, call, state, idle, rooms");
      opt.mode = (enum mode)m;
    } else if (!strcmp(f, "--room"))
      opt.room = v;
    else if (!strcmp(f, "--clients"))
      opt.clients = (int)parse_long(f, v, 1, 19000);
    else if (!strcmp(f, "--interval-us"))
      opt.interval_us = parse_long(f, v, 100, 60000000);
    else if (!strcmp(f, "--size"))
      opt.size = (int)parse_long(f, v, 16, 60000);
    else if (!strcmp(f, "--warmup"))
      opt.warmup_s = parse_seconds(f, v, 0, 600);
    else if (!strcmp(f, "--duration"))
      opt.duration_s = parse_seconds(f, v, 0.1, 3600);
    else if (!strcmp(f, "--hold"))
      opt.hold_s = parse_seconds(f, v, 0, 600);
    else if (!strcmp(f, "--connect-timeout"))
      opt.connect_timeout_s = parse_seconds(f, v, 1, 600);
    else if (!strcmp(f, "--server-pid"))
      opt.server_pid = (int)parse_long(f, v, 1, 1 << 30);
    else if (!strcmp(f, "--rooms-per-client"))
      opt.rooms_per_client = (int)parse_long(f, v, 1, 1000);
    else if (!strcmp(f, "--group"))
      opt.group = (int)parse_long(f, v, 1, 19000);
    else if (!strcmp(f, "--probes"))
      opt.probes = (int)parse_long(f, v, 0, 19000);
    else if (!strcmp(f, "--hist"))
      opt.hist_path = v;
    else
      usage("unknown option");
  }
  if (!opt.port) usage("--port is required");
  apply_mode_defaults();
  /* rooms mode appends "-<group>-<j>" (at most 12 bytes) to the prefix */
  if (!valid_room_id(opt.room, opt.mode == MODE_ROOMS ? 100 : 128))
    usage("--room: 1..128 bytes of [A-Za-z0-9_.:@-]");
}

/* ------------------------------------------------------------------------------------------------
 * Time, randomness, /proc
 * --------------------------------------------------------------------------------------------- */

static struct timespec clock_origin;

/* Microseconds since start on the monotonic clock: the @TS and t values the server echoes back. */
static uint64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)(t.tv_sec - clock_origin.tv_sec) * 1000000u +
         (uint64_t)((t.tv_nsec - clock_origin.tv_nsec) / 1000);
}

static uint64_t seconds_to_us(double s) {
  return (uint64_t)(s * 1e6);
}

/* xorshift64*: mask keys only need to vary (RFC 6455 10.3 is about proxies), not be secret. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint32_t random32(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}

static long read_rss_kb(int pid) {
  char path[64], line[256];
  long kb = -1;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

/* The state letter and utime + stime (seconds) of a process; false when it is gone. */
static bool read_proc_stat(int pid, char *state, double *cpu_s) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  /* the command name (field 2) may hold spaces and parentheses: start after the last ')' */
  const char *p = strrchr(text, ')');
  unsigned long ut, st;
  if (!p ||
      sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", state, &ut, &st) != 3)
    return false;
  *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
  return true;
}

static double read_cpu_s(int pid) {
  char state;
  double cpu;
  return read_proc_stat(pid, &state, &cpu) ? cpu : -1;
}

/* A killed server stays a zombie until its parent reaps it: /proc still shows it, as state Z. */
static bool process_gone(int pid) {
  char state;
  double cpu;
  return !read_proc_stat(pid, &state, &cpu) || state == 'Z' || state == 'X';
}

static double own_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ------------------------------------------------------------------------------------------------
 * Counters and the latency histogram
 * --------------------------------------------------------------------------------------------- */

/* Run totals; the window's figures are the difference of two snapshots. */
struct counters {
  uint64_t sent, expected; /* load messages, and deliveries they should cause */
  uint64_t delivered;      /* event lines */
  uint64_t frames, messages, lines, bytes;
  uint64_t patches, patch_bytes, resyncs; /* resyncs: full "state" lines (slow reader) */
  uint64_t late_sends;                    /* sent more than 1 ms after their slot */
};
static struct counters tot;

/* Whole-run error counts. */
static struct {
  uint64_t server_errors, connect_failed, join_failed, lost, send_dropped, bad_ts, skipped_sends;
} errs;

static uint32_t *hist;
static uint64_t hist_count, hist_over, hist_max_us, send_lag_max_us;
static bool recording; /* true inside the measured window only */

static void hist_add(uint64_t us) {
  uint64_t b = us / HIST_STEP_US;
  if (b < HIST_BUCKETS)
    hist[b]++;
  else
    hist_over++;
  if (us > hist_max_us) hist_max_us = us;
  hist_count++;
}

/* The q-quantile as the upper edge of its bucket (so "p99 <= x" holds), capped at the max. */
static uint64_t hist_quantile(double q) {
  if (!hist_count) return 0;
  uint64_t rank = (uint64_t)ceil(q * (double)hist_count), seen = 0;
  if (rank < 1) rank = 1;
  for (uint64_t b = 0; b < HIST_BUCKETS; b++) {
    seen += hist[b];
    if (seen >= rank) {
      uint64_t edge = (b + 1) * HIST_STEP_US;
      return edge < hist_max_us ? edge : hist_max_us;
    }
  }
  return hist_max_us; /* in the overflow */
}

static void write_hist_file(void) {
  FILE *f = fopen(opt.hist_path, "w");
  if (!f) {
    fprintf(stderr, "atrium-load: cannot write %s: %s\n", opt.hist_path, strerror(errno));
    return;
  }
  for (uint64_t b = 0; b < HIST_BUCKETS; b++)
    if (hist[b]) fprintf(f, "%llu %u\n", (unsigned long long)(b * HIST_STEP_US), hist[b]);
  if (fclose(f)) fprintf(stderr, "atrium-load: error writing %s\n", opt.hist_path);
}

/* Per-client diagnostics: the first few go to stderr, the rest are only counted. */
static char first_failure[160];
static void note(int client, const char *fmt, ...) {
  static int printed;
  char text[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (!first_failure[0])
    snprintf(first_failure, sizeof first_failure, "%.*s", (int)sizeof first_failure - 1, text);
  if (printed < NOTE_LIMIT)
    fprintf(stderr, "atrium-load: client %d: %s\n", client, text);
  else if (printed == NOTE_LIMIT)
    fprintf(stderr, "atrium-load: (further client messages suppressed)\n");
  printed++;
}

/* ------------------------------------------------------------------------------------------------
 * Connections
 * --------------------------------------------------------------------------------------------- */

enum conn_state {
  CS_IDLE,       /* not started */
  CS_CONNECTING, /* TCP connect in progress */
  CS_UPGRADING,  /* HTTP upgrade sent, waiting for 101 */
  CS_WELCOME,    /* upgraded, waiting for the welcome line */
  CS_CONNECTED,  /* welcomed, no join yet (rooms mode between its two memory samples) */
  CS_JOINING,    /* joins sent, waiting for every ok reply */
  CS_READY,      /* joined: takes part in the load */
  CS_DEAD,
};

struct buf {
  char *data;
  size_t len, cap;
};

struct conn {
  int fd, idx, group;
  enum conn_state state;
  bool in_flight;  /* counted against MAX_IN_FLIGHT */
  bool out_armed;  /* EPOLLOUT registered */
  bool in_message; /* inside a fragmented data message */
  bool probe;      /* state mode: times its own moves in the patches */
  bool message_binary;
  int joins_ok;
  uint64_t due_us; /* next load message */
  uint64_t sends;  /* load messages sent: round robin in rooms mode, positions in state mode */
  struct buf in;   /* the HTTP response, then the tail of a frame cut by a read boundary */
  struct buf msg;  /* a fragmented message being put back together */
  struct buf out;  /* bytes the socket did not take yet */
  char id[24];     /* welcome.client, e.g. "c12" */
  char needle[40]; /* state probes: "/players/<id> as it appears in a patch path */
  size_t needle_len;
};

static struct conn *conns;
static int epfd;
static struct sockaddr_in server_addr;
static int in_flight, ready_count, connected_count;
static int *group_alive;    /* ready members per group: the fan-out of a load message */
static bool joins_deferred; /* rooms mode, first phase: stop at the welcome */
static volatile sig_atomic_t stop_signal;
static uint64_t rx_now; /* time of the recv being parsed: every line in it arrived then */
static char scratch[SCRATCH_BYTES];
/* One outgoing frame at a time; its header goes right before the payload (send_frame). */
static char tx[TX_HEAD + TX_PAYLOAD];

static void buf_append(struct buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
      fprintf(stderr, "atrium-load: out of memory\n");
      exit(2);
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void buf_consume(struct buf *b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

static void buf_free(struct buf *b) {
  free(b->data);
  *b = (struct buf){0};
}

/* Ready clients integrated over the window (client-microseconds): what state mode expects in
 * patches, exact even when clients are lost midway. */
static double ready_client_us;
static uint64_t ready_since_us;
static void integrate_ready(void) {
  uint64_t now = now_us();
  if (recording) ready_client_us += (double)ready_count * (double)(now - ready_since_us);
  ready_since_us = now;
}

/* Every state change goes through here, so the live counts stay right. */
static void set_state(struct conn *c, enum conn_state s) {
  if (c->state == CS_READY || s == CS_READY) integrate_ready();
  if (c->state == CS_READY) {
    ready_count--;
    group_alive[c->group]--;
  }
  if (c->state == CS_CONNECTED) connected_count--;
  c->state = s;
  if (s == CS_READY) {
    ready_count++;
    group_alive[c->group]++;
  }
  if (s == CS_CONNECTED) connected_count++;
}

static void settle(struct conn *c) {
  if (!c->in_flight) return;
  c->in_flight = false;
  in_flight--;
}

/* Marks a connection dead and closes it. Its buffers stay until release_buffers(): this is called
 * from deep inside the parser, which may still hold a pointer into them. */
static void conn_drop(struct conn *c, const char *why) {
  if (c->state == CS_DEAD) return;
  if (c->in_flight)
    *(c->state == CS_JOINING ? &errs.join_failed : &errs.connect_failed) += 1;
  else
    errs.lost++;
  settle(c);
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  set_state(c, CS_DEAD);
  note(c->idx, "%s", why);
}

static void release_buffers(struct conn *c) {
  buf_free(&c->in);
  buf_free(&c->msg);
  buf_free(&c->out);
}

static void want_output(struct conn *c, bool on) {
  if (c->out_armed == on || c->state == CS_DEAD) return;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  c->out_armed = on;
}

/* ------------------------------------------------------------------------------------------------
 * Sending
 * --------------------------------------------------------------------------------------------- */

/* One send() in the common case; what the socket refuses waits in c->out for EPOLLOUT. */
static void conn_write(struct conn *c, const char *p, size_t n) {
  if (c->state == CS_DEAD) return;
  if (c->out.len == 0) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
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

static void flush_out(struct conn *c) {
  size_t off = 0;
  while (off < c->out.len) {
    ssize_t w = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);
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
static void send_frame(struct conn *c, int opcode, size_t n) {
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

static void send_text(struct conn *c, const char *fmt, ...) {
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
  return opt.mode == MODE_STATE || members < 1 ? 0 : (uint64_t)(members - 1);
}

static void send_load_message(struct conn *c, uint64_t due) {
  if (c->out.len > OUT_CAP) { /* the server is not reading: do not queue without bound */
    errs.send_dropped++;
    c->sends++;
    return;
  }
  uint64_t now = now_us();
  size_t n = build_load_message(c, now, tx + TX_HEAD, TX_PAYLOAD);
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
 * The send schedule: a binary min-heap of client indexes ordered by due time. Popping what is due
 * is O(log M) per message, and its top gives the epoll timeout, so an idle wakeup costs nothing.
 * --------------------------------------------------------------------------------------------- */

static int *heap, heap_n;

static bool due_before(int a, int b) {
  return conns[heap[a]].due_us < conns[heap[b]].due_us;
}

static void heap_swap(int a, int b) {
  int t = heap[a];
  heap[a] = heap[b];
  heap[b] = t;
}

static void heap_push(int idx) {
  int i = heap_n++;
  heap[i] = idx;
  while (i > 0 && due_before(i, (i - 1) / 2)) {
    heap_swap(i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void heap_sift_down(int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_n && due_before(l, m)) m = l;
    if (r < heap_n && due_before(r, m)) m = r;
    if (m == i) return;
    heap_swap(i, m);
    i = m;
  }
}

static void heap_pop(void) {
  heap[0] = heap[--heap_n];
  heap_sift_down(0);
}

/* Open loop: a slot missed is sent late, not skipped, unless the generator fell a whole second
 * behind, when the client starts over from now (counted: the run then measured the generator). */
static void fire_due_sends(void) {
  uint64_t now = now_us();
  while (heap_n && conns[heap[0]].due_us <= now) {
    struct conn *c = &conns[heap[0]];
    if (c->state != CS_READY) {
      heap_pop();
      continue;
    }
    send_load_message(c, c->due_us);
    c->due_us += (uint64_t)opt.interval_us;
    if (c->due_us + 1000000 < now) {
      uint64_t behind = (now - c->due_us) / (uint64_t)opt.interval_us;
      errs.skipped_sends += behind;
      c->due_us += behind * (uint64_t)opt.interval_us;
    }
    heap_sift_down(0);
    now = now_us();
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

static void on_event(const char *p, size_t n) {
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
    case L_EVENT: on_event(p, n); break;
    case L_PATCH: on_patch(c, p, n); break;
    case L_REPLY: on_reply(c, p, n); break;
    case L_WELCOME: on_welcome(c, p, n); break;
    case L_ERROR: on_error_line(c, p, n); break;
    case L_STATE: tot.resyncs++; break;
    case L_OTHER: break;
  }
}

/* One whole server message: JSON Lines, one object per line. */
static void on_message(struct conn *c, bool text, const char *p, size_t n) {
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

/* ------------------------------------------------------------------------------------------------
 * WebSocket frames from the server
 * --------------------------------------------------------------------------------------------- */

#define FRAME_BAD SIZE_MAX

/* Size of the frame at P (header + payload); 0 while its header is incomplete; FRAME_BAD for a
 * frame a server must not send (masked, RSV bits) or one larger than MAX_MESSAGE. */
static size_t frame_size(const unsigned char *p, size_t n, size_t *header) {
  if (n < 2) return 0;
  if ((p[0] & 0x70) || (p[1] & 0x80)) return FRAME_BAD;
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

static void on_frame(struct conn *c, bool fin, int opcode, const char *p, size_t n) {
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
      on_message(c, opcode == OP_TEXT, p, n);
      return;
    }
    c->in_message = true;
    c->message_binary = opcode == OP_BINARY;
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
    on_message(c, !c->message_binary, c->msg.data, c->msg.len);
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
    on_frame(c, p[off] & 0x80, p[off] & 0x0f, p + off + header, total - header);
    off += total;
  }
  return off;
}

/* Frames are parsed straight from the shared read buffer. Only the tail of a frame cut by the read
 * boundary is kept in c->in; the next read first completes that frame, copying no more bytes than
 * it needs, then goes back to parsing in place. */
static void feed_frames(struct conn *c, const char *p, size_t n) {
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
  char key[25], req[400];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = random32();
    memcpy(nonce + i, &r, 4);
  }
  base64_16(nonce, key);
  int n =
      snprintf(req, sizeof req,
               "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: atrium.v1\r\n\r\n",
               opt.host, opt.port, key);
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

static void on_upgrade_bytes(struct conn *c, const char *p, size_t n) {
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
  if (!warned && !head_names_subprotocol(c->in.data, head)) {
    warned = true;
    fprintf(stderr, "atrium-load: warning: the 101 response does not name atrium.v1\n");
  }
  set_state(c, CS_WELCOME);
  buf_consume(&c->in, head);
  /* the welcome may have come in the same read: what follows the head is frames */
  size_t used = parse_frames(c, c->in.data, c->in.len);
  if (c->state != CS_DEAD) buf_consume(&c->in, used);
}

static void start_connect(struct conn *c) {
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

static void finish_connect(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err)
    conn_drop(c, strerror(err));
  else
    send_upgrade(c);
}

static void start_joins(struct conn *c) {
  c->in_flight = true;
  in_flight++;
  send_joins(c);
}

/* ------------------------------------------------------------------------------------------------
 * The event loop
 * --------------------------------------------------------------------------------------------- */

static void on_readable(struct conn *c) {
  /* a full buffer means more is waiting; a few rounds, then the other connections get a turn */
  for (int round = 0; round < 4 && c->state != CS_DEAD; round++) {
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) conn_drop(c, strerror(errno));
      return;
    }
    if (n == 0) {
      conn_drop(c, "connection closed by the server");
      return;
    }
    rx_now = now_us();
    tot.bytes += (uint64_t)n;
    if (c->state == CS_UPGRADING)
      on_upgrade_bytes(c, scratch, (size_t)n);
    else
      feed_frames(c, scratch, (size_t)n);
    if ((size_t)n < sizeof scratch) return;
  }
}

static void on_event_ready(struct conn *c, uint32_t events) {
  if (c->state == CS_DEAD) return; /* dropped earlier in this batch */
  if (c->state == CS_CONNECTING)
    finish_connect(c);
  else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
    on_readable(c);
  if (c->state != CS_DEAD && (events & EPOLLOUT)) flush_out(c);
  if (c->state == CS_DEAD) release_buffers(c);
}

/* epoll_pwait2 takes a timespec: send slots 100 us apart need better than epoll_wait's 1 ms. */
static int wait_events(struct epoll_event *ev, uint64_t timeout_us) {
  static bool no_pwait2;
  if (timeout_us > MAX_WAIT_US) timeout_us = MAX_WAIT_US;
  if (!no_pwait2) {
    struct timespec ts = {(time_t)(timeout_us / 1000000), (long)(timeout_us % 1000000) * 1000};
    int n = epoll_pwait2(epfd, ev, MAX_EVENTS, &ts, NULL);
    if (n >= 0) return n;
    if (errno != ENOSYS) return 0; /* EINTR: the caller looks at stop_signal */
    no_pwait2 = true;
  }
  int n = epoll_wait(epfd, ev, MAX_EVENTS, (int)((timeout_us + 999) / 1000));
  return n < 0 ? 0 : n;
}

/* One round: wait until an event, the next send slot or UNTIL, then handle what is ready. */
static void pump(uint64_t until) {
  static struct epoll_event ev[MAX_EVENTS];
  uint64_t now = now_us(), wake = until;
  if (heap_n && conns[heap[0]].due_us < wake) wake = conns[heap[0]].due_us;
  int n = wait_events(ev, wake > now ? wake - now : 0);
  for (int i = 0; i < n; i++) on_event_ready(ev[i].data.ptr, ev[i].events);
  if (heap_n) fire_due_sends();
}

/* Takes every client in state FROM one step on (STEP: connect, or join), at most MAX_IN_FLIGHT at a
 * time, until all have settled or DEADLINE passes; the stragglers are then dropped. */
static void advance_all(enum conn_state from, void (*step)(struct conn *), uint64_t deadline) {
  int next = 0;
  for (;;) {
    while (in_flight < MAX_IN_FLIGHT && next < opt.clients) {
      struct conn *c = &conns[next++];
      if (c->state == from) step(c);
      if (c->state == CS_DEAD) release_buffers(c);
    }
    if (next >= opt.clients && in_flight == 0) return;
    uint64_t now = now_us();
    if (stop_signal || now >= deadline) break;
    pump(deadline < now + MAX_WAIT_US ? deadline : now + MAX_WAIT_US);
  }
  for (int i = 0; i < opt.clients; i++)
    if (conns[i].in_flight) {
      conn_drop(&conns[i], stop_signal ? "interrupted" : "timed out (--connect-timeout)");
      release_buffers(&conns[i]);
    }
}

/* Keeps the connections served until UNTIL; false if every connection was lost or a signal came. */
static bool serve_until(uint64_t until) {
  while (now_us() < until) {
    if (stop_signal || ready_count + connected_count == 0) return false;
    pump(until);
  }
  return true;
}

/* Serves for SECONDS and samples the server's RSS SAMPLES times, evenly, the last at the end;
 * returns the largest (allocators settle a little after a burst of joins). */
static long sample_rss_while_serving(double seconds, int samples, bool *ok) {
  long best = -1;
  uint64_t start = now_us(), span = seconds_to_us(seconds);
  for (int k = 1; k <= samples && *ok; k++) {
    *ok = serve_until(start + span * (uint64_t)k / (uint64_t)samples);
    long kb = opt.server_pid ? read_rss_kb(opt.server_pid) : -1;
    if (kb > best) best = kb;
  }
  return best;
}

/* ------------------------------------------------------------------------------------------------
 * The measured window and the report
 * --------------------------------------------------------------------------------------------- */

static struct {
  uint64_t t0, t1;
  struct counters c0, c1;
  double server_cpu0, server_cpu1, own_cpu0, own_cpu1;
} win;

static void begin_window(void) {
  win.t0 = now_us();
  win.c0 = tot;
  win.server_cpu0 = opt.server_pid ? read_cpu_s(opt.server_pid) : -1;
  win.own_cpu0 = own_cpu_s();
  ready_client_us = 0;
  ready_since_us = win.t0;
  recording = true;
}

static void end_window(void) {
  integrate_ready();
  recording = false;
  win.t1 = now_us();
  win.c1 = tot;
  win.server_cpu1 = opt.server_pid ? read_cpu_s(opt.server_pid) : -1;
  win.own_cpu1 = own_cpu_s();
}

/* A one-line JSON object written member by member. */
static bool json_started;
static void json_key(const char *k) {
  printf("%s\"%s\":", json_started ? "," : "{", k);
  json_started = true;
}
static void json_int(const char *k, long long v) {
  json_key(k);
  printf("%lld", v);
}
static void json_num(const char *k, double v, int decimals) {
  json_key(k);
  if (isfinite(v))
    printf("%.*f", decimals, v);
  else
    printf("null");
}
static void json_kb(const char *k, long kb) { /* -1 (unknown) becomes null */
  json_key(k);
  if (kb >= 0)
    printf("%ld", kb);
  else
    printf("null");
}
static void json_str(const char *k, const char *s) {
  json_key(k);
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      printf("\\u%04x", (unsigned char)*s);
    else
      putchar(*s);
  }
  putchar('"');
}
static void json_bool(const char *k, bool v) {
  json_key(k);
  printf(v ? "true" : "false");
}

struct report {
  bool complete;
  const char *problem; /* why the run was cut short */
  double connect_s, join_s;
  long rss_before, rss_connected, rss_joined, rss_after, rss_end; /* server VmRSS, kB; -1 unknown */
  int n_connected, n_joined; /* connections open when rss_connected / rss_joined were taken */
};

/* Bytes of server RSS growth from A to B (kB) per unit, or NAN when a sample is missing. */
static double per_unit(long a_kb, long b_kb, double units) {
  return a_kb >= 0 && b_kb >= 0 && units > 0 ? (double)(b_kb - a_kb) * 1024 / units : NAN;
}

/* Idle and rooms modes: the server memory figures. Rooms: the join growth is shown divided by
 * memberships and by rooms; it is one cost seen two ways, not two costs to add up. */
static void report_memory(const struct report *r) {
  if (opt.mode == MODE_IDLE) {
    json_kb("rss_before_kb", r->rss_before);
    json_kb("rss_after_kb", r->rss_after);
    json_num("bytes_per_conn", per_unit(r->rss_before, r->rss_after, r->n_joined), 0);
    json_num("hold_s", opt.hold_s, 1);
  } else if (opt.mode == MODE_ROOMS) {
    double memberships = (double)r->n_joined * opt.rooms_per_client;
    double rooms = ceil((double)r->n_joined / opt.group) * opt.rooms_per_client;
    json_int("rooms_per_client", opt.rooms_per_client);
    json_int("group", opt.group);
    json_num("rooms", rooms, 0);
    json_kb("rss_before_kb", r->rss_before);
    json_kb("rss_connected_kb", r->rss_connected);
    json_kb("rss_joined_kb", r->rss_joined);
    json_num("bytes_per_conn", per_unit(r->rss_before, r->rss_connected, r->n_connected), 0);
    json_num("bytes_per_membership", per_unit(r->rss_connected, r->rss_joined, memberships), 0);
    json_num("bytes_per_room", per_unit(r->rss_connected, r->rss_joined, rooms), 0);
    json_num("join_s", r->join_s, 2);
  }
}

static void print_report(const struct report *r) {
  double w = win.t1 > win.t0 ? (double)(win.t1 - win.t0) / 1e6 : 1e-6;
  const struct counters *a = &win.c0, *b = &win.c1;
  double sent = (double)(b->sent - a->sent) / w;
  double frames = (double)(b->frames - a->frames), lines = (double)(b->lines - a->lines);
  double patches = (double)(b->patches - a->patches) / w;
  double expected_patches = ready_client_us / 1e6 * PATCH_HZ / w; /* every member, every patch */
  bool state = opt.mode == MODE_STATE;
  double expected = state ? expected_patches : (double)(b->expected - a->expected) / w;
  double delivered = state ? patches : (double)(b->delivered - a->delivered) / w;

  json_str("mode", mode_names[opt.mode]);
  json_str("room", opt.room);
  json_int("clients", opt.clients);
  json_int("alive", ready_count);
  json_int("interval_us", opt.interval_us);
  json_int("size", opt.size);
  json_num("sent_per_s", sent, 0);
  json_num("expected_deliveries_per_s", expected, 0);
  json_num("delivered_per_s", delivered, 0);
  json_num("delivered_pct", expected > 0 ? 100 * delivered / expected : NAN, 2);
  json_int("p50_us", (long long)hist_quantile(0.50));
  json_int("p90_us", (long long)hist_quantile(0.90));
  json_int("p99_us", (long long)hist_quantile(0.99));
  json_int("p999_us", (long long)hist_quantile(0.999));
  json_int("max_us", (long long)hist_max_us);
  json_int("latency_samples", (long long)hist_count);
  json_int("latency_over_10s", (long long)hist_over);
  json_num("recv_frames_per_s", frames / w, 0);
  json_num("recv_mbytes_per_s", (double)(b->bytes - a->bytes) / w / 1e6, 2);
  json_num("lines_per_frame", frames > 0 ? lines / frames : 0, 2);
  json_num("server_cpu_pct",
           win.server_cpu0 >= 0 && win.server_cpu1 >= 0
               ? (win.server_cpu1 - win.server_cpu0) / w * 100
               : NAN,
           1);
  json_kb("server_rss_kb", r->rss_end);
  json_num("loadgen_cpu_pct", (win.own_cpu1 - win.own_cpu0) / w * 100, 1);
  json_int("server_errors", (long long)errs.server_errors);
  json_num("window_s", w, 2);
  if (state) {
    json_num("patches_per_s", patches, 0);
    json_num("expected_patches_per_s", expected_patches, 0);
    json_num("patch_mbytes_per_s", (double)(b->patch_bytes - a->patch_bytes) / w / 1e6, 2);
    json_int("resyncs", (long long)(b->resyncs - a->resyncs));
    json_int("probes", opt.probes);
  }
  report_memory(r);
  json_num("connect_s", r->connect_s, 2);
  json_int("connect_failed", (long long)errs.connect_failed);
  json_int("join_failed", (long long)errs.join_failed);
  json_int("lost", (long long)errs.lost);
  json_int("send_dropped", (long long)errs.send_dropped);
  json_int("skipped_sends", (long long)errs.skipped_sends);
  json_int("late_sends", (long long)(b->late_sends - a->late_sends));
  json_int("send_lag_max_us", (long long)send_lag_max_us);
  json_int("bad_ts", (long long)errs.bad_ts);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  json_int("loadgen_rss_kb", ru.ru_maxrss);
  json_bool("complete", r->complete);
  if (r->problem) json_str("problem", r->problem);
  printf("}\n");
  fflush(stdout);
}

/* ------------------------------------------------------------------------------------------------
 * Setup
 * --------------------------------------------------------------------------------------------- */

static void on_stop_signal(int sig) {
  (void)sig;
  stop_signal = 1;
}

/* The backstop behind the phases' own deadlines: if the loop ever hangs, the run still ends. */
static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "atrium-load: hard deadline passed, giving up\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(3);
}

static void install_signals(double run_bound_s) {
  struct sigaction sa = {0};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)ceil(run_bound_s) + 5);
}

/* Connect phase(s) + warmup + window (or hold) + settling, as the phases bound themselves. */
static double run_bound_s(void) {
  double t = opt.connect_timeout_s + 2;
  if (opt.mode == MODE_ROOMS) t += opt.connect_timeout_s + 1 + opt.hold_s;
  if (opt.mode == MODE_IDLE)
    t += opt.hold_s;
  else
    t += opt.warmup_s + opt.duration_s;
  return t;
}

static void resolve_loopback(void) {
  server_addr.sin_family = AF_INET;
  server_addr.sin_port = htons((uint16_t)opt.port);
  if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1 ||
      (ntohl(server_addr.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "atrium-load: refusing host '%s': only numeric addresses in 127.0.0.0/8\n",
            opt.host);
    exit(1);
  }
}

/* Each client is one socket: the soft limit goes up to the hard one, and the run must fit. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      (rlim_t)opt.clients + 32 > rl.rlim_cur) {
    fprintf(stderr, "atrium-load: %d clients need more file descriptors than the limit (%llu)\n",
            opt.clients, (unsigned long long)rl.rlim_cur);
    exit(2);
  }
}

/* One blocking connect (2 s at most) first, so "server down" is one clear line, not M failures. */
static void check_server_reachable(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (!err && connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0) {
    err = errno;
    if (err == EINPROGRESS) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      socklen_t len = sizeof err;
      if (poll(&pfd, 1, 2000) != 1)
        err = ETIMEDOUT;
      else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    }
  }
  if (fd >= 0) close(fd);
  if (err) {
    fprintf(stderr, "atrium-load: cannot connect to %s:%d: %s (is the server running?)\n", opt.host,
            opt.port, strerror(err));
    exit(2);
  }
  if (opt.server_pid && process_gone(opt.server_pid)) {
    fprintf(stderr, "atrium-load: --server-pid %d: no such process\n", opt.server_pid);
    exit(2);
  }
}

static void allocate(void) {
  int groups = opt.mode == MODE_ROOMS ? (opt.clients + opt.group - 1) / opt.group : 1;
  conns = calloc((size_t)opt.clients, sizeof *conns);
  heap = calloc((size_t)opt.clients, sizeof *heap);
  group_alive = calloc((size_t)groups, sizeof *group_alive);
  hist = calloc(HIST_BUCKETS, sizeof *hist);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!conns || !heap || !group_alive || !hist || epfd < 0) {
    fprintf(stderr, "atrium-load: setup failed: %s\n", strerror(errno));
    exit(2);
  }
  for (int i = 0; i < opt.clients; i++) {
    conns[i].fd = -1;
    conns[i].idx = i;
    conns[i].group = opt.mode == MODE_ROOMS ? i / opt.group : 0;
  }
  /* Probes are every M/P-th client, not the first P: slots are staggered by index, and a probe's
   * latency depends on where its slot falls in the 50 ms patch cycle, which they must cover. */
  int stride = opt.probes ? opt.clients / opt.probes : 0;
  for (int k = 0; k < opt.probes; k++) conns[k * stride].probe = true;
}

/* ------------------------------------------------------------------------------------------------
 * Phases
 * --------------------------------------------------------------------------------------------- */

static void connect_clients(struct report *r) {
  uint64_t t0 = now_us();
  joins_deferred = opt.mode == MODE_ROOMS;
  advance_all(CS_IDLE, start_connect, t0 + seconds_to_us(opt.connect_timeout_s));
  r->connect_s = (double)(now_us() - t0) / 1e6;
  int done = 0;
  for (int i = 0; i < opt.clients; i++)
    done += conns[i].state == CS_CONNECTED || conns[i].state == CS_READY;
  fprintf(stderr, "atrium-load: %d/%d clients %s in %.2f s\n", done, opt.clients,
          joins_deferred ? "connected" : "joined", r->connect_s);
}

/* Rooms mode: memory with the connections open, then the K joins per client, then memory again. */
static void join_rooms(struct report *r, bool *ok) {
  r->rss_connected = sample_rss_while_serving(0.5, 2, ok);
  r->n_connected = connected_count;
  if (!*ok) return;
  uint64_t t0 = now_us();
  joins_deferred = false;
  advance_all(CS_CONNECTED, start_joins, t0 + seconds_to_us(opt.connect_timeout_s));
  r->join_s = (double)(now_us() - t0) / 1e6;
  fprintf(stderr, "atrium-load: %d clients joined %d rooms each in %.2f s\n", ready_count,
          opt.rooms_per_client, r->join_s);
  if (ready_count) r->rss_joined = sample_rss_while_serving(opt.hold_s, 3, ok);
  r->n_joined = ready_count;
}

/* Load: sends start staggered evenly over one interval, so the offered load is smooth from the
 * first slot; the warmup lets the server's queues and the TCP windows settle before the window. */
static bool run_load(void) {
  uint64_t start = now_us();
  for (int i = 0; i < opt.clients; i++)
    if (conns[i].state == CS_READY) {
      conns[i].due_us = start + (uint64_t)opt.interval_us * (uint64_t)i / (uint64_t)opt.clients;
      heap_push(i);
    }
  bool ok = serve_until(start + seconds_to_us(opt.warmup_s));
  begin_window();
  if (ok) ok = serve_until(win.t0 + seconds_to_us(opt.duration_s));
  end_window();
  return ok;
}

static const char *why_cut_short(void) {
  if (stop_signal) return "interrupted by a signal";
  /* the sockets close a moment before the process turns zombie: give it 300 ms to show */
  for (int i = 0; opt.server_pid && i < 30; i++) {
    if (process_gone(opt.server_pid)) return "the server process exited";
    usleep(10000);
  }
  return "every connection was lost";
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  resolve_loopback();
  raise_fd_limit();
  clock_gettime(CLOCK_MONOTONIC, &clock_origin);
  rng_state ^= (uint64_t)getpid() << 32 ^ (uint64_t)clock_origin.tv_nsec;
  check_server_reachable();
  install_signals(run_bound_s());
  prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us, not 50: epoll waits end on the send slot */
  allocate();

  struct report r = {.complete = true, .rss_connected = -1, .rss_joined = -1, .rss_after = -1};
  bool ok = true;
  r.rss_before = opt.server_pid ? read_rss_kb(opt.server_pid) : -1;
  connect_clients(&r);
  if (opt.mode == MODE_ROOMS && connected_count) join_rooms(&r, &ok);
  if (ok && ready_count == 0) {
    fprintf(stderr, "atrium-load: no client joined; first problem: %s\n",
            first_failure[0] ? first_failure : (stop_signal ? "interrupted" : "unknown"));
    return 2;
  }
  if (opt.mode == MODE_IDLE) {
    begin_window();
    r.rss_after = sample_rss_while_serving(opt.hold_s, 5, &ok);
    r.n_joined = ready_count;
    end_window();
  } else if (ok) {
    ok = run_load();
  }
  if (!win.t1) { /* cut short before the window: report an empty one */
    begin_window();
    end_window();
  }
  if (!ok) {
    r.complete = false;
    r.problem = why_cut_short();
    fprintf(stderr, "atrium-load: run cut short: %s\n", r.problem);
  }
  r.rss_end = opt.server_pid ? read_rss_kb(opt.server_pid) : -1;
  print_report(&r);
  if (opt.hist_path) write_hist_file();
  fprintf(stderr, "atrium-load: done: %d/%d clients alive, %llu server errors\n", ready_count,
          opt.clients, (unsigned long long)errs.server_errors);
  return r.complete ? 0 : 3;
}
