/* atrium-load: the send schedule (declarations: schedule.h). */
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "load.h"
#include "protocol.h"
#include "schedule.h"
#include "stats.h"

/* ------------------------------------------------------------------------------------------------
 * The send schedule: a binary min-heap of client indexes ordered by due time. Popping what is due
 * is O(log M) per message, and its top gives the epoll timeout, so an idle wakeup costs nothing.
 * --------------------------------------------------------------------------------------------- */

int *heap, heap_n;

static bool due_before(int a, int b) {
  return conns[heap[a]].due_us < conns[heap[b]].due_us;
}

static void heap_swap(int a, int b) {
  int t = heap[a];
  heap[a] = heap[b];
  heap[b] = t;
}

void heap_push(int idx) {
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
void fire_due_sends(void) {
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
