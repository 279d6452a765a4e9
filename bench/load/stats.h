/* atrium-load: the clock, the /proc readers (server CPU and RSS), our own CPU, the run's counters
 * and the latency histogram (stats.c). */
#ifndef ATRIUM_LOAD_STATS_H
#define ATRIUM_LOAD_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

extern struct timespec clock_origin; /* set by main() before anything reads the clock */
uint64_t now_us(void);
uint64_t seconds_to_us(double s);

long read_rss_kb(int pid);
double read_cpu_s(int pid);
bool process_gone(int pid);
double own_cpu_s(void);

/* Run totals; the window's figures are the difference of two snapshots. */
struct counters {
  uint64_t sent, expected; /* load messages, and deliveries they should cause */
  uint64_t delivered;      /* event lines */
  uint64_t frames, messages, lines, bytes;
  uint64_t patches, patch_bytes, resyncs; /* resyncs: full "state" lines (slow reader) */
  uint64_t late_sends;                    /* sent more than 1 ms after their slot */
};
extern struct counters tot;

/* Whole-run error counts. */
struct errors {
  uint64_t server_errors, connect_failed, join_failed, lost, send_dropped, bad_ts, skipped_sends;
};
extern struct errors errs;

extern uint32_t *hist; /* HIST_BUCKETS buckets, allocated by main.c */
extern uint64_t hist_count, hist_over, hist_max_us, send_lag_max_us;
extern bool recording; /* true inside the measured window only */

void hist_add(uint64_t us);
uint64_t hist_quantile(double q);
void write_hist_file(void);

#endif
