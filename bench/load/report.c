/* atrium-load: the measured window and the report (declarations: report.h). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <sys/resource.h>

#include "conn.h"
#include "load.h"
#include "report.h"
#include "stats.h"

/* ------------------------------------------------------------------------------------------------
 * The measured window and the report
 * --------------------------------------------------------------------------------------------- */

struct window win;

void begin_window(void) {
  win.t0 = now_us();
  win.c0 = tot;
  win.server_cpu0 = opt.server_pid ? read_cpu_s(opt.server_pid) : -1;
  win.own_cpu0 = own_cpu_s();
  ready_client_us = 0;
  ready_since_us = win.t0;
  recording = true;
}

void end_window(void) {
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

void print_report(const struct report *r) {
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
