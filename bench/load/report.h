/* atrium-load: the measured window and the one-line JSON report (report.c). */
#ifndef ATRIUM_LOAD_REPORT_H
#define ATRIUM_LOAD_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "stats.h"

struct window {
  uint64_t t0, t1;
  struct counters c0, c1;
  double server_cpu0, server_cpu1, own_cpu0, own_cpu1;
};
extern struct window win;

struct report {
  bool complete;
  const char *problem; /* why the run was cut short */
  double connect_s, join_s;
  long rss_before, rss_connected, rss_joined, rss_after, rss_end; /* server VmRSS, kB; -1 unknown */
  int n_connected, n_joined; /* connections open when rss_connected / rss_joined were taken */
};

void begin_window(void);
void end_window(void);
void print_report(const struct report *r);

#endif
