/* atrium-load: time, /proc, counters and the latency histogram (declarations: stats.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "load.h"
#include "stats.h"

/* ------------------------------------------------------------------------------------------------
 * Time, /proc
 * --------------------------------------------------------------------------------------------- */

struct timespec clock_origin;

/* Microseconds since start on the monotonic clock: the @TS and t values the server echoes back. */
uint64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)(t.tv_sec - clock_origin.tv_sec) * 1000000u +
         (uint64_t)((t.tv_nsec - clock_origin.tv_nsec) / 1000);
}

uint64_t seconds_to_us(double s) {
  return (uint64_t)(s * 1e6);
}

long read_rss_kb(int pid) {
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

double read_cpu_s(int pid) {
  char state;
  double cpu;
  return read_proc_stat(pid, &state, &cpu) ? cpu : -1;
}

/* A killed server stays a zombie until its parent reaps it: /proc still shows it, as state Z. */
bool process_gone(int pid) {
  char state;
  double cpu;
  return !read_proc_stat(pid, &state, &cpu) || state == 'Z' || state == 'X';
}

double own_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ------------------------------------------------------------------------------------------------
 * Counters and the latency histogram
 * --------------------------------------------------------------------------------------------- */

struct counters tot;
struct errors errs;

uint32_t *hist;
uint64_t hist_count, hist_over, hist_max_us, send_lag_max_us;
bool recording; /* true inside the measured window only */

void hist_add(uint64_t us) {
  uint64_t b = us / HIST_STEP_US;
  if (b < HIST_BUCKETS)
    hist[b]++;
  else
    hist_over++;
  if (us > hist_max_us) hist_max_us = us;
  hist_count++;
}

/* The q-quantile as the upper edge of its bucket (so "p99 <= x" holds), capped at the max. */
uint64_t hist_quantile(double q) {
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

void write_hist_file(void) {
  FILE *f = fopen(opt.hist_path, "w");
  if (!f) {
    fprintf(stderr, "atrium-load: cannot write %s: %s\n", opt.hist_path, strerror(errno));
    return;
  }
  for (uint64_t b = 0; b < HIST_BUCKETS; b++)
    if (hist[b]) fprintf(f, "%llu %u\n", (unsigned long long)(b * HIST_STEP_US), hist[b]);
  if (fclose(f)) fprintf(stderr, "atrium-load: error writing %s\n", opt.hist_path);
}

