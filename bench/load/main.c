/*
 * atrium-load: Atrium's own load generator for the WebSocket benchmarks (protocol v1).
 *
 *   atrium-load --port N [--host 127.0.0.1] --mode emit|call|state|idle|rooms
 *               [--room ID] [--clients M] [--interval-us U] [--size BYTES]
 *               [--warmup S] [--duration S] [--hold S] [--server-pid PID]
 *               [--rooms-per-client K] [--group G] [--probes P] [--hist FILE] [--connect-timeout S]
 *               [--tls CAFILE] [--pusher-key KEY --pusher-secret SECRET]
 *               [--encoding json|msgpack] [--deflate on|off]
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
 * its rooms in turn.
 * pusher the emit scenario over the Pusher protocol (pusher.h): M clients subscribe to private-ROOM
 *        on /app/KEY and each sends a client event every U us (the server needs --pusher-app
 *        ID:KEY:SECRET and a --pusher-limit ID:client-events-per-s= above 1e6/U).
 * churn  presence churn over the Pusher protocol: M clients (one user each) subscribe to
 *        presence-ROOM; each leaves and joins again every U us (an unsubscribe and a subscribe in
 *        one write). Every member_added and member_removed is a delivery: 2 (M - 1) per churn.
 *        The server needs --pusher-limit ID:presence-members= at least M. Phases: connect (+ join) within --connect-timeout (30 s; rooms: again for the
 * joins), WARMUP (3 s), then the measured window of DURATION (10 s; idle: the hold). Rates, latency
 * and CPU cover the window only; error counts (server_errors, send_dropped, lost, ...) cover the
 * whole run. Output: one JSON line on stdout; progress and diagnostics on stderr. --hist writes "us
 * count" lines (bucket start, 10 us buckets). --tls: wss:// instead of ws://, trusting the PEM
 * certificates in CAFILE (the server's own, when self-signed; tls.c). --encoding msgpack asks for
 * atrium.v1.msgpack, --deflate on offers permessage-deflate (decode.c: what is read of those);
 * recv_mbytes_per_s counts bytes as they came off the socket. Exit 0: run completed; 1: bad arguments; 2: could not
 * run (server down, nobody joined); 3: cut short (every connection lost, signal, hard deadline).
 * Loopback only (127.0.0.0/8). Server on core 0, generator on core 1:
 *   taskset -c 1 build/bench/atrium-load --port 9300 --mode emit --server-pid "$PID"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
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

#include "conn.h"
#include "load.h"
#include "protocol.h"
#include "report.h"
#include "schedule.h"
#include "stats.h"
#include "tls.h"
#include "ws.h"

/* Source files, one job each: load.h (limits, options), conn.c (connections, the event loop),
 * ws.c (the WebSocket client), protocol.c (Atrium's lines, probes), schedule.c (the send heap),
 * stats.c (clock, /proc, counters, histogram), report.c (the window, the JSON line). */

/* ------------------------------------------------------------------------------------------------
 * Options
 * --------------------------------------------------------------------------------------------- */

const char *const mode_names[] = {"emit", "call", "state", "idle", "rooms", "pusher", "churn"};

struct options opt = {
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
          "usage: atrium-load --port N [--host 127.0.0.1] --mode emit|call|state|idle|rooms|pusher|churn\n"
          "                   [--room ID] [--clients M] [--interval-us U] [--size BYTES]\n"
          "                   [--warmup S] [--duration S] [--hold S] [--server-pid PID]\n"
          "                   [--rooms-per-client K] [--group G] [--probes P] [--hist FILE]\n"
          "                   [--connect-timeout S] [--tls CAFILE]\n"
          "                   [--pusher-key KEY --pusher-secret SECRET]\n"
          "                   [--encoding json|msgpack] [--deflate on|off]\n");
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
  static const char *const rooms[] = {"bench", "fan:1", "field:1", "bench", "many", "bench", "bench"};
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
      for (int k = 0; k < MODE_COUNT; k++)
        if (!strcmp(v, mode_names[k])) m = k;
      if (m < 0) usage("--mode is one of emit, call, state, idle, rooms, pusher, churn");
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
    else if (!strcmp(f, "--encoding")) {
      if (strcmp(v, "json") && strcmp(v, "msgpack")) usage("--encoding is json or msgpack");
      opt.msgpack = !strcmp(v, "msgpack");
    } else if (!strcmp(f, "--deflate")) {
      if (strcmp(v, "on") && strcmp(v, "off")) usage("--deflate is on or off");
      opt.deflate = !strcmp(v, "on");
    } else if (!strcmp(f, "--tls"))
      opt.tls_ca = v;
    else if (!strcmp(f, "--pusher-key"))
      opt.pusher_key = v;
    else if (!strcmp(f, "--pusher-secret"))
      opt.pusher_secret = v;
    else
      usage("unknown option");
  }
  if (!opt.port) usage("--port is required");
  if ((opt.mode == MODE_PUSHER || opt.mode == MODE_CHURN) && (!opt.pusher_key || !opt.pusher_secret))
    usage("--mode pusher and churn need --pusher-key and --pusher-secret");
  apply_mode_defaults();
  /* rooms mode appends "-<group>-<j>" (at most 12 bytes) to the prefix */
  if (!valid_room_id(opt.room, opt.mode == MODE_ROOMS ? 100 : 128))
    usage("--room: 1..128 bytes of [A-Za-z0-9_.:@-]");
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
  if (opt.tls_ca) tls_setup(opt.tls_ca);
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
