/* atrium-load: connections (their states, buffers and diagnostics) and the event loop
 * (declarations: conn.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "tls.h"
#include "load.h"
#include "schedule.h"
#include "stats.h"
#include "ws.h"

/* ------------------------------------------------------------------------------------------------
 * Connections
 * --------------------------------------------------------------------------------------------- */

struct conn *conns;
int epfd;
struct sockaddr_in server_addr;
int in_flight, ready_count, connected_count;
int *group_alive;    /* ready members per group: the fan-out of a load message */
bool joins_deferred; /* rooms mode, first phase: stop at the welcome */
volatile sig_atomic_t stop_signal;
uint64_t rx_now; /* time of the recv being parsed: every line in it arrived then */
static char scratch[SCRATCH_BYTES];

/* Per-client diagnostics: the first few go to stderr, the rest are only counted. */
char first_failure[160];
void note(int client, const char *fmt, ...) {
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

void buf_append(struct buf *b, const void *p, size_t n) {
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

void buf_consume(struct buf *b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void buf_free(struct buf *b) {
  free(b->data);
  *b = (struct buf){0};
}

/* Ready clients integrated over the window (client-microseconds): what state mode expects in
 * patches, exact even when clients are lost midway. */
double ready_client_us;
uint64_t ready_since_us;
void integrate_ready(void) {
  uint64_t now = now_us();
  if (recording) ready_client_us += (double)ready_count * (double)(now - ready_since_us);
  ready_since_us = now;
}

/* Every state change goes through here, so the live counts stay right. */
void set_state(struct conn *c, enum conn_state s) {
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

void settle(struct conn *c) {
  if (!c->in_flight) return;
  c->in_flight = false;
  in_flight--;
}

/* Marks a connection dead and closes it. Its buffers stay until release_buffers(): this is called
 * from deep inside the parser, which may still hold a pointer into them. */
void conn_drop(struct conn *c, const char *why) {
  if (c->state == CS_DEAD) return;
  if (c->in_flight)
    *(c->state == CS_JOINING ? &errs.join_failed : &errs.connect_failed) += 1;
  else
    errs.lost++;
  settle(c);
  tls_close(c);
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  set_state(c, CS_DEAD);
  note(c->idx, "%s", why);
}

void release_buffers(struct conn *c) {
  buf_free(&c->in);
  buf_free(&c->msg);
  buf_free(&c->out);
}

void want_output(struct conn *c, bool on) {
  if (c->out_armed == on || c->state == CS_DEAD) return;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  c->out_armed = on;
}

/* ------------------------------------------------------------------------------------------------
 * The event loop
 * --------------------------------------------------------------------------------------------- */

static void on_readable(struct conn *c) {
  /* a full buffer means more is waiting; a few rounds, then the other connections get a turn.
   * A TLS read returns one record (16 KiB at most) whatever waits: read on until it would block. */
  for (int round = 0; round < (c->ssl ? 16 : 4) && c->state != CS_DEAD; round++) {
    ssize_t n = io_recv(c, scratch, sizeof scratch);
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
    if ((size_t)n < sizeof scratch && !c->ssl) return;
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
void advance_all(enum conn_state from, void (*step)(struct conn *), uint64_t deadline) {
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
bool serve_until(uint64_t until) {
  while (now_us() < until) {
    if (stop_signal || ready_count + connected_count == 0) return false;
    pump(until);
  }
  return true;
}

